"""Submitting: a new job's POST, read to its answer even if its caller leaves; refusals waited out.

:class:`Submitter` is the engine's submit half: :meth:`JobEngine.start` hands it every submit,
and it keeps the engine's contract, item 2 (in :mod:`mjasync._jobs.engine`). The caller holds a
slot; the POST runs shielded, so a task id the server assigned is never lost to a cancellation:
in place when the caller is one of the library's own tasks, else in a background task the
caller merely waits for. Queue-full and 429 refusals are waited out and the same body resent
(:func:`~mjasync._wire.retry.refusal_delay` decides how long), except on an *ahead* slot: no
task exists then, so the slot goes back and the job waits for another like any new one. Each
answer teaches the account (:meth:`~mjasync._jobs.account.Accounts.submit_outcome`) and the
limiter; an accepted submit becomes a tracked :class:`~mjasync._jobs.job.Job`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from .._errors import MjError, QueueFullError, RateLimitError, TaskError
from .._models import Submission, Task, TaskAction, TaskStatus
from .._wire.retry import refusal_delay
from .events import ProgressEvent
from .job import Job
from .limiter import Slot, grows_running
from .watch import Watch

if TYPE_CHECKING:
    from .engine import JobEngine

__all__ = ["POSTS_AT_ONCE", "Submitter"]

log = logging.getLogger("mjasync")

#: Submit POSTs sent at once per client. More would only wait in aiohttp's pool of 100
#: connections, each waiting request holding its own coroutine and buffers.
POSTS_AT_ONCE = 100


class _Requeue(Exception):
    """An ahead slot's submit was refused (queue full): no task exists; wait for a slot."""


@attrs.define(eq=False)
class _PendingSubmit:
    """A submit whose POST outlives its caller if need be."""

    done: anyio.Event = attrs.field(factory=anyio.Event)
    job: Job | None = None
    error: BaseException | None = None
    caller_left: bool = False


class Submitter:
    """Sends one engine's submits (see the module docstring).

    Args:
        engine: the engine whose slots, tracking and background tasks submits use.
        posts_at_once: submit POSTs in flight at once.
        random: jitter for refusal waits (``random.random``).
    """

    def __init__(
        self, engine: JobEngine, *, posts_at_once: int, random: Callable[[], float]
    ) -> None:
        self._engine = engine
        self._random = random
        self._posts = anyio.Semaphore(posts_at_once)

    async def start(
        self,
        request: Any,
        body: Mapping[str, Any],
        mode: str | None,
        slot: Slot,
        *,
        in_engine_task: bool = False,
    ) -> Job:
        """Submit ``body`` while holding ``slot`` (see :meth:`JobEngine.start`)."""
        engine = self._engine
        if in_engine_task:
            while True:
                try:
                    with anyio.CancelScope(shield=True):
                        submission = await self._post(request.route, body, mode, slot.ahead)
                except _Requeue:
                    try:
                        slot = await self._requeue(slot, mode)  # cancellable: no task exists
                    except BaseException:
                        engine.counters.submits_failed += 1
                        raise
                    continue
                except BaseException:
                    engine.counters.submits_failed += 1
                    engine.release_unused(slot)
                    raise
                return Job(self._accepted(request, submission, mode, slot), engine)
        pending = _PendingSubmit()
        engine.background.start_soon(self._post_detached, pending, request, body, mode, slot)
        try:
            await pending.done.wait()
        except BaseException:
            pending.caller_left = True
            if pending.job is not None:  # answered just as the caller was cancelled
                self._caller_left(pending.job)
            raise
        if pending.error is not None:
            raise pending.error
        assert pending.job is not None
        return pending.job

    async def _post_detached(
        self,
        pending: _PendingSubmit,
        request: Any,
        body: Mapping[str, Any],
        mode: str | None,
        slot: Slot,
    ) -> None:
        engine = self._engine
        try:
            while True:
                try:
                    with anyio.CancelScope(shield=True):
                        submission = await self._post(request.route, body, mode, slot.ahead)
                except _Requeue as requeue:
                    if not pending.caller_left:
                        slot = await self._requeue(slot, mode)
                    if pending.caller_left and requeue.__cause__ is not None:
                        raise requeue.__cause__ from None  # nobody waits for it: send nothing
                    continue
                break
        except BaseException as exc:
            engine.counters.submits_failed += 1
            engine.release_unused(slot)
            pending.error = exc
            if pending.caller_left and isinstance(exc, MjError):
                log.warning("submit after its caller left failed: %s", exc)
        else:
            pending.job = Job(self._accepted(request, submission, mode, slot), engine)
            if pending.caller_left:
                self._caller_left(pending.job)
        finally:
            pending.done.set()
        if isinstance(pending.error, Exception) and not isinstance(pending.error, MjError):
            raise pending.error  # a bug: let it surface in the background task's log

    async def _requeue(self, slot: Slot, mode: str | None) -> Slot:
        """An ahead slot's submit found the queue full: give it back and wait for a new slot.

        Raises what :meth:`JobEngine.acquire` raises (the given slot is released either way).
        """
        self._engine.release_unused(slot)
        return await self._engine.acquire(mode)

    def _caller_left(self, job: Job) -> None:
        watch = job._watch
        if watch.owners == 0 and not watch.finished:
            self._engine.abandon(
                watch, TaskError("its caller left while it was submitted", task_id=job.id)
            )

    async def _post(
        self, route: str, body: Mapping[str, Any], mode: str | None, ahead: bool = False
    ) -> Submission:
        # Bounded: 10,000 concurrent callers wait here rather than in aiohttp's pool.
        try:
            self._posts.acquire_nowait()  # the common case, without a trip through the loop
        except anyio.WouldBlock:
            await self._posts.acquire()
        try:
            return await self._submit_absorbing_refusals(route, body, mode, ahead)
        finally:
            self._posts.release()

    async def _submit_absorbing_refusals(
        self, route: str, body: Mapping[str, Any], mode: str | None, ahead: bool = False
    ) -> Submission:
        engine = self._engine
        started = anyio.current_time()
        attempt = 0
        while True:
            try:
                submission = await engine.api.submit(route, body, mode=mode, retry_refusals=False)
            except (QueueFullError, RateLimitError) as refusal:
                engine.counters.refusals += 1
                engine.accounts.submit_outcome(mode, "refused")
                await engine.limiter.feedback(mode, "refused")
                attempt += 1
                waited = anyio.current_time() - started
                delay = refusal_delay(
                    attempt, engine.retry, refusal.retry_after, waited, self._random
                )
                if delay is None:
                    raise
                if ahead:
                    # A job let wait found the queue full: it waits for a slot like any other
                    # (the room learned from this refusal decides which kind it gets).
                    log.info("submit %s refused (queue full); it waits for a slot", route)
                    raise _Requeue from refusal
                log.info(
                    "submit %s refused (%s); resubmitting in %.2fs (attempt %d)",
                    route,
                    type(refusal).__name__,
                    delay,
                    attempt + 1,
                )
                await anyio.sleep(delay)
                continue
            engine.counters.submitted += 1
            engine.accounts.submit_outcome(mode, "accepted")
            if grows_running(engine.queue_state(mode), engine.limiter.limit(mode)):
                await engine.limiter.feedback(mode, "accepted")
            return submission

    def _accepted(
        self, request: Any, submission: Submission, mode: str | None, slot: Slot
    ) -> Watch:
        assert submission.task_id is not None
        log.info(
            "task %s: submitted (%s, code %d)",
            submission.task_id,
            getattr(request, "kind", "request"),
            submission.code,
            extra={"task_id": submission.task_id},
        )
        status = _submitted_status(submission)
        watch = self._engine.track(
            submission.task_id,
            mode,
            request=request,
            slot=slot,
            status=status,
            initial=partial(_initial_event, request, submission, status),
        )
        if submission.queued:
            self._engine.accounts.saw_waiting(watch)  # code 22: it waits in the account's queue
            self._engine.settle(mode)
        return watch


def _submitted_status(submission: Submission) -> TaskStatus:
    if submission.queued:
        return TaskStatus.NOT_START
    if submission.needs_modal:
        return TaskStatus.MODAL
    return TaskStatus.SUBMITTED


def _initial_event(request: Any, submission: Submission, status: TaskStatus) -> ProgressEvent:
    """The first event of a job: what its submit answer said (a stand-in task)."""
    assert submission.task_id is not None
    kind = str(getattr(request, "kind", "")).upper()
    stand_in = Task(
        id=submission.task_id,
        status=status,
        action=TaskAction.__members__.get(kind, TaskAction.UNKNOWN),
        prompt=getattr(request, "prompt", None),
        properties=submission.properties,
    )
    return ProgressEvent(
        task_id=submission.task_id,
        status=status,
        progress=None,
        task=stand_in,
        request=request,
        queue_position=submission.queue_position,
        source="submit",
    )
