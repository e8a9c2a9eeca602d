"""SpanLab's tasks, one module each (classification, qa, ner); everything task-specific lives in them.

``get(name)`` returns the task object (a ``core.tasks.base.Task``); the rest of SpanLab asks it instead of comparing
task names.
"""
from __future__ import annotations

from core.tasks.base import Task, TaskDataError
from core.tasks.classification import TASK as CLASSIFICATION
from core.tasks.ner import TASK as NER
from core.tasks.qa import TASK as QA

ALL: tuple[Task, ...] = (CLASSIFICATION, QA, NER)
NAMES: tuple[str, ...] = tuple(task.name for task in ALL)
_BY_NAME = {task.name: task for task in ALL}


def get(name: str | Task) -> Task:
    """The task called ``name`` (a Task is returned as it is); ValueError naming the known tasks otherwise."""
    if isinstance(name, Task):
        return name
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown task {name!r}: use one of {', '.join(NAMES)}") from None


__all__ = ["ALL", "NAMES", "Task", "TaskDataError", "get"]
