"""The naive client: the documented curl flow done the obvious way.

A semaphore of ``concurrency`` jobs; per job: ``POST /mj/submit/imagine``, then every
``poll_interval`` seconds ``GET /mj/task/{id}/fetch`` until SUCCESS, FAILURE or CANCEL. A
queue-full answer (code 23, C's code 9 "队列已满", HTTP 429) sleeps one interval and resubmits.
One ``aiohttp.ClientSession`` with its defaults (100 connections), like most scripts.

    python -m benchmarks.naive --url http://127.0.0.1:PORT --n 1000 --concurrency 1000
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from ._common import Meter, parse_args

TERMINAL = ("SUCCESS", "FAILURE", "CANCEL")


def _queue_full(status: int, answer: Any) -> bool:
    if status == 429:
        return True
    if not isinstance(answer, dict):
        return False
    code = answer.get("code")
    return code == 23 or (code == 9 and "队列已满" in str(answer.get("description")))


async def run(url: str, key: str, mode: str, n: int, concurrency: int, poll: float) -> list[Any]:
    """Run ``n`` imagine jobs to the end; returns the final task dicts."""
    base = f"{url}/mj-{mode}/mj"
    gate = asyncio.Semaphore(concurrency)

    async def job(session: aiohttp.ClientSession, i: int) -> Any:
        async with gate:
            while True:
                async with session.post(
                    f"{base}/submit/imagine", json={"prompt": f"prompt {i}"}
                ) as resp:
                    answer = await resp.json(content_type=None)
                    status = resp.status
                if _queue_full(status, answer):
                    await asyncio.sleep(poll)
                    continue
                if answer.get("code") not in (1, 21, 22):
                    raise RuntimeError(f"submit refused: {answer}")
                task_id = str(answer["result"])
                break
            while True:
                await asyncio.sleep(poll)
                async with session.get(f"{base}/task/{task_id}/fetch") as resp:
                    task = await resp.json(content_type=None)
                if task.get("status") in TERMINAL:
                    return task

    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        return await asyncio.gather(*(job(session, i) for i in range(n)))


def main() -> None:
    args = parse_args(__doc__ or "")
    meter = Meter()
    meter.start()
    tasks = asyncio.run(
        run(args.url, args.key, args.mode, args.n, args.concurrency, args.poll_interval)
    )
    ok = sum(1 for task in tasks if task.get("status") == "SUCCESS")
    meter.report(ok=ok, failed=args.n - ok)


if __name__ == "__main__":
    main()
