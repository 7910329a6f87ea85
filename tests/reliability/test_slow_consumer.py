"""A slow consumer, or an event loop kept busy, must not make the client's memory grow.

Events wait for their consumer in a bounded queue per job (newest wins, the terminal event is
never dropped), and ``stream()`` runs only a bounded number of jobs ahead of its consumer: a
consumer that cannot keep up slows the batch down instead of piling up its events.
"""

from __future__ import annotations

import itertools
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import aclosing, contextmanager

import anyio
import pytest

import mjasync
from mjasync._events import status_rank

from .conftest import client_for, prompts, sim

pytestmark = pytest.mark.anyio

JOBS = 200
#: How far ``stream()`` may run ahead of its consumer: jobs accepted by the server whose
#: terminal event the consumer has not taken yet (the client's bound, with the default
#: concurrency used here).
AHEAD = 64
#: A generous ceiling on what the whole 200-job run may allocate at its peak (client and
#: simulator together: they share the process). Unbounded buffering of every event of a much
#: larger batch would blow through it; this catches gross leaks, the AHEAD bound the rest.
PEAK_BYTES = 32 * 1024 * 1024


@contextmanager
def traced() -> Iterator[Callable[[], int]]:
    tracemalloc.start()
    peak = 0
    try:
        yield lambda: peak
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def assert_story(events: list[mjasync.ProgressEvent]) -> None:
    """Monotonic, no repeats, exactly one terminal event and it comes last."""
    assert [e.is_terminal for e in events].count(True) == 1 and events[-1].is_terminal
    for before, after in itertools.pairwise(events):
        assert status_rank(after.status) >= status_rank(before.status)
        if after.status is before.status:
            assert (after.progress or 0) > (before.progress or 0)


async def consume_slowly(
    stream: AsyncIterator[mjasync.ProgressEvent],
    accepted: Callable[[], int],
    pause: Callable[[], object],
) -> tuple[dict[int, list[mjasync.ProgressEvent]], int]:
    """Take events with a pause after each; return them by request and the worst lead."""
    by_request: dict[int, list[mjasync.ProgressEvent]] = {}
    delivered = worst_lead = 0
    async with aclosing(stream) as events:
        async for event in events:
            by_request.setdefault(id(event.request), []).append(event)
            delivered += event.is_terminal
            worst_lead = max(worst_lead, accepted() - delivered)
            result = pause()
            if result is not None:
                await result  # type: ignore[misc]
    return by_request, worst_lead


@pytest.mark.parametrize("busy_loop", [False, True], ids=["sleeping-consumer", "busy-loop"])
async def test_slow_stream_consumer_keeps_memory_bounded(busy_loop: bool) -> None:
    requests = prompts(JOBS, "slow reader")

    def pause() -> object:
        if busy_loop:
            time.sleep(0.002)  # CPU work that holds the event loop: nothing else runs
            return None
        return anyio.sleep(0.004)  # a consumer that awaits something slow per event

    async with sim(core_size=10, queue_size=10) as fake, client_for(fake) as client:
        with traced() as peak, anyio.fail_after(90):
            by_request, worst_lead = await consume_slowly(
                client.stream(requests), lambda: fake.stats().accepted, pause
            )
        stats = client.statistics()

    # Every job told its whole story, in order, to the slow consumer.
    assert set(by_request) == {id(r) for r in requests}
    for events in by_request.values():
        assert_story(events)
        assert events[-1].status is mjasync.TaskStatus.SUCCESS
    assert fake.stats().accepted == JOBS and fake.stats().duplicates == 0
    assert stats.jobs_succeeded == JOBS
    # The client never ran far ahead of its consumer: pending work (and memory) is bounded
    # by AHEAD jobs, not by the size of the batch.
    assert worst_lead <= AHEAD, worst_lead
    assert peak() < PEAK_BYTES, f"{peak():,} bytes"


async def test_a_stalled_job_consumer_gets_a_bounded_backlog_ending_in_the_terminal_event() -> None:
    # 100 progress steps: far more events than a consumer's queue keeps (32).
    async with (
        sim(progress_steps=100, job_duration=0.3) as fake,
        client_for(fake, poll_interval=0.005) as client,
    ):
        job = await client.submit(mjasync.Imagine("a long story"))
        async with aclosing(job.events()) as events:
            first = await anext(events)  # subscribed; now stop reading until the job ends
            with anyio.fail_after(30):
                task = await job.result()
            backlog = [event async for event in events]
        stats = client.statistics()
    assert stats.events > 40, "the job produced too few events to overflow the queue"
    assert 1 <= len(backlog) <= 32  # the queue kept at most its cap, not every event
    assert_story([first, *backlog])
    assert backlog[-1].status is mjasync.TaskStatus.SUCCESS and backlog[-1].task == task
