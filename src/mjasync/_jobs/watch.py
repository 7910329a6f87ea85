"""The client's knowledge of one task: its latest state, who follows it, and how it ended.

A :class:`Watch` is shared by every handle and consumer of one task id. Two kinds of follower:

- **owners** (``job.events()``, ``job.result()``, ``gather``, ``stream``) keep the job alive:
  when the last owner leaves before the task ends, the engine abandons the job;
- **observers** (``job.observe()``, ``job.add_done_callback()``, the batch) only watch: they
  may come and go without consequence.

The owner count is kept here and changed only through :meth:`Watch.own` / :meth:`Watch.disown`.
A watch ends twice, in order: :attr:`outcome` is what its followers get (set once), and
``retired`` means the engine stopped tracking it and gave its slot back — at the same moment
for a task that ended upstream, later for an abandoned one (its slot is held until the server
says the task ended).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import attrs

from .._converter import parse_task
from .._errors import MjError, ProtocolError
from .._models import Task, TaskStatus
from .events import EventQueue, ProgressEvent
from .limiter import Slot

__all__ = ["EventListener", "Watch"]

log = logging.getLogger("mjasync")

#: Called with each event of a watch (synchronously, on the event loop; must not block).
EventListener = Callable[["Watch", ProgressEvent], None]


@attrs.define(eq=False)
class Watch:
    """One task as the engine follows it (see the module docstring for the rules)."""

    task_id: str
    mode: str | None
    request: object = None
    slot: Slot | None = None
    # -- the latest observation ------------------------------------------------------------
    status: TaskStatus | None = None
    progress: int | None = None
    raw_key: tuple[object, object] | None = None  # (status, progress) exactly as last received
    task_cache: Task | None = None
    payload: Mapping[str, Any] | None = None  # newest accepted payload, parsed on demand
    last_event: ProgressEvent | None = None
    event_stale: bool = False  # last_event predates the newest observation
    last_source: str = "submit"
    # What the submit answer said, made into an event only if someone looks before a poll.
    initial: Callable[[], ProgressEvent] | None = None
    # -- how it ended ----------------------------------------------------------------------
    outcome: Task | MjError | None = None
    retired: bool = False
    abandoned: bool = False
    confirm_end: bool = False  # a push claimed an end; the next poll decides
    waited: bool = False  # seen waiting in the account's queue (taught the engine it queues)
    blank: bool = False  # the latest answer had no status (a relay before its first refresh)
    # -- followers (made on first use: most jobs have one callback or none) ------------------
    queues: set[EventQueue] = attrs.field(factory=set)
    listeners: list[EventListener] | None = None
    done_event: anyio.Event | None = None
    on_finish: list[Callable[[Watch], None]] | None = None
    _owners: int = 0
    # -- pacing ----------------------------------------------------------------------------
    last_change: float = 0.0
    first_running: tuple[float, int] | None = None  # (time, progress) first seen IN_PROGRESS
    first_sharp: bool = True  # first_running's time is close (seen soon after the look before)
    due: float = 0.0
    seen_at: float = 0.0  # when the latest poll that showed it was sent
    changed_since: float = 0.0  # its latest change came after this (seen unchanged then)
    quiet_rounds: int = 0
    misses: int = 0
    pushed_at: float = -math.inf

    # -- ownership -------------------------------------------------------------------------

    @property
    def owners(self) -> int:
        """How many owners follow the job now."""
        return self._owners

    def own(self) -> None:
        """A follower that keeps the job alive arrives."""
        self._owners += 1

    def disown(self) -> bool:
        """An owner leaves; ``True`` when it was the last and the job has not ended."""
        self._owners -= 1
        return self._owners == 0 and self.outcome is None

    # -- outcome ---------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """``True`` once the followers have an outcome (terminal task or error)."""
        return self.outcome is not None

    async def wait(self) -> None:
        """Return once the watch has an outcome."""
        if self.outcome is None:
            if self.done_event is None:
                self.done_event = anyio.Event()
            await self.done_event.wait()

    def add_done_callback(self, callback: Callable[[Watch], None]) -> None:
        """Call ``callback(watch)`` when the outcome is known (at once if it is)."""
        if self.outcome is not None:
            _call_safely(callback, self)
        elif self.on_finish is None:
            self.on_finish = [callback]
        else:
            self.on_finish.append(callback)

    def add_listener(self, listener: EventListener) -> None:
        """Call ``listener(watch, event)`` with every later event (an observer)."""
        if self.listeners is None:
            self.listeners = [listener]
        else:
            self.listeners.append(listener)

    def remove_listener(self, listener: EventListener) -> None:
        """Stop calling ``listener`` (harmless if it was not added)."""
        if self.listeners and listener in self.listeners:
            self.listeners.remove(listener)

    def deliver(self, outcome: Task | MjError, final: ProgressEvent | None) -> None:
        """Set the outcome once and tell every follower (``final``: the terminal event)."""
        if self.outcome is not None:
            return
        if final is not None:
            self.send(final)
        self.outcome = outcome
        for queue in self.queues:
            queue.close()
        self.queues.clear()
        self.listeners = None
        if self.done_event is not None:
            self.done_event.set()
        callbacks, self.on_finish = self.on_finish, None
        for callback in callbacks or ():
            _call_safely(callback, self)

    # -- events ----------------------------------------------------------------------------

    def send(self, event: ProgressEvent) -> None:
        """Hand an event to every queue and listener."""
        self.last_event = event
        self.event_stale = False
        for queue in self.queues:
            queue.put(event)
        if self.listeners:
            for listener in tuple(self.listeners):
                _call_safely(listener, self, event)

    @property
    def has_followers(self) -> bool:
        """``True`` when an event would reach someone now."""
        return bool(self.queues or self.listeners)

    def take_initial(self) -> None:
        """Turn the submit answer into the first event, if nothing newer has been seen."""
        make, self.initial = self.initial, None
        if make is not None:
            event = make()
            self.last_event = event
            if self.task_cache is None and self.payload is None:
                self.task_cache = event.task

    @property
    def task(self) -> Task | None:
        """The newest :class:`Task`, built from its payload only when someone asks."""
        if self.initial is not None:
            self.take_initial()
        payload, self.payload = self.payload, None
        if payload is not None:
            try:
                self.task_cache = parse_task(payload)
            except ProtocolError as exc:
                log.warning("task %s: unreadable payload ignored: %s", self.task_id, exc)
        return self.task_cache


def _call_safely(callback: Callable[..., None], *args: Any) -> None:
    # A follower's bug must not end other jobs, nor the poller that delivered the news.
    try:
        callback(*args)
    except Exception:
        log.exception("mjasync: a job callback raised; ignored")
