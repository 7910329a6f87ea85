"""Submitting under an in-flight budget: take a slot, submit, absorb queue-full refusals.

A slot is taken before the POST and kept until the job is terminal (the tracker gives it
back), so the limit counts jobs on the upstream account, not HTTP requests. A refusal (code 23,
C's "queue full", HTTP 429) means the server did not take the job: wait (Retry-After aware)
and send the same body again. The POST itself is shielded from cancellation so a task id the
server already assigned is never lost.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import attrs

from .._errors import QueueFullError, RateLimitError
from .._models import Submission
from .._wire.api import WireAPI
from .._wire.retry import RetryPolicy, backoff_delay
from .limiter import Limiter, Slot

__all__ = ["POSTS_AT_ONCE", "RefusalPolicy", "Scheduler"]

#: Submit POSTs sent at once per client. More would only wait in aiohttp's pool of 100
#: connections, each waiting request holding its own coroutine and buffers.
POSTS_AT_ONCE = 100

log = logging.getLogger("mjasync")


@attrs.frozen(slots=True)
class RefusalPolicy:
    """How long to keep resubmitting a job the server refused as queue-full or rate-limited.

    Args:
        backoff: delays between attempts (``max_retries`` is ignored; see ``max_wait``).
        max_wait: total seconds of refusals before :class:`QueueFullError` is raised.
    """

    backoff: RetryPolicy = attrs.field(
        factory=lambda: RetryPolicy(base_delay=1.0, max_delay=30.0, jitter=0.5),
        validator=attrs.validators.instance_of(RetryPolicy),
    )
    max_wait: float = attrs.field(default=900.0)

    @max_wait.validator
    def _check_max_wait(self, _: object, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"max_wait must be a number of seconds, not {type(value).__name__}")
        if math.isnan(value) or value < 0:
            raise ValueError(f"max_wait must be >= 0 seconds, not {value!r}")


@attrs.define
class SchedulerCounters:
    """Running totals of the scheduler."""

    submitted: int = 0
    refusals: int = 0


class Scheduler:
    """Bounds jobs in flight per mode with a :class:`Limiter`, and submits under it."""

    def __init__(
        self,
        api: WireAPI,
        limiter: Limiter,
        refusals: RefusalPolicy,
        *,
        random: Callable[[], float] = random.random,
        posts_at_once: int = POSTS_AT_ONCE,
    ) -> None:
        self.api = api
        self.limiter = limiter
        self.refusals = refusals
        self.counters = SchedulerCounters()
        self._random = random
        self._posts = anyio.Semaphore(posts_at_once)

    async def acquire(self, mode: str | None) -> Slot:
        """Wait for a free slot in ``mode``'s budget (back-pressure for big batches)."""
        return await self.limiter.acquire(mode)

    async def submit(
        self,
        route: str,
        body: Mapping[str, Any],
        mode: str | None,
        *,
        pooled: bool = False,
    ) -> Submission:
        """Submit with a slot already held; resubmit the same body after refusals.

        At most ``posts_at_once`` such submits run at a time, so 10,000 concurrent callers
        wait here rather than inside aiohttp's connection pool. ``pooled``: the caller is one
        of a fixed pool of submitters (``gather``), which bounds the POSTs itself.

        Raises:
            QueueFullError, RateLimitError: refused for longer than ``max_wait``.
            SubmissionUncertainError, APIError, TransportError: as the wire API raises them.
        """
        if pooled:
            return await self._submit(route, body, mode)
        try:
            self._posts.acquire_nowait()  # the common case, without a trip through the loop
        except anyio.WouldBlock:
            await self._posts.acquire()
        try:
            return await self._submit(route, body, mode)
        finally:
            self._posts.release()

    async def _submit(self, route: str, body: Mapping[str, Any], mode: str | None) -> Submission:
        started = anyio.current_time()
        attempt = 0
        while True:
            # Shielded: once the POST is out, its answer (the task id) must be read; and a
            # shared limiter's feedback awaits I/O (Redis) that must not drop that id either.
            with anyio.CancelScope(shield=True):
                try:
                    submission = await self.api.submit(route, body, mode=mode, retry_refusals=False)
                except (QueueFullError, RateLimitError) as exc:
                    refusal: QueueFullError | RateLimitError | None = exc
                else:
                    refusal = None
                    self.counters.submitted += 1
                    await self.limiter.feedback(mode, "accepted")
            if refusal is None:
                return submission
            self.counters.refusals += 1
            await self.limiter.feedback(mode, "refused")
            attempt += 1
            delay = refusal.retry_after
            if delay is None:
                delay = backoff_delay(attempt, self.refusals.backoff, self._random)
            waited = anyio.current_time() - started
            if waited + delay > self.refusals.max_wait:
                raise refusal
            log.info(
                "submit %s refused (%s); resubmitting in %.2fs (attempt %d)",
                route,
                type(refusal).__name__,
                delay,
                attempt + 1,
            )
            await anyio.sleep(delay)
