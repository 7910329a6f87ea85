"""Three worker processes, one simulated account, one RedisLimiter name.

The simulator runs in the test process; each worker (``redis_worker.py client``) runs its own
``mjasync.Client(limiter=RedisLimiter(..., concurrency=3))``. The simulator's own peak-active
counter is the judge: the account never sees more than 3 jobs, and every job finishes.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio

from mjasync.testing import FakeMidjourney
from redis_support import MARGIN, live_leases, spawn, unique_name, wait_until

pytestmark = [pytest.mark.redis, pytest.mark.anyio]

JOBS = 12
LEASE = 1.0


@pytest.fixture
async def account() -> AsyncIterator[FakeMidjourney]:
    # Jobs are much shorter than the lease: a killed worker's jobs end upstream before its
    # leases expire, so reclaiming them cannot push the account past 3 (see several-workers.md).
    async with FakeMidjourney(
        accent="csharp", core_size=3, queue_size=10, job_duration=0.1
    ) as fake:
        yield fake


def worker_args(redis: str, name: str, fake: FakeMidjourney, tag: str) -> list[str]:
    return [
        "client", redis, name, "--base-url", fake.base_url, "--jobs", str(JOBS),
        "--lease", str(LEASE), "--tag", tag,
    ]  # fmt: skip


async def test_three_clients_share_one_account(
    redis_url: str,
    account: FakeMidjourney,
    store: redis.asyncio.Redis,
    tmp_path: Path,
) -> None:
    name = unique_name()
    async with (
        spawn(tmp_path, *worker_args(redis_url, name, account, "a")) as a,
        spawn(tmp_path, *worker_args(redis_url, name, account, "b")) as b,
        spawn(tmp_path, *worker_args(redis_url, name, account, "c")) as c,
    ):
        for worker in (a, b, c):
            await worker.expect("ready")
        for worker in (a, b, c):
            assert await worker.expect("done", timeout=120) == f"done ok={JOBS} failed=0"
            await worker.finish()
    stats = account.stats()
    assert stats.peak_active["fast"] == 3  # reached, never exceeded
    assert stats.accepted == 3 * JOBS
    assert stats.refused.get("queue_full", 0) == 0
    assert stats.finished.get("SUCCESS", 0) == 3 * JOBS
    assert await live_leases(store, name) == []


async def test_killed_client_frees_its_slots_for_the_others(
    redis_url: str,
    account: FakeMidjourney,
    store: redis.asyncio.Redis,
    tmp_path: Path,
) -> None:
    name = unique_name()
    async with (
        spawn(tmp_path, *worker_args(redis_url, name, account, "victim")) as victim,
        spawn(tmp_path, *worker_args(redis_url, name, account, "a")) as a,
        spawn(tmp_path, *worker_args(redis_url, name, account, "b")) as b,
    ):
        for worker in (victim, a, b):
            await worker.expect("ready")
        marker = f":{victim.process.pid}:"

        async def victim_holds_a_lease() -> bool:
            return any(marker in lease for lease in await live_leases(store, name))

        await wait_until(victim_holds_a_lease, timeout=60, what="the victim has jobs in flight")
        victim.process.send_signal(signal.SIGKILL)

        async def victim_leases_gone() -> bool:
            return not await victim_holds_a_lease()

        # Its last renewal was at most LEASE/3 ago, so its leases expire within LEASE.
        await wait_until(victim_leases_gone, timeout=LEASE + MARGIN, what="leases reclaimed")
        for worker in (a, b):
            assert await worker.expect("done", timeout=120) == f"done ok={JOBS} failed=0"
            await worker.finish()
    assert account.stats().peak_active["fast"] <= 3
    assert await live_leases(store, name) == []
