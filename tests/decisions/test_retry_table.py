"""Retry decisions (``_wire/retry.py``): what may be sent again, and how long to wait first.

A wrong answer here costs money: a submit resent after the server took it is a second paid
job; a read not retried fails a job the user already paid for.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest

from mjasync import (
    APIError,
    AuthenticationError,
    BannedPromptError,
    InvalidRequestError,
    MjError,
    NotFoundError,
    ProtocolError,
    QueueFullError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    SubmissionUncertainError,
    TransportError,
    UnsupportedEndpointError,
)
from mjasync._wire.retry import (
    backoff_delay,
    is_retryable,
    parse_retry_after,
    refusal_delay,
    retry_delay,
)

NAN, INF = math.nan, math.inf

# -- RetryPolicy: which settings are accepted ---------------------------------------------------

#: (id, keyword arguments, the error or None, a fragment the message must contain)
POLICIES: list[tuple[str, dict[str, Any], type[Exception] | None, str]] = [
    ("defaults", {}, None, ""),
    ("no-retries", {"max_retries": 0}, None, ""),
    ("zero-base-delay", {"base_delay": 0}, None, ""),
    ("zero-max-delay", {"max_delay": 0.0}, None, ""),
    ("zero-retry-after-cap", {"max_retry_after": 0}, None, ""),
    ("jitter-0", {"jitter": 0}, None, ""),
    ("jitter-1", {"jitter": 1}, None, ""),
    ("int-delays", {"base_delay": 1, "max_delay": 10, "max_retry_after": 30}, None, ""),
    ("negative-retries", {"max_retries": -1}, ValueError, "max_retries must be an int >= 0"),
    ("float-retries", {"max_retries": 1.5}, ValueError, "not 1.5"),
    ("bool-retries", {"max_retries": True}, ValueError, "not True"),
    ("str-base-delay", {"base_delay": "1"}, TypeError, "base_delay must be a number, not str"),
    ("bool-base-delay", {"base_delay": True}, TypeError, "base_delay must be a number, not bool"),
    ("none-max-delay", {"max_delay": None}, TypeError, "max_delay must be a number, not None"),
    ("str-retry-after-cap", {"max_retry_after": "60"}, TypeError, "max_retry_after must be"),
    ("str-jitter", {"jitter": "0.5"}, TypeError, "jitter must be a number, not str"),
    ("bool-jitter", {"jitter": False}, TypeError, "jitter must be a number, not bool"),
    ("negative-base", {"base_delay": -0.5}, ValueError, "retry delays must be >= 0: base_delay"),
    ("nan-base", {"base_delay": NAN}, ValueError, "base_delay=nan"),
    ("negative-max-delay", {"max_delay": -1}, ValueError, "max_delay=-1"),
    ("nan-max-delay", {"max_delay": NAN}, ValueError, "max_delay=nan"),
    ("negative-cap", {"max_retry_after": -1}, ValueError, "max_retry_after=-1"),
    ("nan-cap", {"max_retry_after": NAN}, ValueError, "max_retry_after=nan"),
    ("jitter-above-1", {"jitter": 1.5}, ValueError, "jitter must be within 0..1, not 1.5"),
    ("jitter-below-0", {"jitter": -0.1}, ValueError, "not -0.1"),
    ("jitter-nan", {"jitter": NAN}, ValueError, "jitter must be within 0..1"),
    ("zero-refusal-wait", {"refusal_wait": 0}, None, ""),
    ("unbounded-refusal-wait", {"refusal_wait": INF}, None, ""),
    ("zero-refusal-cap", {"refusal_max_delay": 0.0}, None, ""),
    ("str-refusal-wait", {"refusal_wait": "900"}, TypeError, "refusal_wait must be a number"),
    ("bool-refusal-cap", {"refusal_max_delay": True}, TypeError, "refusal_max_delay must be"),
    ("negative-refusal-wait", {"refusal_wait": -1}, ValueError, "refusal_wait=-1"),
    ("nan-refusal-cap", {"refusal_max_delay": NAN}, ValueError, "refusal_max_delay=nan"),
]


@pytest.mark.parametrize(
    ("kwargs", "error", "words"), [row[1:] for row in POLICIES], ids=[row[0] for row in POLICIES]
)
def test_retry_policy_settings(
    kwargs: dict[str, Any], error: type[Exception] | None, words: str
) -> None:
    if error is None:
        policy = RetryPolicy(**kwargs)
        for name, value in kwargs.items():
            assert getattr(policy, name) == value
        return
    with pytest.raises(error) as info:
        RetryPolicy(**kwargs)
    assert words in str(info.value)


def test_retry_policy_defaults() -> None:
    # Three retries of 0.5, 1, 2 s (x0.75-1 jitter), and at most a minute's Retry-After; a job
    # refused as queue-full is resent for 15 minutes, at most 30 s apart.
    assert RetryPolicy() == RetryPolicy(
        max_retries=3,
        base_delay=0.5,
        max_delay=8.0,
        jitter=0.25,
        max_retry_after=60.0,
        refusal_wait=900.0,
        refusal_max_delay=30.0,
    )


# -- backoff_delay: base * 2**(attempt-1), capped, the jitter fraction scaled by random() -------

#: (id, attempt, base_delay, max_delay, jitter, random(), delay)
BACKOFF: list[tuple[str, int, float, float, float, float, float]] = [
    ("first", 1, 0.5, 8.0, 0.0, 0.9, 0.5),
    ("second-doubles", 2, 0.5, 8.0, 0.0, 0.9, 1.0),
    ("third", 3, 0.5, 8.0, 0.0, 0.9, 2.0),
    ("fifth-reaches-cap", 5, 0.5, 8.0, 0.0, 0.9, 8.0),
    ("sixth-capped", 6, 0.5, 8.0, 0.0, 0.9, 8.0),
    ("attempt-0-is-base", 0, 0.5, 8.0, 0.0, 0.0, 0.5),
    ("negative-attempt-is-base", -3, 0.5, 8.0, 0.0, 0.0, 0.5),
    ("attempt-1024-exponent-clamped", 1024, 0.5, 8.0, 0.0, 0.0, 8.0),
    ("attempt-5000-no-overflow", 5000, 0.5, 8.0, 0.0, 0.0, 8.0),
    ("huge-cap-takes-2-to-1023", 1025, 1.0, INF, 0.0, 0.0, 2.0**1023),
    ("zero-base-never-waits", 4, 0.0, 8.0, 0.5, 0.9, 0.0),
    ("zero-cap-never-waits", 4, 0.5, 0.0, 0.5, 0.9, 0.0),
    ("jitter-half-random-0", 3, 1.0, 100.0, 0.5, 0.0, 2.0),  # 4 * (1 - 0.5)
    ("jitter-half-random-half", 3, 1.0, 100.0, 0.5, 0.5, 3.0),  # 2 + 4 * 0.5 * 0.5
    ("jitter-quarter-random-1", 1, 1.0, 100.0, 0.25, 1.0, 1.0),
    ("full-jitter", 2, 1.0, 100.0, 1.0, 0.25, 0.5),
    ("jitter-applies-to-capped", 9, 1.0, 4.0, 0.5, 0.5, 3.0),  # cap 4: 2 + 4 * 0.5 * 0.5
]


@pytest.mark.parametrize(
    ("attempt", "base", "cap", "jitter", "rand", "delay"),
    [row[1:] for row in BACKOFF],
    ids=[row[0] for row in BACKOFF],
)
def test_backoff_delay(
    attempt: int, base: float, cap: float, jitter: float, rand: float, delay: float
) -> None:
    policy = RetryPolicy(base_delay=base, max_delay=cap, jitter=jitter)
    assert backoff_delay(attempt, policy, lambda: rand) == delay


# -- parse_retry_after: delta-seconds or an HTTP-date; None when unusable ----------------------

NOW = datetime(2015, 10, 21, 7, 28, tzinfo=UTC)

#: (id, header value, seconds)
RETRY_AFTER: list[tuple[str, str | None, float | None]] = [
    ("seconds", "7", 7.0),
    ("padded", " 3 ", 3.0),
    ("fraction", "1.5", 1.5),
    ("zero", "0", 0.0),
    ("exponent", "1e2", 100.0),
    ("negative-means-now", "-5", 0.0),
    ("absent", None, None),
    ("empty", "", None),
    ("blank", "   ", None),
    ("words", "soon", None),
    ("inf", "inf", None),
    ("minus-inf", "-inf", None),
    ("nan", "nan", None),
    ("date-gmt", "Wed, 21 Oct 2015 07:28:05 GMT", 5.0),
    ("date-padded", "  Wed, 21 Oct 2015 07:28:05 GMT ", 5.0),
    ("date-minute", "Wed, 21 Oct 2015 07:29:00 GMT", 60.0),
    ("date-past-means-now", "Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
    ("date-offset", "Wed, 21 Oct 2015 09:28:05 +0200", 5.0),
    ("date-minus-0000-is-utc", "Wed, 21 Oct 2015 07:28:05 -0000", 5.0),
    ("date-without-zone-is-utc", "Wed, 21 Oct 2015 07:28:05", 5.0),
    ("date-impossible-day", "Wed, 99 Foo 2015 07:28:05 GMT", None),
    ("date-year-overflow", "Wed, 21 Oct 99999 07:28:00 GMT", None),
]


@pytest.mark.parametrize(
    ("value", "seconds"), [row[1:] for row in RETRY_AFTER], ids=[row[0] for row in RETRY_AFTER]
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


def test_parse_retry_after_dates_count_from_the_real_clock_by_default() -> None:
    seconds = parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT")
    assert seconds is not None
    expected = (datetime(2100, 1, 1, tzinfo=UTC) - datetime.now(UTC)).total_seconds()
    assert abs(seconds - expected) < 60
    assert parse_retry_after("Fri, 01 Jan 2100 00:00:00", None) == pytest.approx(seconds, abs=60)


# -- is_retryable: reads retry transient failures; paid submits only provable refusals ---------

#: (id, error, read retried, submit resent)
RETRYABLE: list[tuple[str, MjError, bool, bool]] = [
    ("connection-never-opened", TransportError("refused", request_sent=False), True, True),
    ("reset-after-sending", TransportError("reset", request_sent=True), True, False),
    ("timeout-after-sending", TransportError("timed out"), True, False),
    ("unreadable-2xx", ProtocolError("truncated"), True, False),
    ("http-429", RateLimitError("busy", http_status=429), True, True),
    ("N-code-30-on-429", RateLimitError("saturated", http_status=429, code=30), True, True),
    ("J-code-23-queue-full", QueueFullError("full", http_status=200, code=23), False, True),
    ("C-code-9-queue-full", QueueFullError("队列已满", http_status=200, code=9), False, True),
    ("http-500", ServerError("500", http_status=500), True, False),
    ("html-502", ServerError("502", http_status=502), True, False),
    ("http-503", ServerError("503", http_status=503), True, False),
    ("code-9-failure", ServerError("code 9", http_status=200, code=9), True, False),
    ("http-408", APIError("timeout", http_status=408), True, False),
    ("other-api-error", APIError("teapot", http_status=418), False, False),
    ("C-code-minus-1", APIError("参数错误", http_status=200, code=-1), False, False),
    ("api-error-without-status", APIError("?"), False, False),
    ("auth-401", AuthenticationError("no", http_status=401), False, False),
    ("not-found-code-3", NotFoundError("no", code=3), False, False),
    ("invalid-code-4", InvalidRequestError("no", code=4), False, False),
    ("banned-code-24", BannedPromptError("no", code=24), False, False),
    ("no-route-404", UnsupportedEndpointError("no", http_status=404), False, False),
    (
        "uncertain-submit",
        SubmissionUncertainError(
            "?", endpoint="/mj/submit/imagine", body={}, state=None, mode=None
        ),
        False,
        False,
    ),
    ("plain-mj-error", MjError("?"), False, False),
]


@pytest.mark.parametrize(
    ("error", "read", "submit"), [row[1:] for row in RETRYABLE], ids=[row[0] for row in RETRYABLE]
)
def test_is_retryable(error: MjError, read: bool, submit: bool) -> None:
    assert is_retryable(error, "read") is read
    assert is_retryable(error, "submit") is submit


# -- retry_delay: Retry-After wins up to the cap; None gives up --------------------------------

POLICY = RetryPolicy(max_retries=3, base_delay=1.0, max_delay=8.0, jitter=0.0, max_retry_after=30)

#: (id, attempt, error, delay or None)
DELAYS: list[tuple[str, int, MjError, float | None]] = [
    ("first-retry-backoff", 1, ServerError("x", http_status=503), 1.0),
    ("last-allowed-retry", 3, ServerError("x", http_status=503), 4.0),
    ("past-max-retries", 4, ServerError("x", http_status=503), None),
    ("retry-after-wins", 1, RateLimitError("x", retry_after=12.5), 12.5),
    ("retry-after-int-as-float", 2, RateLimitError("x", retry_after=7), 7.0),
    ("retry-after-zero", 3, RateLimitError("x", retry_after=0.0), 0.0),
    ("retry-after-at-the-cap", 1, QueueFullError("x", retry_after=30.0), 30.0),
    ("retry-after-above-cap", 1, RateLimitError("x", retry_after=30.5), None),
    ("no-retry-after-backoff", 2, RateLimitError("x"), 2.0),
    ("queue-full-without-retry-after", 3, QueueFullError("x"), 4.0),
    ("retry-after-past-max-retries", 4, RateLimitError("x", retry_after=1.0), None),
    ("transport-error-backoff", 2, TransportError("reset", request_sent=False), 2.0),
]


@pytest.mark.parametrize(
    ("attempt", "error", "delay"), [row[1:] for row in DELAYS], ids=[row[0] for row in DELAYS]
)
def test_retry_delay(attempt: int, error: MjError, delay: float | None) -> None:
    result = retry_delay(attempt, POLICY, error, lambda: 0.0)
    assert result == delay
    if delay is not None:
        assert type(result) is float


def test_retry_delay_with_retries_off_gives_up_at_once() -> None:
    off = RetryPolicy(max_retries=0)
    assert retry_delay(1, off, RateLimitError("x", retry_after=1.0), lambda: 0.0) is None
    assert retry_delay(0, off, ServerError("x"), lambda: 0.0) == off.base_delay * 0.75


# -- refusal_delay: a job the server refused (queue full, 429) is resent until refusal_wait ----

#: (id, policy, refusals so far, Retry-After, seconds waited since the first submit, random(),
#: delay or None)
REFUSAL_POLICY = RetryPolicy(base_delay=1.0, jitter=0.0, refusal_wait=100.0, refusal_max_delay=8.0)
HALF_JITTER = RetryPolicy(base_delay=1.0, jitter=0.5, refusal_wait=100.0, refusal_max_delay=8.0)
UNBOUNDED = RetryPolicy(base_delay=1.0, jitter=0.0, refusal_wait=INF, refusal_max_delay=INF)
REFUSALS: list[tuple[str, RetryPolicy, int, float | None, float, float, float | None]] = [
    ("first-refusal-base", REFUSAL_POLICY, 1, None, 0.0, 0.9, 1.0),
    ("second-doubles", REFUSAL_POLICY, 2, None, 1.0, 0.9, 2.0),
    ("third", REFUSAL_POLICY, 3, None, 3.0, 0.9, 4.0),
    ("fourth", REFUSAL_POLICY, 4, None, 7.0, 0.9, 8.0),
    ("fifth-capped-by-refusal-max-delay", REFUSAL_POLICY, 5, None, 15.0, 0.9, 8.0),
    ("attempt-0-is-base", REFUSAL_POLICY, 0, None, 0.0, 0.0, 1.0),
    ("negative-attempt-is-base", REFUSAL_POLICY, -2, None, 0.0, 0.0, 1.0),
    ("attempt-1025-exponent-clamped", UNBOUNDED, 1025, None, 0.0, 0.0, 2.0**1023),
    ("attempt-5000-no-overflow", UNBOUNDED, 5000, None, 0.0, 0.0, 2.0**1023),
    ("jitter-half-random-0", HALF_JITTER, 3, None, 0.0, 0.0, 2.0),  # 4 * (1 - 0.5)
    ("jitter-half-random-half", HALF_JITTER, 3, None, 0.0, 0.5, 3.0),  # 2 + 4 * 0.5 * 0.5
    ("jitter-half-random-quarter", HALF_JITTER, 4, None, 0.0, 0.25, 5.0),  # 4 + 8 * 0.5 * 0.25
    ("retry-after-wins", REFUSAL_POLICY, 1, 5.0, 0.0, 0.9, 5.0),
    ("retry-after-not-capped", REFUSAL_POLICY, 2, 20.0, 10.0, 0.9, 20.0),
    ("retry-after-zero", REFUSAL_POLICY, 3, 0.0, 50.0, 0.9, 0.0),
    ("retry-after-ignores-jitter", HALF_JITTER, 1, 3.0, 0.0, 0.0, 3.0),
    ("ends-exactly-at-refusal-wait", REFUSAL_POLICY, 3, None, 96.0, 0.9, 4.0),
    ("would-end-past-refusal-wait", REFUSAL_POLICY, 3, None, 96.5, 0.9, None),
    ("already-past-refusal-wait", REFUSAL_POLICY, 9, None, 120.0, 0.9, None),
    ("retry-after-past-refusal-wait", REFUSAL_POLICY, 2, 30.0, 80.0, 0.9, None),
    ("retry-after-ends-at-refusal-wait", REFUSAL_POLICY, 2, 30.0, 70.0, 0.9, 30.0),
    ("zero-refusal-wait-gives-up", RetryPolicy(refusal_wait=0.0), 1, None, 0.0, 0.0, None),
    ("zero-refusal-wait-retry-after-0", RetryPolicy(refusal_wait=0.0), 1, 0.0, 0.0, 0.0, 0.0),
]


@pytest.mark.parametrize(
    ("policy", "attempt", "retry_after", "waited", "rand", "delay"),
    [row[1:] for row in REFUSALS],
    ids=[row[0] for row in REFUSALS],
)
def test_refusal_delay(
    policy: RetryPolicy,
    attempt: int,
    retry_after: float | None,
    waited: float,
    rand: float,
    delay: float | None,
) -> None:
    assert refusal_delay(attempt, policy, retry_after, waited, lambda: rand) == delay
