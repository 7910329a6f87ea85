"""The floor: send the N imagine submits and track nothing.

The least work any client must do for N jobs: one POST each, its JSON answer read. The same
HTTP concurrency as mjasync (a semaphore of ``concurrency`` and aiohttp's connector limit of
100 connections, which is also what mjasync's transport uses).

    python -m benchmarks.floor --url http://127.0.0.1:PORT --n 1000 --concurrency 1000
"""

from __future__ import annotations

import asyncio

import aiohttp

from ._common import Meter, parse_args

ACCEPTED = (1, 21, 22)


async def run(url: str, key: str, mode: str, n: int, concurrency: int) -> int:
    """Submit ``n`` prompts; returns how many the server accepted."""
    endpoint = f"{url}/mj-{mode}/mj/submit/imagine"
    headers = {"Authorization": f"Bearer {key}"}
    gate = asyncio.Semaphore(concurrency)
    accepted = 0

    async def one(session: aiohttp.ClientSession, i: int) -> None:
        nonlocal accepted
        async with gate, session.post(endpoint, json={"prompt": f"prompt {i}"}) as resp:
            answer = await resp.json(content_type=None)
        if answer.get("code") in ACCEPTED:
            accepted += 1

    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
        await asyncio.gather(*(one(session, i) for i in range(n)))
    return accepted


def main() -> None:
    args = parse_args(__doc__ or "")
    meter = Meter()
    meter.start()
    accepted = asyncio.run(run(args.url, args.key, args.mode, args.n, args.concurrency))
    meter.report(ok=accepted, failed=args.n - accepted)


if __name__ == "__main__":
    main()
