"""Job handles: the id, a stream of progress events, and the awaited result."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import AbstractContextManager, nullcontext

import anyio

from .._errors import MjError, TaskError, TaskFailedError, TaskTimeoutError
from .._models import Task, TaskStatus
from .._validation import check_timeout
from .events import ProgressEvent
from .tracker import Tracker, Watch

__all__ = ["Job", "result_of"]

Abandon = Callable[[Watch, MjError], None]


def result_of(watch: Watch) -> Task | MjError:
    """What a finished watch's result is: the successful task, or the error to raise."""
    outcome = watch.outcome
    if isinstance(outcome, Task):
        if outcome.status is TaskStatus.SUCCESS:
            return outcome
        return TaskFailedError(
            outcome.fail_reason or outcome.status.value.lower(), task_id=outcome.id, task=outcome
        )
    if outcome is None:
        raise RuntimeError(f"task {watch.task_id} has no outcome yet")
    return outcome


class Job:
    """A submitted (or re-attached) task: ``job.id``, ``job.events()``, ``await job.result()``.

    Any number of consumers may iterate :meth:`events` and await :meth:`result` at once; each
    gets the whole story. When the last consumer is cancelled (or times out) before the task
    ends, the job is abandoned: its slot is released at once and, where the server has a cancel
    endpoint, the upstream task is cancelled.
    """

    def __init__(self, watch: Watch, tracker: Tracker, abandon: Abandon) -> None:
        self._watch = watch
        self._tracker = tracker
        self._abandon = abandon

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.status.value} {self.progress}%>"

    @property
    def id(self) -> str:
        """The task id (a string); fetch or watch it later with this."""
        return self._watch.task_id

    @property
    def mode(self) -> str | None:
        """The mode the task runs in."""
        return self._watch.mode

    @property
    def request(self) -> object:
        """The request that created the job (``None`` for re-attached tasks)."""
        return self._watch.request

    @property
    def task(self) -> Task | None:
        """The latest :class:`Task` seen (``None`` until the first observation)."""
        return self._watch.task

    @property
    def status(self) -> TaskStatus:
        """The latest status seen."""
        return self._watch.status or TaskStatus.UNKNOWN

    @property
    def progress(self) -> int | None:
        """The latest progress seen (0-100)."""
        return self._watch.progress

    @property
    def done(self) -> bool:
        """``True`` once the job has an outcome."""
        return self._watch.finished

    def _gave_up(self, error: MjError) -> None:
        if self._watch.consumers == 0 and not self._watch.finished:
            self._abandon(self._watch, error)

    async def events(self) -> AsyncGenerator[ProgressEvent, None]:
        """Progress events until the task ends; the last one has ``is_terminal`` set.

        A late consumer first gets the current state. Events never go backwards and
        duplicates are collapsed. A failed task's terminal event carries ``error``.

        Example::

            async for event in job.events():
                print(event.status, event.progress)
        """
        queue = self._tracker.subscribe(self._watch)
        self._watch.consumers += 1
        cancelled = False
        try:
            while True:
                event = await queue.get()
                if event is None:
                    return
                yield event
                if event.is_terminal:
                    return
        except anyio.get_cancelled_exc_class():
            cancelled = True
            raise
        finally:
            self._watch.consumers -= 1
            self._watch.queues.discard(queue)
            if cancelled:
                self._gave_up(TaskError("cancelled by its consumer", task_id=self.id))

    async def result(self, timeout: float | None = None) -> Task:
        """Wait for the task to end and return it.

        Args:
            timeout: seconds to wait at most (``None``: until the task ends or stalls).

        Raises:
            TaskFailedError: the task ended in FAILURE or CANCEL (``fail_reason`` says why).
            TaskTimeoutError: ``timeout`` ran out; the job is abandoned if nobody else waits.
            TaskStalledError: the task made no progress for the client's ``stall_timeout``.
            TaskError: the task was lost by the server or abandoned.
            ValueError, TypeError: ``timeout`` is negative, NaN or not a number.
        """
        timeout = check_timeout(timeout)  # a typo must not time out, and abandon, a paid job
        watch = self._watch
        watch.consumers += 1
        gave_up: MjError | None = None
        deadline: AbstractContextManager[object] = (
            anyio.fail_after(timeout) if timeout is not None else nullcontext()
        )
        try:
            with deadline:
                await watch.wait()
        except TimeoutError:
            gave_up = TaskTimeoutError(
                f"not finished after {timeout:g}s (status {self.status.value})",
                task_id=self.id,
                task=watch.task,
            )
            raise gave_up from None
        except anyio.get_cancelled_exc_class():
            gave_up = TaskError("cancelled by its consumer", task_id=self.id)
            raise
        finally:
            watch.consumers -= 1
            if gave_up is not None:
                self._gave_up(gave_up)
        outcome = result_of(watch)
        if isinstance(outcome, MjError):
            raise outcome
        return outcome

    async def cancel(self) -> None:
        """Stop watching, release the slot, and cancel upstream where the server can."""
        if not self._watch.finished:
            self._abandon(self._watch, TaskError("cancelled by the caller", task_id=self.id))
        await anyio.lowlevel.checkpoint()
