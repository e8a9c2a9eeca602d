"""Train page: pick a dataset and a model, set the hyperparameters, start a run and watch it train.

The run executes in the server's one JobRunner thread (pages.common.get_runner), which writes progress and metric
points to the database; this page only polls the database (a fragment re-run every second) and never blocks on
training. So closing the tab, opening a second one or switching pages leaves the run alone. The page follows the run
this tab started until the next one it starts (and says how it ended); a tab that started none shows the run
training now, whoever started it. Cancelling someone else's run asks first.
"""
from __future__ import annotations

import streamlit as st

from core import charts, fewshot, models, source_runs, storage, tasks
from core.training import TrainConfig, TrainingError
from pages import auth
from pages.choices import forget, kept
from pages.common import get_runner, plain, prefetch_model
from pages.identity import current_user
from pages.notices import WATCHING_KEY

auth.require("train")  # before anything else: sign-in and demo mode (pages/auth.py)

# One pace for the whole run: a faster pace only until the first point needed the fragment to rerun the whole page to
# slow down, and the browser test then intermittently never saw its run's heading (cause not found; BENCHMARKS 3b).
POLL_SECONDS = 1.0
ACTIVE = ("queued", "running")
LOCAL_CHOICE, HUB_CHOICE, RUN_CHOICE = "local folder", "hub id", "finished run"
MODEL_CHOICES = [*models.KNOWN_MODELS, RUN_CHOICE, LOCAL_CHOICE, HUB_CHOICE]
SOURCE_RUN_KEY = "train_source_run"  # the run id a new run starts from (RUN_CHOICE)
DEVICES = ["auto", "cpu", "cuda"]
PRECISIONS = ["auto", "fp32", "bf16", "fp16"]
FEW_SHOT_CHOICES = {"auto": "auto (small data)", "on": "always", "off": "never"}
LABEL_EXAMPLE_CHOICES = {"auto": "auto (sentence encoders, word labels)", "on": "always", "off": "never"}
FREEZE_CHOICES = {"auto": "auto (fixed except for QA)", "on": "keep fixed", "off": "train them"}
RUN_KEY = "train_run_id"  # the run this browser tab started (session_state)
CONFIRM_CANCEL_KEY = "train_confirm_cancel"  # the other person's run whose Cancel was clicked once
CANCEL_NOTE_KEY = "train_cancel_note"  # (kind, message) the last Cancel click left for the next draw


@st.cache_data(ttl=30, show_spinner=False)
def _availability(ref: str) -> tuple[bool, str]:
    return models.availability(ref)


@st.cache_data(ttl=30, show_spinner=False)
def _hub_reachable() -> bool:
    return models.hub_reachable(timeout=2.0)


@st.cache_data(ttl=30, show_spinner=False)
def _default_here(hub_is_reachable: bool) -> tuple[str, str | None]:
    return models.default_here(hub_is_reachable)


def _app_words(message) -> str:
    """A core message (worded for the command line) in this page's words, shown as plain text."""
    return plain(models.worded_for(str(message), models.APP))


def _choice_title(choice: str) -> str:
    if choice == LOCAL_CHOICE:
        return "A model folder on this machine"
    if choice == HUB_CHOICE:
        return "Another Hugging Face Hub model (type its id)"
    if choice == RUN_CHOICE:
        return "Start from a run (a model trained here)"
    return models.KNOWN_MODELS[choice]["title"]  # availability changes (a download): shown below, not in the text


def _get_run(run_id: int | None) -> dict | None:
    if run_id is None:
        return None
    try:
        return storage.get_run(int(run_id))
    except storage.NotFoundError:
        return None


def _run_to_show(runner) -> dict | None:
    """The run this tab started (active or finished: its result stays on screen until the tab starts another);
    a tab that started none shows the run training now, else the newest queued one."""
    mine = _get_run(st.session_state.get(RUN_KEY))
    if mine:
        return mine
    active = _get_run(runner.active_run)
    if active and active["status"] in ACTIVE:
        return active
    waiting = [run for run in storage.list_runs() if run["status"] in ACTIVE]
    waiting.sort(key=lambda run: run["status"] != "running")  # running before queued, newest first otherwise
    return waiting[0] if waiting else None


def _is_mine(run: dict) -> bool:
    return run["id"] == st.session_state.get(RUN_KEY)


# ----------------------------------------------------------------------------- the run being shown

def _headline(run: dict) -> None:
    st.markdown(f"#### Run #{run['id']} · {plain(run.get('dataset_name') or '(deleted dataset)')} · "
                f"{plain(charts.model_short_name(run['model']))}")
    owner = run.get("created_by") or storage.UNKNOWN_PERSON
    st.caption("Your run (started from this tab)" if _is_mine(run) else f"Started by {plain(owner)}"
               + ("" if run["status"] not in ACTIVE else " — not your run: this page shows it while it trains"))


def _curves(run: dict, key: str) -> None:
    frame = storage.metric_frame(run["id"])
    left, right = st.columns(2)
    left.plotly_chart(charts.loss_figure(frame), key=f"{key}-loss-{run['id']}", width="stretch")
    right.plotly_chart(charts.eval_figure(frame, run["task"]), key=f"{key}-eval-{run['id']}", width="stretch")


@st.fragment(run_every=POLL_SECONDS)
def _live(run_id: int) -> None:
    """Progress of an active run, redrawn every POLL_SECONDS; hands over to the full page once it ends."""
    run = _get_run(run_id)
    if run is None:
        st.info(f"Run #{run_id} was deleted.")
        return
    if run["status"] not in ACTIVE:
        st.rerun()  # the whole page draws the result, and this polling fragment is no longer called
    _headline(run)
    info = charts.progress_info(run)
    st.progress(info["fraction"], text=f"**{run['status']}** · {info['text']}")
    device = run.get("device") or "choosing…"
    st.caption(f"Device: {device} · precision: {run.get('precision') or '…'}")
    _cancel_controls(run)
    _curves(run, "live")


def _cancel_controls(run: dict) -> None:
    """Cancel this tab's run at once; someone else's run only after a second, explicit click. The buttons act in
    callbacks, so the next draw already shows the question or the outcome."""
    run_id = run["id"]
    owner = run.get("created_by") or storage.UNKNOWN_PERSON
    someone_else = not _is_mine(run) and owner != current_user()
    note = st.session_state.pop(CANCEL_NOTE_KEY, None)
    if note:
        (st.info if note[0] == "info" else st.warning)(note[1])
    if st.session_state.get(CONFIRM_CANCEL_KEY) == run_id:
        st.warning(f"Run #{run_id} was started by {plain(owner)}, not by you. Cancel it anyway? They will see that you "
                   "cancelled it.")
        yes, no, _ = st.columns([1, 1, 3])
        yes.button(f"Yes, cancel {plain(owner)}'s run", key=f"train_cancel_yes_{run_id}", type="primary",
                   on_click=_cancel, args=(run_id,))
        no.button("Keep it running", key=f"train_cancel_no_{run_id}",
                  on_click=lambda: st.session_state.pop(CONFIRM_CANCEL_KEY, None))
        return
    st.button("Cancel run", key=f"train_cancel_{run_id}", icon="⏹️",
              on_click=_ask_before_cancel if someone_else else _cancel, args=(run_id,),
              help="Stops within one training step. A checkpoint that was already evaluated is kept."
                   + (f" Started by {owner}: asks first." if someone_else else ""))


def _ask_before_cancel(run_id: int) -> None:
    st.session_state[CONFIRM_CANCEL_KEY] = run_id


def _cancel(run_id: int) -> None:
    st.session_state.pop(CONFIRM_CANCEL_KEY, None)
    if get_runner().cancel(run_id, by=current_user()):
        st.session_state[CANCEL_NOTE_KEY] = ("info", "Cancelling… the run stops at its next step.")
    else:
        st.session_state[CANCEL_NOTE_KEY] = ("warning", f"Run #{run_id} is not trained by this server (the command "
                                                         "line may be running it): stop it where it was started.")


def _finished(run: dict) -> None:
    """The outcome of a run that ended: metrics and links, or its error in words."""
    _headline(run)
    status = run["status"]
    if status == "failed":
        st.error(_app_words(run["error"]) if run.get("error") else
                 "The run failed without a message; see data/runs/logs.")
        return
    st.session_state["focus_run"] = run["id"]  # preselected on the Runs and Demo pages
    metrics = run.get("metrics") or {}
    ran = f"{run.get('step') or 0} steps, {charts.epochs_run(run)} epochs"
    if status == "completed":
        st.success(f"Run #{run['id']} completed in {charts.format_duration(run.get('duration_s'))}: {ran} "
                   f"({charts.stop_reason(run)}).")
    else:
        st.warning(f"Run #{run['id']} {status}: {_app_words(run.get('error') or 'no details')}")
    shown = charts.headline_metrics(run["task"], metrics)
    if shown:
        for column, (title, value) in zip(st.columns(len(shown) + 2), shown):
            column.metric(title, value)
    elif charts.cv_estimate(run):
        estimate = charts.cv_estimate(run)
        st.caption(charts.cv_title(estimate))
        for column, (title, value) in zip(st.columns(4), charts.headline_metrics(run["task"], estimate["metrics"])):
            column.metric(f"{title} (estimate)", value)
    elif status == "completed":
        error = ((metrics.get("cross_validation") or {}).get("error"))
        st.caption("No validation metrics: no labeled rows were held out (see the notes below)"
                   + (f", and the cross-validation estimate failed: {error}" if error else "")
                   + ". Pick an evaluation dataset to measure the model.")
    for note in (run.get("params") or {}).get("notes") or []:
        st.caption(f"Note: {plain(note)}")
    _curves(run, "done")
    if run.get("artifact_dir"):
        left, right, _ = st.columns([1, 1, 2])
        left.page_link("pages/runs.py", label="Details on the Runs page", icon="📈")
        right.page_link("pages/demo.py", label="Try it on the Demo page", icon="🎤")


def _monitor(runner) -> None:
    run = _run_to_show(runner)
    if run is None:
        return
    if run["status"] in ACTIVE:
        if _is_mine(run):
            st.session_state[WATCHING_KEY] = run["id"]
        _live(run["id"])
    else:  # app.py has already toasted how it ended (pages.notices), whichever page this tab was on
        _finished(run)
    st.divider()


# ----------------------------------------------------------------------------- the new-run form

def _source_run_picker(dataset: dict) -> str | None:
    """"run:N" for the finished run the user chose to start from (completed runs of the dataset's task with a saved
    model, chosen by id), or None."""
    task = tasks.get(dataset["task"])
    runs = {run["id"]: run for run in source_runs.choices(task.name)}
    if not runs:
        st.info(f"No completed {task.title.lower()} run has a saved model yet: train one first (for example a general "
                "model on a SQuAD-format file), then start from it here.")
        return None
    widget = kept(SOURCE_RUN_KEY)
    chosen = st.session_state.get(SOURCE_RUN_KEY)
    if chosen is not None and chosen not in runs:
        st.warning(f"Run #{chosen}, chosen before, cannot be started from any more (deleted, or not a "
                   f"{task.title.lower()} run): pick one of the runs below.")
        forget(SOURCE_RUN_KEY)
    empty = {} if SOURCE_RUN_KEY in st.session_state else {"index": None}
    run_id = st.selectbox("Start from run", list(runs), format_func=lambda i: charts.run_label(runs[i]),
                          placeholder="Pick a completed run", **empty, **widget,
                          help="Training goes on from that run's saved model. Only completed runs of this "
                               "dataset's task are offered.")
    if run_id is None:
        return None
    run = runs[run_id]
    head = ("its answer head is kept" if not task.has_labels else
            "its head is kept if this dataset's labels are the same (in the same order), else it starts anew")
    st.caption(f"Starts from run #{run_id}'s model (trained on '{plain(run.get('dataset_name') or '?')}' from "
               f"{plain(charts.model_short_name(source_runs.root_model(run['model'])))}); {head}.")
    return f"{source_runs.PREFIX}{run_id}"


def _model_picker(dataset: dict) -> tuple[str | None, bool]:
    """The model reference the user chose (None until one is typed) and whether a run could load it here, with
    availability and licence shown. Without the Hub (and SpanBERT not cached) the built-in MiniLM is preselected,
    and a model that cannot load is said to be so before Start training, which stays off for it."""
    reachable = _hub_reachable()
    preselected, why = _default_here(reachable)
    widget = kept("train_model_choice")
    st.session_state.setdefault("train_model_choice", preselected)  # a tab's first visit: what can train here
    choice = st.selectbox("Model", MODEL_CHOICES, format_func=_choice_title, **widget,
                          help=f"SpanBERT is the default when the Hugging Face Hub can be reached. "
                               f"{models.BUILTIN_TITLE} works without any network. A finished run's model can be "
                               "trained further on this dataset.")
    if why and choice == preselected:
        st.caption(why)
    if choice == RUN_CHOICE:
        ref = _source_run_picker(dataset)
        if ref is not None:
            prefetch_model(ref)
        return ref, ref is not None
    if choice == LOCAL_CHOICE:
        ref = st.text_input("Model folder", **kept("train_model_folder"), placeholder="/path/to/saved-model",
                            help="A folder saved with save_pretrained: config.json + weights (+ tokenizer).").strip()
    elif choice == HUB_CHOICE:
        ref = st.text_input("Hugging Face model id", **kept("train_model_hub"), placeholder="bert-base-cased",
                            help="Any encoder on the Hub, e.g. bert-base-cased or roberta-base.").strip()
    else:
        ref = choice
    if not ref:
        return None, False
    if choice in models.KNOWN_MODELS:
        known = models.KNOWN_MODELS[choice]
        licence = f"Licence: **{known['license']}**"
        if known["license"] == models.SPANBERT_LICENSE:
            licence += " — fine for research and teaching, not for commercial products"
        st.caption(f"{licence}. {known['note']}")
    elif choice == HUB_CHOICE:
        st.caption("Licence: see the model card on the Hugging Face Hub.")
    ok, phrase = _availability(ref)
    if ok:
        st.caption(f"✓ Available offline ({phrase}).")
        prefetch_model(ref)
        return ref, True
    if choice == LOCAL_CHOICE or models.local_folder_like(ref):
        st.warning(f"Cannot use this folder: {plain(phrase)}. Give a folder saved with save_pretrained "
                   f"(config.json + weights), or {models.advice('use_builtin', models.APP)}. Start training stays "
                   "off until then.")
    elif reachable:
        st.info(f"'{plain(ref)}' is not on this machine yet: it is downloaded from the Hugging Face Hub when training "
                "starts (once; later runs use the cache).")
        return ref, True
    else:
        st.warning(f"'{plain(ref)}' cannot be loaded here: it is not on this machine and the Hugging Face Hub cannot "
                   f"be reached, so Start training stays off for it. {models.advice('use_builtin', models.APP, True)}"
                   ", or a model folder on this machine.")
    return ref, False


NO_EVAL_DATASET = "None (see below what is measured)"


def _eval_choice(dataset: dict, datasets: list[dict]) -> str | None:
    same_task = [d["name"] for d in datasets if d["task"] == dataset["task"]]
    return st.selectbox("Evaluation dataset", [None, *same_task], **kept("train_eval_dataset"),
                        format_func=lambda name: NO_EVAL_DATASET if name is None else name,
                        help="Scores come from here. Without one: the dataset's own validation split, else a "
                             "held-out share of its labeled rows when there are enough; the line below the "
                             "settings says which.")


@st.cache_data(ttl=15, show_spinner=False)
def _measurement_plan(dataset: str, labeled: int, eval_dataset: str | None, fraction: float | None, few_shot: str,
                      seed: int, folds: int | None) -> dict:
    """training.measurement_plan for these settings (cached briefly: it reads the dataset; ``labeled`` is part of
    the key so labeling elsewhere refreshes it)."""
    from core.training import measurement_plan
    return measurement_plan(TrainConfig(dataset=dataset, eval_dataset=eval_dataset, validation_fraction=fraction,
                                        few_shot=few_shot, seed=seed, cross_validation=folds))


def _help(name: str) -> str:
    """A setting's help, as the CLI shows it (declared once, on TrainConfig); "empty" = the box left empty."""
    text = TrainConfig.help(name)
    return text[:1].upper() + text[1:] + "."


def _settings(dataset: dict, datasets: list[dict], ref: str | None) -> TrainConfig | None:
    """Hyperparameter widgets (help texts and limits from TrainConfig); a TrainConfig when a model is chosen."""
    task = tasks.get(dataset["task"])
    defaults = TrainConfig(dataset=dataset["name"])
    c1, c2, c3, c4 = st.columns(4)
    epochs = c1.number_input("Epochs", min_value=0.1, max_value=1000.0, value=None, step=1.0, placeholder="auto",
                             key="train_epochs", help=_help("epochs") + "; the few-shot recipe fine-tunes for "
                             f"{fewshot.FINE_TUNE_EPOCHS:g} after its contrastive stage.")
    lr = c2.number_input("Learning rate", min_value=1e-7, max_value=1.0, value=None, step=1e-5, format="%.1e",
                         placeholder="auto", key="train_learning_rate",
                         help=_help("learning_rate") + f"; {fewshot.FINE_TUNE_LR:g} in the few-shot recipe.")
    batch = c3.number_input("Batch size", min_value=1, max_value=1024, value=defaults.batch_size, step=1,
                            key="train_batch_size", help=_help("batch_size"))
    max_length = c4.number_input("Max length (tokens)", min_value=16, max_value=4096, value=None, step=16,
                                 placeholder="auto", key="train_max_length", help=_help("max_length"))
    c1, c2, c3, c4 = st.columns(4)
    doc_stride = defaults.doc_stride
    if task.reads_in_windows:
        doc_stride = c1.number_input("Doc stride", min_value=8, max_value=2048, value=defaults.doc_stride, step=8,
                                     key="train_doc_stride", help=_help("doc_stride"))
    seed = c2.number_input("Seed", min_value=0, max_value=2**31 - 1, value=defaults.seed, step=1, key="train_seed",
                           help=_help("seed"))
    device = c3.selectbox("Device", DEVICES, key="train_device", help=_help("device"))
    precision = c4.selectbox("Precision", PRECISIONS, key="train_precision", help=_help("precision"))
    eval_dataset = _eval_choice(dataset, datasets)
    with st.expander("Advanced"):
        few_shot, label_examples = "auto", "auto"
        if task.few_shot:
            few_shot = st.radio("Few-shot recipe", FEW_SHOT_CHOICES, horizontal=True, key="train_few_shot",
                                format_func=FEW_SHOT_CHOICES.get,
                                help=f"For small labeled sets (up to {fewshot.MAX_EXAMPLES_PER_LABEL} examples per "
                                     "label): every example trains (none is held out), a short contrastive stage "
                                     "groups same-label sentences, a linear probe sets the classifier, then a "
                                     "short fine-tuning. Pick an evaluation dataset to see accuracy curves.")
            label_examples = st.radio("Examples from label names", LABEL_EXAMPLE_CHOICES, horizontal=True,
                                      key="train_label_examples", format_func=LABEL_EXAMPLE_CHOICES.get,
                                      help=_help("label_examples"))
        freeze = st.radio("Word embeddings", FREEZE_CHOICES, horizontal=True, key="train_freeze_word_embeddings",
                          format_func=FREEZE_CHOICES.get, help=_help("freeze_word_embeddings"))
        c1, c2, c3, c4 = st.columns(4)
        max_steps = c1.number_input("Max steps", min_value=1, value=None, step=10, placeholder="no cap",
                                    key="train_max_steps", help=_help("max_steps"))
        eval_every = c2.number_input("Evaluate every (steps)", min_value=1, value=None, step=10, placeholder="auto",
                                     key="train_eval_every", help=_help("eval_every"))
        patience = c3.number_input("Early-stopping patience", min_value=1, max_value=1000, value=defaults.patience,
                                   key="train_patience", help=_help("patience"))
        fraction = c4.number_input("Validation fraction", min_value=0.0, max_value=0.5, step=0.05, value=None,
                                   placeholder="auto", key="train_validation_fraction",
                                   help=_help("validation_fraction"))
        folds = st.columns(4)[0].number_input("Cross-validation folds", min_value=0, max_value=20, value=None, step=1,
                                              placeholder="auto", key="train_cross_validation",
                                              help=_help("cross_validation"))
    if device == "cpu" and precision == "fp16":
        st.warning("fp16 needs a GPU: on the CPU use fp32 (or bf16).")
    try:
        plan = _measurement_plan(dataset["name"], dataset["labeled"], eval_dataset, fraction, few_shot, int(seed),
                                 folds)
    except TrainingError as error:  # a setting the form's own check below names
        plan = {"measured": False, "text": str(error)}
    (st.caption if plan["measured"] else st.info)(f"What this run measures: {plan['text']}")
    if ref is None:
        return None
    try:  # the same checks as the command line's: a bad value is named before any run exists
        return TrainConfig(dataset=dataset["name"], model=ref, eval_dataset=eval_dataset, epochs=epochs,
                           learning_rate=lr, batch_size=batch, max_length=max_length, doc_stride=doc_stride,
                           seed=seed, device=device, precision=precision, max_steps=max_steps, eval_every=eval_every,
                           patience=patience, validation_fraction=fraction, few_shot=few_shot,
                           freeze_word_embeddings=freeze, label_examples=label_examples, cross_validation=folds)
    except TrainingError as error:
        st.error(f"Cannot train with these settings: {plain(error)}")
        return None


def _new_run_form(runner) -> None:
    datasets = storage.list_datasets()
    if not datasets:
        st.info("No datasets yet: upload a CSV or load a sample on the Data page first.")
        st.page_link("pages/data.py", label="Go to the Data page", icon="📄")
        return
    by_id = {d["id"]: d for d in datasets}
    # Keyed by dataset id, shown by a text nobody else changes (name and task): the browser keeps a choice only
    # while its text is still among the options, so counts that change when someone labels stay out of it.
    dataset_id = st.selectbox("Dataset", list(by_id), **kept("train_dataset"),
                              format_func=lambda i: _dataset_title(by_id[i]),
                              help="What the model learns from. Only labeled rows are used.")
    dataset = by_id[dataset_id]
    st.caption(f"{dataset['labeled']} of {dataset['rows']} rows labeled.")
    ref, loadable = _model_picker(dataset)
    cfg = _settings(dataset, datasets, ref)
    if runner.is_busy():
        st.caption("Another run is training: a new one waits in the queue until it ends.")
    if st.button("Start training", type="primary", icon="🚀", key="train_start", disabled=cfg is None or not loadable,
                 help="Runs in the background: you can leave this page, the run goes on." if loadable else
                 "Choose a model that can be loaded here first (see the message under the Model box)."):
        try:
            run_id = runner.submit(cfg, created_by=current_user())
        except (storage.StorageError, TrainingError) as exc:  # e.g. a max length beyond the model's limit
            st.error(_app_words(exc))
            return
        st.session_state[RUN_KEY] = run_id
        st.rerun()


def _dataset_title(dataset: dict) -> str:
    """The Dataset option's text: only what does not change while people label (see _new_run_form)."""
    return f"{dataset['name']} — {dataset['task']}"


st.title("Train")
st.caption("Fine-tune SpanBERT (or another encoder) on one of your datasets. Training runs in the background.")
_runner = get_runner()
_monitor_area = st.container()
st.subheader("New run")
_new_run_form(_runner)
with _monitor_area:
    _monitor(_runner)
