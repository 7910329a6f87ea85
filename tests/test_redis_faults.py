"""RedisLimiter through Redis faults, in one process against a real redis-server.

A blip is ridden out (acquisitions wait and retry), a long outage ends in ``LimiterError`` in
each request's own place, and a restart that lost the leases does not let a waiter take a slot
before the holders have re-asserted theirs. The same promises across three worker processes
are in ``test_redis_bus_e2e.py``.
"""

from __future__ import annotations

import logging
import time

import anyio
import pytest
import redis.asyncio

import mjasync
from mjasync import LimiterError
from mjasync._integrations.redis_limiter import RedisLimiter, outage_retry_delay
from mjasync._jobs.limiter import Slot
from mjasync.testing import FakeMidjourney
from redis_server import RedisServer
from redis_support import MARGIN, live_leases, unique_name, wait_until

pytestmark = [pytest.mark.redis, pytest.mark.anyio]

KEY = "sk-test"


def test_outage_retry_delay_backs_off_within_the_budget() -> None:
    top = [outage_retry_delay(n, 100.0, lambda: 1.0) for n in range(8)]
    assert top == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]
    assert outage_retry_delay(3, 100.0, lambda: 0.0) == 0.2  # jitter halves at most
    assert outage_retry_delay(9, 0.25, lambda: 1.0) == 0.25  # never past the deadline
    assert outage_retry_delay(400, 100.0, lambda: 1.0) == 1.0  # no overflow


async def test_an_acquisition_rides_out_a_short_outage(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    name = unique_name()
    limiter = RedisLimiter(
        own_redis.url, name=name, lease_seconds=1.0, connect_timeout=1.0, outage_timeout=20
    )
    got: list[Slot] = []
    with caplog.at_level(logging.INFO, logger="mjasync.redis"):
        async with limiter:
            first = await limiter.acquire("fast")
            own_redis.stop()

            async def take() -> None:
                got.append(await limiter.acquire("fast"))

            async def outage_noticed() -> bool:
                return "acquisitions retry for up to 20 s" in caplog.text

            async with anyio.create_task_group() as tg:
                tg.start_soon(take)
                await wait_until(outage_noticed, what="the limiter noticed the outage")
                own_redis.start()
            assert len(got) == 1
            store = redis.asyncio.Redis.from_url(own_redis.url)
            try:
                # The held lease was re-asserted after the restart, next to the new one.
                leases = sorted(await live_leases(store, name))
                assert leases == sorted([str(first.lease_id), str(got[0].lease_id)])
            finally:
                await store.aclose()
    warnings = [r for r in caplog.records if "acquisitions retry" in r.getMessage()]
    assert len(warnings) == 1  # one warning per outage, however many calls failed
    assert "answers again" in caplog.text


async def test_an_acquisition_gives_up_after_outage_timeout(own_redis: RedisServer) -> None:
    limiter = RedisLimiter(
        own_redis.url, name=unique_name(), lease_seconds=0.5, connect_timeout=1.0,
        outage_timeout=0.5,
    )  # fmt: skip
    async with limiter:
        own_redis.stop()
        started = time.monotonic()
        with anyio.fail_after(0.5 + MARGIN), pytest.raises(LimiterError, match="outage_timeout"):
            await limiter.acquire("fast")
        assert time.monotonic() - started >= 0.5  # it did wait
        started = time.monotonic()
        with pytest.raises(LimiterError, match="unreachable"):
            await limiter.acquire("fast")
        assert time.monotonic() - started < 0.5  # the outage is known: no second wait
        own_redis.start()

        async def acquired() -> bool:
            try:
                slot = await limiter.acquire("fast")
            except LimiterError:
                return False  # within a second of the last failed probe
            await limiter.release(slot)
            return True

        await wait_until(acquired, timeout=5, what="the limiter recovered")


async def test_a_restart_does_not_let_a_waiter_overrun_the_budget(own_redis: RedisServer) -> None:
    # The measurement: Redis restarted without persistence; the held leases vanished
    # and waiters took new ones: 6 jobs on a budget of 3. Here the holder's renewals are driven
    # by hand, so the waiter certainly tries the empty Redis before the holder re-asserts.
    name = unique_name()
    holder = RedisLimiter(own_redis.url, name=name, lease_seconds=30)
    waiter = RedisLimiter(own_redis.url, name=name, lease_seconds=1.0, outage_timeout=20)
    async with holder, waiter:
        assert holder._timer is not None
        await holder._timer.aclose()  # renew only when the test says so
        held = [await holder.acquire("fast") for _ in range(3)]
        got: list[Slot] = []

        async def wait_for_a_slot() -> None:
            got.append(await waiter.acquire("fast"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_for_a_slot)
            async with redis.asyncio.Redis.from_url(own_redis.url) as probe:

                async def refused_and_listening() -> bool:
                    channel = f"mjasync:{{{name}}}:fast:released"
                    ((_, count),) = await probe.pubsub_numsub(channel)
                    return bool(count == 1)

                await wait_until(refused_and_listening, what="the waiter was refused")
            own_redis.stop()
            own_redis.start()
            store = redis.asyncio.Redis.from_url(own_redis.url)
            try:

                async def waiter_met_the_new_redis() -> bool:
                    return bool(got) or bool(await store.exists(f"mjasync:{{{name}}}:epoch"))

                await wait_until(waiter_met_the_new_redis, what="the waiter tried again")
                await holder._renew_all()  # the holder's next renewal re-asserts its leases
                assert got == [], "a slot was granted before the holder re-asserted its leases"
                assert len(await live_leases(store, name)) == 3
                await holder.release(held.pop())

                async def granted() -> bool:
                    return bool(got)

                # The hold is one lease time of the waiter, which noticed the loss.
                await wait_until(granted, timeout=1.0 + MARGIN, what="the freed slot granted")
                assert len(await live_leases(store, name)) == 3
            finally:
                await store.aclose()
        await waiter.release(got[0])


async def test_gather_returns_every_result_when_redis_stays_down(own_redis: RedisServer) -> None:
    # One slot; the first job holds it when Redis goes away for good. That job is followed to
    # its end; the two that never get a slot fail in their own places, after outage_timeout.
    limiter = RedisLimiter(
        own_redis.url, name=unique_name(), concurrency=1, lease_seconds=1.0,
        connect_timeout=1.0, outage_timeout=0.3,
    )  # fmt: skip
    async with (
        FakeMidjourney(api_keys=(KEY,), job_duration=0.6, progress_steps=3) as fake,
        mjasync.Client(fake.base_url, KEY, limiter=limiter, poll_interval=0.05) as client,
    ):

        async def stop_redis_mid_job() -> None:
            async def first_job_running() -> bool:
                return fake.stats().active.get("fast", 0) == 1

            await wait_until(first_job_running, what="the first job is in flight")
            own_redis.stop()

        async with anyio.create_task_group() as tg:
            tg.start_soon(stop_redis_mid_job)
            with anyio.fail_after(10):
                results = await client.gather(mjasync.Imagine(f"cat {i}") for i in range(3))
    assert isinstance(results[0], mjasync.Task)
    assert results[0].status == "SUCCESS"
    assert [type(result) for result in results[1:]] == [LimiterError, LimiterError]
    assert fake.stats().accepted == 1
