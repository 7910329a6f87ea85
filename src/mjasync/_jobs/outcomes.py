"""A finished job's result: the successful task, or the error a failed or cancelled one raises."""

from __future__ import annotations

from .._errors import MjError, TaskFailedError
from .._models import Task, TaskStatus
from .._wire.messages import in_english
from .watch import Watch

__all__ = ["result_of", "task_failure"]


def result_of(watch: Watch) -> Task | MjError:
    """A finished watch's result: the successful task, or the error to raise."""
    outcome = watch.outcome
    if isinstance(outcome, Task):
        if outcome.status is TaskStatus.SUCCESS:
            return outcome
        return task_failure(outcome, outcome.id, outcome.status)
    if outcome is None:
        raise RuntimeError(f"task {watch.task_id} has no outcome yet")
    return outcome


def task_failure(task: Task | None, task_id: str, status: TaskStatus) -> TaskFailedError:
    """The error of a task that ended ``status`` (FAILURE or CANCEL), in English."""
    reason = (task.fail_reason if task else None) or status.value.lower()
    # The message in English; the server's own words stay in ``fail_reason``.
    return TaskFailedError(in_english(reason), task_id=task_id, task=task)
