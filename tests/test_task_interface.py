"""The task interface: each task's knowledge lives in core/tasks/, and the rest of SpanLab asks the task.

No module outside core/tasks/ may compare a task's name (``task == "qa"``, ``!= "classification"``,
``in ("ner", ...)``); every task fills in the whole interface; and every widget a task names is one its page draws.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from core import tasks
from core.tasks.base import Task

ROOT = Path(__file__).resolve().parent.parent
NAMES = "|".join(tasks.NAMES)
COMPARISON = re.compile(rf"""(==|!=|\bin\b)\s*[\(\[{{]?\s*["']({NAMES})["']|["']({NAMES})["']\s*(==|!=)""")


def _code_outside_tasks() -> list[Path]:
    files = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py")), *sorted((ROOT / "core").rglob("*.py"))]
    return [path for path in files if "tasks" not in path.relative_to(ROOT).parts]


def test_the_scan_finds_a_comparison():
    assert COMPARISON.search('if info["task"] == "qa":')
    assert COMPARISON.search("if task != 'classification' or mode == 'off':")
    assert COMPARISON.search('elif task in ("qa", "ner"):')
    assert not COMPARISON.search('SAMPLE_TASKS = {"company_faq_qa": "qa"}')


def test_no_code_outside_core_tasks_compares_task_names():
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
             for path in _code_outside_tasks()
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
             if COMPARISON.search(line)]
    assert not found, "ask the task (core/tasks) instead of comparing its name:\n" + "\n".join(found)


@pytest.mark.parametrize("task", tasks.ALL, ids=lambda task: task.name)
def test_every_task_fills_in_the_interface(task: Task):
    assert task.name and task.title and task.auto_model and task.metric_for_best and task.prediction_key
    assert set(task.required) <= set(task.fields) and task.input_fields
    assert task.done_field in task.stored and task.edit_field
    assert task.eval_metrics and all(name.startswith("eval/") for name, _ in task.eval_metrics)
    assert task.metric_for_best in {name.split("/", 1)[1] for name, _ in task.eval_metrics}
    assert set(task.headline) and {"csv", "jsonl"} <= set(task.exports)
    for method in ("validate", "clean_row", "edit_value", "check_edit", "split", "encode", "outputs", "decode",
                   "score", "suggestion", "prediction_record", "hf_dataset"):
        assert getattr(type(task), method) is not getattr(Task, method), f"{task.name} lacks {method}"


def test_every_widget_a_task_names_is_drawn_by_its_page():
    label_page = (ROOT / "pages" / "label.py").read_text(encoding="utf-8")
    demo_page = (ROOT / "pages" / "demo.py").read_text(encoding="utf-8")
    for task in tasks.ALL:
        assert re.search(rf'WIDGETS = \{{[^}}]*"{task.label_widget}":', label_page), task.name
        assert re.search(rf'WIDGETS = \{{[^}}]*"{task.demo_widget}":', demo_page), task.name


def test_unknown_task_names_are_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="unknown task 'translation': use one of classification, qa, ner"):
        tasks.get("translation")
    assert tasks.get(tasks.ALL[0]) is tasks.ALL[0]
