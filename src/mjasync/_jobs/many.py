"""Many jobs at once: one submitter pool under ``gather()``, ``stream()`` and ``watch()``.

A fixed pool of submitters walks the requests in order (slot first, then the POST), so a
10,000-request batch holds ``concurrency`` jobs and a hundred small tasks, never a task per
job. What happens to each job is delivered by callback (``gather``) or into one merged event
queue (``stream``, ``watch``). These calls *own* their jobs: if they are cancelled, or their
consumer stops early, the jobs nobody else owns are abandoned.

A request that cannot get a slot (a shared budget's store stayed unreachable: ``LimiterError``)
fails in its own place, like a refused submit: the pool goes on with the next request, and the
jobs already started are followed to their ends.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

import anyio

from .._errors import LimiterError, MjError, TaskError
from .._models import Task, TaskStatus
from .engine import JobEngine
from .events import ProgressEvent
from .job import Job
from .outcomes import result_of
from .submitting import POSTS_AT_ONCE
from .watch import Watch

__all__ = ["EventMerger", "follow_ids", "gather_jobs", "stream_jobs"]

#: One item of work: (position, request, body).
Work = tuple[int, Any, Mapping[str, Any]]
Started = Callable[[int, Job], None]
Refused = Callable[[int, Any, MjError], None]

#: How many jobs ``stream()`` may start before its consumer has taken their terminal events
#: (at least twice the mode's limit, so a consumer that keeps up never slows the batch).
STREAM_AHEAD = 64


async def submit_all(
    engine: JobEngine,
    work: Iterator[Work],
    mode: str | None,
    *,
    started: Started,
    refused: Refused,
    pool_size: int = POSTS_AT_ONCE,
    gate: anyio.Semaphore | None = None,
) -> None:
    """Submit every item of ``work`` through a pool of ``pool_size`` submitters, in order."""

    async def submitter() -> None:
        for position, request, body in work:  # one shared iterator: items go out in order
            if gate is not None:
                await gate.acquire()
            try:
                # The slot first: only `concurrency` jobs exist.
                slot = await engine.acquire(mode)
            except LimiterError as exc:
                # Its own outcome, not the pool's: raised here it would end every submitter
                # and lose the results of the jobs already running.
                refused(position, request, exc)
                continue
            try:
                job = await engine.start(request, body, mode, slot, in_engine_task=True)
            except MjError as exc:
                refused(position, request, exc)
                continue
            started(position, job)

    async with anyio.create_task_group() as tg:
        for _ in range(max(1, pool_size)):
            tg.start_soon(submitter)


def _abandon_all(engine: JobEngine, watches: Iterable[Watch], why: str) -> None:
    for watch in list(watches):
        if watch.disown():
            engine.abandon(watch, TaskError(why, task_id=watch.task_id))


async def gather_jobs(
    engine: JobEngine,
    requests: Sequence[Any],
    bodies: Sequence[Mapping[str, Any]],
    mode: str | None,
) -> list[Task | MjError]:
    """Run every request; a :class:`Task` or the error for each, in input order."""
    results: list[Task | MjError | None] = [None] * len(requests)
    # Waiting jobs are followed by a callback, not a task each: a task per job would sit
    # suspended for the whole job (memory) and be woken once more at its end (CPU).
    following: set[Watch] = set()
    all_ended = anyio.Event()
    sending = True

    def ended(position: int, watch: Watch) -> None:
        results[position] = result_of(watch)
        watch.disown()
        following.discard(watch)
        if not following and not sending:
            all_ended.set()

    def started(position: int, job: Job) -> None:
        watch = job._watch
        watch.own()  # so another consumer leaving cannot abandon it
        following.add(watch)
        watch.add_done_callback(partial(ended, position))

    def refused(position: int, request: Any, error: MjError) -> None:
        results[position] = error

    work = ((i, requests[i], bodies[i]) for i in range(len(requests)))
    try:
        await submit_all(
            engine,
            work,
            mode,
            started=started,
            refused=refused,
            pool_size=min(POSTS_AT_ONCE, len(requests)),
        )
        sending = False
        if following:
            await all_ended.wait()
    except BaseException:
        # Cancelled (or failing): the jobs nobody else owns are given up; where the server
        # can, they are cancelled upstream, and their slots are held until they end there.
        _abandon_all(engine, following, "cancelled by its consumer (gather)")
        raise
    return [r if r is not None else TaskError("no outcome", task_id="?") for r in results]


class EventMerger:
    """The events of many jobs for one consumer: newest wins per job, every end is kept.

    Each job has at most one pending event; a newer one replaces it in place. So a slow
    consumer holds one event per job, never a backlog, and still sees every job's terminal
    event. Submit failures arrive as extra events (``task_id=None``).
    """

    def __init__(self, engine: JobEngine) -> None:
        self._engine = engine
        self._pending: dict[object, ProgressEvent] = {}
        self._order: deque[object] = deque()
        self._wakeup = anyio.Event()
        self.followed: set[Watch] = set()
        self.closed = False

    def follow(self, watch: Watch) -> None:
        """Own ``watch`` and pass its events on (starting with its current state)."""
        watch.own()
        self.followed.add(watch)
        event = self._engine.current_event(watch)
        if event is not None:
            self._put(watch, event)
        if watch.finished:
            self._done(watch)
        else:
            watch.add_listener(self._on_event)
            watch.add_done_callback(self._done)

    def _on_event(self, watch: Watch, event: ProgressEvent) -> None:
        self._put(watch, event)

    def _done(self, watch: Watch) -> None:
        if watch in self.followed:
            self.followed.discard(watch)
            watch.disown()

    def put_extra(self, event: ProgressEvent) -> None:
        """An event that belongs to no job (a refused submit)."""
        self._put(object(), event)

    def _put(self, key: object, event: ProgressEvent) -> None:
        if key not in self._pending:
            self._order.append(key)
        self._pending[key] = event
        self._wakeup.set()

    def close(self) -> None:
        """No more jobs will be followed (wakes the consumer once all is taken)."""
        self.closed = True
        self._wakeup.set()

    @property
    def finished(self) -> bool:
        """``True`` when nothing is pending, followed, or still to come."""
        return self.closed and not self._order and not self.followed

    async def get(self) -> ProgressEvent | None:
        """The next event; ``None`` once everything has been taken."""
        while not self._order:
            if self.finished:
                return None
            await self._wakeup.wait()
            self._wakeup = anyio.Event()
        return self._pending.pop(self._order.popleft())

    def abandon_all(self, why: str) -> None:
        """The consumer left: give up the jobs nobody else owns."""
        followed, self.followed = set(self.followed), set()
        for watch in followed:
            watch.remove_listener(self._on_event)
        _abandon_all(self._engine, followed, why)


async def stream_jobs(
    engine: JobEngine,
    requests: Iterable[Any],
    body_for: Callable[[Any], Mapping[str, Any]],
    mode: str | None,
) -> AsyncIterator[ProgressEvent]:
    """Submit requests (bounded by the slots) and yield all their events as they come."""
    merger = EventMerger(engine)
    # `ahead` caps how many jobs may be started before the consumer has taken their
    # terminal events, so a slow consumer slows the batch down instead of piling it up.
    ahead = anyio.Semaphore(max(STREAM_AHEAD, 2 * engine.limiter.limit(mode)))

    def work() -> Iterator[Work]:
        for position, request in enumerate(requests):
            try:
                body = body_for(request)
            except (TypeError, ValueError, AttributeError) as exc:
                raise TypeError(f"stream() got an unusable request {request!r}: {exc}") from exc
            yield position, request, body

    def started(position: int, job: Job) -> None:
        merger.follow(job._watch)

    def refused(position: int, request: Any, error: MjError) -> None:
        merger.put_extra(
            ProgressEvent(
                task_id=None,
                status=TaskStatus.FAILURE,
                progress=None,
                task=None,
                request=request,
                error=error,
                source="submit",
            )
        )

    async def feed() -> None:
        try:
            await submit_all(engine, work(), mode, started=started, refused=refused, gate=ahead)
        finally:
            merger.close()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(feed)
            while (event := await merger.get()) is not None:
                if event.is_terminal:
                    ahead.release()
                yield event
    except BaseExceptionGroup as group:
        # One failure (an unusable request, an unreachable limiter) is raised as itself, so
        # `except TypeError:` around the loop works; a real crowd stays a group.
        error = _sole_error(group)
        if error is None:
            raise
        raise error from error.__cause__
    finally:
        merger.abandon_all("cancelled by its consumer (stream)")


async def follow_ids(
    engine: JobEngine, task_ids: Sequence[str], mode: str | None
) -> AsyncIterator[ProgressEvent]:
    """Events of existing tasks until all have ended (re-attach; no slot is taken)."""
    merger = EventMerger(engine)
    for task_id in task_ids:
        merger.follow(engine.attach(task_id, mode)._watch)
    merger.close()
    try:
        while (event := await merger.get()) is not None:
            yield event
    finally:
        merger.abandon_all("cancelled by its consumer (watch)")


def _sole_error(group: BaseExceptionGroup[BaseException]) -> Exception | None:
    """The one exception inside (possibly nested) groups, if there is exactly one."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        item = pending.pop()
        if isinstance(item, BaseExceptionGroup):
            pending.extend(item.exceptions)
        else:
            leaves.append(item)
    if len(leaves) == 1 and isinstance(leaves[0], Exception):
        return leaves[0]
    return None
