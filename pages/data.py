"""Data page: import a file (or a bundled sample) as a dataset, and manage existing datasets.

Importing shows the detected column mapping (changeable), a preview and every problem the importer found before
anything is saved. Existing datasets can be downloaded (CSV, JSON Lines, SQuAD JSON) and deleted.
All checks and conversions live in core.importing / core.exporting / core.storage; this script only draws them.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core import storage, tasks
from core.config import PROJECT_ROOT
from core.importing import (FIELD_SYNONYMS, REQUIRED_FIELDS, ImportFailed, ImportResult, detect_mapping, guess_task,
                            load_file, read_table, validate)
from pages import auth
from pages.common import flash, plain, show_flashes
from pages.identity import current_user

auth.require("data")  # before anything else: sign-in and demo mode (pages/auth.py)

PAGE = "data"
SAMPLES_DIR = PROJECT_ROOT / "data" / "samples"
SAMPLE_TASKS = {"support_tickets": "classification", "product_reviews": "classification", "company_faq_qa": "qa",
                "company_news_ner": "ner"}  # which task each bundled sample file is for
TASK_NAMES = {task.name: task.title for task in tasks.ALL}
UNMAPPED = "— none —"
PREVIEW_ROWS = 20


# --------------------------------------------------------------------------------------------------- actions

def _create(name: str, task: str, rows: list[dict], labels: list[str], source: str, skipped: int = 0) -> None:
    """Button callback: store the dataset and queue the outcome for the next run."""
    try:
        info = storage.create_dataset(name, task, rows, labels=labels if tasks.get(task).has_labels else None,
                                      source=source, created_by=current_user())
    except storage.StorageError as error:
        flash(PAGE, "error", f"Not imported: {plain(error)}")
        return
    note = f" ({skipped} rows with problems were left out)" if skipped else ""
    st.session_state["data_imported"] = info["name"]
    st.session_state["current_dataset"] = info["name"]  # the Label and Train pages open it
    st.session_state["upload_generation"] = st.session_state.get("upload_generation", 0) + 1  # empties the uploader
    flash(PAGE, "success", f"Imported {info['rows']} rows as dataset '{plain(info['name'])}'{note}.")


def _load_sample(path: Path, task: str) -> None:
    name = path.stem
    if any(dataset["name"] == name for dataset in storage.list_datasets()):
        flash(PAGE, "info", f"A dataset named '{plain(name)}' already exists — it is in the table below. "
                            "Delete it first to load the sample again.")
        return
    try:
        result = load_file(path, task)
    except ImportFailed as error:
        flash(PAGE, "error", f"The sample {path.name} could not be read: {plain(error)}")
        return
    if not result.ok:
        flash(PAGE, "error", f"The sample {path.name} has problems:\n\n{plain(result.summary())}")
        return
    _create(name, task, result.rows, result.labels, source=f"sample:{path.name}")


def _delete(name: str) -> None:
    try:
        storage.delete_dataset(name, by=current_user())
    except storage.StorageError as error:
        flash(PAGE, "error", f"Not deleted: {plain(error)}")
        return
    st.session_state.pop(f"confirm_delete:{name}", None)
    flash(PAGE, "success", f"Deleted dataset '{plain(name)}'. Its training runs stay in the run history.")


# --------------------------------------------------------------------------------------------------- sections

def _sample_task(path: Path) -> str:
    return SAMPLE_TASKS.get(path.stem, tasks.NAMES[0])


def samples_section() -> None:
    paths = sorted(path for path in SAMPLES_DIR.iterdir() if SAMPLE_TASKS.get(path.stem) in TASK_NAMES)
    if not paths:
        return
    st.subheader("Try a sample")
    st.caption("Small made-up datasets to try the whole flow in a minute.")
    columns = st.columns(len(paths))
    for column, path in zip(columns, paths):
        task = _sample_task(path)
        column.button(f"Load {path.stem}", key=f"sample:{path.stem}", on_click=_load_sample, args=(path, task),
                      help=f"{TASK_NAMES[task]} sample ({path.name})", width="stretch")


def _problem_table(items: list) -> pd.DataFrame:
    return pd.DataFrame([{"where": item.where,
                          "field": item.field, "problem": item.message} for item in items],
                        columns=["where", "field", "problem"])


def _show_problems(items: list) -> None:
    """The problem/warning table; rows are made tall enough to wrap long messages instead of clipping them."""
    long_messages = any(len(item.message) > 70 for item in items)
    st.dataframe(_problem_table(items), hide_index=True, width="stretch", row_height=76 if long_messages else None,
                 column_config={"where": st.column_config.TextColumn(width="small"),
                                "field": st.column_config.TextColumn(width="small")})


def _mapping_widgets(columns: list[str], task: str, detected: dict[str, str], file_key: str) -> dict[str, str]:
    st.markdown("**Column mapping** — which column holds what. Change it if the guess is wrong.")
    fields = list(FIELD_SYNONYMS[task])
    options = [UNMAPPED, *columns]
    mapping = {}
    for column, field_name in zip(st.columns(len(fields)), fields):
        required = field_name in REQUIRED_FIELDS[task]
        chosen = column.selectbox(f"{field_name}{' *' if required else ''}", options,
                                  index=options.index(detected[field_name]) if field_name in detected else 0,
                                  key=f"map:{file_key}:{task}:{field_name}",
                                  help="Required" if required else "Optional: leave as '— none —' if absent")
        mapping[field_name] = "" if chosen == UNMAPPED else chosen
    return mapping


def _doubly_mapped(mapping: dict[str, str]) -> list[str]:
    used: dict[str, list[str]] = {}
    for field_name, column in mapping.items():
        if column:
            used.setdefault(column, []).append(field_name)
    return [f"column '{column}' is chosen for {' and '.join(fields)} — pick one column per field"
            for column, fields in used.items() if len(fields) > 1]


def _report(result: ImportResult, conflicts: list[str]) -> None:
    if conflicts:
        for message in conflicts:
            st.error(plain(message))
    if result.problems:
        skipped = result.total_rows - len(result.rows)
        st.error(f"{len(result.problems)} problem(s): {skipped} of {result.total_rows} rows cannot be imported. "
                 "Fix them in the file and upload it again, or change the column mapping.")
        _show_problems(result.problems)
    if result.warnings:
        st.warning(f"{len(result.warnings)} warning(s) — these rows are imported, but have a look:")
        _show_problems(result.warnings)
    if result.ok and not conflicts:
        labels = f" Labels: {plain(', '.join(result.labels))}." if result.labels else ""
        st.success(f"No problems: {len(result.rows)} rows ready to import.{labels}")


def upload_section(existing: set[str]) -> None:
    st.subheader("Import a file")
    uploaded = st.file_uploader("CSV, TSV, JSON Lines, SQuAD JSON, CoNLL or Label Studio JSON",
                                type=["csv", "tsv", "txt", "jsonl", "ndjson", "json", "conll", "iob", "bio"],
                                help="One row per example with a header row. Classification needs a text column "
                                     "(label optional); QA needs context and question (answer optional).",
                                key=f"upload:{st.session_state.get('upload_generation', 0)}")
    if uploaded is None:
        return
    file_key = f"{uploaded.name}:{uploaded.size}"
    guessed = guess_task(uploaded.getvalue(), uploaded.name)
    task = st.radio("Task", list(TASK_NAMES), format_func=TASK_NAMES.get, horizontal=True,
                    index=list(TASK_NAMES).index(guessed), key=f"task:{file_key}",
                    help="Classification: one label per text. QA: find the answer span in a passage. "
                         "Entity spans: mark names, products, places... in the text.")
    try:
        frame = read_table(uploaded.getvalue(), uploaded.name, task)
    except ImportFailed as error:
        st.error(plain(error))
        return
    columns = [str(column) for column in frame.columns]
    detected = detect_mapping(columns, task)
    mapping = _mapping_widgets(columns, task, detected, file_key)
    st.markdown(f"**Preview** — first {min(PREVIEW_ROWS, len(frame))} of {len(frame)} rows, numbered as in the file")
    st.dataframe(frame.head(PREVIEW_ROWS), width="stretch")
    conflicts = _doubly_mapped(mapping)
    result = validate(frame, task, mapping)
    if result.meta_columns:
        st.caption(f"Kept as metadata with each row (shown in the Label grid, written to CSV and JSON Lines exports "
                   f"and batch predictions): {plain(', '.join(result.meta_columns))}")
    _report(result, conflicts)

    name = st.text_input("Dataset name", value=Path(uploaded.name).stem, key=f"name:{file_key}",
                         help="A short name you will pick on the other pages").strip()
    if name in existing:
        st.warning(f"A dataset named '{plain(name)}' already exists — choose another name, or delete it below first.")
    blocked = not name or name in existing or bool(conflicts) or not result.rows
    source = f"upload:{uploaded.name}"
    st.button(f"Import {len(result.rows)} rows as dataset {plain(name)}", type="primary", key="import_all",
              disabled=blocked or not result.ok, on_click=_create,
              args=(name, task, result.rows, result.labels, source))
    if result.problems and result.rows and not conflicts:
        skipped = result.total_rows - len(result.rows)
        st.button(f"Import only the {len(result.rows)} valid rows", key="import_valid", disabled=blocked,
                  on_click=_create, args=(name, task, result.rows, result.labels, source, skipped),
                  help=f"Leaves out the {skipped} rows listed above; you can fix and add them later as a new file.")


def _export(dataset_id: int, task: str, file_format: str, title: str):
    """A no-argument function building the file when the download button is clicked (large datasets do not slow
    down every rerun)."""
    def build() -> bytes:
        return tasks.get(task).exports[file_format].write(storage.load_examples(dataset_id), title)
    return build


def _downloads(info: dict) -> None:
    task, name, dataset_id = info["task"], info["name"], info["id"]
    formats = tasks.get(task).exports
    for column, (key, spec) in zip(st.columns(max(3, len(formats))), formats.items()):
        column.download_button(f"Download {spec.title}", _export(dataset_id, task, key, name),
                               file_name=f"{name}{spec.suffix}", mime=spec.mime, key=f"dl_{key}:{name}",
                               on_click="ignore", help=spec.help or None)


def datasets_section(datasets: list[dict]) -> None:
    st.subheader("Your datasets")
    if not datasets:
        st.info("No datasets yet — upload a CSV or load a sample")
        return
    table = pd.DataFrame([{
        "name": dataset["name"], "task": dataset["task"], "rows": dataset["rows"], "labeled": dataset["labeled"],
        "labels": ", ".join(dataset["labels"]) if tasks.get(dataset["task"]).has_labels else "—",
        "created": dataset["created_at"].astimezone().strftime("%Y-%m-%d %H:%M"),
        "imported by": dataset["created_by"],
    } for dataset in datasets])
    st.dataframe(table, hide_index=True, width="stretch")

    names = [dataset["name"] for dataset in datasets]
    name = st.selectbox("Dataset to download or delete", names, key="manage_dataset")
    info = next(dataset for dataset in datasets if dataset["name"] == name)
    _downloads(info)
    with st.expander(f"Delete '{plain(name)}'"):
        busy = _active_runs_using(info)
        if busy:
            st.warning(f"'{plain(name)}' cannot be deleted now: run {', '.join(busy)} uses it. Wait until the run "
                       "ends or cancel it on the Train page, then delete the dataset.")
        confirmed = st.checkbox(f"Yes, delete '{plain(name)}' with its {info['rows']} rows and labels. Its training "
                                "runs stay in the run history.", key=f"confirm_delete:{name}", disabled=bool(busy))
        st.button(f"Delete {plain(name)}", key=f"delete:{name}", disabled=not confirmed or bool(busy),
                  on_click=_delete, args=(name,))


def _active_runs_using(dataset: dict) -> list[str]:
    """'#3 (running, started by Ann)' for each queued or running run that trains or evaluates on ``dataset``."""
    return [f"#{run['id']} ({run['status']}, started by {plain(run['created_by'])})" for run in storage.list_runs()
            if run["status"] in ("queued", "running")
            and (run["dataset_id"] == dataset["id"] or run.get("eval_dataset_name") == dataset["name"])]


def activity_section() -> None:
    """Who imported, deleted, started and cancelled what, newest first."""
    lines = storage.activity(limit=30)
    with st.expander("Team activity"):
        if not lines:
            st.caption("Nothing yet.")
            return
        st.dataframe(pd.DataFrame([{"when": line["created_at"].astimezone().strftime("%Y-%m-%d %H:%M"),
                                    "who": line["person"], "what": f"{line['action']} {line['subject']}"}
                                   for line in lines]), hide_index=True, width="stretch")


# --------------------------------------------------------------------------------------------------- page

st.title("Data")
show_flashes(PAGE)
imported = st.session_state.pop("data_imported", None)
if imported:
    links = st.columns(2)
    links[0].page_link("pages/label.py", label=f"Label '{plain(imported)}'", icon="🏷️")
    links[1].page_link("pages/train.py", label=f"Train a model on '{plain(imported)}'", icon="🚀")

all_datasets = storage.list_datasets()
upload_section({dataset["name"] for dataset in all_datasets})
samples_section()
datasets_section(all_datasets)
activity_section()
