"""A 100-job batch through a flaky front proxy: every job finishes, nothing is paid twice.

Polls (list-by-condition and fetch) meet HTML 502 pages, 429s with ``Retry-After`` in both
forms, connection resets, JSON cut in half and latency jitter. Polls are reads, so the client
may retry them freely; what must never happen is a second submit of the same job.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from types import SimpleNamespace

import aiohttp
import anyio
import pytest

import mjasync
from mjasync.testing import FakeMidjourney

from .conftest import client_for, prompts, split

pytestmark = pytest.mark.anyio

_DELTA_SECONDS = re.compile(r"^\d+$")


@pytest.fixture
async def recording_session() -> AsyncIterator[tuple[aiohttp.ClientSession, list[str]]]:
    """A session that records every ``Retry-After`` header it receives."""
    seen: list[str] = []

    async def on_request_end(
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestEndParams,
    ) -> None:
        value = params.response.headers.get("Retry-After")
        if value is not None:
            seen.append(value)

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_request_end)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        yield session, seen


async def test_hundred_jobs_finish_through_poll_faults_without_duplicates(
    faulty_polls: FakeMidjourney,
    recording_session: tuple[aiohttp.ClientSession, list[str]],
) -> None:
    session, retry_after = recording_session
    requests = prompts(100, "flaky proxy")
    async with client_for(faulty_polls, session=session) as client:
        with anyio.fail_after(60):
            results = await client.gather(requests)
        stats = client.statistics()

    outcomes = split(results)
    assert list(outcomes) == ["Task"], {k: v[:3] for k, v in outcomes.items()}
    assert all(task.status is mjasync.TaskStatus.SUCCESS for task in results)
    # In input order, each result is the task of its own request.
    assert [t.prompt for t in results] == [r.prompt for r in requests]  # type: ignore[union-attr]
    assert len({t.id for t in results}) == 100  # type: ignore[union-attr]

    sim = faulty_polls.stats()
    assert sim.accepted == 100 and sim.duplicates == 0
    assert sim.requests["submit"] == 100  # not one submit was sent twice
    assert sim.refused_total == 0

    # The faults really happened, every kind of them, and only on polls.
    injected = sim.faults_by_route["poll"]
    for fault in ("html_502", "rate_limit", "connection_reset", "truncated_json", "latency"):
        assert injected.get(fault, 0) > 0, f"no {fault} was injected: {dict(injected)}"
    assert not sim.faults_by_route.get("submit")
    # Both forms of Retry-After reached the client (and were waited out).
    assert any(_DELTA_SECONDS.match(v) for v in retry_after), retry_after
    assert any(v.endswith("GMT") for v in retry_after), retry_after
    assert stats.rate_limited >= len(retry_after) > 0
    assert stats.retries > 0
    assert stats.jobs_submitted == 100 and stats.jobs_succeeded == 100
    assert stats.mode("fast") is not None and stats.mode("fast").in_flight == 0  # type: ignore[union-attr]
