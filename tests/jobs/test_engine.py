"""The job engine's contract as users meet it: arguments, observers, and honest statistics."""

from __future__ import annotations

from contextlib import aclosing
from pathlib import Path
from typing import Any

import anyio
import pytest

import mjasync
from mjasync._jobs.limiter import LocalLimiter
from mjasync.testing import FakeMidjourney

from .conftest import KEY

pytestmark = pytest.mark.anyio


# -- arguments that would silently override each other -------------------------------------


@pytest.mark.parametrize(
    ("options", "names"),
    [
        ({"concurrency": 7, "limiter": LocalLimiter(2)}, ("concurrency", "limiter")),
        ({"concurrency": 3, "limiter": LocalLimiter(3)}, ("concurrency", "limiter")),
        (
            {"poll_interval": 0.5, "poll_settings": mjasync.PollSettings(interval=5.0)},
            ("poll_interval", "poll_settings"),
        ),
        (
            {"stall_timeout": 60, "poll_settings": mjasync.PollSettings()},
            ("stall_timeout", "poll_settings"),
        ),
        ({"max_retries": 5, "retry": mjasync.RetryPolicy()}, ("max_retries", "retry")),
    ],
    ids=["concurrency+limiter", "same-value", "interval+settings", "stall+settings", "retries"],
)
def test_conflicting_arguments_raise_type_error_naming_both(options, names) -> None:
    with pytest.raises(TypeError) as caught:
        mjasync.Client("http://127.0.0.1:9", KEY, **options)
    assert all(f"{name}=" in str(caught.value) for name in names), caught.value


def test_each_argument_alone_takes_effect() -> None:
    assert mjasync.Client("http://127.0.0.1:9", KEY, poll_interval=0.5).poll_interval == 0.5
    settings = mjasync.PollSettings(interval=5.0, max_interval=20.0)
    assert mjasync.Client("http://127.0.0.1:9", KEY, poll_settings=settings).poll_interval == 5.0
    limited = mjasync.Client("http://127.0.0.1:9", KEY, limiter=LocalLimiter(2))
    assert limited.engine.limiter.limit("fast") == 2
    assert mjasync.Client("http://127.0.0.1:9", KEY, concurrency=7).engine.limiter.limit(None) == 7


# -- observers follow a job without owning it ----------------------------------------------


async def test_an_observer_that_leaves_early_does_not_abandon_the_job(fake, make_client) -> None:
    async with make_client() as client:
        job = await client.submit(mjasync.Imagine("watched from afar"))
        async with aclosing(job.observe()) as events:
            async for _ in events:
                break  # an observer walks away ...
        with anyio.move_on_after(0.01):
            async for _ in job.observe():  # ... another is cancelled mid-wait ...
                pass
        task = await job.result()  # ... and the job goes on to its end.
        stats = client.statistics()
    assert task.status is mjasync.TaskStatus.SUCCESS
    assert stats.jobs_abandoned == 0
    assert fake.stats().requests.get("cancel", 0) == 0


async def test_done_callbacks_see_the_outcome_and_a_failing_one_harms_nobody(make_client) -> None:
    seen: list[Any] = []

    def boom(job: mjasync.Job) -> None:
        raise RuntimeError("a user's bug")

    async with make_client() as client:
        job = await client.submit(mjasync.Imagine("with callbacks"))
        job.add_done_callback(boom)
        job.add_done_callback(lambda j: seen.append(j.outcome()))
        task = await job.result()
        job.add_done_callback(lambda j: seen.append("late"))  # already done: called at once
        other = await client.imagine("the client still works")
    assert seen == [task, "late"]
    assert other.status is mjasync.TaskStatus.SUCCESS


# -- statistics count every job once, on every path ----------------------------------------


async def _paths(client: mjasync.Client, fake: FakeMidjourney, tmp_path: Path) -> None:
    await client.imagine("run")  # run()
    job = await client.submit(mjasync.Imagine("submit then result"))
    await job.result()
    job = await client.submit(mjasync.Imagine("submit then events"))
    _ = [event async for event in job.events()]
    await client.gather([mjasync.Imagine("gather ok"), mjasync.Imagine("gather --fail")])
    _ = [event async for event in client.stream([mjasync.Imagine("stream ok")])]
    sub = await client.submit_imagine("watched")
    _ = [event async for event in client.watch([sub.task_id or ""])]
    await mjasync.run_batch(client, [mjasync.Imagine("batch ok")], out_dir=tmp_path / "b")
    with pytest.raises(mjasync.BannedPromptError):
        await client.imagine("some gore here")


async def test_statistics_count_each_job_once_whichever_way_it_was_followed(
    fake, make_client, tmp_path: Path
) -> None:
    async with make_client(concurrency=3) as client:
        await _paths(client, fake, tmp_path)
        stats = client.statistics()
    # run, submit+result, submit+events, gather x2, stream, batch: 7 submitted jobs; one of
    # gather's fails. watch() re-attached a task submitted on the wire (not a job of ours to
    # count as submitted, but it ended, and is counted as it ended).
    assert stats.jobs_submitted == 7
    assert stats.jobs_succeeded == 7  # six of ours plus the watched one
    assert stats.jobs_failed == 1
    assert stats.submits_failed == 1  # the banned prompt
    assert stats.jobs_abandoned == 0
    assert stats.watched == 0
