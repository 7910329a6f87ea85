"""Failures, timeouts, stalls, lost tasks, cancellation and closing with jobs in flight."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

import mjasync
from mjasync.testing import FakeMidjourney

from .conftest import KEY, fast_client

pytestmark = pytest.mark.anyio


async def in_flight(client: mjasync.Client) -> int:
    mode = client.statistics().mode("fast")
    return mode.in_flight if mode else 0


async def wait_until(predicate, timeout: float = 5.0) -> None:
    with anyio.fail_after(timeout):
        while not await predicate():
            await anyio.sleep(0.005)


async def test_failure_raises_task_failed_error(make_client):
    async with make_client() as client:
        with pytest.raises(mjasync.TaskFailedError) as caught:
            await client.imagine("a storm --fail")
        assert await in_flight(client) == 0
    error = caught.value
    assert error.task is not None and error.task.status is mjasync.TaskStatus.FAILURE
    assert error.fail_reason and error.task_id == error.task.id


async def test_timeout_abandons_the_job_and_frees_the_slot(make_client):
    async with make_client(concurrency=1) as client:
        with pytest.raises(mjasync.TaskTimeoutError) as caught:
            await client.run(mjasync.Imagine("a glacier --slow"), timeout=0.05)
        assert caught.value.task_id
        await wait_until(lambda: _zero(client))
        assert (await client.imagine("next")).status is mjasync.TaskStatus.SUCCESS


async def _zero(client: mjasync.Client) -> bool:
    return await in_flight(client) == 0


async def test_stalled_task_raises_stalled_error():
    async with (
        FakeMidjourney(api_keys=(KEY,), job_duration=0.05) as fake,
        fast_client(fake, stall_timeout=0.3) as client,
    ):
        with pytest.raises(mjasync.TaskStalledError) as caught:
            await client.imagine("a stone --stall")
        assert await in_flight(client) == 0
    assert caught.value.task is not None
    assert caught.value.task.status is mjasync.TaskStatus.IN_PROGRESS


async def test_a_server_restart_turns_jobs_into_lost_errors_not_hangs(fake, make_client):
    async with make_client(concurrency=3) as client:
        jobs = [await client.submit(mjasync.Imagine(f"ghost {i} --slow")) for i in range(3)]
        fake.forget_all_tasks()
        for job in jobs:
            with anyio.fail_after(5), pytest.raises(mjasync.TaskLostError):
                await job.result()
        assert await in_flight(client) == 0


async def test_cancelling_the_only_consumer_cancels_upstream_and_holds_the_slot_till_then():
    # A --slow job takes 10 x 0.4 s here: the slot must come back long before that.
    async with (
        FakeMidjourney(api_keys=(KEY,), job_duration=0.4, progress_steps=4) as fake,
        fast_client(fake, concurrency=1) as client,
    ):
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.imagine, "long --slow")
            await wait_until(lambda: _accepted(client))  # the job exists: now we cancel
            tg.cancel_scope.cancel()
        # Abandoned, not forgotten: the slot stays taken until the server says the job ended
        # (else the account would run more jobs than the budget) ...
        assert await in_flight(client) == 1
        assert client.statistics().jobs_abandoned == 1
        # ... and the C# accent has a cancel route, so that end comes long before the --slow
        # job's own (4 s): the next job gets the slot once the cancel is seen.
        with anyio.fail_after(2.5):
            task = await client.imagine("after")
        assert await _cancelled(fake)
    assert task.status is mjasync.TaskStatus.SUCCESS


async def _accepted(client: mjasync.Client) -> bool:
    return client.statistics().jobs_submitted == 1


async def _busy(client: mjasync.Client) -> bool:
    return await in_flight(client) == 1


async def _cancelled(fake: FakeMidjourney) -> bool:
    return fake.stats().requests.get("cancel", 0) >= 1


async def test_cancelling_one_consumer_keeps_the_others(make_client):
    async with make_client(concurrency=1) as client:
        job = await client.submit(mjasync.Imagine("shared --slow"))
        async with anyio.create_task_group() as tg:
            tg.start_soon(job.result)
            with anyio.move_on_after(0.02):
                await job.result()  # this consumer gives up ...
        # ... the other one (the task group above) got the result: the job was not killed.
        assert job.done and job.status is mjasync.TaskStatus.SUCCESS
        assert await in_flight(client) == 0


async def test_closing_the_client_with_jobs_in_flight(fake, make_client):
    client = make_client(concurrency=2)
    errors: list[BaseException] = []
    async with client:
        jobs = [await client.submit(mjasync.Imagine(f"slow {i} --slow")) for i in range(2)]

        async def wait(job: mjasync.Job) -> None:
            try:
                await job.result()
            except mjasync.TaskError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            for job in jobs:
                tg.start_soon(wait, job)
            await anyio.lowlevel.checkpoint()
            with anyio.fail_after(5):
                await client.aclose()
    assert len(errors) == 2 and all("closed" in str(e) for e in errors)
    with pytest.raises(RuntimeError, match="closed"):
        await client.submit_imagine("after close")
    with pytest.raises(mjasync.LimiterError):
        await client.submit(mjasync.Imagine("after close"))


async def test_job_api_needs_an_open_client(fake):
    client = fast_client(fake)
    with pytest.raises(RuntimeError, match="async with"):
        await client.imagine("not opened")
    assert fake.stats().requests.get("submit", 0) == 0
    await client.aclose()


async def test_relay_accent_end_to_end():
    async with (
        FakeMidjourney(
            api_keys=(KEY,), accent="relay", job_duration=0.05, relay_blank_status=0.03
        ) as fake,
        fast_client(fake, mode="relax", mode_path="/{mode}") as client,
    ):
        task = await client.imagine("a relay cat")
        up = await client.upscale(task, 2)
    assert task.status is mjasync.TaskStatus.SUCCESS and task.fail_reason is None
    assert up.action is mjasync.TaskAction.UPSCALE and up.image_url


async def test_java_accent_needs_no_mode(fake):
    async with (
        FakeMidjourney(api_keys=(KEY,), accent="java", job_duration=0.05) as java,
        fast_client(java, mode="fast") as client,
    ):
        with pytest.raises(mjasync.UnsupportedEndpointError, match="mode=None"):
            await client.imagine("prefixed")
    async with fast_client(java, mode=None) as client:
        pass
