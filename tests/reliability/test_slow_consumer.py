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

import aiohttp
import anyio
import pytest

import mjasync
from mjasync._jobs.events import status_rank

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


class Peak:
    """The peak of traced memory, known once the ``traced()`` block has ended."""

    bytes = 0


@contextmanager
def traced() -> Iterator[Peak]:
    peak = Peak()
    tracemalloc.start()
    try:
        yield peak
    finally:
        peak.bytes = tracemalloc.get_traced_memory()[1]
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
    assert peak.bytes < PEAK_BYTES, f"{peak.bytes:,} bytes"


async def test_a_stalled_job_consumer_gets_a_bounded_backlog_ending_in_the_terminal_event() -> None:
    # Far more changes than a consumer's queue keeps (32) arrive while its consumer does not
    # read: pushed, so exactly 100 of them arrive whatever the machine's speed. (A relay keeps
    # notifyHook to itself, so the simulator's own posts do not mix in.)
    receiver = mjasync.WebhookReceiver(secret="slow-consumer-secret-0123456789")
    async with (
        sim(accent="relay") as fake,
        client_for(fake, poll_interval=60.0, webhook=receiver) as client,
        aiohttp.ClientSession() as session,
    ):
        job = await client.submit(mjasync.Imagine("a long story --stall"))
        async with aclosing(job.events()) as events:
            first = await anext(events)  # subscribed; now stop reading until the job ends
            for percent in range(1, 100):
                change = {"id": job.id, "status": "IN_PROGRESS", "progress": f"{percent}%"}
                async with session.post(receiver.notify_url, json=change) as resp:
                    assert resp.status == 200
            fake.finish_task(job.id)  # the server ends it; the push below is then confirmed
            done = {"id": job.id, "status": "SUCCESS", "progress": "100%", "imageUrl": "x"}
            async with session.post(receiver.notify_url, json=done) as resp:
                assert resp.status == 200
            with anyio.fail_after(10):
                task = await job.result()
            backlog = [event async for event in events]
        stats = client.statistics()
    assert stats.events >= 100  # every change became an event ...
    assert 1 <= len(backlog) <= 32  # ... but the stalled consumer's queue kept only its cap,
    assert backlog[-2].progress == 99  # the newest ones,
    assert backlog[-1].status is mjasync.TaskStatus.SUCCESS and backlog[-1].task == task
    assert_story([first, *backlog])  # still in order, with one terminal event at the end
