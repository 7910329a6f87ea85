"""gather() follows jobs without a task each; polls follow a job's estimated end; submits are
started a connection pool's worth at a time."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import mjasync
from mjasync.testing import FakeMidjourney

from .conftest import KEY, fast_client

pytestmark = pytest.mark.anyio


async def wait_until(predicate, timeout: float = 5.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.005)


def in_flight(client: mjasync.Client) -> int:
    mode = client.statistics().mode("fast")
    return mode.in_flight if mode else 0


async def test_cancelling_gather_abandons_its_jobs_and_frees_their_slots_once_cancelled():
    # A --slow job takes 10 x 0.4 s here: the slots must come back long before that.
    async with (
        FakeMidjourney(api_keys=(KEY,), job_duration=0.4, progress_steps=4) as fake,
        fast_client(fake, concurrency=3) as client,
    ):
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.gather, [mjasync.Imagine(f"owl {i} --slow") for i in range(3)])
            await wait_until(lambda: in_flight(client) == 3 and len(fake.task_ids()) == 3)
            tg.cancel_scope.cancel()
        assert client.statistics().jobs_abandoned == 3
        assert in_flight(client) == 3  # held until the server says the jobs ended
        # The C# accent can cancel upstream: the abandoned jobs are cancelled there, and the
        # slots come back then, long before the --slow jobs would have ended (4 s).
        with anyio.fail_after(2.5):
            await wait_until(lambda: in_flight(client) == 0)
        assert fake.stats().requests.get("cancel", 0) == 3
        assert (await client.imagine("after")).status is mjasync.TaskStatus.SUCCESS


async def test_gather_keeps_a_job_another_consumer_walks_away_from(fake, make_client):
    results: list[Any] = []
    async with make_client(concurrency=1) as client, anyio.create_task_group() as tg:

        async def run() -> None:
            results.extend(await client.gather([mjasync.Imagine("shared --slow")]))

        tg.start_soon(run)
        await wait_until(lambda: len(fake.task_ids()) == 1 and in_flight(client) == 1)
        other = client.job(fake.task_ids()[0])
        with anyio.move_on_after(0.05):
            async for _ in other.events():  # a second consumer gives up early ...
                pass
        # ... and gather, still following the job, gets its result: it was not abandoned.
    assert [r.status for r in results] == [mjasync.TaskStatus.SUCCESS]
    assert fake.stats().requests.get("cancel", 0) == 0


async def test_a_long_job_is_polled_by_its_estimated_end_not_every_interval():
    # 1.2 s of progress in 12 steps, polled every 20 ms at most 80 ms apart: every change
    # would reset the pace to 20 ms; following the estimated end keeps it near 80 ms.
    async with (
        FakeMidjourney(api_keys=(KEY,), job_duration=1.2, progress_steps=12) as fake,
        fast_client(fake) as client,
    ):
        events = [e async for e in (await client.submit(mjasync.Imagine("a long one"))).events()]
        rounds = client.statistics().poll_rounds
    assert events[-1].status is mjasync.TaskStatus.SUCCESS
    progress = [e.progress for e in events if e.status is mjasync.TaskStatus.IN_PROGRESS]
    assert progress == sorted(progress) and len(set(progress)) >= 3  # progress was followed
    assert rounds <= 30, rounds  # ~20 here; polling on change alone took ~40


async def test_gather_starts_only_a_pool_of_submits_at_once():
    """10,000 queued jobs must not be 10,000 suspended tasks: submits start 100 at a time."""
    release = asyncio.Event()
    seen = 0

    async def submit(_: web.Request) -> web.Response:
        nonlocal seen
        seen += 1
        number = seen
        await release.wait()
        return web.json_response({"code": 1, "description": "ok", "result": str(number)})

    async def listing(request: web.Request) -> web.Response:
        ids = (await request.json())["ids"]
        return web.json_response([{"id": i, "status": "SUCCESS", "progress": "100%"} for i in ids])

    app = web.Application()
    app.router.add_post("/mj/submit/imagine", submit)
    app.router.add_post("/mj/task/list-by-condition", listing)
    async with TestServer(app, host="127.0.0.1") as server:
        url = str(server.make_url("")).rstrip("/")
        client = mjasync.Client(url, KEY, mode=None, concurrency=300, poll_interval=0.02)
        results: list[Any] = []
        async with client, anyio.create_task_group() as tg:

            async def run() -> None:
                results.extend(await client.gather(mjasync.Imagine(f"p{i}") for i in range(300)))

            tg.start_soon(run)
            await wait_until(lambda: seen == 100)
            for _ in range(20):  # let anything else that would start, start
                await anyio.lowlevel.checkpoint()
            busy = sum(  # the client's tasks (and the test's), not the server's handlers
                1
                for t in asyncio.all_tasks()
                if not t.get_coro().__qualname__.startswith("RequestHandler")
            )
            release.set()
    assert seen == 300 and all(isinstance(r, mjasync.Task) for r in results)
    # 100 submit tasks and a few of the client's and the test's own; without the permits
    # all 300 submits would be tasks at once, most of them waiting for a connection.
    assert busy < 150, busy
