"""A push can hurry an end, never forge one.

The attacker here is whoever can POST to the hook URL with its secret (a leaked URL, a
hostile relay, a replaying proxy). Pushes that claim an end are checked with the server (a
poll) before a job ends; the server's word wins.
"""

from __future__ import annotations

import json

import aiohttp
import anyio
import pytest

import mjasync
from mjasync.testing import FakeMidjourney

pytestmark = pytest.mark.anyio

KEY = "sk-hostile-0123456789abcdef"


async def wait_until(predicate, timeout: float = 5.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.005)


@pytest.mark.parametrize(
    ("claim", "extra"),
    [
        ("SUCCESS", {"progress": "100%", "imageUrl": "http://169.254.169.254/latest"}),
        ("FAILURE", {"failReason": "forged failure"}),
        ("CANCEL", {}),
    ],
)
async def test_a_pushed_end_the_server_denies_ends_nothing(claim: str, extra: dict) -> None:
    receiver = mjasync.WebhookReceiver(secret="forged-push-secret-0123456789ab")
    async with (
        FakeMidjourney(api_keys=(KEY,), job_duration=0.05) as fake,
        # Polling is slow on purpose: whatever ends the job within the test came from a push
        # (and its confirmation).
        mjasync.Client(fake.base_url, KEY, webhook=receiver, poll_interval=30.0) as client,
        aiohttp.ClientSession() as session,
    ):
        job = await client.submit(mjasync.Imagine("a fortress --stall"))  # 37% for good
        events: list[mjasync.ProgressEvent] = []

        async def follow() -> None:
            events.extend([e async for e in job.observe()])

        async with anyio.create_task_group() as tg:
            tg.start_soon(follow)
            forged = {"id": job.id, "status": claim, **extra}
            for _ in range(3):  # replayed, too
                async with session.post(receiver.notify_url, data=json.dumps(forged)) as resp:
                    assert resp.status == 200  # the right secret: taken as a hint ...
            await wait_until(lambda: client.statistics().push_ends_refuted >= 1)
            assert not job.done  # ... and refuted by the server
            fake.finish_task(job.id)  # the real end: pushed by the server, then confirmed
            with anyio.fail_after(5):
                task = await job.result()
        stats = client.statistics()
    assert task.status is mjasync.TaskStatus.SUCCESS
    assert "169.254" not in (task.image_url or "")
    assert [e.status for e in events if e.is_terminal] == [mjasync.TaskStatus.SUCCESS]
    assert stats.completed_by_push == 1 and stats.jobs_failed == 0
    # Each confirmation is one batched list request, not a fetch per push.
    assert stats.fetches == 0 and stats.polls <= 4
