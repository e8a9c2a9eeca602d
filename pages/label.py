"""Label page: annotate a dataset, one example at a time or in a grid (classification), or by picking answer spans
(extractive QA). Every save checks the example's version, so an edit made elsewhere in the meantime is refused with a
message instead of being overwritten. Undo, recent changes and model suggestions from a finished run are here too.

Long texts show in a box of bounded height that scrolls, so the buttons under it stay in view. Keys (one at a time):
1–9 label, ←/→ previous/next, u undo, Enter accept the suggestion (pages/label_keys.py); an answer that occurs more
than a few times in its context is chosen by clicking it in the text (pages/occurrence_picker.py).

Ordering, filters, progress, label counts, grid diffing and answer occurrences live in core.annotation; storage in
core.storage.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core import annotation, storage, tasks
from pages import auth
from pages.common import flash, highlighted_html, plain, show_flashes
from pages.identity import current_user
from pages.label_keys import label_keys
from pages.occurrence_picker import chosen_of, occurrence_picker

auth.require("label")  # before anything else: sign-in and demo mode (pages/auth.py)

PAGE = "label"
GRID_PAGE_SIZE = 500
LABEL_BUTTONS_PER_ROW = 4
MODE_ONE, MODE_GRID = "One at a time", "Grid"
TEXT_BOX_PX = 320       # the example text / QA context box: a longer text scrolls inside it, the buttons stay in view
CONTEXT_BOX_PX = 260    # a QA context: lower, as the question and the answer box come first
QUESTION_BOX_PX = 160
RADIO_OCCURRENCES = 5   # an answer occurring at most this often is chosen in a radio; more often: click it in the text


# --------------------------------------------------------------------------------------------------- callbacks
# Buttons save in on_click callbacks with the example's id and version bound when the button was drawn, i.e. the
# version the annotator saw: a change made elsewhere since then is refused as stale.

def _cursor_key(dataset_id: int) -> str:
    return f"cursor:{dataset_id}"


def _forget_grid() -> None:
    """Drop the grid snapshot so the grid reloads from the database on the next run."""
    st.session_state.pop("grid_snapshot", None)


def _stale_message(example: dict, what: str) -> str:
    return (f"{annotation.row_name(example).capitalize()} was changed elsewhere (another tab or person) after it was "
            f"shown, so your {what} was not saved. It now shows the current value — check it and choose again.")


def _after_save(dataset_id: int, example: dict, next_id: int | None, total: int, task: str, note: str) -> None:
    flash(PAGE, "toast", f"Saved {annotation.row_name(example)}: {note}")
    _forget_grid()
    if next_id is None:
        flash(PAGE, "success", f"All {total} examples are {tasks.get(task).labeled_word}. 🎉")
    else:
        st.session_state[_cursor_key(dataset_id)] = next_id


def _save_label(dataset_id: int, example: dict, label: str, actor: str, next_id: int | None, total: int,
                task: str) -> None:
    try:
        storage.set_label(example["id"], label, example["version"], actor=actor, person=current_user())
    except storage.StaleEditError:
        flash(PAGE, "error", _stale_message(example, f"label '{plain(label)}'"))
        return
    except storage.StorageError as error:
        flash(PAGE, "error", f"Not saved: {plain(error)}")
        return
    _after_save(dataset_id, example, next_id, total, task, f"'{plain(label)}'")


def _saved_occurrence(example: dict, answer: str, found: list) -> int:
    """Number of the occurrence of ``answer`` the example's saved answer is at (0 when it is elsewhere or none)."""
    return next((i for i, item in enumerate(found)
                 if answer == example["answer_text"] and item.start == example["answer_start"]), 0)


def _answer_key(example: dict) -> str:
    return f"qa_answer:{example['id']}:{example['version']}"


def _occurrence_key(example: dict, answer: str) -> str:
    return f"qa_occurrence:{example['id']}:{example['version']}:{answer}"


def _save_answer(dataset_id: int, example: dict, no_answer: bool, next_id: int | None, total: int,
                 task: str) -> None:
    """Save the typed answer (at the chosen occurrence) or "no answer", read from the widgets' state."""
    if no_answer:
        answer, start = "", None
    else:
        answer = (st.session_state.get(_answer_key(example)) or "").strip()
        found = annotation.find_occurrences(example["context"], answer)
        if not found:
            flash(PAGE, "error", f"'{plain(annotation.shorten(answer))}' does not occur in the context — copy the "
                                 "answer "
                                 "exactly from the context.")
            return
        chosen = chosen_of(st.session_state.get(_occurrence_key(example, answer)), len(found),
                           _saved_occurrence(example, answer, found))
        start = found[chosen].start
    try:
        storage.set_answer(example["id"], answer, start, example["version"], actor="user", person=current_user())
    except storage.StaleEditError:
        flash(PAGE, "error", _stale_message(example, "answer"))
        return
    except storage.StorageError as error:
        flash(PAGE, "error", f"Not saved: {plain(error)}")
        return
    _after_save(dataset_id, example, next_id, total, task,
                "no answer" if no_answer else f"'{plain(annotation.shorten(answer, 40))}' at {start}")


def _move(dataset_id: int, target_id: int | None) -> None:
    if target_id is not None:
        st.session_state[_cursor_key(dataset_id)] = target_id


def _key_event(dataset: dict, ordered: list[dict], example: dict, total: int, event: dict) -> None:
    """An event of the navigation bar / keyboard (pages/label_keys.py): go to a place, save a label, undo."""
    if event["action"] == "navigate":
        _move(dataset["id"], annotation.at_position(ordered, event["position"]))
    elif event["action"] == "undo":
        _undo(dataset["id"])
    else:
        next_id = annotation.next_unlabeled(ordered, example["id"], dataset["task"])
        _save_label(dataset["id"], example, event["label"], "suggestion" if event["suggested"] else "user", next_id,
                    total, dataset["task"])


def _undo(dataset_id: int) -> None:
    try:
        undone = storage.undo_last(dataset_id, person=current_user())
    except storage.StorageError as error:
        flash(PAGE, "error", f"Nothing undone: {plain(error)}")
        return
    flash(PAGE, "info", plain(annotation.describe_undo(undone, storage.load_examples(dataset_id))))
    if undone is not None:
        st.session_state[_cursor_key(dataset_id)] = undone["example_id"]
    _forget_grid()


def _add_label(dataset_id: int) -> None:
    name = (st.session_state.get("new_label") or "").strip()
    try:
        storage.add_label(dataset_id, name)
    except storage.StorageError as error:
        flash(PAGE, "error", f"Label not added: {plain(error)}")
        return
    st.session_state["new_label"] = ""
    _forget_grid()
    flash(PAGE, "success", f"Added the label '{plain(name)}'.")


def _rename_label(dataset_id: int) -> None:
    old, new = st.session_state.get("rename_old"), (st.session_state.get("rename_new") or "").strip()
    try:
        changed = storage.rename_label(dataset_id, old, new, person=current_user())
    except storage.StorageError as error:
        flash(PAGE, "error", f"Label not renamed: {plain(error)}")
        return
    st.session_state["rename_new"] = ""
    _forget_grid()
    flash(PAGE, "success", f"Renamed '{plain(old)}' to '{plain(new)}' ({changed} example(s) changed).")


def _bulk_assign(example_ids: list[int], label: str) -> None:
    try:
        changed = storage.set_labels_bulk(example_ids, label, actor="bulk", person=current_user())
    except storage.StorageError as error:
        flash(PAGE, "error", f"Nothing changed: {plain(error)}")
        return
    st.session_state["bulk_confirm"] = False
    _forget_grid()
    flash(PAGE, "success", f"Set '{plain(label)}' on {len(example_ids)} row(s); {changed} of them changed. "
                           "(One click on Undo reverts them all.)")


# --------------------------------------------------------------------------------------------------- suggestions

def _suggestion_runs(dataset: dict) -> list[dict]:
    return [run for run in storage.list_runs(dataset=dataset["id"])
            if run["status"] == "completed" and run["artifact_dir"] and run["task"] == dataset["task"]]


def _run_name(run: dict) -> str:
    metric = f" · {run['best_metric_name']} {run['best_metric']:.2f}" if run.get("best_metric") is not None else ""
    return f"Run #{run['id']} · {run['model'].rstrip('/').split('/')[-1]}{metric}"


def suggestions_for(run_id: int, dataset: dict, examples: list[dict]) -> dict[int, dict] | None:
    """{example id: {label, score}} from the run's model, cached per browser tab by run and dataset texts."""
    key = (run_id, dataset["id"], hash(tuple((example["id"], example.get("text")) for example in examples)))
    cached = st.session_state.get("suggestions")
    if cached and cached["key"] == key:
        return cached["by_id"]
    from core.inference import predict_dataset
    try:
        with st.spinner(f"The model reads {len(examples)} texts…"):
            predictions = predict_dataset(run_id, dataset["name"])
    except Exception as error:  # a broken or missing model folder: say so, keep labeling possible
        st.error(f"No suggestions from run #{run_id}: {plain(error)}")
        return None
    by_id = {item["id"]: item for item in predictions}
    st.session_state["suggestions"] = {"key": key, "by_id": by_id}
    return by_id


def suggestion_controls(dataset: dict, examples: list[dict]) -> tuple[dict[int, dict] | None, str]:
    runs = _suggestion_runs(dataset)
    if not runs:
        st.caption("Model suggestions appear here once a model trained on this dataset has finished (Train page).")
        return None, annotation.ORDER_IMPORT
    columns = st.columns([1, 2, 2])
    if not columns[0].toggle("Show model suggestions", key="suggest",
                             help="Let a trained model propose a label for every row; you stay in charge."):
        return None, annotation.ORDER_IMPORT
    by_id = {run["id"]: run for run in runs}
    run_id = columns[1].selectbox("Model", list(by_id), format_func=lambda i: _run_name(by_id[i]), key="suggest_run")
    order = columns[2].radio("Order", annotation.ORDERS, horizontal=True, key="label_order",
                             help="Least confident first: the rows where your label helps the model most.")
    return suggestions_for(run_id, dataset, examples), order


# --------------------------------------------------------------------------------------------------- views

def _current(dataset: dict, ordered: list[dict]) -> dict:
    by_id = {example["id"]: example for example in ordered}
    key = _cursor_key(dataset["id"])
    if st.session_state.get(key) not in by_id:
        st.session_state[key] = annotation.first_to_show(ordered, dataset["task"])
    return by_id[st.session_state[key]]


def _navigation(dataset: dict, ordered: list[dict], example: dict, total: int, labels: list[str] = (),
                suggestion: str | None = None) -> None:
    """Previous / Next (and the keys) in the label_keys bar, whose events name the place to go, so fast clicks all
    count; Skip as a button."""
    skip_to = annotation.next_unlabeled(ordered, example["id"], dataset["task"])
    columns = st.columns([3, 1], vertical_alignment="center")
    with columns[0]:
        label_keys(key="label_keys", doc_id=f"{example['id']}:{example['version']}",
                   position=annotation.position_of(ordered, example["id"]), count=len(ordered), labels=list(labels),
                   suggestion=suggestion,
                   on_event=lambda event: _key_event(dataset, ordered, example, total, event))
    columns[1].button("Skip to next unlabeled ⇥", key="skip", on_click=_move, args=(dataset["id"], skip_to),
                      disabled=skip_to is None, width="stretch", help="Leave this one for later")


def _text_box(html: str, max_height_px: int = TEXT_BOX_PX) -> None:
    """Highlighted text (pages.common.highlighted_html) in a box of bounded height: a long text scrolls inside it."""
    st.html(f'<div class="spanlab-scroll" style="max-height:{int(max_height_px)}px;overflow-y:auto">{html}</div>')


def label_chart(dataset: dict, examples: list[dict]) -> None:
    """A small bar chart of labeled rows per label (entity type), from annotation.label_counts."""
    counts = annotation.label_counts(examples, dataset["task"], dataset["labels"])
    if not counts or not any(counts.values()):
        return
    with st.expander("Labeled rows per label", expanded=False):
        frame = pd.DataFrame({"label": list(counts), "rows": list(counts.values())})
        st.bar_chart(frame, x="label", y="rows", horizontal=True, sort=False, height=max(120, 28 * len(counts) + 60),
                     width="stretch")


def _position_caption(ordered: list[dict], example: dict, status: str) -> None:
    index = next(i for i, item in enumerate(ordered) if item["id"] == example["id"])
    split = f" · {plain(example['split'])}" if example.get("split") else ""
    meta = annotation.meta_line(example)
    st.caption(f"{annotation.row_name(example).capitalize()}{split} · {index + 1} of {len(ordered)} in this order · "
               f"{plain(status)}" + (f" · {plain(meta)}" if meta else ""))


def one_at_a_time(dataset: dict, examples: list[dict], suggestions: dict[int, dict] | None, order: str) -> None:
    ordered = annotation.order_examples(examples, suggestions, order)
    example = _current(dataset, ordered)
    next_id = annotation.next_unlabeled(ordered, example["id"], dataset["task"])
    current = example["label"]
    _position_caption(ordered, example, f"label: {current}" if current else "not labeled yet")
    _text_box(highlighted_html(example["text"], large=True))

    suggestion = (suggestions or {}).get(example["id"])
    labels = dataset["labels"]
    if not labels:
        st.warning("This dataset has no labels yet — add the first one under 'Labels' below.")
    for start in range(0, len(labels), LABEL_BUTTONS_PER_ROW):
        row = labels[start:start + LABEL_BUTTONS_PER_ROW]
        for number, (column, label) in enumerate(zip(st.columns(LABEL_BUTTONS_PER_ROW), row), start + 1):
            key_hint = f" (key {number})" if number <= 9 else ""
            column.button(plain(label), key=f"set_label:{label}", type="primary" if label == current else "secondary",
                          on_click=_save_label, args=(dataset["id"], example, label, "user", next_id, len(examples), dataset["task"]),
                          width="stretch", help=f"Save this label and go to the next unlabeled example{key_hint}")
    if suggestion is not None:
        columns = st.columns([3, 1])
        columns[0].info(f"Model suggestion: {plain(suggestion['label'])} ({suggestion['score']:.0%} sure)")
        columns[1].button("Accept suggestion", key="accept_suggestion", on_click=_save_label,
                          args=(dataset["id"], example, suggestion["label"], "suggestion", next_id, len(examples),
                                dataset["task"]),
                          disabled=suggestion["label"] not in labels, width="stretch", help="Key: Enter")
    _navigation(dataset, ordered, example, len(examples), labels, suggestion["label"] if suggestion else None)


def _grid_snapshot(dataset: dict, suggestions: dict[int, dict] | None, order: str) -> dict:
    """The rows the grid shows: {frame, editor (widget key), ids (every row matching the filters), loaded}.

    The snapshot is what the annotator sees and what saving compares against, so it is kept (not reloaded) until
    the filters change or a save/reload happens — a row changed elsewhere meanwhile is then refused as stale."""
    labels = dataset["labels"]
    columns = st.columns([1, 2, 1])
    show = columns[0].selectbox("Show", ["all rows", "unlabeled only", *labels], key="grid_show",
                                format_func=lambda value: f"label: {value}" if value in labels else value)
    search = columns[1].text_input("Search text", key="grid_search", placeholder="words in the text")
    columns[2].button("Reload", key="grid_reload", on_click=_forget_grid, help="Discard unsaved edits and reload")
    filters = (dataset["id"], tuple(labels), show, search, bool(suggestions), order)
    page = st.session_state.get("grid_page", 1)
    snapshot = st.session_state.get("grid_snapshot")
    if snapshot is None or snapshot["key"] != (*filters, page):
        filtered = annotation.filter_examples(storage.examples_frame(dataset["id"]),
                                              unlabeled_only=show == "unlabeled only",
                                              label=show if show in labels else None, search=search)
        if suggestions:
            filtered = annotation.attach_suggestions(filtered, suggestions)
            if order == annotation.ORDER_LEAST_CONFIDENT:
                filtered = annotation.least_confident_first(filtered)
        pages = max(1, -(-len(filtered) // GRID_PAGE_SIZE))
        if page > pages:
            page = st.session_state["grid_page"] = 1
        generation = st.session_state.get("grid_generation", 0) + 1
        st.session_state["grid_generation"] = generation
        snapshot = st.session_state["grid_snapshot"] = {
            "key": (*filters, page), "frame": filtered.iloc[(page - 1) * GRID_PAGE_SIZE: page * GRID_PAGE_SIZE],
            "ids": filtered["id"].tolist(), "pages": pages, "editor": f"grid:{dataset['id']}:{generation}",
            "loaded": pd.Timestamp.now().strftime("%H:%M:%S")}
    if snapshot["pages"] > 1:
        st.number_input(f"Page (of {snapshot['pages']}, {GRID_PAGE_SIZE} rows each)", 1, snapshot["pages"],
                        key="grid_page")
    return snapshot


def grid(dataset: dict, suggestions: dict[int, dict] | None, order: str) -> None:
    snapshot = _grid_snapshot(dataset, suggestions, order)
    original, editor_key = snapshot["frame"], snapshot["editor"]
    original, meta_columns = annotation.with_meta_columns(original)
    original = original.drop(columns=["meta"], errors="ignore")  # shown as its own columns instead
    shown = ["id", "text", "label"] + (["suggestion", "confidence"] if suggestions else []) + meta_columns
    edited = st.data_editor(
        original, key=editor_key, hide_index=True, num_rows="fixed", column_order=shown, width="stretch",
        disabled=[column for column in original.columns if column != "label"],
        column_config={
            **{name: st.column_config.TextColumn(name, help="Kept from the imported file (read-only)")
               for name in meta_columns},
            "id": st.column_config.NumberColumn("id", width="small"),
            "text": st.column_config.TextColumn("text", width="large"),
            "label": st.column_config.SelectboxColumn("label", options=dataset["labels"], required=False,
                                                      help="Pick a label; clear the cell to unlabel"),
            "suggestion": st.column_config.TextColumn("suggestion", help="What the model would say"),
            "confidence": st.column_config.ProgressColumn("confidence", min_value=0.0, max_value=1.0,
                                                          format="percent"),
        })
    st.caption(f"{len(original)} of {len(snapshot['ids'])} matching rows shown, as loaded at {snapshot['loaded']}. "
               "Edits are kept until you save; Reload shows changes made elsewhere.")
    changes = annotation.grid_changes(original, edited)
    if st.button(f"Save {len(changes)} change(s)", key="grid_save", type="primary", disabled=not changes):
        result = annotation.apply_grid_edits(original, edited, actor="user", person=current_user())
        if result.saved:
            flash(PAGE, "success", f"Saved {result.saved} label(s).")
        for message in result.refused:
            flash(PAGE, "error", message)
        _forget_grid()
        st.rerun()
    _bulk_section(dataset, snapshot["ids"])


def _bulk_section(dataset: dict, filtered_ids: list[int]) -> None:
    if not dataset["labels"] or not filtered_ids:
        return
    with st.expander(f"Label all {len(filtered_ids)} matching rows at once"):
        label = st.selectbox("Label", dataset["labels"], key="bulk_label")
        confirmed = st.checkbox(f"Yes, set '{plain(label)}' on all {len(filtered_ids)} rows that match the filter "
                                "(their current labels are replaced)", key="bulk_confirm")
        st.button(f"Label {len(filtered_ids)} rows '{plain(label)}'", key="bulk_apply", disabled=not confirmed,
                  on_click=_bulk_assign, args=(filtered_ids, label))


def label_manager(dataset: dict, title: str = "Labels") -> None:
    with st.expander(f"{title}: {plain(', '.join(dataset['labels'])) or 'none yet'}"):
        columns = st.columns([2, 1])
        columns[0].text_input("New label", key="new_label", placeholder="e.g. refund")
        columns[1].button("Add label", key="add_label", on_click=_add_label, args=(dataset["id"],))
        if dataset["labels"]:
            columns = st.columns([1, 1, 1])
            columns[0].selectbox("Rename label", dataset["labels"], key="rename_old")
            columns[1].text_input("to", key="rename_new",
                                  help="Renaming to an existing label merges the two")
            columns[2].button("Rename", key="rename_label", on_click=_rename_label, args=(dataset["id"],))


def qa_view(dataset: dict, examples: list[dict]) -> None:
    ordered = annotation.order_examples(examples)
    example = _current(dataset, ordered)
    next_id = annotation.next_unlabeled(ordered, example["id"], dataset["task"])
    saved_text, saved_start = example["answer_text"], example["answer_start"]
    status = ("not answered yet" if saved_text is None else "saved: no answer in this context" if saved_text == ""
              else f"saved answer: '{annotation.shorten(saved_text, 40)}' at {saved_start}")
    _position_caption(ordered, example, status)
    _text_box(highlighted_html(example["question"], large=True), QUESTION_BOX_PX)

    typed = st.text_input("Answer — type or paste it exactly as it appears in the context", key=_answer_key(example),
                          value=saved_text or "", help="Then press Enter: the answer is highlighted below")
    answer = typed.strip()
    found = annotation.find_occurrences(example["context"], answer)
    chosen = 0
    if answer and not found:
        hint = annotation.answer_hint(example["context"], typed)
        st.warning(f"'{plain(annotation.shorten(answer))}' does not occur in the context"
                   + (f": {plain(hint)}." if hint else
                   " — copy it exactly (same capitalisation and spacing)."))
    elif 1 < len(found) <= RADIO_OCCURRENCES:
        chosen = st.radio(f"'{plain(annotation.shorten(answer, 40))}' occurs {len(found)} times — which one is "
                          "meant?",
                          list(range(len(found))), index=_saved_occurrence(example, answer, found),
                          key=_occurrence_key(example, answer),
                          format_func=lambda i: f"{i + 1}. {plain(found[i].snippet)}")
    spans = [(item.start, item.end) for item in found]
    if not answer and saved_text:
        spans = [(saved_start, saved_start + len(saved_text))]
    if len(found) > RADIO_OCCURRENCES:
        st.caption(f"Context — '{plain(annotation.shorten(answer, 40))}' occurs {len(found)} times: click the one "
                   "that is meant")
        occurrence_picker(example["context"], spans, key=_occurrence_key(example, answer),
                          default=_saved_occurrence(example, answer, found), max_height_px=CONTEXT_BOX_PX)
    else:
        st.caption("Context")
        _text_box(highlighted_html(example["context"], spans, active=chosen if spans else None), CONTEXT_BOX_PX)

    columns = st.columns(2)
    columns[0].button("Save answer", key="save_answer", type="primary", disabled=not found, width="stretch",
                      on_click=_save_answer, args=(dataset["id"], example, False, next_id, len(examples), dataset["task"]))
    columns[1].button("No answer in this context", key="no_answer", width="stretch",
                      on_click=_save_answer, args=(dataset["id"], example, True, next_id, len(examples), dataset["task"]),
                      help="The context does not answer the question (saved as an empty answer)")
    _navigation(dataset, ordered, example, len(examples))


def choice_view(dataset: dict, examples: list[dict]) -> None:
    """Pick one label per text: one at a time with big buttons, or in a grid."""
    found_suggestions, chosen_order = suggestion_controls(dataset, examples)
    mode = st.radio("Mode", [MODE_ONE, MODE_GRID], horizontal=True, key="label_mode",
                    help="One at a time: fastest for new labels. Grid: review, filter and fix many rows.")
    if mode == MODE_GRID:
        grid(dataset, found_suggestions, chosen_order)
    else:
        _forget_grid()
        one_at_a_time(dataset, examples, found_suggestions, chosen_order)
    label_manager(dataset)


def answer_view(dataset: dict, examples: list[dict]) -> None:
    _forget_grid()
    qa_view(dataset, examples)


def _save_spans(dataset: dict, example: dict, next_id: int | None, total: int, suggested: bool, event: dict) -> None:
    """The span picker's event: save the example's entities (at the version shown), or move to another example.
    A refused save raises ValueError, which the picker shows in place of "Saved"."""
    if event["action"] == "navigate":
        ordered_ids = st.session_state.get("span_order") or []
        _move(dataset["id"], annotation.step([{"id": i} for i in ordered_ids], example["id"], event["delta"]))
        return
    try:
        storage.set_spans(example["id"], event["spans"], example["version"],
                          actor="suggestion" if suggested else "user", person=current_user())
    except storage.StaleEditError:
        message = _stale_message(example, "entities")
        flash(PAGE, "error", message)
        raise ValueError(message) from None
    except storage.StorageError as error:
        raise ValueError(f"Not saved: {error}") from None
    count = len(event["spans"])
    _after_save(dataset["id"], example, next_id, total, dataset["task"],
                f"{count} entit{'y' if count == 1 else 'ies'}" if count else "no entities")


def spans_view(dataset: dict, examples: list[dict]) -> None:
    """Mark entities: drag across words (or use the keyboard), press 1-9 for the type; a finished model's entities
    come pre-marked as suggestions to accept (Enter), fix or reject, least certain sentences first if asked."""
    from core.tasks.ner import words_of
    from pages.span_picker import span_picker
    _forget_grid()
    if not dataset["labels"]:
        st.warning("This dataset has no entity types yet — add the first one under 'Entity types' below.")
    suggestions, order = suggestion_controls(dataset, examples)
    ordered = annotation.order_examples(examples, suggestions, order)
    st.session_state["span_order"] = [item["id"] for item in ordered]
    example = _current(dataset, ordered)
    next_id = annotation.next_unlabeled(ordered, example["id"], dataset["task"])
    saved = example["spans"]
    suggestion = (suggestions or {}).get(example["id"])
    suggested = saved is None and suggestion is not None
    spans = saved if saved is not None else (suggestion["value"] if suggested else [])
    status = ("not labeled yet" if saved is None else
              f"saved: {len(saved)} entit{'y' if len(saved) == 1 else 'ies'}" if saved else "saved: no entities")
    if suggested:
        status += f" · model suggestion shown ({suggestion['score']:.0%} sure of its least certain word)"
    _position_caption(ordered, example, status)
    span_picker(example["text"], words_of(example, spans), spans, dataset["labels"],
                doc_id=f"{example['id']}:{example['version']}:{int(suggested)}", key=f"spans:{dataset['id']}",
                suggested=suggested,
                on_event=lambda event: _save_spans(dataset, example, next_id, len(examples), suggested, event))
    st.caption("Drag across words (or ←/→, Shift+→) and press 1–9 to mark an entity; click one to retype or remove "
               "it; u undoes; Enter saves and moves on (saving none means 'no entities here').")
    label_manager(dataset, "Entity types")


WIDGETS = {"choice": choice_view, "answer": answer_view, "spans": spans_view}  # what each task's label_widget names


def history_section(dataset: dict) -> None:
    events = storage.label_history(dataset["id"], limit=10)
    with st.expander("Recent changes"):
        if events:
            st.dataframe(annotation.history_frame(events), hide_index=True, width="stretch")
        else:
            st.caption("No changes yet.")


# --------------------------------------------------------------------------------------------------- page

st.title("Label")
datasets = storage.list_datasets()
if not datasets:
    st.info("No datasets yet — upload a CSV or load a sample on the Data page first.")
    st.page_link("pages/data.py", label="Go to the Data page", icon="📄")
    st.stop()

names = [dataset["name"] for dataset in datasets]
preferred = st.session_state.get("current_dataset")
name = st.selectbox("Dataset", names, index=names.index(preferred) if preferred in names else 0, key="label_dataset",
                    on_change=lambda: st.session_state.update(current_dataset=st.session_state["label_dataset"]))
info = next(dataset for dataset in datasets if dataset["name"] == name)
examples = storage.load_examples(info["id"])
show_flashes(PAGE)
if not examples:
    st.info("This dataset has no rows.")
    st.stop()

labeled, total = annotation.progress(examples, info["task"])
top = st.columns([4, 1])
top[0].progress(labeled / total, text=annotation.progress_text(labeled, total, info["task"]))
_pending_undo = storage.last_undoable(info["id"], person=current_user())
top[1].button(plain(annotation.undo_button_text(_pending_undo)), key="undo", on_click=_undo, args=(info["id"],),
              width="stretch", disabled=_pending_undo is None,
              help=f"Reverts your own most recent change in this dataset (you are {current_user()}); other people's "
                   "changes stay.")
if labeled == total:
    st.page_link("pages/train.py", label=f"Train a model on '{plain(name)}'", icon="🚀")

WIDGETS[tasks.get(info["task"]).label_widget](info, examples)
label_chart(info, examples)
history_section(info)
