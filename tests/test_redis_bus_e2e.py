"""Three worker processes, one account, one hook URL, a real redis-server the test breaks.

Each worker (``redis_worker.py bus``) runs ``Client(limiter=RedisLimiter(...),
webhook=WebhookReceiver(..., bus=RedisPushBus(...)))``; the simulator (in the test process) posts
every hook to worker 1, the only one serving the shared URL. The simulator is the judge: its
peak of active jobs on the account, its count of poll requests, and each worker's results.

The promises: every job of every worker ends by push (polls: at most the confirmations of the
pushed ends); worker 1 killed mid-run, the others finish by polling; Redis restarted mid-run
(no persistence), the account never holds more than the budget; Redis stopped for a while
mid-run, every job finishes and every result is returned.
"""

from __future__ import annotations

import re
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import anyio
import pytest
import redis.asyncio

from mjasync.testing import FakeMidjourney
from redis_server import RedisServer, free_port
from redis_support import Worker, spawn, unique_name, wait_until

pytestmark = [pytest.mark.redis, pytest.mark.anyio]

JOBS = 4  # per worker
BUDGET = 3
LEASE = 1.0
#: How long the test keeps Redis down once every worker has noticed: the fault under test.
OUTAGE = 2.0
DONE = re.compile(r"done ok=(\d+) failed=(\d+) push=(\d+) poll=(\d+)")


@pytest.fixture
async def account() -> AsyncIterator[FakeMidjourney]:
    # A job pushes a change every 0.1 s and lasts 0.5 s, far less than the lease: a killed
    # worker's jobs end upstream before its leases expire (see test_redis_e2e.py).
    async with FakeMidjourney(
        accent="csharp", core_size=BUDGET, queue_size=10, job_duration=0.5, progress_steps=5
    ) as fake:
        yield fake


class Deployment:
    """Three ``bus`` workers on one name; worker 1 serves the hook URL."""

    def __init__(
        self, redis_url: str, fake: FakeMidjourney, tmp_path: Path, *, jobs: int, lease: float
    ) -> None:
        self.jobs = jobs
        self.lease = lease
        self.redis_url = redis_url
        self.fake = fake
        self.tmp_path = tmp_path
        self.name = unique_name()
        self.port = free_port()
        self.workers: list[Worker] = []

    def args(self, index: int) -> list[str]:
        serve = ["--serve"] if index == 0 else []
        return [
            "bus", self.redis_url, self.name, "--base-url", self.fake.base_url,
            "--jobs", str(self.jobs), "--lease", str(self.lease), "--tag", f"w{index}",
            "--port", str(self.port), "--go-key", f"test:{self.name}:go",
            "--stop-key", f"test:{self.name}:stop", *serve,
        ]  # fmt: skip

    async def go(self) -> None:
        """Every worker is up (worker 1's site listens): let them submit."""
        for worker in self.workers:
            await worker.expect("ready")
        async with redis.asyncio.Redis.from_url(self.redis_url) as store:
            await store.set(f"test:{self.name}:go", 1)

    async def results(self, workers: list[Worker]) -> list[tuple[int, int, int, int]]:
        """Each worker's ``done`` line; then the workers stop (worker 1 served till then)."""
        lines = [await worker.expect("done", timeout=120) for worker in workers]
        async with redis.asyncio.Redis.from_url(self.redis_url) as store:
            await store.set(f"test:{self.name}:stop", 1)
        for worker in workers:
            await worker.finish()
        results = []
        for line in lines:
            match = DONE.match(line)
            assert match is not None, line
            ok, failed, push, poll = (int(group) for group in match.groups())
            results.append((ok, failed, push, poll))
        return results


@asynccontextmanager
async def deployment(
    redis_url: str, fake: FakeMidjourney, tmp_path: Path, *, jobs: int = JOBS, lease: float = LEASE
) -> AsyncIterator[Deployment]:
    d = Deployment(redis_url, fake, tmp_path, jobs=jobs, lease=lease)
    async with AsyncExitStack() as stack:
        for index in range(3):
            d.workers.append(await stack.enter_async_context(spawn(tmp_path, *d.args(index))))
        yield d


def polls(fake: FakeMidjourney) -> int:
    requests = fake.stats().requests
    return requests.get("list", 0) + requests.get("fetch", 0)


def busy(fake: FakeMidjourney, *, at_least_done: int = 1):  # type: ignore[no-untyped-def]
    """A condition: the account runs its whole budget, and some jobs have already ended."""

    async def condition() -> bool:
        stats = fake.stats()
        return stats.active["fast"] == BUDGET and stats.finished.get("SUCCESS", 0) >= at_least_done

    return condition


async def test_every_job_of_every_worker_ends_by_push(
    redis_url: str, account: FakeMidjourney, tmp_path: Path
) -> None:
    async with deployment(redis_url, account, tmp_path) as d:
        await d.go()
        assert await d.results(d.workers) == [(JOBS, 0, JOBS, 0)] * 3
    stats = account.stats()
    assert stats.finished.get("SUCCESS", 0) == 3 * JOBS
    assert stats.peak_active["fast"] <= BUDGET
    # One confirmation fetch per pushed end at most (several ends may share one request).
    assert polls(account) <= 3 * JOBS
    assert stats.webhooks_failed == 0


async def test_worker_1_killed_the_others_finish_by_polling(
    redis_url: str, account: FakeMidjourney, tmp_path: Path
) -> None:
    async with deployment(redis_url, account, tmp_path) as d:
        await d.go()
        await wait_until(busy(account), timeout=60, what="jobs in flight and some done")
        d.workers[0].process.send_signal(signal.SIGKILL)
        others = await d.results(d.workers[1:])
    assert [(ok, failed) for ok, failed, _, _ in others] == [(JOBS, 0), (JOBS, 0)]
    assert sum(poll for _, _, _, poll in others) > 0  # their pushes went to a dead worker
    assert account.stats().peak_active["fast"] <= BUDGET


@pytest.mark.slow  # ~15 s; test_redis_faults.py shows the same promise in one process
async def test_redis_restarted_mid_run_never_overruns_the_budget(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    # The measurement, shortened: jobs of 2 s, leases of 6 s renewed every 2 s, and
    # requests waiting (retrying at least every second) when Redis restarts empty. Without the
    # hold after a lost epoch, a waiter that retries before the holders' next renewal finds the
    # budget free; with it, nothing is granted for one lease time.
    jobs, lease = 2, 6.0
    async with (
        FakeMidjourney(
            accent="csharp", core_size=BUDGET, queue_size=10, job_duration=2.0, progress_steps=5
        ) as account,
        deployment(own_redis.url, account, tmp_path, jobs=jobs, lease=lease) as d,
    ):
        await d.go()
        await wait_until(busy(account, at_least_done=0), timeout=60, what="jobs in flight")
        own_redis.stop()
        own_redis.start()  # empty: the leases of the three jobs in flight are gone

        results = await d.results(d.workers)
        assert [(ok, failed) for ok, failed, _, _ in results] == [(jobs, 0)] * 3
        assert account.stats().peak_active["fast"] <= BUDGET


async def test_redis_down_for_a_while_every_result_is_returned(
    own_redis: RedisServer, account: FakeMidjourney, tmp_path: Path
) -> None:
    async with deployment(own_redis.url, account, tmp_path) as d:
        await d.go()
        await wait_until(busy(account), timeout=60, what="jobs in flight and some done")
        own_redis.stop()

        async def stuck_without_redis() -> bool:
            # The jobs that held slots ended (followed without Redis); every worker has
            # noticed the outage and waits for Redis to take the next slot.
            noticed = all("acquisitions retry" in worker.stderr.read_text() for worker in d.workers)
            return noticed and account.stats().active["fast"] == 0

        await wait_until(stuck_without_redis, timeout=30, what="every worker waits for Redis")
        await anyio.sleep(OUTAGE)  # the outage's length is the fault under test
        own_redis.start()
        results = await d.results(d.workers)
    assert [(ok, failed) for ok, failed, _, _ in results] == [(JOBS, 0)] * 3
    stats = account.stats()
    assert stats.finished.get("SUCCESS", 0) == 3 * JOBS
    assert stats.peak_active["fast"] <= BUDGET
