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
   (:func:`~mjasync._jobs.limiter.ahead_allowance`) on what each mode's account has been seen
   to do (:mod:`mjasync._jobs.account`); with ``queue_ahead=0`` there are none.
   A submit on an ahead slot that is refused as queue full creates no job: :meth:`start`
   gives that slot back and waits (cancellably) for another, like any new job.
2. **Submits.** :meth:`start` sends the request while the slot is held; the POST runs to its
   answer even if the caller is cancelled (anyio or plain asyncio), because a task id the
   server assigned is paid for. If the caller left meanwhile, the new job is abandoned (3).
   Refused submits (queue full, 429) are waited out and resent with the same body. How:
   :mod:`mjasync._jobs.submitting`.
3. **Abandoning.** A job whose last owner leaves (see :mod:`mjasync._jobs.watch`) is abandoned:
   its followers get the error at once, the task is cancelled upstream where the server has a
   cancel route, its id is logged and counted, and it stays tracked, slot held, until the
   server says it ended.
4. **Observations.** Polled and pushed task payloads go through :meth:`observe`. A pushed end
   is only a hint: the engine confirms it with a (batched) poll before the job ends. Anything
   unreadable fails at most the task it belongs to. Observations also teach the engine about
   the account (how many of ours run, whether one waits, how long jobs take). How:
   :mod:`mjasync._jobs.observing`.
5. **Outcomes** are counted once, where a job ends (:meth:`deliver`), whichever path ended it.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import anyio
import anyio.abc
import attrs

from .._errors import ClientClosedError, MjError, TaskError, UnsupportedEndpointError
from .._models import Task, TaskStatus
from .._wire.api import WireAPI
from .._wire.modes import mode_key
from .._wire.retry import RetryPolicy
from .account import Accounts
from .background import BackgroundTasks
from .events import ProgressEvent
from .job import Job
from .limiter import QUEUE_WAIT_BUDGET, Limiter, QueueState, Slot
from .observing import Observer, Source
from .pacing import PollSettings
from .poller import Poller
from .submitting import POSTS_AT_ONCE, Submitter
from .watch import Watch

__all__ = ["EngineCounters", "JobEngine"]

log = logging.getLogger("mjasync")


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
        self.counters = EngineCounters()
        # A job let wait must not look stalled either: it shows no change while it waits.
        self.accounts = Accounts(
            limiter, queue_ahead, wait_budget=min(wait_budget, settings.stall_timeout / 2)
        )
        self._submitter = Submitter(self, posts_at_once=posts_at_once, random=random)
        self._observer = Observer(self)
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
                        self.deliver(watch, error, event=True)
                    self.retire(watch)
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

    @property
    def background(self) -> BackgroundTasks:
        """Where the engine's own tasks run (from :meth:`open` on)."""
        assert self._background is not None
        return self._background

    @property
    def poller(self) -> Poller:
        """The polling loops (from :meth:`open` on)."""
        assert self._poller is not None
        return self._poller

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

    def track(
        self,
        task_id: str,
        mode: str | None,
        *,
        request: object = None,
        slot: Slot | None = None,
        status: TaskStatus | None = None,
        initial: Callable[[], ProgressEvent] | None = None,
    ) -> Watch:
        """Start following ``task_id`` (or return its watch, giving ``slot`` back, if tracked).

        ``status`` is what its submit answer said (its first poll then waits for
        :meth:`Poller.first_due`); without one, the task is re-attached and polled at once.
        """
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
            watch.due = self.poller.first_due(key, now)
        else:
            watch.due = now  # re-attaching: learn the state at once
        group[task_id] = watch
        self.poller.tracking(key, mode, was_idle=len(group) == 1)
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
        account = self.accounts.of(key)
        while True:
            ahead = self.accounts.take_ahead(account, key)
            if ahead is not None:
                return ahead
            with anyio.CancelScope() as scope:
                self._slot_waiters.add(scope)
                account.waiters.append(scope)
                try:
                    slot = await self.limiter.acquire(mode)
                finally:
                    self._slot_waiters.discard(scope)
                    if scope in account.waiters:
                        account.waiters.remove(scope)
                self.accounts.took_running(account, key, slot)
                return slot
            if self._closed:
                break
            # Woken because an ahead slot opened: look again (someone may have been quicker).
        raise ClientClosedError("the client closed while this request waited for a slot")

    def release_unused(self, slot: Slot) -> None:
        """Give back a slot that was never handed to a job (idempotent)."""
        self.accounts.gave_back(slot)
        if slot.ahead:
            return
        if not self.limiter.release_nowait(slot) and self._background is not None:
            # A shared store (Redis) is I/O: release off this call path.
            self._background.start_soon(self.limiter.release, slot)

    # -- the account's queue (see mjasync._jobs.account) -----------------------------------

    def queue_state(self, mode: str | None) -> QueueState:
        """What has been seen of ``mode``'s account queue (a pure snapshot)."""
        return self.accounts.queue_state(mode)

    def queued_ahead(self, mode: str | None) -> int:
        """Jobs holding ahead slots now (let wait in the account's queue on purpose)."""
        return self.accounts.queued_ahead(mode)

    def settle(self, mode: str | None) -> None:
        """Learn from the observations applied since the last call (a whole poll round)."""
        self.accounts.settle(mode)

    # -- submitting (see mjasync._jobs.submitting) -----------------------------------------

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
        return await self._submitter.start(request, body, mode, slot, in_engine_task=in_engine_task)

    def attach(self, task_id: str, mode: str | None, *, slot: Slot | None = None) -> Job:
        """Follow an existing task (re-attach). With ``slot``, the job holds it until it ends.

        If the task is already tracked, that watch keeps its own slot and ``slot`` goes back.
        """
        self.check_open()
        return Job(self.track(task_id, mode, slot=slot), self)

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
        self.deliver(watch, error, event=True)
        if watch.slot is None:
            self.retire(watch)
        if submitted_here and watch.mode not in self._no_cancel_route:
            self.background.start_soon(self._cancel_upstream, watch)

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

    # -- observations (see mjasync._jobs.observing) ----------------------------------------

    def observe(self, payload: Mapping[str, Any], source: Source) -> bool:
        """Apply one task payload (polled or pushed); ``True`` if it moved a followed job.

        Never raises for what a server sent: an unreadable payload fails its own task only.
        """
        return self._observer.observe(payload, source)

    def apply(
        self, watch: Watch, payload: Mapping[str, Any], source: Source, now: float | None = None
    ) -> bool:
        """Apply an observation of ``watch`` (see :meth:`observe`)."""
        return self._observer.apply(watch, payload, source, now)

    def current_event(self, watch: Watch) -> ProgressEvent | None:
        """The event that describes the watch now (built late if nobody was listening)."""
        return self._observer.current_event(watch)

    # -- ends ------------------------------------------------------------------------------

    def fail(self, watch: Watch, error: MjError) -> None:
        """End a job with an error and stop tracking it (stalled, lost, unreadable, ...)."""
        self.deliver(watch, error, event=True)
        self.retire(watch)

    def deliver(
        self,
        watch: Watch,
        outcome: Task | MjError,
        *,
        final: ProgressEvent | None = None,
        event: bool = False,
    ) -> None:
        """Give followers the outcome; the one place outcomes are counted.

        ``final`` is the last event to send; ``event=True`` builds one from the watch as it is.
        """
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

    def retire(self, watch: Watch) -> None:
        """Stop tracking a watch and give its slot back (once)."""
        if watch.retired:
            return
        watch.retired = True
        group = self._watches.get(mode_key(watch.mode))
        if group is not None and group.get(watch.task_id) is watch:
            del group[watch.task_id]
        if watch.status is TaskStatus.IN_PROGRESS:
            self.accounts.status_moved(watch, watch.status, None)  # no longer ours to count
        slot, watch.slot = watch.slot, None
        if slot is not None:
            self.release_unused(slot)
