"""The engine's knowledge of each mode's upstream account: slots held, ahead slots, its queue.

One :class:`Account` per mode key records which of the engine's slots are held on it, how many
of our tracked jobs run there, and what its own queue has been seen to do (a
:class:`~mjasync._jobs.limiter.QueueState`). :class:`Accounts` keeps them and applies the pure
queue decisions of :mod:`mjasync._jobs.limiter` to what the engine reports: observations
(:meth:`Accounts.saw_waiting`, :meth:`Accounts.status_moved`, judged together by
:meth:`Accounts.settle`), submit answers (:meth:`Accounts.submit_outcome`) and job times
(:meth:`Accounts.job_ran`). From that it decides when an *ahead* slot is free (see the
engine's contract, item 1, in :mod:`mjasync._jobs.engine`) and wakes submitters waiting on the
limiter to take one. It sends nothing and sleeps nowhere.
"""

from __future__ import annotations

import logging

import anyio
import attrs

from .._models import TaskStatus
from .._wire.modes import mode_key
from .limiter import (
    Limiter,
    Outcome,
    QueueState,
    Slot,
    ahead_allowance,
    learned_job_time,
    queue_feedback,
    saw_running,
    saw_waiting,
)
from .watch import Watch

__all__ = ["Account", "Accounts"]

log = logging.getLogger("mjasync")


@attrs.define(eq=False)
class Account:
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


class Accounts:
    """Every mode's :class:`Account`, and the ahead slots their queues allow.

    Args:
        limiter: the running slots' budget (read for its current limit, never acquired here).
        queue_ahead: jobs let wait in an account's queue once it is seen to queue
            (``None``: one per core; ``0``: none, and nothing is learned about queues).
        wait_budget: the longest a job let wait should expect to wait (seconds).
    """

    def __init__(self, limiter: Limiter, queue_ahead: int | None, wait_budget: float) -> None:
        self.limiter = limiter
        self.queue_ahead = queue_ahead
        self.wait_budget = wait_budget
        self._accounts: dict[str, Account] = {}

    def of(self, key: str) -> Account:
        """The account of mode key ``key`` (made on first use)."""
        account = self._accounts.get(key)
        if account is None:
            account = self._accounts[key] = Account()
        return account

    def get(self, key: str) -> Account | None:
        """The account of mode key ``key``, if one was made."""
        return self._accounts.get(key)

    # -- what the engine reports -------------------------------------------------------------

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

    # -- slots -------------------------------------------------------------------------------

    def take_ahead(self, account: Account, key: str) -> Slot | None:
        """An ahead slot of ``account``, if one is free now."""
        if not self._ahead_free(account, key):
            return None
        slot = Slot(mode=key, ahead=True)
        account.ahead.add(slot.token)
        return slot

    def took_running(self, account: Account, key: str, slot: Slot) -> None:
        """A limiter slot was handed out on ``account``."""
        account.held.add(slot.token)
        account.peak_limit = max(account.peak_limit, self.limiter.limit(key))
        self._wake_for_ahead(account, key)  # the running slots may be full now

    def gave_back(self, slot: Slot) -> None:
        """``slot`` is no longer held (idempotent); an ahead slot freed wakes a waiter."""
        account = self._accounts.get(slot.mode)
        if account is None:
            return
        if slot.ahead:
            if slot.token in account.ahead:
                account.ahead.discard(slot.token)
                self._wake_for_ahead(account, slot.mode)
            return
        account.held.discard(slot.token)

    def _ahead_free(self, account: Account, key: str) -> bool:
        if self.queue_ahead == 0 or not account.queue.seen:
            return False
        limit = self.limiter.limit(key)
        if len(account.held) < limit:
            return False  # a running slot is free (or about to be): that comes first
        allowed = ahead_allowance(
            self.queue_ahead, account.queue, limit, wait_budget=self.wait_budget
        )
        return len(account.ahead) < allowed

    def _wake_for_ahead(self, account: Account, key: str) -> None:
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

    # -- learning ----------------------------------------------------------------------------

    def saw_waiting(self, watch: Watch) -> None:
        """``watch`` was seen waiting in its account's queue (judged at :meth:`settle`)."""
        if self.queue_ahead == 0:
            return  # queueing ahead is off: nothing is learned about the queue
        account = self.of(mode_key(watch.mode))
        account.waiting.add(watch)
        account.unsettled = True

    def status_moved(self, watch: Watch, old: TaskStatus | None, new: TaskStatus | None) -> None:
        """``watch`` went from ``old`` to ``new`` (``None``: no longer tracked)."""
        was_running, is_running = old is TaskStatus.IN_PROGRESS, new is TaskStatus.IN_PROGRESS
        if was_running == is_running:
            return
        account = self.of(mode_key(watch.mode))
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

    def submit_outcome(self, mode: str | None, outcome: Outcome) -> None:
        """A submit in ``mode`` was accepted or refused (queue full, 429)."""
        key = mode_key(mode)
        account = self.of(key)
        # The submit being answered holds a slot but is not on the account (yet).
        waiting = max(0, len(account.held) + len(account.ahead) - 1 - account.running)
        self._learn(key, queue_feedback(account.queue, outcome, waiting=waiting))

    def job_ran(self, key: str, seconds: float) -> None:
        """A job of mode key ``key`` succeeded ``seconds`` after it was first seen running."""
        self.of(key).queue = learned_job_time(self.queue_state(key), seconds)

    def _learn(self, key: str, queue: QueueState) -> None:
        account = self.of(key)
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
