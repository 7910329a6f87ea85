"""In-flight budgets: how many jobs may be on the upstream account at once, per mode.

The scheduler depends only on the :class:`Limiter` protocol. :class:`LocalLimiter` keeps the
budget in this process; ``RedisLimiter`` shares it between processes. A slot is taken before a
submit and given back when the job is terminal, refused, or its consumer is cancelled.

``concurrency="auto"`` adapts the limit with AIMD (:func:`next_limit`): grow by one after a full
window of accepted submits, halve on a queue-full refusal or a 429.
"""

from __future__ import annotations

import math
from typing import Literal, Protocol, runtime_checkable

import anyio
import attrs

from .._wire.modes import mode_key

__all__ = [
    "AimdState",
    "Limiter",
    "LimiterStatistics",
    "LocalLimiter",
    "Outcome",
    "Slot",
    "next_limit",
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
    """A held place in a mode's budget. Give it back with ``limiter.release(slot)``."""

    mode: str
    token: object = attrs.field(factory=object, eq=False, repr=False)
    lease_id: str | None = None


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
