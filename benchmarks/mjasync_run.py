"""mjasync: ``Client.gather`` over N imagine requests (slots + one batched poller).

    python -m benchmarks.mjasync_run --url http://127.0.0.1:PORT --n 1000 --concurrency 1000

Also reports what ``client.statistics()`` counted (requests, poll rounds, payloads parsed).
"""

from __future__ import annotations

import asyncio
from typing import Any

import mjasync

from ._common import Meter, parse_args


async def run(
    url: str, key: str, mode: str, n: int, concurrency: int, poll: float
) -> tuple[list[mjasync.Task | mjasync.MjError], Any]:
    """Run ``n`` imagine jobs to the end; returns the results and the client's statistics."""
    async with mjasync.Client(
        url, key, mode=mode, concurrency=concurrency, poll_interval=poll
    ) as client:
        results = await client.gather(mjasync.Imagine(f"prompt {i}") for i in range(n))
        return results, client.statistics()


def main() -> None:
    args = parse_args(__doc__ or "")
    meter = Meter()
    meter.start()
    results, stats = asyncio.run(
        run(args.url, args.key, args.mode, args.n, args.concurrency, args.poll_interval)
    )
    ok = sum(
        1 for r in results if isinstance(r, mjasync.Task) and r.status is mjasync.TaskStatus.SUCCESS
    )
    errors = sorted({type(r).__name__ for r in results if not isinstance(r, mjasync.Task)})
    meter.report(
        ok=ok,
        failed=args.n - ok,
        errors=errors,
        client={
            "requests": stats.requests,
            "retries": stats.retries,
            "submits": stats.submits,
            "polls": stats.polls,
            "fetches": stats.fetches,
            "poll_rounds": stats.poll_rounds,
            "parsed": stats.parsed,
            "events": stats.events,
            "queue_full": stats.queue_full,
        },
    )
    assert ok == args.n, f"{args.n - ok} of {args.n} jobs did not succeed: {errors}"


if __name__ == "__main__":
    main()
