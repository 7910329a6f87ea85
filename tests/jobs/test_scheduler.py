"""The scheduler against the simulator: slots, refusals, AIMD, batched polling."""

from __future__ import annotations

import itertools

import anyio
import pytest

import mjasync
from mjasync.testing import FakeMidjourney

from .conftest import KEY, fast_client

pytestmark = pytest.mark.anyio


async def test_slots_are_held_until_terminal(fake, make_client):
    async with make_client(concurrency=3) as client:
        results = await client.gather(mjasync.Imagine(f"cat {i}") for i in range(15))
        stats = client.statistics()
    sim = fake.stats()
    assert all(isinstance(r, mjasync.Task) for r in results)
    assert sim.accepted == 15
    assert sim.peak_active["fast"] == 3  # never more than `concurrency` on the account
    assert sim.refused.get("queue_full", 0) == 0
    assert stats.mode("fast").in_flight == 0  # every slot came back


@pytest.mark.parametrize("accent", ["java", "csharp", "relay"])
async def test_queue_full_is_absorbed_without_duplicates(accent):
    # The account runs 2 and queues 1; the client allows 8: the server must refuse, and every
    # refused job must be resubmitted (not lost, not paid twice).
    mode = None if accent == "java" else "fast"
    async with (
        FakeMidjourney(
            api_keys=(KEY,), accent=accent, core_size=2, queue_size=1, job_duration=0.05
        ) as fake,
        fast_client(fake, concurrency=8, mode=mode) as client,
    ):
        results = await client.gather(mjasync.Imagine(f"dog {i}") for i in range(12))
        stats = client.statistics()
    sim = fake.stats()
    assert all(isinstance(r, mjasync.Task) for r in results), results
    assert sim.refused_total > 0  # the scenario really hit the limit
    assert stats.queue_full + stats.rate_limited >= sim.refused_total
    assert sim.accepted == 12
    assert sim.duplicates == 0


async def test_auto_concurrency_grows_and_halves():
    # queue_ahead=0: the AIMD rule alone, as before queueing ahead (with it, "auto" stops
    # growing where the account queues: see test_queue_ahead.py).
    async with (
        FakeMidjourney(api_keys=(KEY,), core_size=3, queue_size=3, job_duration=0.05) as fake,
        fast_client(fake, concurrency="auto", queue_ahead=0) as client,
    ):
        limits: list[int] = []

        async def sample() -> None:
            while True:
                mode = client.statistics().mode("fast")
                if mode is not None:
                    limits.append(mode.limit)
                await anyio.sleep(0.005)

        async with anyio.create_task_group() as tg:
            tg.start_soon(sample)
            results = await client.gather(mjasync.Imagine(f"owl {i}") for i in range(60))
            tg.cancel_scope.cancel()
    sim = fake.stats()
    assert all(isinstance(r, mjasync.Task) for r in results)
    assert max(limits) > 3  # grew while the account accepted
    assert sim.refused.get("queue_full", 0) > 0  # overshot the 6 the account holds ...
    drops = [b for a, b in itertools.pairwise(limits) if b < a]
    assert drops and all(b <= max(limits) // 2 + 1 for b in drops)  # ... and halved
    assert sim.duplicates == 0


async def test_polling_is_batched(fake, make_client):
    async with make_client(concurrency=30, list_batch_size=10) as client:
        fake_stats_before = fake.stats()
        results = await client.gather(mjasync.Imagine(f"fox {i}") for i in range(30))
        stats = client.statistics()
    sim = fake.stats()
    assert fake_stats_before.requests.get("list", 0) == 0
    assert all(isinstance(r, mjasync.Task) for r in results)
    assert sim.requests.get("fetch", 0) == 0  # no per-task fetches
    # Each round asks for every due task in chunks of 10: at most 3 requests per round.
    assert stats.polls <= 3 * stats.poll_rounds
    assert sim.requests["list"] == stats.polls
    # A per-task poller would have sent about one request per task per round.
    assert sim.requests["list"] < 30 * stats.poll_rounds / 5


async def test_falls_back_to_fetch_without_list_by_condition():
    async with (
        FakeMidjourney(api_keys=(KEY,), list_by_condition=False, job_duration=0.05) as fake,
        fast_client(fake) as client,
    ):
        results = await client.gather(mjasync.Imagine(f"elk {i}") for i in range(4))
        stats = client.statistics()
    sim = fake.stats()
    assert all(isinstance(r, mjasync.Task) for r in results)
    assert stats.polls == 1  # tried list-by-condition once, remembered the 404
    assert sim.requests["fetch"] >= 4


async def test_banned_prompt_releases_the_slot(fake, make_client):
    async with make_client(concurrency=1) as client:
        with pytest.raises(mjasync.BannedPromptError) as caught:
            await client.imagine("a nude statue")
        assert caught.value.banned_word == "nude"
        assert client.statistics().mode("fast").in_flight == 0
        task = await client.imagine("a statue")  # the single slot is free again
    assert task.status is mjasync.TaskStatus.SUCCESS
    assert fake.stats().refused["banned"] == 1
