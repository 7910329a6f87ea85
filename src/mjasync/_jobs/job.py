"""Job handles: the id, a stream of progress events, and the awaited result."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel

from .._errors import MjError, TaskError, TaskTimeoutError
from .._models import Task, TaskStatus
from .._validation import check_timeout
from .events import EventQueue, ProgressEvent
from .outcomes import result_of
from .watch import Watch

if TYPE_CHECKING:
    from .engine import JobEngine

__all__ = ["Job"]


class Job:
    """A submitted (or re-attached) task: ``job.id``, ``job.events()``, ``await job.result()``.

    Any number of consumers may iterate :meth:`events` and await :meth:`result` at once; each
    gets the whole story. Those two *own* the job: when the last owner is cancelled (or times
    out) before the task ends, the job is abandoned — cancelled upstream where the server has
    a cancel endpoint, its slot held until the server reports it ended. To follow a job
    without owning it, use :meth:`observe` or :meth:`add_done_callback`.
    """

    __slots__ = ("_engine", "_watch")

    def __init__(self, watch: Watch, engine: JobEngine) -> None:
        self._watch = watch
        self._engine = engine

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

    def outcome(self) -> Task | MjError:
        """The outcome of a finished job: the successful :class:`Task`, or the error.

        Raises:
            RuntimeError: the job has not finished (check :attr:`done`, or await
                :meth:`result`).
        """
        return result_of(self._watch)

    def add_done_callback(self, callback: Callable[[Job], None]) -> None:
        """Call ``callback(job)`` once the job has an outcome (at once if it has one).

        An observer: it does not own the job, so it never keeps it alive or abandons it.
        Exceptions from ``callback`` are logged and ignored.
        """
        self._watch.add_done_callback(lambda _: callback(self))

    def _subscribe(self) -> EventQueue:
        """A new queue, primed with the current state (late followers catch up)."""
        queue = EventQueue()
        event = self._engine.current_event(self._watch)
        if event is not None:
            queue.put(event)
        if self._watch.finished:
            queue.close()
        else:
            self._watch.queues.add(queue)
        return queue

    async def events(self) -> AsyncGenerator[ProgressEvent, None]:
        """Progress events until the task ends; the last one has ``is_terminal`` set.

        A late consumer first gets the current state. Events never go backwards and
        duplicates are collapsed. A failed task's terminal event carries ``error``. The
        consumer owns the job: cancelling it (when nobody else owns the job) abandons it.

        Example::

            async for event in job.events():
                print(event.status, event.progress)
        """
        queue = self._subscribe()
        watch = self._watch
        watch.own()
        cancelled = False
        try:
            while (event := await queue.get()) is not None:
                yield event
                if event.is_terminal:
                    return
        except anyio.get_cancelled_exc_class():  # anyio's scope or a plain task.cancel()
            cancelled = True
            raise
        finally:
            watch.queues.discard(queue)
            if watch.disown() and cancelled:
                self._engine.abandon(watch, TaskError("cancelled by its consumer", task_id=self.id))

    async def observe(self) -> AsyncGenerator[ProgressEvent, None]:
        """Like :meth:`events`, without owning the job: leaving early changes nothing."""
        queue = self._subscribe()
        try:
            while (event := await queue.get()) is not None:
                yield event
                if event.is_terminal:
                    return
        finally:
            self._watch.queues.discard(queue)

    async def result(self, timeout: float | None = None) -> Task:
        """Wait for the task to end and return it.

        Args:
            timeout: seconds to wait at most (``None``: until the task ends or stalls).

        Raises:
            TaskFailedError: the task ended in FAILURE or CANCEL (``fail_reason`` says why).
            TaskTimeoutError: ``timeout`` ran out; the job is abandoned if nobody else owns it.
            TaskStalledError: the task made no progress for the client's ``stall_timeout``.
            TaskError: the task was lost by the server or abandoned.
            ValueError, TypeError: ``timeout`` is negative, NaN or not a number.
        """
        timeout = check_timeout(timeout)  # a typo must not time out, and abandon, a paid job
        watch = self._watch
        watch.own()
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
        except anyio.get_cancelled_exc_class():  # anyio's scope or a plain task.cancel()
            gave_up = TaskError("cancelled by its consumer", task_id=self.id)
            raise
        finally:
            if watch.disown() and gave_up is not None:
                self._engine.abandon(watch, gave_up)
        outcome = self.outcome()
        if isinstance(outcome, MjError):
            raise outcome
        return outcome

    async def cancel(self) -> None:
        """Stop following the job and cancel it upstream where the server can.

        Its slot is held until the server reports the task ended.
        """
        if not self._watch.finished:
            self._engine.abandon(self._watch, TaskError("cancelled by the caller", task_id=self.id))
        await anyio.lowlevel.checkpoint()
