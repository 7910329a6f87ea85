"""Push versus polling: event latency and poll requests, against the in-process simulator.

    python benchmarks/push.py                       # defaults: 30 jobs, poll 0.2 s, jobs 4.5 s
    python benchmarks/push.py --jobs 60 --poll-interval 0.5 --job-duration 10

The same jobs run twice on a fresh simulator each time: once with polling alone, once with a
``WebhookReceiver`` (the simulator POSTs every task change to ``notifyHook``; polling stays on
as the fallback). Measured:

* delay: from the simulator's state change to the client's event for it. The simulator does
  not timestamp its transitions, so this script wraps its change callback and records
  ``time.monotonic()`` there (the asyncio loop clock is the same clock).
* poll requests: fetch + list-by-condition requests the simulator served. The client runs
  with ``list_batch_size=1`` so that one request asks for exactly one task: requests are then
  task polls, not an artefact of batching.

Prints a markdown table row per run and one summary row; exits 1 if a target is missed
(median push delay <= 20 ms; push-healthy jobs polled >= 5x less).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import mjasync
from mjasync._integrations.webhook import (
    WebhookReceiver,  # also mjasync.WebhookReceiver once exported
)
from mjasync.testing import FakeMidjourney

KEY = "sk-test"
DELAY_TARGET_MS = 20.0
POLL_CUT_TARGET = 5.0


def _key(task_id: str, status: str, progress: int | None) -> tuple[str, str, int | None]:
    # Progress only distinguishes IN_PROGRESS steps; other states are one change each.
    return (task_id, status, progress if status == "IN_PROGRESS" else None)


def _record_changes(fake: FakeMidjourney) -> dict[tuple[str, str, int | None], float]:
    """Timestamp every state change of the simulator (first time each state is reached)."""
    changes: dict[tuple[str, str, int | None], float] = {}
    engine = fake._engine  # the simulator exposes no transition times; wrap its callback
    original: Callable[[Any], None] = engine.on_change

    def on_change(task: Any) -> None:
        changes.setdefault(_key(task.id, task.status, task.progress), time.monotonic())
        original(task)

    engine.on_change = on_change
    return changes


async def run(args: argparse.Namespace, *, push: bool) -> dict[str, Any]:
    """One run of ``args.jobs`` jobs; returns the delays and the request counts."""
    async with FakeMidjourney(
        api_keys=(KEY,),
        core_size=args.concurrency,
        queue_size=args.jobs,
        job_duration=args.job_duration,
        progress_steps=args.progress_steps,
    ) as fake:
        changes = _record_changes(fake)
        receiver = WebhookReceiver() if push else None
        seen: list[tuple[tuple[str, str, int | None], float, str]] = []
        async with mjasync.Client(
            fake.base_url,
            KEY,
            concurrency=args.concurrency,
            poll_interval=args.poll_interval,
            list_batch_size=1,
            webhook=receiver,
        ) as client:
            requests = (mjasync.Imagine(f"bench {i}") for i in range(args.jobs))
            async for event in client.stream(requests):
                if event.task_id is None or event.source == "submit":
                    continue
                key = _key(event.task_id, event.status.value, event.progress)
                seen.append((key, time.monotonic(), event.source))
            stats = client.statistics()
        served = fake.stats().requests
    delays = [(at - changes[key]) * 1000 for key, at, _ in seen if key in changes]
    return {
        "mode": "push + polling" if push else "polling alone",
        "jobs": args.jobs,
        "ok": stats.jobs_succeeded,
        "events": len(seen),
        "by_push": sum(1 for _, _, source in seen if source == "push"),
        "median_ms": statistics.median(delays) if delays else float("nan"),
        "p90_ms": statistics.quantiles(delays, n=10)[-1] if len(delays) > 1 else float("nan"),
        "p99_ms": statistics.quantiles(delays, n=100)[-1] if len(delays) > 1 else float("nan"),
        "delays": delays,
        "polls": served.get("list", 0) + served.get("fetch", 0),
        "completed_by_push": stats.completed_by_push,
        "completed_by_poll": stats.completed_by_poll,
    }


def _row(result: dict[str, Any], args: argparse.Namespace) -> str:
    per_job = result["polls"] / max(1, result["jobs"])
    return (
        f"| {result['mode']} | {result['jobs']} | {args.poll_interval:g} s "
        f"| {args.job_duration:g} s | {result['median_ms']:.1f} ms | {result['p90_ms']:.1f} ms "
        f"| {result['polls']} ({per_job:.1f}/job) "
        f"| {result['completed_by_push']} / {result['completed_by_poll']} |"
    )


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--poll-interval", type=float, default=0.2, help="client base interval")
    parser.add_argument("--job-duration", type=float, default=4.5, help="seconds per job")
    parser.add_argument("--progress-steps", type=int, default=10)
    args = parser.parse_args(argv)

    polling = await run(args, push=False)
    pushed = await run(args, push=True)
    print(
        "| run | jobs | poll interval | job | median delay | p90 delay "
        "| poll requests | done by push / poll |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(_row(polling, args))
    print(_row(pushed, args))
    cut = polling["polls"] / max(1, pushed["polls"])
    print(
        f"\nnotifyHook push: median delay {pushed['median_ms']:.1f} ms "
        f"(polling alone {polling['median_ms']:.0f} ms), poll requests cut {cut:.1f}x "
        f"({polling['polls']} -> {pushed['polls']})"
    )
    failures = []
    if not pushed["median_ms"] <= DELAY_TARGET_MS:
        failures.append(f"median push delay {pushed['median_ms']:.1f} ms > {DELAY_TARGET_MS} ms")
    if cut < POLL_CUT_TARGET:
        failures.append(f"poll requests cut {cut:.1f}x < {POLL_CUT_TARGET}x")
    if pushed["ok"] != args.jobs or polling["ok"] != args.jobs:
        failures.append("not every job succeeded")
    for failure in failures:
        print(f"MISSED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
