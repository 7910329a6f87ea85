"""Watching tasks: one batched polling loop per mode, fed also by pushed task payloads.

Every watched task is a :class:`Watch`. Observations (polled or pushed) go through
:meth:`Tracker.observe`, which compares the raw status/progress before parsing anything, drops
duplicates and regressions, and broadcasts the rest as :class:`ProgressEvent` to each consumer.
A poll round asks ``list-by-condition`` for every task that is due, so N tasks cost about
N / batch requests, not N.
"""

from __future__ import annotations

import logging
import math
from asyncio import get_running_loop
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any, Literal

import anyio
import attrs

from .._converter import parse_progress, parse_status, parse_task, parse_task_id
from .._errors import (
    AuthenticationError,
    MjError,
    NotFoundError,
    ProtocolError,
    TaskFailedError,
    TaskLostError,
    TaskStalledError,
    UnsupportedEndpointError,
)
from .._models import Task, TaskStatus
from .._wire.api import WireAPI
from .._wire.modes import mode_key
from .background import BackgroundTasks
from .events import EventQueue, ProgressEvent, is_advance
from .limiter import Slot
from .pacing import PollSettings, estimated_time_left, next_poll_interval

__all__ = ["Tracker", "Watch"]

log = logging.getLogger("mjasync")


def _now() -> float:
    # The event loop's clock, as anyio.current_time() gives it, without its per-call lookup of
    # the running backend (aiohttp ties us to asyncio): the tracker reads it for every task.
    return get_running_loop().time()


Source = Literal["submit", "poll", "push"]


# [hostile-wire] defensive helpers for hostile payloads (the lead carries them over).
def _scalar(value: object) -> object:
    """A raw status/progress as compared between observations: JSON scalars as they are,
    anything else (a list, an object, possibly nested 1,000 deep, whose comparison would
    recurse) as its type name only."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    return f"<{type(value).__name__}>"


def _unreadable(watch: Watch, exc: Exception) -> ProtocolError:
    error = ProtocolError(f"task {watch.task_id}: unusable task payload ({type(exc).__name__})")
    error.__cause__ = exc
    return error


@attrs.define(eq=False)
class Watch:
    """The client's knowledge of one task, shared by every handle and consumer of it."""

    task_id: str
    mode: str | None
    request: object = None
    slot: Slot | None = None
    status: TaskStatus | None = None
    progress: int | None = None
    raw_key: tuple[object, object] | None = None  # (status, progress) exactly as last received
    task_cache: Task | None = None
    payload: Mapping[str, Any] | None = None  # newest accepted payload, parsed on demand
    last_event: ProgressEvent | None = None
    event_stale: bool = False  # last_event predates the newest observation
    last_source: str = "submit"
    outcome: Task | MjError | None = None
    queues: set[EventQueue] = attrs.field(factory=set)
    # What the submit answer said, made into an event only if someone looks before a poll.
    initial: Callable[[], ProgressEvent] | None = None
    # Made on first wait and called on finish: most jobs have neither, or only a callback.
    done_event: anyio.Event | None = None
    on_finish: list[Callable[[Watch], None]] | None = None
    last_change: float = 0.0
    first_running: tuple[float, int] | None = None  # (time, progress) first seen IN_PROGRESS
    due: float = 0.0
    quiet_rounds: int = 0
    misses: int = 0
    pushed_at: float = -math.inf
    consumers: int = 0

    @property
    def finished(self) -> bool:
        """``True`` once an outcome (terminal task or error) is known."""
        return self.outcome is not None

    async def wait(self) -> None:
        """Return once the watch has an outcome."""
        if self.outcome is None:
            if self.done_event is None:
                self.done_event = anyio.Event()
            await self.done_event.wait()

    def add_done_callback(self, callback: Callable[[Watch], None]) -> None:
        """Call ``callback(watch)`` when the watch ends (at once if it has ended)."""
        if self.outcome is not None:
            callback(self)
        elif self.on_finish is None:
            self.on_finish = [callback]
        else:
            self.on_finish.append(callback)

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


@attrs.define
class TrackerCounters:
    """Running totals of the tracker (read by ``client.statistics()``)."""

    poll_rounds: int = 0
    observations: int = 0
    events: int = 0
    parsed: int = 0
    pushes_applied: int = 0
    completed_by_poll: int = 0
    completed_by_push: int = 0


ReleaseSlot = Callable[[Slot], Coroutine[Any, Any, None]]


class Tracker:
    """All watched tasks of one client, and the polling loop of each mode.

    Args:
        api: the wire API used for polling.
        settings: pacing.
        release: gives a slot back to the limiter when a watched job ends.
        release_nowait: the limiter's synchronous release, when it has one (in-process
            budgets): then a job's slot is free before its result is delivered.
        background: the client's background tasks, where the per-mode loops run.
    """

    def __init__(
        self,
        api: WireAPI,
        settings: PollSettings,
        release: ReleaseSlot,
        background: BackgroundTasks,
        release_nowait: Callable[[Slot], None] | None = None,
    ) -> None:
        self.api = api
        self.settings = settings
        self._release = release
        self._release_nowait = release_nowait
        self._tg = background
        self._watches: dict[str, dict[str, Watch]] = {}
        self._wakeups: dict[str, anyio.Event] = {}
        self.counters = TrackerCounters()

    # -- registry --------------------------------------------------------------------------

    def watched(self, mode: str | None = None) -> int:
        """How many tasks are watched (in one mode, or in all)."""
        if mode is not None:
            return len(self._watches.get(mode_key(mode), {}))
        return sum(len(group) for group in self._watches.values())

    def find(self, task_id: str) -> Watch | None:
        """The live watch of a task id in any mode, if any."""
        for group in self._watches.values():
            watch = group.get(task_id)
            if watch is not None:
                return watch
        return None

    def add(
        self,
        task_id: str,
        mode: str | None,
        *,
        request: object = None,
        slot: Slot | None = None,
        status: TaskStatus | None = None,
        initial: Callable[[], ProgressEvent] | None = None,
    ) -> Watch:
        """Start watching a task (or return the existing watch of the same id and mode).

        A submitted task comes with the ``status`` its submit answer implied and ``initial``,
        which builds the matching first event if someone asks before the first poll.
        """
        key = mode_key(mode)
        group = self._watches.get(key)
        if group is None:
            group = self._watches[key] = {}
            self._tg.start_soon(self._run_mode, key, mode, name=f"mjasync poller {key}")
        existing = group.get(task_id)
        if existing is not None:
            return existing
        now = _now()
        watch = Watch(task_id=task_id, mode=mode, request=request, slot=slot, initial=initial)
        watch.last_change = now
        if status is not None:
            watch.status = status
            # One interval, not the waiting pace: short jobs (describe, shorten) end in seconds.
            watch.due = now + self.settings.interval
        else:
            watch.due = now  # reattaching: learn the state at once
        was_idle = not group
        group[task_id] = watch
        if was_idle:
            # Only an idle loop waits for this; a busy one picks new watches up within an
            # interval, and waking it on every submit would split polling into tiny rounds.
            wake = self._wakeups.get(key)
            if wake is not None:
                wake.set()
        return watch

    def close_all(self, error: Callable[[Watch], MjError]) -> None:
        """End every watch (the client is closing); consumers get ``error(watch)``."""
        for group in list(self._watches.values()):
            for watch in list(group.values()):
                self.fail(watch, error(watch))

    def subscribe(self, watch: Watch) -> EventQueue:
        """A new consumer's queue, primed with the current state (late consumers catch up)."""
        queue = EventQueue()
        event = self._current_event(watch)
        if event is not None:
            queue.put(event)
        if watch.finished:
            queue.close()
        else:
            watch.queues.add(queue)
        return queue

    # -- observations ----------------------------------------------------------------------

    def observe(self, payload: Mapping[str, Any], source: Source) -> bool:
        """Apply one task payload (polled or pushed). Returns ``True`` if it produced an event."""
        task_id = parse_task_id(payload.get("id"))
        if task_id is None:
            return False
        watch = self.find(task_id)
        if watch is None or watch.finished:
            return False
        return self._apply(watch, payload, source)

    def _apply(
        self, watch: Watch, payload: Mapping[str, Any], source: Source, now: float | None = None
    ) -> bool:
        self.counters.observations += 1
        if now is None:
            now = _now()
        watch.misses = 0
        if source == "push":
            watch.pushed_at = now
            self.counters.pushes_applied += 1
            # A push is fresher than any poll: the next poll is only a fallback now.
            watch.due = max(watch.due, now + self.settings.push_interval)
        raw_key = (_scalar(payload.get("status")), _scalar(payload.get("progress")))
        if raw_key == watch.raw_key:
            return False  # the same observation again: nothing to parse
        watch.raw_key = raw_key
        # Decide on the two fields alone; the whole Task is built only if someone will see it.
        status, progress = parse_status(raw_key[0]), parse_progress(raw_key[1])
        if not is_advance(watch.status, watch.progress, status, progress):
            return False
        watch.status, watch.progress = status, progress
        watch.initial = None  # superseded: the submit answer is old news now
        watch.payload = payload
        watch.last_source = source
        watch.last_change = now
        watch.quiet_rounds = 0
        if watch.first_running is None and status is TaskStatus.IN_PROGRESS:
            watch.first_running = (now, progress or 0)
        if watch.queues:
            self._broadcast(watch, self._event(watch, source))
        else:
            watch.event_stale = True  # nobody listens: build the event if someone asks
        if status.is_terminal:
            task = watch.task
            if task is None or task.status is not status:
                # [hostile-wire] the terminal payload is unreadable (``task`` is then an older
                # one, or none): ending the job with a stale task, or waiting for a change
                # that the raw-key check would drop, are both wrong. It fails, alone.
                self.fail(
                    watch,
                    ProtocolError(f"task {watch.task_id}: unreadable {status.value} payload"),
                )
                return True
            if source == "push":
                self.counters.completed_by_push += 1
            else:
                self.counters.completed_by_poll += 1
            self._finish(watch, task)
        return True

    def _event(self, watch: Watch, source: str) -> ProgressEvent:
        task = watch.task
        self.counters.parsed += 1
        status = watch.status or TaskStatus.UNKNOWN
        error = None
        if status in (TaskStatus.FAILURE, TaskStatus.CANCEL):
            reason = (task.fail_reason if task else None) or status.value.lower()
            error = TaskFailedError(reason, task_id=watch.task_id, task=task)
        return ProgressEvent(
            task_id=watch.task_id,
            status=status,
            progress=watch.progress,
            task=task,
            request=watch.request,
            error=error,
            source=source,
        )

    def _current_event(self, watch: Watch) -> ProgressEvent | None:
        """The event that describes the watch now (built late if nobody was listening)."""
        if watch.initial is not None:
            watch.take_initial()
        if watch.event_stale:
            watch.last_event = self._event(watch, watch.last_source)
            watch.event_stale = False
        return watch.last_event

    def _broadcast(self, watch: Watch, event: ProgressEvent) -> None:
        watch.last_event = event
        watch.event_stale = False
        self.counters.events += 1
        for queue in watch.queues:
            queue.put(event)
        if event.task_id is not None:
            log.debug(
                "task %s: %s %s%%",
                event.task_id,
                event.status.value,
                event.progress,
                extra={"task_id": event.task_id},
            )

    def fail(self, watch: Watch, error: MjError) -> None:
        """End a watch with an error (stalled, lost, abandoned, auth failure)."""
        if watch.finished:
            return
        event = ProgressEvent(
            task_id=watch.task_id,
            status=watch.status or TaskStatus.UNKNOWN,
            progress=watch.progress,
            task=watch.task,
            request=watch.request,
            error=error,
            source="poll",
        )
        self._broadcast(watch, event)
        self._finish(watch, error)

    def _finish(self, watch: Watch, outcome: Task | MjError) -> None:
        watch.outcome = outcome
        group = self._watches.get(mode_key(watch.mode))
        if group is not None and group.get(watch.task_id) is watch:
            del group[watch.task_id]
        for queue in watch.queues:
            queue.close()
        watch.queues.clear()
        if watch.done_event is not None:
            watch.done_event.set()
        slot, watch.slot = watch.slot, None
        if slot is not None:
            if self._release_nowait is not None:
                self._release_nowait(slot)
            else:
                # Releasing may touch a shared store (Redis): do it off this call path.
                self._tg.start_soon(self._release, slot)
        callbacks, watch.on_finish = watch.on_finish, None
        for callback in callbacks or ():
            callback(watch)

    # -- polling ---------------------------------------------------------------------------

    async def _run_mode(self, key: str, mode: str | None) -> None:
        settings = self.settings
        next_stall_check = 0.0
        while True:
            group = self._watches.get(key, {})
            if not group:
                wake = self._wakeups[key] = anyio.Event()
                await wake.wait()
                continue
            now = _now()
            if now >= next_stall_check:  # a scan of every watch: once an interval is plenty
                self._check_stalls(group.values(), now)
                next_stall_check = now + settings.interval
            # Batch generously: a task due within half an interval rides along now.
            horizon = now + settings.interval / 2
            due = [w for w in group.values() if w.due <= horizon]
            if due:
                # [hostile-wire] a round that fails in an unforeseen way must not end the
                # loop (and with it the client's task group): try those tasks again later.
                try:
                    await self._poll(due, mode)
                except Exception:
                    log.exception("poll round of %d task(s) failed; retrying later", len(due))
                    later = _now() + settings.max_interval
                    for watch in due:
                        watch.due = later
            group = self._watches.get(key, {})
            if not group:
                continue
            next_due = min(w.due for w in group.values())
            await anyio.sleep(max(0.0, min(next_due - _now(), settings.interval)))

    def _check_stalls(self, watches: Iterable[Watch], now: float) -> None:
        limit = self.settings.stall_timeout
        for watch in list(watches):
            if watch.status is not TaskStatus.MODAL and now - watch.last_change > limit:
                self.fail(
                    watch,
                    TaskStalledError(
                        f"no change for {limit:g}s (last status {watch.status})",
                        task_id=watch.task_id,
                        task=watch.task,
                    ),
                )

    async def _poll(self, due: list[Watch], mode: str | None) -> None:
        self.counters.poll_rounds += 1
        ids = [w.task_id for w in due]
        seen: set[str] = set()
        group = self._watches.get(mode_key(mode), {})

        def take(payloads: list[Any]) -> None:
            # Applied chunk by chunk as answers arrive, so a big round never holds every
            # decoded payload at once.
            now = _now()
            for payload in payloads:
                if type(payload) is not dict and not isinstance(payload, Mapping):  # dict: fast
                    continue
                task_id = parse_task_id(payload.get("id"))
                if task_id is None:
                    continue
                seen.add(task_id)
                found = group.get(task_id) or self.find(task_id)
                if found is None or found.finished:
                    continue
                # [hostile-wire] a payload that breaks applying it fails its own task only.
                try:
                    if not self._apply(found, payload, "poll", now):
                        found.quiet_rounds += 1
                except Exception as exc:
                    self.fail(found, _unreadable(found, exc))

        try:
            await self.api.fetch_payloads(ids, mode=mode, on_chunk=take)
        except (AuthenticationError, UnsupportedEndpointError) as exc:
            # These will not heal by waiting: end the jobs now rather than at the stall limit.
            for watch in due:
                self.fail(watch, exc)
            return
        except MjError as exc:
            log.warning("poll of %d task(s) failed after retries: %s", len(ids), exc)
            later = _now() + self.settings.max_interval
            for watch in due:
                watch.due = later
            return
        now = _now()
        for watch in due:
            if watch.finished:
                continue
            if watch.task_id not in seen:
                watch.misses += 1
                if watch.misses >= self.settings.missing_rounds:
                    watch.misses = 0  # one confirmation at a time
                    self._tg.start_soon(self._confirm_lost, watch)
            healthy = now - watch.pushed_at <= self.settings.push_health
            first = watch.first_running
            watch.due = now + next_poll_interval(
                self.settings,
                watch.status or TaskStatus.UNKNOWN,
                changed=watch.quiet_rounds == 0,
                quiet_rounds=watch.quiet_rounds,
                push_healthy=healthy,
                time_left=None
                if first is None
                else estimated_time_left(first, (watch.last_change, watch.progress or 0), now),
            )

    async def _confirm_lost(self, watch: Watch) -> None:
        try:
            task = await self.api.fetch(watch.task_id, mode=watch.mode)
        except NotFoundError:
            self.fail(
                watch,
                TaskLostError(
                    "the server no longer knows this task (it restarted, or expired the task)",
                    task_id=watch.task_id,
                    task=watch.task,
                ),
            )
            return
        except MjError as exc:
            log.info("task %s: could not confirm whether it is lost: %s", watch.task_id, exc)
            return
        self._apply(watch, task.raw, "poll")
