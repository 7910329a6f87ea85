"""Retry decisions as pure functions: what may be retried, and how long to wait first.

Reads (fetch, list, image-seed) are idempotent and retry on 408/429/5xx, resets, timeouts and
unreadable bodies. Submits are paid: they retry only when the server provably did not take the
job (the connection never opened, HTTP 429, queue full). One :class:`RetryPolicy` says how
hard to retry a request, and how long a job the server refused as queue-full keeps being
resent. Everything here is free of I/O so the tests can call it directly.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

import attrs

from .._errors import (
    APIError,
    MjError,
    ProtocolError,
    QueueFullError,
    RateLimitError,
    ServerError,
    TransportError,
)

__all__ = [
    "RetryPolicy",
    "backoff_delay",
    "is_retryable",
    "parse_retry_after",
    "refusal_delay",
    "retry_delay",
]

RequestKind = Literal["read", "submit"]


@attrs.frozen(slots=True)
class RetryPolicy:
    """How hard to retry: one request that failed, and a job the server refused as busy.

    Args:
        max_retries: retries of one request after the first attempt (0 disables retrying).
        base_delay: the first backoff, in seconds; doubled each attempt.
        max_delay: the cap on a computed backoff.
        jitter: the fraction of each backoff that is randomised (0-1), so that many clients
            refused at once do not all come back at once.
        max_retry_after: the most we honour of a server's ``Retry-After``; a larger value means
            the error is raised instead of sleeping that long.
        refusal_wait: seconds a job refused as queue-full (or rate-limited) keeps being resent
            by the job API before :class:`QueueFullError` is raised (the server did not take
            it, so resending costs nothing).
        refusal_max_delay: the cap on the backoff between such resends (a server's
            ``Retry-After`` wins).

    Example::

        mjasync.Client(..., retry=mjasync.RetryPolicy(max_retries=5, refusal_wait=60))
    """

    max_retries: int = attrs.field(default=3)
    base_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.25
    max_retry_after: float = 60.0
    refusal_wait: float = 900.0
    refusal_max_delay: float = 30.0

    @max_retries.validator
    def _check_retries(self, _: object, value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"max_retries must be an int >= 0, not {value!r}")

    def __attrs_post_init__(self) -> None:
        delays = ("base_delay", "max_delay", "max_retry_after", "refusal_wait", "refusal_max_delay")
        for name in (*delays, "jitter"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name} must be a number, not {type(value).__name__}")
        for name in delays:
            value = getattr(self, name)
            if math.isnan(value) or value < 0:  # NaN would turn every backoff into NaN
                raise ValueError(f"retry delays must be >= 0: {name}={value!r}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be within 0..1, not {self.jitter!r}")


def backoff_delay(attempt: int, policy: RetryPolicy, random: Callable[[], float]) -> float:
    """Exponential backoff with jitter for retry number ``attempt`` (1-based).

    The delay is ``base * 2**(attempt-1)`` capped at ``max_delay``, of which the ``jitter``
    fraction is scaled by ``random()`` (a number in [0, 1)).

    >>> backoff_delay(3, RetryPolicy(base_delay=0.5, jitter=0.0), lambda: 0.0)
    2.0
    """
    # 2**1023 is the largest power of two a float holds; far beyond any max_delay anyway.
    exponent = min(max(0, attempt - 1), 1023)
    capped = min(policy.max_delay, policy.base_delay * 2.0**exponent)
    fixed = capped * (1 - policy.jitter)
    return fixed + capped * policy.jitter * random()


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Read a ``Retry-After`` header: delta-seconds or an HTTP-date. ``None`` if unusable.

    >>> parse_retry_after("7")
    7.0
    >>> now = datetime(2015, 10, 21, 7, 28, tzinfo=UTC)
    >>> parse_retry_after("Wed, 21 Oct 2015 07:28:05 GMT", now)
    5.0
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    reference = now if now is not None else datetime.now(UTC)
    return max(0.0, (when - reference).total_seconds())


def is_retryable(error: MjError, kind: RequestKind) -> bool:
    """Whether a failed request may be sent again.

    >>> is_retryable(TransportError("reset", request_sent=True), "submit")
    False
    >>> is_retryable(TransportError("reset", request_sent=True), "read")
    True
    """
    if kind == "submit":
        if isinstance(error, TransportError):
            return not error.request_sent
        return isinstance(error, RateLimitError | QueueFullError)
    if isinstance(error, TransportError | ProtocolError | RateLimitError | ServerError):
        return True
    return isinstance(error, APIError) and error.http_status == 408


def retry_delay(
    attempt: int,
    policy: RetryPolicy,
    error: MjError,
    random: Callable[[], float],
) -> float | None:
    """How long to wait before retry number ``attempt``; ``None`` means give up now.

    A server's ``Retry-After`` wins over the computed backoff (it knows its own load), but a
    value above ``policy.max_retry_after`` gives up rather than sleeping that long.
    """
    if attempt > policy.max_retries:
        return None
    retry_after = getattr(error, "retry_after", None)
    if isinstance(retry_after, int | float):
        if retry_after > policy.max_retry_after:
            return None
        return float(retry_after)
    return backoff_delay(attempt, policy, random)


def refusal_delay(
    attempt: int,
    policy: RetryPolicy,
    retry_after: float | None,
    waited: float,
    random: Callable[[], float],
) -> float | None:
    """How long to wait before resending a refused job; ``None`` means give up now.

    ``attempt`` counts refusals so far (1-based), ``waited`` the seconds since the first
    submit. The server's ``Retry-After`` wins over the backoff (capped at
    ``refusal_max_delay``); nothing is waited past ``refusal_wait`` in all.

    >>> refusal_delay(1, RetryPolicy(jitter=0.0), None, waited=0.0, random=lambda: 0.0)
    0.5
    >>> refusal_delay(3, RetryPolicy(refusal_wait=5.0), 2.0, waited=4.0, random=lambda: 0.0)
    """
    if retry_after is not None:
        delay = retry_after
    else:
        exponent = min(max(0, attempt - 1), 1023)
        capped = min(policy.refusal_max_delay, policy.base_delay * 2.0**exponent)
        delay = capped * (1 - policy.jitter) + capped * policy.jitter * random()
    if waited + delay > policy.refusal_wait:
        return None
    return delay
