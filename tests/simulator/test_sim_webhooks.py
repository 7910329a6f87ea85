"""notifyHook: the task JSON is POSTed on every change, in the background, faults included."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from mjasync.testing import Faults

from ._helpers import wait_until

pytestmark = pytest.mark.anyio


class Receiver:
    """A loopback webhook receiver that records bodies and can be told to hang or fail."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.status = 200
        self.release = asyncio.Event()
        self.release.set()
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        await self.release.wait()
        self.bodies.append(body)
        return web.Response(status=self.status)

    def statuses(self, task_id: str) -> list[str]:
        return [b["status"] for b in self.bodies if b["id"] == task_id]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    app = web.Application()
    app.router.add_post("/hook/{secret}", recv.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    recv.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook/s3cret"
    yield recv
    recv.release.set()
    await runner.cleanup()


async def test_every_change_is_posted_with_the_full_task(make_sim, receiver):
    fake, api = await make_sim(job_duration=0.05, progress_steps=3)
    task_id = await api.imagine(notifyHook=receiver.url, state="abc")
    await wait_until(lambda: "SUCCESS" in receiver.statuses(task_id))
    await wait_until(lambda: fake.stats().webhooks_sent == len(receiver.bodies))
    statuses = receiver.statuses(task_id)
    assert statuses[0] == "SUBMITTED" and "IN_PROGRESS" in statuses
    progresses = [b["progress"] for b in receiver.bodies if b["status"] == "IN_PROGRESS"]
    assert len(progresses) == 4  # 0% plus three steps
    final = next(b for b in receiver.bodies if b["status"] == "SUCCESS")
    assert final == await api.fetch(task_id)  # the same JSON fetch shows
    assert final["state"] == "abc" and final["properties"]["notifyHook"] == receiver.url


async def test_posting_never_blocks_the_request_path(make_sim, receiver):
    _, api = await make_sim(job_duration=0.01)
    receiver.release.clear()  # the receiver hangs until released
    task_id = await api.imagine(notifyHook=receiver.url)
    # The job finishes and fetch answers while every post is still stuck.
    assert (await api.wait_status(task_id))["status"] == "SUCCESS"
    assert receiver.bodies == []
    receiver.release.set()
    await wait_until(lambda: "SUCCESS" in receiver.statuses(task_id))


async def test_failed_posts_are_counted(make_sim, receiver):
    fake, api = await make_sim(job_duration=0.01)
    receiver.status = 500
    await api.run(notifyHook=receiver.url)
    dead = "http://127.0.0.1:9/hook"  # discard port: connection refused
    await api.run("a dog", notifyHook=dead)
    await wait_until(lambda: fake.stats().webhooks_failed >= 8 and fake.webhooks_pending == 0)
    assert fake.stats().webhooks_sent == 0


async def test_drop_and_duplicate_faults(make_sim, receiver):
    fake, api = await make_sim(job_duration=0.01, progress_steps=0)
    fake.set_faults(Faults(webhook_drop=1.0))
    await api.run(notifyHook=receiver.url)
    assert fake.stats().webhooks_dropped == 3  # SUBMITTED, IN_PROGRESS, SUCCESS
    fake.set_faults(Faults(webhook_duplicate=1.0))
    task_id = await api.imagine("a dog", notifyHook=receiver.url)
    await wait_until(lambda: receiver.statuses(task_id).count("SUCCESS") == 2)
    assert fake.stats().webhooks_duplicated == 3
    await wait_until(lambda: len(receiver.statuses(task_id)) == 6)
    assert sorted(receiver.statuses(task_id)) == sorted(["SUBMITTED", "IN_PROGRESS", "SUCCESS"] * 2)


async def test_relay_strips_notify_hook_unless_told_otherwise(make_sim, receiver):
    fake, api = await make_sim(accent="relay", job_duration=0.01)
    task = await api.run(notifyHook=receiver.url)
    assert "notifyHook" not in task["properties"]
    # Another seed, so the two fakes' task ids differ.
    _, keeper_api = await make_sim(
        accent="relay", job_duration=0.01, relay_notify_hook=True, seed=1
    )
    kept = await keeper_api.run(notifyHook=receiver.url)
    await wait_until(lambda: "SUCCESS" in receiver.statuses(kept["id"]))
    assert receiver.statuses(task["id"]) == []
    assert fake.stats().webhooks_sent == 0
