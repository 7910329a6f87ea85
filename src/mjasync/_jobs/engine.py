"""The job engine: slots, submits, tracking, abandonment and outcome counting for one client.

``Client`` (``submit``, ``run``, ``watch``, ``stream``, ``gather``) and the batch runner both
drive jobs through this one object. Its contract:

1. **Slots.** :meth:`JobEngine.acquire` waits for room in a mode's budget; the slot is the
   caller's until it hands it to :meth:`start` or :meth:`attach` (then it is the job's) or
   gives it back with :meth:`release_unused`. A job's slot is released exactly once, when the
   server reports the task terminal, or it is lost, stalls, or the client closes — never
   earlier, so the account never holds more jobs than the budget. The budget is the limiter's
   slots (``concurrency``: the jobs that run) plus, once the account has been seen to queue
   (one of our jobs waited — code 22 or ``NOT_START`` — while another of ours ran), up to
   ``queue_ahead`` *ahead* slots: jobs let wait in the account's own queue so that a freed
   core starts the next job at once. Ahead slots are the engine's own (never the limiter's),
   are handed out only while every running slot is taken, and follow the same rule: held
   until the job ends. How many are allowed is a pure decision
   (:func:`~mjasync._jobs.limiter.ahead_allowance`); with ``queue_ahead=0`` there are none.
   A submit on an ahead slot that is refused as queue full creates no job: :meth:`start`
   gives that slot back and waits (cancellably) for another, like any new job.
2. **Submits.** :meth:`start` sends the request while the slot is held; the POST runs to its
   answer even if the caller is cancelled (anyio or plain asyncio), because a task id the
   server assigned is paid for. If the caller left meanwhile, the new job is abandoned (3).
   Refused submits (queue full, 429) are waited out and resent with the same body.
3. **Abandoning.** A job whose last owner leaves (see :mod:`mjasync._jobs.watch`) is abandoned:
   its followers get the error at once, the task is cancelled upstream where the server has a
   cancel route, its id is logged and counted, and it stays tracked, slot held, until the
   server says it ended.
4. **Observations.** Polled and pushed task payloads go through :meth:`observe`. A pushed end
   is only a hint: the engine confirms it with a (batched) poll before the job ends. Anything
   unreadable fails at most the task it belongs to. Observations also teach the engine about
   the account (how many of ours run, whether one waits, how long jobs take).
5. **Outcomes** are counted once, where a job ends (:meth:`_deliver`), whichever path ended it.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any, Literal

import anyio
import anyio.abc
import attrs

from .._converter import parse_progress, parse_status, parse_task_id
from .._errors import (
    ClientClosedError,
    MjError,
    ProtocolError,
    QueueFullError,
    RateLimitError,
    TaskError,
    TaskFailedError,
    UnsupportedEndpointError,
)
from .._models import Submission, Task, TaskAction, TaskStatus
from .._wire.api import WireAPI
from .._wire.messages import in_english
from .._wire.modes import mode_key
from .._wire.retry import RetryPolicy, refusal_delay
from .background import BackgroundTasks
from .events import ProgressEvent, is_advance
from .job import Job
from .limiter import (
    QUEUE_WAIT_BUDGET,
    Limiter,
    Outcome,
    QueueState,
    Slot,
    ahead_allowance,
    grows_running,
    learned_job_time,
    queue_feedback,
    saw_running,
    saw_waiting,
)
from .pacing import PollSettings
from .poller import Poller
from .watch import Watch

__all__ = ["POSTS_AT_ONCE", "EngineCounters", "JobEngine", "Source"]

log = logging.getLogger("mjasync")

Source = Literal["submit", "poll", "push"]

#: Submit POSTs sent at once per client. More would only wait in aiohttp's pool of 100
#: connections, each waiting request holding its own coroutine and buffers.
POSTS_AT_ONCE = 100


@attrs.define
class EngineCounters:
    """Running totals of the engine (read by ``client.statistics()``)."""

    submitted: int = 0
    submits_failed: int = 0
    refusals: int = 0
    succeeded: int = 0
    failed: int = 0
    abandoned: int = 0
    poll_rounds: int = 0
    observations: int = 0
    events: int = 0
    parsed: int = 0
    pushes_applied: int = 0
    push_ends_confirmed: int = 0
    push_ends_refuted: int = 0
    completed_by_poll: int = 0
    completed_by_push: int = 0


class _Requeue(Exception):
    """An ahead slot's submit was refused (queue full): no task exists; wait for a slot."""


@attrs.define(eq=False)
class _Account:
    """The engine's view of one mode's upstream account."""

    queue: QueueState = attrs.field(factory=QueueState)
    held: set[object] = attrs.field(factory=set)  # tokens of the limiter slots we hold
    ahead: set[object] = attrs.field(factory=set)  # tokens of the ahead slots we hold
    running: int = 0  # tracked jobs now IN_PROGRESS
    peak_limit: int = 0  # the most running slots the limiter has allowed
    waiters: list[anyio.CancelScope] = attrs.field(factory=list)  # waiting on the limiter
    # Seen waiting (NOT_START) in the observations not yet settled: judged together with
    # the running count once a whole round is applied (its order is the server's).
    waiting: set[Watch] = attrs.field(factory=set)
    unsettled: bool = False


@attrs.define(eq=False)
class _PendingSubmit:
    """A submit whose POST outlives its caller if need be."""

    done: anyio.Event = attrs.field(factory=anyio.Event)
    job: Job | None = None
    error: BaseException | None = None
    caller_left: bool = False


class JobEngine:
    """Runs jobs for one client (see the module docstring for the contract).

    Args:
        api: the wire API (submits, polls, cancels).
        limiter: the in-flight budget.
        settings: poll pacing.
        retry: how long queue-full refusals are waited out (``refusal_wait``), and how.
        posts_at_once: submits in flight at once for callers outside a submitter pool.
        queue_ahead: jobs let wait in the account's queue once it is seen to queue
            (``None``: one per core; ``0``: none).
        wait_budget: the longest a job let wait should expect to wait (seconds).
    """

    def __init__(
        self,
        api: WireAPI,
        limiter: Limiter,
        settings: PollSettings,
        retry: RetryPolicy,
        *,
        posts_at_once: int = POSTS_AT_ONCE,
        random: Callable[[], float] = random.random,
        queue_ahead: int | None = None,
        wait_budget: float = QUEUE_WAIT_BUDGET,
    ) -> None:
        self.api = api
        self.limiter = limiter
        self.settings = settings
        self.retry = retry
        self.queue_ahead = queue_ahead
        # A job let wait must not look stalled either: it shows no change while it waits.
        self.wait_budget = min(wait_budget, settings.stall_timeout / 2)
        self.counters = EngineCounters()
        self._accounts: dict[str, _Account] = {}
        self._random = random
        self._posts = anyio.Semaphore(posts_at_once)
        self._watches: dict[str, dict[str, Watch]] = {}
        self._background: BackgroundTasks | None = None
        self._poller: Poller | None = None
        self._slot_waiters: set[anyio.CancelScope] = set()
        self._no_cancel_route: set[str | None] = set()
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """``True`` between :meth:`open` and :meth:`close`."""
        return self._background is not None and not self._closed

    async def open(self, task_group: anyio.abc.TaskGroup) -> None:
        """Start: background work runs in ``task_group``; the limiter connects."""
        self._background = BackgroundTasks(task_group)
        self._poller = Poller(self, self._background)
        await self.limiter.start()

    async def close(self) -> None:
        """End every job ("client closed"), stop background work, release every slot."""
        if self._closed:
            return
        self._closed = True
        for scope in list(self._slot_waiters):
            scope.cancel()
        with anyio.CancelScope(shield=True):
            try:
                for watch in list(self.watches()):
                    if not watch.finished:
                        error = TaskError("the client was closed", task_id=watch.task_id)
                        self._deliver(watch, error, event=True)
                    self._retire(watch)
                if self._background is not None:
                    await self._background.aclose()
            finally:
                await self.limiter.aclose()

    def check_open(self) -> None:
        """Raise unless the engine runs: ``RuntimeError`` before opening, then
        :class:`ClientClosedError`."""
        if self._closed:
            raise ClientClosedError("the client is closed; open a new one")
        if self._background is None:
            raise RuntimeError(
                "the job API needs an open client: use `async with mjasync.Client(...) as "
                "client:` (the wire methods submit_*/fetch work without it)"
            )

    # -- registry --------------------------------------------------------------------------

    def watches(self, mode: str | None = None) -> Iterator[Watch]:
        """Every tracked watch (of one mode, or all)."""
        if mode is not None:
            yield from tuple(self._watches.get(mode_key(mode), {}).values())
            return
        for group in tuple(self._watches.values()):
            yield from tuple(group.values())

    def group(self, key: str) -> dict[str, Watch]:
        """The live watches of one mode key (the poller's view; do not mutate)."""
        return self._watches.get(key, {})

    def watched(self, mode: str | None = None) -> int:
        """How many tasks are tracked (abandoned ones included: they still hold slots)."""
        if mode is not None:
            return len(self._watches.get(mode_key(mode), {}))
        return sum(len(group) for group in self._watches.values())

    def find(self, task_id: str) -> Watch | None:
        """The tracked watch of a task id in any mode, if any."""
        for group in self._watches.values():
            watch = group.get(task_id)
            if watch is not None:
                return watch
        return None

    def _track(
        self,
        task_id: str,
        mode: str | None,
        *,
        request: object = None,
        slot: Slot | None = None,
        status: TaskStatus | None = None,
        initial: Callable[[], ProgressEvent] | None = None,
    ) -> Watch:
        key = mode_key(mode)
        group = self._watches.get(key)
        if group is None:
            group = self._watches[key] = {}
        existing = group.get(task_id)
        if existing is not None:
            if slot is not None and existing.slot is not slot:
                self.release_unused(slot)  # the task already holds a slot of its own
            return existing
        now = anyio.current_time()
        watch = Watch(task_id=task_id, mode=mode, request=request, slot=slot, initial=initial)
        watch.last_change = watch.seen_at = now
        if status is not None:
            watch.status = status
            # One interval, not the waiting pace: short jobs (describe, shorten) end in seconds;
            # on a server that refreshes on a cadence, nothing shows before its next refresh.
            assert self._poller is not None
            watch.due = self._poller.first_due(key, now)
        else:
            watch.due = now  # re-attaching: learn the state at once
        group[task_id] = watch
        assert self._poller is not None
        self._poller.tracking(key, mode, was_idle=len(group) == 1)
        return watch

    # -- slots -----------------------------------------------------------------------------

    async def acquire(self, mode: str | None) -> Slot:
        """Wait for a free slot in ``mode``'s budget (cancellable; takes nothing if cancelled).

        A running slot from the limiter, or, while every running slot is taken and the
        account is seen to queue, an ahead slot (see the module docstring, item 1).

        Raises:
            ClientClosedError: the client closed while waiting.
            LimiterError: a shared budget's store is unreachable.
        """
        self.check_open()
        key = mode_key(mode)
        account = self._account(key)
        while True:
            if self._ahead_free(account, key):
                slot = Slot(mode=key, ahead=True)
                account.ahead.add(slot.token)
                return slot
            with anyio.CancelScope() as scope:
                self._slot_waiters.add(scope)
                account.waiters.append(scope)
                try:
                    slot = await self.limiter.acquire(mode)
                finally:
                    self._slot_waiters.discard(scope)
                    if scope in account.waiters:
                        account.waiters.remove(scope)
                account.held.add(slot.token)
                account.peak_limit = max(account.peak_limit, self.limiter.limit(key))
                self._wake_for_ahead(account, key)  # the running slots may be full now
                return slot
            if self._closed:
                break
            # Woken because an ahead slot opened: look again (someone may have been quicker).
        raise ClientClosedError("the client closed while this request waited for a slot")

    def release_unused(self, slot: Slot) -> None:
        """Give back a slot that was never handed to a job (idempotent)."""
        account = self._accounts.get(slot.mode)
        if slot.ahead:
            if account is not None and slot.token in account.ahead:
                account.ahead.discard(slot.token)
                self._wake_for_ahead(account, slot.mode)
            return
        if account is not None:
            account.held.discard(slot.token)
        if not self.limiter.release_nowait(slot) and self._background is not None:
            # A shared store (Redis) is I/O: release off this call path.
            self._background.start_soon(self.limiter.release, slot)

    # -- the account's queue ---------------------------------------------------------------

    def _account(self, key: str) -> _Account:
        account = self._accounts.get(key)
        if account is None:
            account = self._accounts[key] = _Account()
        return account

    def queue_state(self, mode: str | None) -> QueueState:
        """What has been seen of ``mode``'s account queue (a pure snapshot)."""
        account = self._accounts.get(mode_key(mode))
        return account.queue if account is not None else QueueState()

    def queued_ahead(self, mode: str | None) -> int:
        """Jobs holding ahead slots now (let wait in the account's queue on purpose)."""
        account = self._accounts.get(mode_key(mode))
        return len(account.ahead) if account is not None else 0

    def ahead_allowed(self, mode: str | None) -> int:
        """How many ahead slots ``mode`` allows now (0 until the account is seen to queue)."""
        key = mode_key(mode)
        account = self._accounts.get(key)
        if account is None:
            return 0
        return ahead_allowance(
            self.queue_ahead, account.queue, self.limiter.limit(key), wait_budget=self.wait_budget
        )

    def _ahead_free(self, account: _Account, key: str) -> bool:
        if self.queue_ahead == 0 or not account.queue.seen:
            return False
        limit = self.limiter.limit(key)
        if len(account.held) < limit:
            return False  # a running slot is free (or about to be): that comes first
        allowed = ahead_allowance(
            self.queue_ahead, account.queue, limit, wait_budget=self.wait_budget
        )
        return len(account.ahead) < allowed

    def _wake_for_ahead(self, account: _Account, key: str) -> None:
        """Let submitters waiting on the limiter take ahead slots that are free now."""
        if not account.waiters or not self._ahead_free(account, key):
            return
        allowed = ahead_allowance(
            self.queue_ahead, account.queue, self.limiter.limit(key), wait_budget=self.wait_budget
        )
        for _ in range(max(0, allowed - len(account.ahead))):
            if not account.waiters:
                break
            account.waiters.pop(0).cancel()  # the oldest first; it looks again at once

    def _learn(self, key: str, queue: QueueState) -> None:
        account = self._account(key)
        if queue == account.queue:
            return
        was_seen, account.queue = account.queue.seen, queue
        if queue.seen != was_seen:
            log.info(
                "mode %s: %s",
                key,
                f"the account queues ({queue.cores} of ours ran); up to "
                f"{self.ahead_allowed(key)} job(s) may wait there"
                if queue.seen
                else "more of our jobs ran than the running slots allow; not queueing ahead",
            )
        self._wake_for_ahead(account, key)

    def _saw_waiting(self, watch: Watch) -> None:
        account = self._account(mode_key(watch.mode))
        account.waiting.add(watch)
        account.unsettled = True

    def _status_moved(self, watch: Watch, old: TaskStatus | None, new: TaskStatus | None) -> None:
        was_running, is_running = old is TaskStatus.IN_PROGRESS, new is TaskStatus.IN_PROGRESS
        if was_running == is_running:
            return
        account = self._account(mode_key(watch.mode))
        account.running += 1 if is_running else -1
        account.unsettled = True

    def settle(self, mode: str | None) -> None:
        """Learn from the observations applied since the last call (a whole poll round).

        One at a time they can mislead: a round that shows one job ended and the next one
        started may be applied start first, and two of ours would look running on one core.
        """
        key = mode_key(mode)
        account = self._accounts.get(key)
        if account is None or not account.unsettled or self.queue_ahead == 0:
            return
        account.unsettled = False
        queue = account.queue
        if account.waiting:
            queue = saw_waiting(queue, account.running)
            if queue.seen:
                for watch in account.waiting:
                    watch.waited = True
            # Judged once: a job still waiting next round is seen (and judged) again.
            account.waiting.clear()
        cap = account.peak_limit or self.limiter.limit(key)
        self._learn(key, saw_running(queue, account.running, cap))

    def _submit_outcome(self, mode: str | None, outcome: Outcome) -> None:
        key = mode_key(mode)
        account = self._account(key)
        # The submit being answered holds a slot but is not on the account (yet).
        waiting = max(0, len(account.held) + len(account.ahead) - 1 - account.running)
        self._learn(key, queue_feedback(account.queue, outcome, waiting=waiting))

    # -- submitting ------------------------------------------------------------------------

    async def start(
        self,
        request: Any,
        body: Mapping[str, Any],
        mode: str | None,
        slot: Slot,
        *,
        in_engine_task: bool = False,
    ) -> Job:
        """Submit ``body`` while holding ``slot``; the job owns the slot from then on.

        ``in_engine_task``: the caller is one of the library's own tasks (a submitter pool,
        the batch), which is only ever cancelled through its cancel scope, so a shielded POST
        in place is safe. Otherwise the POST runs in a background task, so that even a plain
        ``asyncio`` cancellation of the caller (``asyncio.wait_for``) cannot lose the task id.

        Raises:
            BannedPromptError, InvalidRequestError, QueueFullError, ...: refused (slot freed).
            SubmissionUncertainError: the job may exist; not resent (slot freed).
        """
        if in_engine_task:
            while True:
                try:
                    with anyio.CancelScope(shield=True):
                        submission = await self._post(request.route, body, mode, slot.ahead)
                except _Requeue:
                    try:
                        slot = await self._requeue(slot, mode)  # cancellable: no task exists
                    except BaseException:
                        self.counters.submits_failed += 1
                        raise
                    continue
                except BaseException:
                    self.counters.submits_failed += 1
                    self.release_unused(slot)
                    raise
                return self._job(self._accepted(request, submission, mode, slot))
        assert self._background is not None
        pending = _PendingSubmit()
        self._background.start_soon(self._post_detached, pending, request, body, mode, slot)
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
            self.counters.submits_failed += 1
            self.release_unused(slot)
            pending.error = exc
            if pending.caller_left and isinstance(exc, MjError):
                log.warning("submit after its caller left failed: %s", exc)
        else:
            pending.job = self._job(self._accepted(request, submission, mode, slot))
            if pending.caller_left:
                self._caller_left(pending.job)
        finally:
            pending.done.set()
        if isinstance(pending.error, Exception) and not isinstance(pending.error, MjError):
            raise pending.error  # a bug: let it surface in the background task's log

    async def _requeue(self, slot: Slot, mode: str | None) -> Slot:
        """An ahead slot's submit found the queue full: give it back and wait for a new slot.

        Raises what :meth:`acquire` raises (the given slot is released either way).
        """
        self.release_unused(slot)
        return await self.acquire(mode)

    def _caller_left(self, job: Job) -> None:
        watch = job._watch
        if watch.owners == 0 and not watch.finished:
            self.abandon(watch, TaskError("its caller left while it was submitted", task_id=job.id))

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
        started = anyio.current_time()
        attempt = 0
        while True:
            try:
                submission = await self.api.submit(route, body, mode=mode, retry_refusals=False)
            except (QueueFullError, RateLimitError) as refusal:
                self.counters.refusals += 1
                self._submit_outcome(mode, "refused")
                await self.limiter.feedback(mode, "refused")
                attempt += 1
                waited = anyio.current_time() - started
                delay = refusal_delay(
                    attempt, self.retry, refusal.retry_after, waited, self._random
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
            self.counters.submitted += 1
            self._submit_outcome(mode, "accepted")
            if grows_running(self.queue_state(mode), self.limiter.limit(mode)):
                await self.limiter.feedback(mode, "accepted")
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
        watch = self._track(
            submission.task_id,
            mode,
            request=request,
            slot=slot,
            status=status,
            initial=partial(_initial_event, request, submission, status),
        )
        if submission.queued and self.queue_ahead != 0:
            self._saw_waiting(watch)  # code 22: it waits in the account's queue
            self.settle(mode)
        return watch

    def attach(self, task_id: str, mode: str | None, *, slot: Slot | None = None) -> Job:
        """Follow an existing task (re-attach). With ``slot``, the job holds it until it ends.

        If the task is already tracked, that watch keeps its own slot and ``slot`` goes back.
        """
        self.check_open()
        return self._job(self._track(task_id, mode, slot=slot))

    def _job(self, watch: Watch) -> Job:
        return Job(watch, self)

    # -- abandoning ------------------------------------------------------------------------

    def abandon(self, watch: Watch, error: MjError) -> None:
        """Give up on a job for its followers; keep its slot until the server says it ended.

        Jobs this client submitted are cancelled upstream where the server can. A re-attached
        task without a slot is simply no longer followed.
        """
        if watch.finished or watch.retired:
            return
        submitted_here = watch.slot is not None or watch.request is not None
        self.counters.abandoned += 1
        log.warning(
            "task %s: abandoned (%s)%s",
            watch.task_id,
            error,
            "; its slot is held until the server reports it ended" if watch.slot else "",
            extra={"task_id": watch.task_id},
        )
        watch.abandoned = True
        self._deliver(watch, error, event=True)
        if watch.slot is None:
            self._retire(watch)
        if submitted_here and watch.mode not in self._no_cancel_route:
            assert self._background is not None
            self._background.start_soon(self._cancel_upstream, watch)

    async def _cancel_upstream(self, watch: Watch) -> None:
        try:
            with anyio.fail_after(self.api.transport.timeout):
                await self.api.cancel(watch.task_id, mode=watch.mode)
        except UnsupportedEndpointError:
            self._no_cancel_route.add(watch.mode)  # only C# servers have it; don't ask again
            return
        except (MjError, TimeoutError) as exc:
            log.info("task %s: upstream cancel failed: %s", watch.task_id, exc)
            return
        if not watch.retired and self._poller is not None:
            self._poller.hurry(watch)  # learn the cancelled state soon, and free the slot

    # -- observations ----------------------------------------------------------------------

    def observe(self, payload: Mapping[str, Any], source: Source) -> bool:
        """Apply one task payload (polled or pushed); ``True`` if it moved a followed job.

        Never raises for what a server sent: an unreadable payload fails its own task only.
        """
        try:
            task_id = parse_task_id(payload.get("id"))
        except Exception:  # a hostile id value: nothing to attribute it to
            return False
        if task_id is None:
            return False
        watch = self.find(task_id)
        if watch is None or watch.retired:
            return False
        moved = self.apply(watch, payload, source)
        if source == "push":
            self.settle(watch.mode)  # a push is a round of its own
        return moved

    def apply(
        self, watch: Watch, payload: Mapping[str, Any], source: Source, now: float | None = None
    ) -> bool:
        """Apply an observation of ``watch`` (see :meth:`observe`)."""
        try:
            return self._apply(watch, payload, source, anyio.current_time() if now is None else now)
        except Exception as exc:
            self.fail(
                watch,
                ProtocolError(f"an unreadable {source} payload: {type(exc).__name__}: {exc}"),
            )
            return False

    def _apply(self, watch: Watch, payload: Mapping[str, Any], source: Source, now: float) -> bool:
        self.counters.observations += 1
        watch.misses = 0
        raw_key = (_scalar(payload.get("status")), _scalar(payload.get("progress")))
        pushed = source == "push"
        if pushed:
            watch.pushed_at = now
            self.counters.pushes_applied += 1
        elif watch.confirm_end and raw_key == watch.raw_key:
            self._refuted(watch)  # a push said it ended; the server still shows what it did
        if raw_key == watch.raw_key:
            return False  # the same observation again: nothing to parse
        # Decide on the two fields alone; the whole Task is built only if someone will see it.
        status, progress = parse_status(raw_key[0]), parse_progress(raw_key[1])
        if status is TaskStatus.NOT_START and not watch.waited and self.queue_ahead != 0:
            # Evidence even when it is no advance (a relay said SUBMITTED for a queued job).
            self._saw_waiting(watch)
        watch.blank = status is TaskStatus.UNKNOWN
        if pushed:
            if status.is_terminal:
                # A push may hurry an end, never forge one: the server confirms it first.
                watch.confirm_end = True
                assert self._poller is not None
                self._poller.hurry(watch)
                return False
            # A push is fresher than any poll: the next poll is only a fallback now.
            watch.due = max(watch.due, now + self.settings.push_interval)
        elif watch.confirm_end and not status.is_terminal:
            self._refuted(watch)
        if not is_advance(watch.status, watch.progress, status, progress):
            return False
        watch.raw_key = raw_key
        old_status = watch.status
        watch.status, watch.progress = status, progress
        if (old_status is TaskStatus.IN_PROGRESS) != (status is TaskStatus.IN_PROGRESS):
            self._status_moved(watch, old_status, status)
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
        self.counters.push_ends_refuted += 1
        log.warning(
            "task %s: a push said it ended; the server says it has not (push ignored)",
            watch.task_id,
            extra={"task_id": watch.task_id},
        )

    def _ended_upstream(self, watch: Watch, now: float) -> bool:
        task = watch.task
        if task is None or task.status is not watch.status:
            # Unreadable (``task`` is then none, or an older one): ending the job with a stale
            # task, or waiting for a change the raw-key check would drop, are both wrong.
            raise ProtocolError(f"an unreadable {watch.status} payload")
        if watch.first_running is not None and watch.status is TaskStatus.SUCCESS:
            key = mode_key(watch.mode)
            ran = now - watch.first_running[0]
            self._account(key).queue = learned_job_time(self.queue_state(key), ran)
        if watch.confirm_end:
            watch.confirm_end = False
            watch.last_source = "push"  # the push told us first; the poll confirmed it
            self.counters.push_ends_confirmed += 1
            self.counters.completed_by_push += 1
        else:
            self.counters.completed_by_poll += 1
        if watch.finished:  # abandoned earlier: the server has now let go of it
            self._retire(watch)
            return False
        event = self._event(watch, watch.last_source) if watch.has_followers else None
        if event is None:
            watch.event_stale = True
        self._deliver(watch, task, final=event)
        self._retire(watch)
        return True

    def _event(self, watch: Watch, source: str) -> ProgressEvent:
        task = watch.task
        self.counters.parsed += 1
        status = watch.status or TaskStatus.UNKNOWN
        error = None
        if status in (TaskStatus.FAILURE, TaskStatus.CANCEL):
            error = _failed(task, watch.task_id, status)
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
        self.counters.events += 1
        watch.send(event)
        log.debug(
            "task %s: %s %s%%",
            watch.task_id,
            event.status.value,
            event.progress,
            extra={"task_id": watch.task_id},
        )

    # -- ends ------------------------------------------------------------------------------

    def fail(self, watch: Watch, error: MjError) -> None:
        """End a job with an error and stop tracking it (stalled, lost, unreadable, ...)."""
        self._deliver(watch, error, event=True)
        self._retire(watch)

    def _deliver(
        self,
        watch: Watch,
        outcome: Task | MjError,
        *,
        final: ProgressEvent | None = None,
        event: bool = False,
    ) -> None:
        """Give followers the outcome; the one place outcomes are counted."""
        if watch.finished:
            return
        if event and watch.has_followers:
            final = ProgressEvent(
                task_id=watch.task_id,
                status=watch.status or TaskStatus.UNKNOWN,
                progress=watch.progress,
                task=watch.task,
                request=watch.request,
                error=outcome if isinstance(outcome, MjError) else None,
                source="poll",
            )
        if final is not None:
            self.counters.events += 1
        if isinstance(outcome, Task) and outcome.status is TaskStatus.SUCCESS:
            self.counters.succeeded += 1
        else:
            self.counters.failed += 1
        watch.deliver(outcome, final)

    def _retire(self, watch: Watch) -> None:
        """Stop tracking a watch and give its slot back (once)."""
        if watch.retired:
            return
        watch.retired = True
        group = self._watches.get(mode_key(watch.mode))
        if group is not None and group.get(watch.task_id) is watch:
            del group[watch.task_id]
        if watch.status is TaskStatus.IN_PROGRESS:
            self._status_moved(watch, watch.status, None)  # no longer ours to count
        slot, watch.slot = watch.slot, None
        if slot is not None:
            self.release_unused(slot)


def _scalar(value: object) -> object:
    """A raw status or progress as compared between observations: a JSON scalar as it is;
    anything else (a list nested 1,000 deep, whose comparison would recurse) as its type."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    return f"<{type(value).__name__}>"


def result_of(watch: Watch) -> Task | MjError:
    """A finished watch's result: the successful task, or the error to raise."""
    outcome = watch.outcome
    if isinstance(outcome, Task):
        if outcome.status is TaskStatus.SUCCESS:
            return outcome
        return _failed(outcome, outcome.id, outcome.status)
    if outcome is None:
        raise RuntimeError(f"task {watch.task_id} has no outcome yet")
    return outcome


def _failed(task: Task | None, task_id: str, status: TaskStatus) -> TaskFailedError:
    reason = (task.fail_reason if task else None) or status.value.lower()
    # The message in English; the server's own words stay in ``fail_reason``.
    return TaskFailedError(in_english(reason), task_id=task_id, task=task)


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
