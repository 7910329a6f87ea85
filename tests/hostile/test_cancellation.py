"""A paid job is never orphaned by cancellation, and a cancel storm never overruns the budget.

Against :mod:`tests.hostile.slow_server`: the task exists upstream before the submit's answer
arrives, so a caller cancelled in between (``asyncio.wait_for``, an anyio scope) leaves a paid
job behind unless the client finishes the POST on its own and abandons the job properly:
cancelled upstream, its slot held until the server says it ended, its id logged and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

import anyio
import pytest

import mjasync

from .slow_server import SlowProxy

pytestmark = pytest.mark.anyio

KEY = "sk-hostile-0123456789abcdef"


def client_for(proxy: SlowProxy, **options: object) -> mjasync.Client:
    return mjasync.Client(
        proxy.base_url,
        KEY,
        poll_interval=0.02,
        retry=mjasync.RetryPolicy(max_retries=2, base_delay=0.01),
        **options,  # type: ignore[arg-type]
    )


def in_flight(client: mjasync.Client) -> int:
    mode = client.statistics().mode("fast")
    return mode.in_flight if mode else 0


async def wait_until(predicate, timeout: float = 5.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.005)


async def test_asyncio_wait_for_on_a_slow_submit_abandons_the_job_instead_of_losing_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="mjasync")
    async with (
        SlowProxy.serve(submit_delay=0.4, job_duration=30.0, cancel_delay=0.3) as proxy,
        client_for(proxy, concurrency=1) as client,
    ):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.submit(mjasync.Imagine("a slow answer")), 0.1)
        assert len(proxy.created) == 1  # the server made (and billed) the task meanwhile
        [task_id] = proxy.created
        # The POST finishes without its caller; the job is then abandoned, not forgotten.
        await wait_until(lambda: proxy.cancelled == [task_id])  # cancelled upstream ...
        assert client.statistics().jobs_abandoned == 1
        assert in_flight(client) == 1  # ... its slot held until the server says it ended,
        await wait_until(lambda: task_id in proxy.ended)
        await wait_until(lambda: in_flight(client) == 0)  # ... and freed once it did
        stats = client.statistics()
    assert stats.jobs_submitted == 1 and stats.jobs_abandoned == 1 and stats.jobs_failed == 1
    assert task_id in caplog.text and "abandoned" in caplog.text


async def test_an_anyio_cancelled_submit_is_abandoned_too() -> None:
    async with (
        SlowProxy.serve(submit_delay=0.3, job_duration=30.0) as proxy,
        client_for(proxy, concurrency=1) as client,
    ):
        with anyio.move_on_after(0.05):
            await client.submit(mjasync.Imagine("cancelled by a scope"))
        await wait_until(lambda: len(proxy.cancelled) == 1)
        await wait_until(lambda: in_flight(client) == 0)
        assert client.statistics().jobs_abandoned == 1


async def test_a_cancel_storm_never_puts_more_jobs_on_the_account_than_the_budget() -> None:
    budget, callers = 20, 400
    rng = random.Random(7)
    async with (
        SlowProxy.serve(submit_delay=0.02, job_duration=0.15, cancel_delay=0.02) as proxy,
        client_for(proxy, concurrency=budget) as client,
    ):

        async def caller(index: int) -> None:
            give_up = rng.uniform(0.0, 0.25)
            request = mjasync.Imagine(f"storm {index}")
            if index % 2:  # half by plain asyncio, half by anyio scopes
                with contextlib.suppress(TimeoutError, mjasync.MjError):
                    await asyncio.wait_for(client.run(request), give_up)
            else:
                with anyio.move_on_after(give_up), contextlib.suppress(mjasync.MjError):
                    await client.run(request)

        async with anyio.create_task_group() as tg:
            for index in range(callers):
                tg.start_soon(caller, index)
        await wait_until(lambda: in_flight(client) == 0, timeout=20)
        stats = client.statistics()
    assert proxy.peak_active <= budget, proxy.peak_active
    assert stats.jobs_abandoned > 0  # the storm did cancel jobs mid-flight
    # Every task the server created is accounted for: followed to its end or abandoned.
    assert stats.jobs_submitted == len(proxy.created)
    assert stats.jobs_succeeded + stats.jobs_failed == stats.jobs_submitted


async def test_waiting_for_a_slot_when_the_client_closes_raises_client_closed() -> None:
    async with SlowProxy.serve(submit_delay=0.0, job_duration=30.0) as proxy:
        client = client_for(proxy, concurrency=1)
        errors: list[BaseException] = []
        async with client:
            await client.submit(mjasync.Imagine("holds the only slot"))

            async def second() -> None:
                try:
                    await client.submit(mjasync.Imagine("waits for it"))
                except BaseException as exc:  # what escapes is the point of the test
                    errors.append(exc)

            async with anyio.create_task_group() as tg:
                tg.start_soon(second)
                await wait_until(lambda: client.statistics().modes[0].waiting_for_slot == 1)
                await client.aclose()
    assert len(errors) == 1 and isinstance(errors[0], mjasync.LimiterError), errors
    assert "closed" in str(errors[0])
    assert len(proxy.created) == 1  # the waiting request was never sent
