"""In-flight budgets: how many jobs may be on the upstream account at once, per mode.

The scheduler depends only on the :class:`Limiter` protocol. :class:`LocalLimiter` keeps the
budget in this process; ``RedisLimiter`` shares it between processes. A slot is taken before a
submit and given back when the job is terminal, refused, or its consumer is cancelled.

``concurrency="auto"`` adapts the limit with AIMD (:func:`next_limit`): grow by one after a full
window of accepted submits, halve on a queue-full refusal or a 429.

**Queueing ahead.** The limiter's slots cap the jobs *running* on the account. Once the account
is seen to queue (:func:`saw_waiting`), the engine may also let a few jobs *wait* in the
account's own queue, so that a freed core starts the next job at once instead of after the
client noticed. Those are local "ahead" slots (:attr:`Slot.ahead`), never the limiter's, and
how many are allowed is decided here, purely: :class:`QueueState` is what the client has seen,
:func:`ahead_allowance` the cap it implies.
"""

from __future__ import annotations

import math
from typing import Literal, Protocol, runtime_checkable

import anyio
import attrs

from .._wire.modes import mode_key

__all__ = [
    "QUEUE_WAIT_BUDGET",
    "ROOM_WINDOW",
    "AimdState",
    "Limiter",
    "LimiterStatistics",
    "LocalLimiter",
    "Outcome",
    "QueueState",
    "Slot",
    "ahead_allowance",
    "grows_running",
    "learned_job_time",
    "next_limit",
    "queue_feedback",
    "saw_running",
    "saw_waiting",
]

#: What the scheduler reports back after a submit.
Outcome = Literal["accepted", "refused"]


@attrs.frozen(slots=True)
class AimdState:
    """The AIMD controller's state for one mode: the limit and the accepts seen this window."""

    limit: int
    accepted_in_window: int = 0


def next_limit(
    state: AimdState, outcome: Outcome, *, floor: int = 1, ceiling: int = 16
) -> AimdState:
    """Additive increase, multiplicative decrease.

    A whole window (``limit`` accepted submits in a row) raises the limit by one; a refusal
    halves it (rounding up, never below ``floor``) and starts a new window.

    >>> next_limit(AimdState(4, 3), "accepted")
    AimdState(limit=5, accepted_in_window=0)
    >>> next_limit(AimdState(5, 2), "refused")
    AimdState(limit=3, accepted_in_window=0)
    """
    if outcome == "refused":
        return AimdState(max(floor, min(ceiling, math.ceil(state.limit / 2))), 0)
    seen = state.accepted_in_window + 1
    if seen >= state.limit:
        return AimdState(min(ceiling, max(floor, state.limit + 1)), 0)
    return AimdState(state.limit, seen)


@attrs.frozen(slots=True)
class Slot:
    """A held place in a mode's budget. Give it back with ``limiter.release(slot)``.

    ``ahead`` marks a place in the engine's own queue-ahead allowance (a job let wait in the
    account's queue): limiters never make or see those; the engine gives them back itself.
    """

    mode: str
    token: object = attrs.field(factory=object, eq=False, repr=False)
    lease_id: str | None = None
    ahead: bool = False


@attrs.frozen(slots=True)
class LimiterStatistics:
    """A snapshot of one mode's budget."""

    mode: str
    limit: int
    in_use: int
    waiting: int


@runtime_checkable
class Limiter(Protocol):
    """What the scheduler needs from an in-flight budget (one per client, all modes)."""

    async def start(self) -> None:
        """Start background work (lease renewal); called once when the client opens."""

    async def aclose(self) -> None:
        """Release everything and stop background work; called when the client closes."""

    async def acquire(self, mode: str | None) -> Slot:
        """Wait for a free slot in ``mode``'s budget. Cancellable; takes nothing if cancelled.

        Raises:
            LimiterError: the backing store is unreachable.
        """

    async def release(self, slot: Slot) -> None:
        """Give a slot back. Idempotent: releasing twice is harmless."""

    def release_nowait(self, slot: Slot) -> bool:
        """Give a slot back without waiting, if this budget can (an in-process one can).

        Returns ``False`` when the release needs I/O: the caller then awaits :meth:`release`
        (a job that ends thus frees its slot before its result is delivered where possible).
        """

    async def feedback(self, mode: str | None, outcome: Outcome) -> None:
        """Tell an adaptive limiter how a submit went; a fixed limiter ignores it."""

    def limit(self, mode: str | None) -> int:
        """The current limit for ``mode``."""

    def statistics(self) -> tuple[LimiterStatistics, ...]:
        """One snapshot per mode that has been used."""


class LocalLimiter:
    """An in-process budget per mode, built on :class:`anyio.CapacityLimiter`.

    Args:
        concurrency: jobs in flight per mode, or ``"auto"`` for AIMD starting at ``initial``.
        initial: the starting limit for ``"auto"``.
        ceiling: the most ``"auto"`` will ever allow.
    """

    def __init__(
        self, concurrency: int | Literal["auto"] = 3, *, initial: int = 3, ceiling: int = 16
    ) -> None:
        if concurrency != "auto" and (
            not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1
        ):
            raise ValueError(f"concurrency must be a positive int or 'auto', not {concurrency!r}")
        if not 1 <= initial <= ceiling:
            raise ValueError(f"need 1 <= initial ({initial}) <= ceiling ({ceiling})")
        self._adaptive = concurrency == "auto"
        self._initial = initial if self._adaptive else int(concurrency)
        self._ceiling = ceiling
        self._limiters: dict[str, anyio.CapacityLimiter] = {}
        self._aimd: dict[str, AimdState] = {}
        self._held: dict[str, set[object]] = {}

    @property
    def adaptive(self) -> bool:
        """``True`` for ``concurrency="auto"``."""
        return self._adaptive

    def _for(self, key: str) -> anyio.CapacityLimiter:
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = self._limiters[key] = anyio.CapacityLimiter(self._initial)
            self._aimd[key] = AimdState(self._initial)
            self._held[key] = set()
        return limiter

    async def start(self) -> None:
        """Nothing to start for an in-process budget."""

    async def aclose(self) -> None:
        """Forget every held slot (the client is closing)."""
        for key, tokens in self._held.items():
            limiter = self._limiters[key]
            for token in tokens:
                limiter.release_on_behalf_of(token)
            tokens.clear()

    async def acquire(self, mode: str | None) -> Slot:
        """Wait for a free slot in ``mode``'s budget."""
        key = mode_key(mode)
        slot = Slot(mode=key)
        limiter = self._for(key)
        try:
            # A free slot is taken without a trip through the event loop, so a batch starts
            # its first `concurrency` jobs at once instead of one per loop iteration.
            limiter.acquire_on_behalf_of_nowait(slot.token)
        except anyio.WouldBlock:
            await limiter.acquire_on_behalf_of(slot.token)
        self._held[key].add(slot.token)
        return slot

    async def release(self, slot: Slot) -> None:
        """Give a slot back (idempotent)."""
        self.release_nowait(slot)

    def release_nowait(self, slot: Slot) -> bool:
        """Give a slot back synchronously (so a finished job frees its slot before it returns)."""
        held = self._held.get(slot.mode)
        if held is not None and slot.token in held:
            held.discard(slot.token)
            self._limiters[slot.mode].release_on_behalf_of(slot.token)
        return True

    async def feedback(self, mode: str | None, outcome: Outcome) -> None:
        """Adjust an adaptive limit after a submit."""
        if not self._adaptive:
            return
        key = mode_key(mode)
        limiter = self._for(key)
        state = next_limit(self._aimd[key], outcome, ceiling=self._ceiling)
        self._aimd[key] = state
        if limiter.total_tokens != state.limit:
            limiter.total_tokens = state.limit

    def limit(self, mode: str | None) -> int:
        """The current limit for ``mode``."""
        key = mode_key(mode)
        limiter = self._limiters.get(key)
        return int(limiter.total_tokens) if limiter is not None else self._initial

    def statistics(self) -> tuple[LimiterStatistics, ...]:
        """One snapshot per mode used so far."""
        result = []
        for key, limiter in self._limiters.items():
            stats = limiter.statistics()
            result.append(
                LimiterStatistics(
                    mode=key,
                    limit=int(stats.total_tokens),
                    in_use=stats.borrowed_tokens,
                    waiting=stats.tasks_waiting,
                )
            )
        return tuple(result)


# -- queueing ahead (pure) -------------------------------------------------------------------

#: The longest a job let wait upstream should expect to wait before it runs (seconds). Well
#: inside the servers' own limits: J fails tasks after 5 minutes, C expires queued tasks after
#: an hour, N fails unfinished tasks an hour after their submit (see the servers' notes).
QUEUE_WAIT_BUDGET = 120.0


@attrs.frozen(slots=True)
class QueueState:
    """What the client has seen of one account's own queue (one mode; pure state).

    Attributes:
        seen: one of our jobs waited upstream (code 22 or ``NOT_START``) while another of ours
            ran: the account queues, so jobs sent beyond the running ones wait there.
        cores: the most of our jobs seen running at once since then (the account's cores as
            far as this client can tell; 0 before).
        room: a learned cap on jobs waiting upstream: halved by a queue-full refusal, grown by
            one after each window of accepted submits; ``None`` until the first refusal.
        accepted_in_window: accepted submits since ``room`` last changed.
        job_time: seconds a job runs, learned from finished ones (``None`` before any).
    """

    seen: bool = False
    cores: int = 0
    room: int | None = None
    accepted_in_window: int = 0
    job_time: float | None = None


def saw_waiting(state: QueueState, running: int) -> QueueState:
    """One of our jobs waits upstream while ``running`` of ours run (pure).

    Only evidence when some of ours run: a job queued behind other clients' jobs alone says
    nothing about how many of ours the account runs.

    >>> saw_waiting(QueueState(), running=3)
    QueueState(seen=True, cores=3, room=None, accepted_in_window=0, job_time=None)
    >>> saw_waiting(QueueState(), running=0).seen
    False
    """
    if running < 1:
        return state
    return attrs.evolve(state, seen=True, cores=max(state.cores, running))


def saw_running(state: QueueState, running: int, cap: int) -> QueueState:
    """``running`` of our jobs run at once; ``cap`` is the most the running slots ever allowed.

    More than ``cap`` running means a job we let wait was started beside them (the account has
    more cores than we thought, e.g. other clients freed theirs): stop queueing ahead until
    the account is seen to queue again. Otherwise the count may raise ``cores``.

    >>> saw_running(QueueState(seen=True, cores=2), running=3, cap=3).cores
    3
    >>> saw_running(QueueState(seen=True, cores=3), running=4, cap=3).seen
    False
    """
    if running > cap:
        return attrs.evolve(state, seen=False, cores=0)
    if state.seen:
        return attrs.evolve(state, cores=max(state.cores, running))
    return state


#: Accepted submits, at least, before a room learned from a refusal grows by one.
ROOM_WINDOW = 8


def queue_feedback(state: QueueState, outcome: Outcome, *, waiting: int) -> QueueState:
    """How a submit went, while queueing ahead (pure): refusals shrink the room, accepts grow it.

    ``waiting`` is how many of our jobs wait upstream now. A queue-full refusal caps the room
    at half of them; after a refusal, every window of accepted submits (``room``, at least
    :data:`ROOM_WINDOW`) grows it by one again. Before the account is seen to queue nothing
    changes.

    >>> queue_feedback(QueueState(seen=True, cores=3), "refused", waiting=4).room
    2
    >>> queue_feedback(QueueState(seen=True, cores=3, room=2, accepted_in_window=7),
    ...                "accepted", waiting=0).room
    3
    """
    if not state.seen:
        return state
    if outcome == "refused":
        return attrs.evolve(state, room=max(0, waiting // 2), accepted_in_window=0)
    if state.room is None:
        return state
    seen = state.accepted_in_window + 1
    if seen >= max(ROOM_WINDOW, state.room):
        return attrs.evolve(state, room=state.room + 1, accepted_in_window=0)
    return attrs.evolve(state, accepted_in_window=seen)


def learned_job_time(state: QueueState, seconds: float) -> QueueState:
    """Fold one finished job's running time into the estimate (moving average, pure).

    >>> learned_job_time(QueueState(), 40.0).job_time
    40.0
    >>> learned_job_time(QueueState(job_time=40.0), 60.0).job_time
    46.0
    """
    if not seconds > 0:
        return state
    if state.job_time is None:
        return attrs.evolve(state, job_time=seconds)
    return attrs.evolve(state, job_time=state.job_time + 0.3 * (seconds - state.job_time))


def ahead_allowance(
    setting: int | None,
    state: QueueState,
    limit: int,
    *,
    wait_budget: float = QUEUE_WAIT_BUDGET,
) -> int:
    """How many jobs may wait upstream on purpose, beyond the ``limit`` running slots (pure).

    Args:
        setting: the ``queue_ahead`` setting: ``None`` for one per core, ``0`` for none.
        state: what has been seen of the account's queue.
        limit: the running slots (``concurrency``, or the adaptive limit now).
        wait_budget: the longest a waiting job should expect to wait (seconds).

    Nothing before the account is seen to queue, so an account with more cores than
    ``limit`` never runs more than ``limit`` of ours. Then: ``setting`` jobs (one per core
    by default), no more than fit in ``wait_budget`` at the learned job time, no more than the
    learned room; and running slots beyond the account's cores already wait, so they count.

    >>> ahead_allowance(None, QueueState(seen=True, cores=3), limit=3)
    3
    >>> ahead_allowance(2, QueueState(seen=True, cores=3), limit=4)
    1
    >>> ahead_allowance(None, QueueState(), limit=3)
    0
    """
    if setting == 0 or not state.seen:
        return 0
    cores = max(1, min(state.cores, limit))
    wanted = cores if setting is None else setting
    if state.job_time is not None:
        waves = math.floor(wait_budget / state.job_time)
        wanted = min(wanted, cores * waves)  # the last waits ~waves job times
    if state.room is not None:
        wanted = min(wanted, state.room)
    return max(0, wanted - max(0, limit - cores))


def grows_running(state: QueueState, limit: int) -> bool:
    """Whether an accepted submit should still grow an adaptive running limit (pure).

    Once the account is seen to queue, growing past its cores only adds jobs that wait: the
    queue-ahead allowance covers those, so ``"auto"`` stops at the cores it has seen.

    >>> grows_running(QueueState(), limit=5)
    True
    >>> grows_running(QueueState(seen=True, cores=3), limit=3)
    False
    """
    return not state.seen or limit < state.cores
