"""Fixtures for the fault suite: a fast simulator, a fast client, and outcome bookkeeping.

Every number here is chosen so that a 100-job batch with faults on most routes finishes in a
few seconds: jobs take 50 ms, the client polls every 20 ms, Retry-After is 0 s (the HTTP-date
form rounds that up to the next whole second), and retries back off in milliseconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

import mjasync
from mjasync.testing import FakeMidjourney, FaultRates, Faults

KEY = "sk-reliability-0123456789abcdef"

#: Faults a flaky front proxy and network inflict on polls (fetch, list, image-seed).
POLL_FAULTS = FaultRates(
    html_502=0.08,
    rate_limit=0.06,
    retry_after=0,
    retry_after_http_date=0.5,
    connection_reset=0.03,
    truncated_json=0.03,
    latency=(0.0, 0.01),
)


def poll_faults() -> Faults:
    return Faults(poll=POLL_FAULTS)


def sim(**options: Any) -> FakeMidjourney:
    """A simulator with room for many jobs at once, so the batch is fast."""
    options.setdefault("api_keys", (KEY,))
    options.setdefault("job_duration", 0.05)
    options.setdefault("progress_steps", 3)
    options.setdefault("core_size", 10)
    options.setdefault("queue_size", 10)
    options.setdefault("seed", 7)
    return FakeMidjourney(**options)


def client_for(fake: FakeMidjourney, **options: Any) -> mjasync.Client:
    """A client that polls every 20 ms and retries in milliseconds (never seconds)."""
    options.setdefault("poll_interval", 0.02)
    options.setdefault("concurrency", 10)
    options.setdefault(
        "retry",
        mjasync.RetryPolicy(
            max_retries=4,
            base_delay=0.005,
            max_delay=0.05,
            max_retry_after=2.0,
            refusal_max_delay=0.05,
            refusal_wait=60.0,
        ),
    )
    options.setdefault("timeout", 10.0)
    return mjasync.Client(fake.base_url, KEY, **options)


def prompts(count: int, tag: str) -> list[mjasync.Imagine]:
    """Distinct prompts: the simulator counts an equal body accepted twice as a duplicate."""
    return [mjasync.Imagine(f"{tag} {i}") for i in range(count)]


def split(results: Sequence[mjasync.Task | mjasync.MjError]) -> dict[str, list[Any]]:
    """Results by outcome class name (``Task``, ``SubmissionUncertainError``, ...)."""
    out: dict[str, list[Any]] = {}
    for result in results:
        out.setdefault(type(result).__name__, []).append(result)
    return out


#: The simulator draws its faults from one seeded generator, in request order, and the poller
#: sends its polls one after another: with this seed the first 20 poll requests already meet
#: every fault kind, 429s with both forms of Retry-After included, so a run of any length sees
#: them all. (Checked by the fault suite itself: it asserts each kind was injected.)
POLL_FAULT_SEED = 17


@pytest.fixture
async def faulty_polls() -> AsyncIterator[FakeMidjourney]:
    async with sim(faults=poll_faults(), seed=POLL_FAULT_SEED) as fake:
        yield fake
