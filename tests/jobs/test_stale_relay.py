"""A relay that shows tasks only as of its latest refresh from upstream (new-api).

New-api refreshes every unfinished task in one background loop (QuantumNous/new-api,
``controller/midjourney.go``, commit 65b16547329625f619cf797ae1eb9b748525056c: a 15 s sleep
plus the pass, one list-by-condition per channel), and shows a task submitted since as status
"" and progress "0%" (``relay/mjproxy_handler.go``). The simulator's ``relay_refresh`` does
the same on a shorter clock.
"""

from __future__ import annotations

import time

import anyio
import pytest

import mjasync
from mjasync.testing import FakeMidjourney

from .conftest import KEY

pytestmark = pytest.mark.anyio

REFRESH = 0.3
INTERVAL = 0.03
#: The event loop's own lateness on a shared, loaded machine.
SCHEDULING = 0.05
#: Quiet tasks may back off to ten intervals: late looks would show.
SETTINGS = mjasync.PollSettings(
    interval=INTERVAL, max_interval=10 * INTERVAL, push_interval=30 * INTERVAL
)


def relay_client(fake: FakeMidjourney) -> mjasync.Client:
    return mjasync.Client(
        fake.base_url,
        KEY,
        concurrency=3,
        poll_settings=SETTINGS,
        retry=mjasync.RetryPolicy(max_retries=3, base_delay=0.01),
    )


async def run_on_relay(jobs: int) -> tuple[list[tuple[float, float]], mjasync.ClientStatistics]:
    """Run ``jobs`` imagines (every third ten times as long) on a relay refreshing every 0.3 s.

    Returns, per job, how long after it ended upstream the client knew it, and how long
    after the relay's refresh showed the end.
    """
    lags: list[tuple[float, float]] = []
    async with (
        FakeMidjourney(
            api_keys=(KEY,),
            accent="relay",
            relay_refresh=REFRESH,
            job_duration=0.12,
            progress_steps=3,
        ) as fake,
        relay_client(fake) as client,
    ):
        requests = [
            mjasync.Imagine(f"slow relay {i}" + (" --slow" if i % 3 == 0 else ""))
            for i in range(jobs)
        ]
        with anyio.fail_after(60):
            async for event in client.stream(requests):
                if event.is_terminal:
                    seen = time.time()
                    assert event.task is not None
                    ended_ms = event.task.raw["finishTime"]
                    shown = fake.shown_at(ended_ms) / 1000
                    lags.append((seen - ended_ms / 1000, seen - shown))
        stats = client.statistics()
    return lags, stats


async def test_an_end_is_seen_within_one_refresh_and_one_interval():
    lags, _ = await run_on_relay(15)
    assert len(lags) == 15
    since_end = [lag for lag, _ in lags]
    since_shown = [lag for _, lag in lags]
    # Up to one refresh until the relay shows the end ...
    assert max(since_end) <= REFRESH + INTERVAL + SCHEDULING, sorted(since_end)
    # ... and at most one interval (not the ten quiet tasks may wait) once it does.
    assert max(since_shown) <= INTERVAL + SCHEDULING, sorted(since_shown)
    assert min(since_shown) >= 0  # (the clocks agree: nothing was seen before it showed)


async def test_polls_meet_the_refreshes_instead_of_every_interval():
    _, stats = await run_on_relay(15)
    # ~5 s of jobs: polling every interval would take ~170 rounds; following the refreshes
    # takes about one a refresh, plus a second or two of looking every interval to learn.
    assert stats.poll_rounds < 70, stats.poll_rounds
