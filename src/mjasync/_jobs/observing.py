"""Observations: what a polled or pushed task payload does to the job it belongs to.

:class:`Observer` is the engine's observation half: :meth:`JobEngine.observe` and
:meth:`JobEngine.apply` hand it every payload, and it keeps the engine's contract, item 4 (in
:mod:`mjasync._jobs.engine`). An observation is judged on its raw status and progress alone
(the same pair again is dropped unparsed; whether it moves the job forward is
:func:`~mjasync._jobs.events.is_advance`); the whole :class:`~mjasync.Task` is built only when
a follower will see it. A pushed end is never taken on its word: it hurries a poll, which
confirms or refutes it. Along the way the account learns what its queue does
(:class:`~mjasync._jobs.account.Accounts`): jobs seen waiting or running, and how long a
finished job ran.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import anyio

from .._converter import parse_progress, parse_status, parse_task_id
from .._errors import ProtocolError
from .._models import TaskStatus
from .._wire.modes import mode_key
from .events import ProgressEvent, is_advance
from .outcomes import task_failure
from .watch import Watch

if TYPE_CHECKING:
    from .engine import JobEngine

__all__ = ["Observer", "Source"]

log = logging.getLogger("mjasync")

#: Where an observation came from.
Source = Literal["submit", "poll", "push"]


class Observer:
    """Applies one engine's observations (see the module docstring)."""

    def __init__(self, engine: JobEngine) -> None:
        self._engine = engine

    def observe(self, payload: Mapping[str, Any], source: Source) -> bool:
        """Apply one task payload (see :meth:`JobEngine.observe`)."""
        try:
            task_id = parse_task_id(payload.get("id"))
        except Exception:  # a hostile id value: nothing to attribute it to
            return False
        if task_id is None:
            return False
        watch = self._engine.find(task_id)
        if watch is None or watch.retired:
            return False
        moved = self.apply(watch, payload, source)
        if source == "push":
            self._engine.settle(watch.mode)  # a push is a round of its own
        return moved

    def apply(
        self, watch: Watch, payload: Mapping[str, Any], source: Source, now: float | None = None
    ) -> bool:
        """Apply an observation of ``watch``; an unreadable one fails its job."""
        try:
            return self._apply(watch, payload, source, anyio.current_time() if now is None else now)
        except Exception as exc:
            self._engine.fail(
                watch,
                ProtocolError(f"an unreadable {source} payload: {type(exc).__name__}: {exc}"),
            )
            return False

    def _apply(self, watch: Watch, payload: Mapping[str, Any], source: Source, now: float) -> bool:
        engine = self._engine
        counters = engine.counters
        counters.observations += 1
        watch.misses = 0
        raw_key = (_scalar(payload.get("status")), _scalar(payload.get("progress")))
        pushed = source == "push"
        if pushed:
            watch.pushed_at = now
            counters.pushes_applied += 1
        elif watch.confirm_end and raw_key == watch.raw_key:
            self._refuted(watch)  # a push said it ended; the server still shows what it did
        if raw_key == watch.raw_key:
            return False  # the same observation again: nothing to parse
        # Decide on the two fields alone; the whole Task is built only if someone will see it.
        status, progress = parse_status(raw_key[0]), parse_progress(raw_key[1])
        if status is TaskStatus.NOT_START and not watch.waited:
            # Evidence even when it is no advance (a relay said SUBMITTED for a queued job).
            engine.accounts.saw_waiting(watch)
        watch.blank = status is TaskStatus.UNKNOWN
        if pushed:
            if status.is_terminal:
                # A push may hurry an end, never forge one: the server confirms it first.
                watch.confirm_end = True
                engine.poller.hurry(watch)
                return False
            # A push is fresher than any poll: the next poll is only a fallback now.
            watch.due = max(watch.due, now + engine.settings.push_interval)
        elif watch.confirm_end and not status.is_terminal:
            self._refuted(watch)
        if not is_advance(watch.status, watch.progress, status, progress):
            return False
        watch.raw_key = raw_key
        old_status = watch.status
        watch.status, watch.progress = status, progress
        if (old_status is TaskStatus.IN_PROGRESS) != (status is TaskStatus.IN_PROGRESS):
            engine.accounts.status_moved(watch, old_status, status)
        watch.initial = None  # superseded: the submit answer is old news now
        watch.payload = payload
        watch.last_source = source
        watch.last_change = now
        watch.quiet_rounds = 0
        if watch.first_running is None and status is TaskStatus.IN_PROGRESS:
            watch.first_running = (now, progress or 0)
        if status.is_terminal:
            return self._ended_upstream(watch, now)
        if watch.finished:
            return False  # abandoned: nobody listens any more
        if watch.has_followers:
            self._send(watch, self._event(watch, source))
        else:
            watch.event_stale = True  # nobody listens: build the event if someone asks
        return True

    def _refuted(self, watch: Watch) -> None:
        watch.confirm_end = False
        self._engine.counters.push_ends_refuted += 1
        log.warning(
            "task %s: a push said it ended; the server says it has not (push ignored)",
            watch.task_id,
            extra={"task_id": watch.task_id},
        )

    def _ended_upstream(self, watch: Watch, now: float) -> bool:
        engine = self._engine
        task = watch.task
        if task is None or task.status is not watch.status:
            # Unreadable (``task`` is then none, or an older one): ending the job with a stale
            # task, or waiting for a change the raw-key check would drop, are both wrong.
            raise ProtocolError(f"an unreadable {watch.status} payload")
        if watch.first_running is not None and watch.status is TaskStatus.SUCCESS:
            engine.accounts.job_ran(mode_key(watch.mode), now - watch.first_running[0])
        if watch.confirm_end:
            watch.confirm_end = False
            watch.last_source = "push"  # the push told us first; the poll confirmed it
            engine.counters.push_ends_confirmed += 1
            engine.counters.completed_by_push += 1
        else:
            engine.counters.completed_by_poll += 1
        if watch.finished:  # abandoned earlier: the server has now let go of it
            engine.retire(watch)
            return False
        event = self._event(watch, watch.last_source) if watch.has_followers else None
        if event is None:
            watch.event_stale = True
        engine.deliver(watch, task, final=event)
        engine.retire(watch)
        return True

    def _event(self, watch: Watch, source: str) -> ProgressEvent:
        """The event that describes ``watch`` now, as learned from ``source``."""
        task = watch.task
        self._engine.counters.parsed += 1
        status = watch.status or TaskStatus.UNKNOWN
        error = None
        if status in (TaskStatus.FAILURE, TaskStatus.CANCEL):
            error = task_failure(task, watch.task_id, status)
        return ProgressEvent(
            task_id=watch.task_id,
            status=status,
            progress=watch.progress,
            task=task,
            request=watch.request,
            error=error,
            source=source,
        )

    def current_event(self, watch: Watch) -> ProgressEvent | None:
        """The event that describes the watch now (built late if nobody was listening)."""
        if watch.initial is not None:
            watch.take_initial()
        if watch.event_stale:
            watch.last_event = self._event(watch, watch.last_source)
            watch.event_stale = False
        return watch.last_event

    def _send(self, watch: Watch, event: ProgressEvent) -> None:
        self._engine.counters.events += 1
        watch.send(event)
        log.debug(
            "task %s: %s %s%%",
            watch.task_id,
            event.status.value,
            event.progress,
            extra={"task_id": watch.task_id},
        )


def _scalar(value: object) -> object:
    """A raw status or progress as compared between observations: a JSON scalar as it is;
    anything else (a list nested 1,000 deep, whose comparison would recurse) as its type."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    return f"<{type(value).__name__}>"
