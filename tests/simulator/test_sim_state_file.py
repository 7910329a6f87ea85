"""``FakeMidjourney(state_file=...)``: a simulated server that stops and starts again.

The ``mjasync`` command line runs a fresh simulator per command; with a state file the tasks
of the last command are still there, so a simulated batch resumes like a real one.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from mjasync.testing import FakeMidjourney

from ._helpers import KEY, wait_until

pytestmark = pytest.mark.anyio

SLOW = {"job_duration": 0.6, "progress_steps": 5, "core_size": 1, "queue_size": 5}


async def _submit(session: aiohttp.ClientSession, fake: FakeMidjourney, prompt: str) -> str:
    async with session.post(
        f"{fake.base_url}/mj/submit/imagine",
        json={"prompt": prompt, "base64Array": []},
        headers={"mj-api-secret": KEY},
    ) as resp:
        body = await resp.json()
    return str(body["result"])


async def test_tasks_survive_a_restart_where_they_were(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    state = tmp_path / "sim.jsonl"
    async with FakeMidjourney(state_file=state, **SLOW) as first:
        running = await _submit(session, first, "a red fox")
        queued = await _submit(session, first, "a blue whale")
        progress = await wait_until(
            lambda: (
                (first.task(running) or {}).get("progress") not in ("", "0%", None)
                and first.task(running)["progress"]
            )
        )
        assert first.task(queued)["status"] == "NOT_START"

    async with FakeMidjourney(state_file=state, **SLOW) as second:
        again = second.task(running)
        assert again is not None
        assert again["status"] == "IN_PROGRESS"
        assert again["progress"] == progress  # the clock stopped while it was down
        assert second.task(queued)["status"] == "NOT_START"
        await wait_until(lambda: second.task(queued)["status"] == "SUCCESS", timeout=10)
        finished = second.task(running)
        assert finished["status"] == "SUCCESS"
        assert [b["label"] for b in finished["buttons"]][:4] == ["U1", "U2", "U3", "U4"]
        async with session.get(finished["imageUrl"]) as resp:  # on the new port
            assert resp.status == 200
            assert (await resp.read()).startswith(b"\x89PNG")
        fresh = await _submit(session, second, "a green tree")
        assert fresh not in (running, queued)

    async with FakeMidjourney(state_file=state, **SLOW) as third:
        assert third.task(running)["status"] == "SUCCESS"
        assert third.task(fresh) is not None  # tasks of the second run were kept too
        third.forget_all_tasks()
    async with FakeMidjourney(state_file=state, **SLOW) as fourth:
        assert fourth.task_ids() == []


async def test_a_torn_last_line_is_skipped(session: aiohttp.ClientSession, tmp_path: Path) -> None:
    state = tmp_path / "sim.jsonl"
    async with FakeMidjourney(state_file=state, job_duration=0.02) as first:
        task_id = await _submit(session, first, "a red fox")
        await wait_until(lambda: first.task(task_id)["status"] == "SUCCESS")
    with state.open("a", encoding="utf-8") as file:
        file.write('{"id": "17000", "status": "IN_PRO')  # a process killed mid-write
    async with FakeMidjourney(state_file=state) as second:
        assert second.task_ids() == [task_id]
        assert second.task(task_id)["status"] == "SUCCESS"
