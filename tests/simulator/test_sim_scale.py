"""Scale: 10,000 live tasks over real HTTP; a timeline that keeps up with thousands of jobs.

``-s`` prints the measured rates (the README quotes them).
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import anyio
import pytest

from mjasync.testing import FakeMidjourney

pytestmark = pytest.mark.anyio

N = 10_000
CONNECTIONS = 32


async def _submit_all(session: aiohttp.ClientSession, url: str, count: int) -> list[str]:
    ids: list[str] = []

    async def worker(start: int) -> None:
        for i in range(start, count, CONNECTIONS):
            async with session.post(f"{url}/mj/submit/imagine", json={"prompt": f"p{i}"}) as resp:
                ids.append((await resp.json())["result"])

    await asyncio.gather(*(worker(k) for k in range(CONNECTIONS)))
    return ids


async def test_ten_thousand_live_tasks():
    # Jobs outlast the test, so all 10,000 are live at once however slow the machine is.
    async with (
        FakeMidjourney(core_size=N, queue_size=0, job_duration=600, api_keys=None) as fake,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONNECTIONS)) as session,
    ):
        url = fake.base_url
        started = time.perf_counter()
        ids = await _submit_all(session, url, N)
        submit_s = time.perf_counter() - started
        stats = fake.stats()
        assert len(set(ids)) == N and stats.accepted == N
        assert stats.active["fast"] == stats.running["fast"] == stats.peak_running["fast"] == N

        started = time.perf_counter()
        seen = 0
        for i in range(0, N, 100):
            async with session.post(
                f"{url}/mj/task/list-by-condition", json={"ids": ids[i : i + 100]}
            ) as resp:
                tasks = await resp.json()
                assert {t["status"] for t in tasks} == {"IN_PROGRESS"}
                seen += len(tasks)
        list_s = time.perf_counter() - started
        assert seen == N

        started = time.perf_counter()
        for task_id in ids[:: N // 500]:
            async with session.get(f"{url}/mj/task/{task_id}/fetch") as resp:
                assert (await resp.json())["id"] == task_id
        fetch_s = time.perf_counter() - started
        print(
            f"\n{N} live tasks: submit {N / submit_s:.0f}/s, list-by-condition "
            f"{N / list_s:.0f} tasks/s (100 ids per call), fetch {500 / fetch_s:.0f}/s "
            f"(one connection)"
        )


async def test_timeline_keeps_up_with_thousands_of_transitions():
    count, steps = 3_000, 20
    async with (
        FakeMidjourney(
            core_size=count, queue_size=0, job_duration=1.0, progress_steps=steps, api_keys=None
        ) as fake,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONNECTIONS)) as session,
    ):
        await _submit_all(session, fake.base_url, count)
        # Every job passes steps + 2 transitions; meanwhile the loop must stay responsive.
        worst_lag = 0.0
        started = time.perf_counter()
        with anyio.fail_after(20):
            while fake.stats().finished.get("SUCCESS") != count:
                before = time.perf_counter()
                await anyio.sleep(0.01)
                worst_lag = max(worst_lag, time.perf_counter() - before - 0.01)
        assert worst_lag < 0.5
        print(
            f"\n{count} jobs ({count * (steps + 2)} transitions) all done "
            f"{time.perf_counter() - started:.1f} s after the last submit (job_duration 1 s), "
            f"worst event-loop lag {worst_lag * 1000:.0f} ms"
        )
