"""Scale: 10,000 live tasks over real HTTP, advanced by the timeline, listed in O(ids)."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import anyio
import pytest

from mjasync.testing import FakeMidjourney

pytestmark = pytest.mark.anyio

N = 10_000


async def test_ten_thousand_live_tasks():
    async with (
        FakeMidjourney(
            core_size=N, queue_size=0, job_duration=4.0, progress_steps=5, api_keys=None
        ) as fake,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as session,
    ):
        url = fake.base_url
        ids: list[str] = []

        async def submit_range(start: int) -> None:
            for i in range(start, N, 32):
                async with session.post(
                    f"{url}/mj/submit/imagine", json={"prompt": f"p{i}"}
                ) as resp:
                    ids.append((await resp.json())["result"])

        started = time.perf_counter()
        await asyncio.gather(*(submit_range(k) for k in range(32)))
        submit_s = time.perf_counter() - started
        stats = fake.stats()
        assert len(ids) == N and stats.accepted == N
        assert stats.peak_active["fast"] > N * 0.9  # most are live at once

        # Listing 100 ids is cheap however many tasks are live.
        started = time.perf_counter()
        seen = 0
        for i in range(0, N, 100):
            async with session.post(
                f"{url}/mj/task/list-by-condition", json={"ids": ids[i : i + 100]}
            ) as resp:
                seen += len(await resp.json())
        list_s = time.perf_counter() - started
        assert seen == N

        # While every task moves through its progress steps, the loop stays responsive.
        worst_lag = 0.0
        with anyio.fail_after(20):
            while fake.stats().finished.get("SUCCESS") != N:
                before = time.perf_counter()
                await anyio.sleep(0.01)
                worst_lag = max(worst_lag, time.perf_counter() - before - 0.01)
        assert worst_lag < 0.5
        print(
            f"\n{N} tasks: submit {N / submit_s:.0f}/s over HTTP, "
            f"list-by-condition {N / list_s:.0f} tasks/s (100 ids per call), "
            f"worst loop lag while they finish {worst_lag * 1000:.0f} ms"
        )
