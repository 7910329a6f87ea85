"""A request that cannot get a slot fails in its own place; the others run to their ends.

The budget here is a real ``LocalLimiter`` that refuses chosen acquisitions with
``LimiterError``, as a ``RedisLimiter`` does once Redis stayed unreachable past its
``outage_timeout`` (``tests/test_redis_faults.py`` shows that with a real redis-server).
"""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

import mjasync
from mjasync import LimiterError
from mjasync._jobs.limiter import LocalLimiter, Slot
from mjasync.testing import FakeMidjourney

from .conftest import fast_client

pytestmark = pytest.mark.anyio


class FlakyBudget(LocalLimiter):
    """A local budget whose n-th acquisitions (1-based) raise ``LimiterError``."""

    def __init__(self, failing: set[int]) -> None:
        super().__init__(2)
        self.failing = failing
        self.calls = 0

    async def acquire(self, mode: str | None) -> Slot:
        self.calls += 1
        if self.calls in self.failing:
            await anyio.lowlevel.checkpoint()
            raise LimiterError(f"acquisition {self.calls}: the store is unreachable")
        return await super().acquire(mode)


async def test_gather_puts_the_limiter_error_in_its_own_place(fake: FakeMidjourney) -> None:
    async with fast_client(fake, limiter=FlakyBudget({3, 5})) as client:
        results = await client.gather(mjasync.Imagine(f"cat {i}") for i in range(6))
        in_flight = client.statistics().mode("fast").in_flight
    kinds = [type(result).__name__ for result in results]
    assert kinds == ["Task", "Task", "LimiterError", "Task", "LimiterError", "Task"]
    assert "the store is unreachable" in str(results[2])
    assert fake.stats().accepted == 4  # the refused two were never sent
    assert in_flight == 0


async def test_stream_yields_the_limiter_error_as_an_event(fake: FakeMidjourney) -> None:
    async with fast_client(fake, limiter=FlakyBudget({2})) as client:
        ended: list[mjasync.ProgressEvent] = []
        async for event in client.stream(mjasync.Imagine(f"dog {i}") for i in range(4)):
            if event.is_terminal:
                ended.append(event)
    errors = [event for event in ended if event.task_id is None]
    assert len(ended) == 4
    assert [type(event.error) for event in errors] == [LimiterError]
    assert errors[0].request == mjasync.Imagine("dog 1")
    assert sum(1 for event in ended if event.status == "SUCCESS") == 3


async def test_submit_raises_it(fake: FakeMidjourney) -> None:
    async with fast_client(fake, limiter=FlakyBudget({1})) as client:
        with pytest.raises(LimiterError):
            await client.submit(mjasync.Imagine("bird"))
        job = await client.submit(mjasync.Imagine("bird"))
        assert (await job.result()).status == "SUCCESS"
