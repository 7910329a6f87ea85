"""Progress events, the ordering rule that keeps them monotonic, and per-consumer queues."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

import anyio
import attrs

from .._errors import MjError
from .._models import Task, TaskStatus

__all__ = ["EventQueue", "ProgressEvent", "is_advance", "status_rank"]

# Rank of each status along a task's life. MODAL sits with the queued states: after
# /submit/modal the same task goes on to SUBMITTED and IN_PROGRESS.
_RANK: Mapping[TaskStatus, int] = {
    TaskStatus.UNKNOWN: 0,
    TaskStatus.NOT_START: 1,
    TaskStatus.MODAL: 1,
    TaskStatus.SUBMITTED: 2,
    TaskStatus.IN_PROGRESS: 3,
    TaskStatus.SUCCESS: 4,
    TaskStatus.FAILURE: 4,
    TaskStatus.CANCEL: 4,
}


def status_rank(status: TaskStatus) -> int:
    """Where a status sits in a task's life (0 unknown ... 4 terminal)."""
    return _RANK[status]


def is_advance(
    old_status: TaskStatus | None,
    old_progress: int | None,
    new_status: TaskStatus,
    new_progress: int | None,
) -> bool:
    """Whether an observation moves a task forward (and so deserves an event).

    Equal observations and regressions (an older status, lower progress, a relay's ``""``
    status after a real one) are not advances. Terminal states never advance further.

    >>> is_advance(TaskStatus.IN_PROGRESS, 40, TaskStatus.IN_PROGRESS, 55)
    True
    >>> is_advance(TaskStatus.IN_PROGRESS, 55, TaskStatus.SUBMITTED, None)
    False
    """
    if old_status is None:
        return True
    if old_status.is_terminal:
        return False
    if new_status is TaskStatus.MODAL and old_status is not TaskStatus.MODAL:
        # An action on a remix account or a custom zoom waits for /submit/modal: always news.
        return status_rank(old_status) < status_rank(TaskStatus.SUBMITTED) or old_progress is None
    old_rank, new_rank = status_rank(old_status), status_rank(new_status)
    if new_rank != old_rank:
        return new_rank > old_rank
    if new_status is not old_status:
        return old_status is TaskStatus.MODAL  # MODAL -> NOT_START: the modal was submitted
    return (new_progress or 0) > (old_progress or 0)


@attrs.frozen(slots=True)
class ProgressEvent:
    """One step of a task's life, as seen by the client.

    Attributes:
        task_id: the task id (``None`` only in :meth:`Client.stream` when the submit itself
            failed; then ``error`` says why).
        status: the task's status.
        progress: 0-100, or ``None`` before the server reports a number.
        task: the latest :class:`Task` (a stand-in built from the submit answer until the
            first fetch).
        request: the request this event belongs to (set by :meth:`Client.stream`).
        queue_position: jobs waiting ahead, when the server said (code 22).
        error: for a terminal event that is not a success: why (a :class:`TaskError` or the
            submit's error); ``None`` otherwise.
        source: ``"submit"``, ``"poll"`` or ``"push"``: where the observation came from.
    """

    task_id: str | None
    status: TaskStatus
    progress: int | None
    task: Task | None = attrs.field(repr=False)
    request: object = attrs.field(default=None, repr=False)
    queue_position: int | None = None
    error: MjError | None = None
    source: str = "poll"

    @property
    def is_terminal(self) -> bool:
        """``True`` for the last event of a task (success, failure, cancel, or an error)."""
        return self.status.is_terminal or self.error is not None


class EventQueue:
    """One consumer's pending events: bounded, newest wins, the terminal event never lost.

    A slow consumer cannot make memory grow without limit: when more than ``max_pending``
    events wait, the older non-terminal ones are dropped (the consumer still sees the latest
    state and the terminal event).
    """

    def __init__(self, max_pending: int = 32) -> None:
        self._pending: deque[ProgressEvent] = deque()
        self._max = max_pending
        self._wakeup = anyio.Event()
        self.closed = False

    def put(self, event: ProgressEvent) -> None:
        """Queue an event (never blocks)."""
        if self.closed:
            return
        if len(self._pending) >= self._max:
            self._pending.popleft()
        self._pending.append(event)
        if event.is_terminal:
            self.closed = True
        self._wakeup.set()

    async def get(self) -> ProgressEvent | None:
        """The next event; ``None`` once the queue is closed and empty."""
        while not self._pending:
            if self.closed:
                return None
            await self._wakeup.wait()
            self._wakeup = anyio.Event()
        return self._pending.popleft()

    def close(self) -> None:
        """No more events will come (wakes a waiting consumer)."""
        self.closed = True
        self._wakeup.set()
