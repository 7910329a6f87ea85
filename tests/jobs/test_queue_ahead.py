"""Queueing ahead: jobs let wait in the account's own queue, never more running than allowed.

The simulator's accounts run ``core_size`` jobs and queue ``queue_size`` more (NOT_START);
``SimStats.peak_running`` / ``peak_queued`` are what the account saw at its busiest.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import mjasync
from mjasync.testing import FakeMidjourney

from .conftest import KEY, fast_client

pytestmark = pytest.mark.anyio


def account(accent: str = "csharp", **options: Any) -> FakeMidjourney:
    options.setdefault("job_duration", 0.15)
    options.setdefault("progress_steps", 2)
    return FakeMidjourney(api_keys=(KEY,), accent=accent, **options)


async def run_batch(
    fake: FakeMidjourney, jobs: int, **options: Any
) -> tuple[list[Any], list[int], mjasync.Client]:
    """Gather ``jobs`` imagines; also sample how many jobs the client let wait upstream."""
    ahead: list[int] = []
    async with fast_client(fake, **options) as client:

        async def sample() -> None:
            while True:
                ahead.append(client.engine.queued_ahead("fast"))
                await anyio.sleep(0.005)

        async with anyio.create_task_group() as tg:
            tg.start_soon(sample)
            with anyio.fail_after(30):
                results = await client.gather(mjasync.Imagine(f"owl {i}") for i in range(jobs))
            tg.cancel_scope.cancel()
        assert client.statistics().mode("fast").in_flight == 0  # every slot came back
    return results, ahead, client


@pytest.mark.parametrize("accent", ["csharp", "relay"])
async def test_an_account_seen_to_queue_keeps_jobs_waiting_but_never_more_than_allowed(accent):
    # 2 cores, concurrency 3: the third job waits while two of ours run, so the account is
    # seen to queue. queue_ahead=2: two may wait (the running slot beyond the cores counts).
    async with account(accent, core_size=2, queue_size=10) as fake:
        results, ahead, _ = await run_batch(fake, 16, concurrency=3, queue_ahead=2)
    sim = fake.stats()
    assert all(isinstance(r, mjasync.Task) for r in results)
    assert max(ahead) == 1  # it did let one more wait, on purpose
    assert sim.peak_running["fast"] <= 2  # the account's cores, below concurrency
    assert sim.peak_queued["fast"] == 2  # never more waiting than the setting
    assert sim.refused_total == 0 and sim.duplicates == 0


@pytest.mark.parametrize("accent", ["csharp", "relay"])
async def test_an_account_with_more_cores_than_concurrency_never_runs_more(accent):
    # Six cores, concurrency 3: nothing of ours ever waits, so nothing is queued ahead;
    # a job "queued ahead" here would simply run as a fourth.
    async with account(accent, core_size=6, queue_size=10) as fake:
        results, ahead, _ = await run_batch(fake, 12, concurrency=3, queue_ahead=3)
    sim = fake.stats()
    assert all(isinstance(r, mjasync.Task) for r in results)
    assert sim.peak_running["fast"] == 3
    assert sim.peak_active["fast"] == 3
    assert sim.peak_queued["fast"] == 0
    assert max(ahead) == 0
    assert sim.refused_total == 0


async def test_queue_ahead_zero_is_the_old_budget_exactly():
    # The same account as the first test: the only job that waits is the one beyond the
    # account's cores that `concurrency` itself allows.
    async with account(core_size=2, queue_size=10) as fake:
        results, ahead, client = await run_batch(fake, 16, concurrency=3, queue_ahead=0)
    sim = fake.stats()
    assert all(isinstance(r, mjasync.Task) for r in results)
    assert max(ahead) == 0
    assert sim.peak_active["fast"] == 3  # concurrency, never more
    assert sim.peak_queued["fast"] == 1
    assert not client.engine.queue_state("fast").seen  # not even looked for


async def test_the_default_lets_one_job_per_core_wait():
    async with account(core_size=2, queue_size=10) as fake:
        results, ahead, client = await run_batch(fake, 16, concurrency=2 + 1)
    sim = fake.stats()
    assert all(isinstance(r, mjasync.Task) for r in results)
    assert client.engine.queue_state("fast").cores == 2
    assert sim.peak_queued["fast"] == 2  # one per core: the running slot beyond + one ahead
    assert max(ahead) == 1
    assert sim.peak_running["fast"] <= 2 and sim.refused_total == 0


async def test_auto_learns_the_cores_and_stops_growing_where_the_account_queues():
    # "auto" grows while the account runs more; once one of ours waits it stops, and one job
    # per core waits: no queue-full refusal even though the queue holds only three.
    async with account(core_size=3, queue_size=3) as fake:
        results, ahead, client = await run_batch(fake, 40, concurrency="auto")
    sim = fake.stats()
    assert all(isinstance(r, mjasync.Task) for r in results)
    assert client.engine.queue_state("fast").cores == 3
    assert client.statistics().mode("fast").limit == 4  # 3 + the one that showed the queue
    assert max(ahead) == 2  # one per core waits: the slot beyond the cores and two ahead
    assert sim.peak_queued["fast"] == 3
    assert sim.peak_running["fast"] == 3
    assert sim.refused_total == 0


async def test_a_queue_full_refusal_shrinks_the_jobs_let_wait():
    # Two cores, a queue of one, concurrency 3: the third job waits (so the account queues)
    # and queue_ahead=2 lets a fourth try: refused. The refusal is waited out, the job sent
    # again, and the room learned from it keeps later waves from asking every time.
    async with account(core_size=2, queue_size=1) as fake:
        results, _, client = await run_batch(fake, 30, concurrency=3, queue_ahead=2)
    sim = fake.stats()
    assert all(isinstance(r, mjasync.Task) for r in results)
    assert sim.accepted == 30 and sim.duplicates == 0
    assert 1 <= sim.refused.get("queue_full", 0) <= 4  # found the limit, did not hammer it
    assert client.engine.queue_state("fast").room is not None
    assert sim.peak_queued["fast"] == 1 and sim.peak_running["fast"] <= 2


@pytest.mark.parametrize("bad", [-1, 1.5, "one", True])
def test_a_bad_queue_ahead_is_refused_before_any_request(bad):
    with pytest.raises(ValueError, match="queue_ahead"):
        mjasync.Client("http://127.0.0.1:9", KEY, queue_ahead=bad)


async def test_statistics_count_the_jobs_let_wait_as_in_flight():
    # One core, two running slots (one of them waits), queue_ahead=2: one more waits.
    async with (
        account(core_size=1, queue_size=10, job_duration=0.3) as fake,
        fast_client(fake, concurrency=2, queue_ahead=2) as client,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(client.gather, [mjasync.Imagine(f"cat {i}") for i in range(6)])
        with anyio.fail_after(5):
            while fake.stats().active["fast"] < 3:  # the one let wait reached the account
                await anyio.sleep(0.005)
        mode = client.statistics().mode("fast")
        assert mode.queued_ahead == 1
        assert mode.in_flight == 2 + 1  # the running slots and the one let wait
    assert fake.stats().peak_running["fast"] == 1


async def test_single_submits_let_wait_and_refused_wait_for_a_slot_too():
    # The same account as above, jobs sent one call each (client.run: the POST runs in the
    # background, so even a plain asyncio cancellation cannot lose a task id).
    results: list[Any] = []
    async with (
        account(core_size=2, queue_size=1) as fake,
        fast_client(fake, concurrency=3, queue_ahead=2) as client,
    ):

        async def one(i: int) -> None:
            results.append(await client.run(mjasync.Imagine(f"single {i}")))

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for i in range(16):
                    tg.start_soon(one, i)
        assert client.statistics().mode("fast").in_flight == 0
    sim = fake.stats()
    assert len(results) == 16 and all(isinstance(r, mjasync.Task) for r in results)
    assert sim.accepted == 16 and sim.duplicates == 0
    assert sim.refused.get("queue_full", 0) >= 1  # an ahead submit met the full queue ...
    assert sim.refused.get("queue_full", 0) <= 4  # ... and waited instead of hammering
    assert sim.peak_running["fast"] <= 2
