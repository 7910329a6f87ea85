"""What would each proposed library change save? Measure it by patching mjasync at run time.

    python -m benchmarks.ablate --n 1000 --reps 3
    python -m benchmarks.ablate --n 10000 --reps 2 --variants baseline,resultonly,all

Each variant runs ``Client.gather`` over N imagines in its own process against a fresh
simulator, variants interleaved, and reports medians of CPU, wall, peak RSS, poll requests,
poll rounds and payloads parsed. The patches stand in for changes proposed to the library
(README, "Where mjasync's CPU and memory go"):

- ``nowake``: ``Tracker.add`` does not wake the poll loop for a new watch whose first poll is
  an interval away (today every submit wakes it, and each wake polls whatever is due).
- ``fastacquire``: ``LocalLimiter.acquire`` takes a free slot without an event-loop
  checkpoint (today ``anyio.CapacityLimiter`` yields once per slot, so ``_feed`` starts one
  job per event-loop iteration).
- ``resultonly``: ``gather`` awaits each job's ``result()`` instead of routing every progress
  event through ``stream()`` (no per-event task switches, no event objects kept).
- ``lazyparse``: with no event listener, a non-terminal poll observation only compares the raw
  status/progress and builds no ``Task``.
- ``nobackoff``: a task IN_PROGRESS is always polled at the base interval (today a round
  without change stretches its next poll by 1.5x per quiet round, up to 4 intervals).
- ``all``: the first four together (not ``nobackoff``).

The patches reach into private internals of the commit they were written against and will
break as ``src/`` changes; they are measuring tools, not fixes.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from typing import Any

from ._sim import ROOT, Simulator, child_env, warm_bytecode

VARIANTS = ("baseline", "nowake", "fastacquire", "resultonly", "resultonly+lazyparse", "all")
TERMINAL = frozenset({"SUCCESS", "FAILURE", "CANCEL"})


def _patch(flags: set[str]) -> None:
    import anyio

    import mjasync
    from mjasync import _client, _limiter, _poller
    from mjasync._models import TaskStatus

    if "nowake" in flags:
        original_add = _poller.Tracker.add

        def add(self: Any, task_id: str, mode: str | None, **kw: Any) -> Any:
            key = _limiter.mode_key(mode)
            quiet = bool(self._watches.get(key)) and kw.get("initial") is not None
            saved = self._wakeups.pop(key, None) if quiet else None
            try:
                return original_add(self, task_id, mode, **kw)
            finally:
                if saved is not None:
                    self._wakeups[key] = saved

        _poller.Tracker.add = add  # type: ignore[method-assign]

    if "fastacquire" in flags:

        async def acquire(self: Any, mode: str | None) -> Any:
            key = _limiter.mode_key(mode)
            limiter = self._for(key)
            slot = _limiter.Slot(mode=key)
            try:
                limiter.acquire_on_behalf_of_nowait(slot.token)
            except anyio.WouldBlock:
                await limiter.acquire_on_behalf_of(slot.token)
            self._held[key].add(slot.token)
            return slot

        _limiter.LocalLimiter.acquire = acquire  # type: ignore[method-assign]

    if "lazyparse" in flags:
        original_apply = _poller.Tracker._apply

        def _apply(self: Any, watch: Any, payload: Any, source: str) -> bool:
            status = payload.get("status")
            if watch.queues or status in TERMINAL or source != "poll":
                return bool(original_apply(self, watch, payload, source))  # type: ignore[arg-type]
            self.counters.observations += 1
            watch.misses = 0
            raw_key = (status, payload.get("progress"))
            if raw_key == watch.raw_key:
                return False
            watch.raw_key = raw_key
            watch.last_change = anyio.current_time()
            watch.quiet_rounds = 0
            if status == "IN_PROGRESS":
                watch.status = TaskStatus.IN_PROGRESS
            return True

        _poller.Tracker._apply = _apply  # type: ignore[method-assign]

    if "nobackoff" in flags:
        original_next = _poller.next_poll_interval

        def next_poll_interval(settings: Any, status: Any, **kw: Any) -> float:
            if status is TaskStatus.IN_PROGRESS and not kw.get("push_healthy"):
                return float(settings.interval)
            return original_next(settings, status, **kw)

        _poller.next_poll_interval = next_poll_interval

    if "resultonly" in flags:

        async def gather(
            self: Any, requests: Iterable[Any], *, mode: Any = _client.DEFAULT
        ) -> list[Any]:
            ordered = list(requests)
            results: list[Any] = [None] * len(ordered)
            mode_value = self._mode(mode)
            self._open_tracker()

            async def one(i: int, request: Any, body: Any, slot: Any) -> None:
                try:
                    job = await self._submit_with_slot(request, body, mode_value, slot)
                    results[i] = await job.result()
                except mjasync.MjError as exc:
                    results[i] = exc

            async with anyio.create_task_group() as tg:
                for i, request in enumerate(ordered):
                    body = self.request_body(request)
                    slot = await self._scheduler.acquire(mode_value)
                    tg.start_soon(one, i, request, body, slot)
            return results

        _client.Client.gather = gather  # type: ignore[method-assign]


def child(url: str, n: int, poll: float, variant: str) -> None:
    """Run one variant in this process and print one JSON line."""
    import asyncio

    flags = set(variant.split("+"))
    if "all" in flags:
        flags |= {"nowake", "fastacquire", "resultonly", "lazyparse"}
    _patch(flags)
    import mjasync

    async def run() -> tuple[int, mjasync.ClientStatistics]:
        async with mjasync.Client(url, "sk-test", concurrency=n, poll_interval=poll) as client:
            results = await client.gather(mjasync.Imagine(f"prompt {i}") for i in range(n))
            ok = sum(
                isinstance(r, mjasync.Task) and r.status is mjasync.TaskStatus.SUCCESS
                for r in results
            )
            return ok, client.statistics()

    started = time.perf_counter()
    ok, stats = asyncio.run(run())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    line = {
        "variant": variant,
        "ok": ok,
        "wall": time.perf_counter() - started,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_mb": usage.ru_maxrss / 1024,
        "polls": stats.polls,
        "rounds": stats.poll_rounds,
        "parsed": stats.parsed,
    }
    print(json.dumps(line), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ablate", description=__doc__)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--poll-interval", type=float, default=1.0)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: URL of the simulator
    args = parser.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if args.child:
        child(args.child, args.n, args.poll_interval, variants[0])
        return
    warm_bytecode()
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for rep in range(args.reps):
        for variant in variants:
            with Simulator(
                core_size=args.n,
                queue_size=args.n,
                job_duration=3.0,
                start_delay=0.5,
                progress_steps=3,
            ) as sim:
                command = [sys.executable, "-m", "benchmarks.ablate", f"--child={sim.url}"]
                command += [f"--n={args.n}", f"--poll-interval={args.poll_interval}"]
                command += [f"--variants={variant}"]
                done = subprocess.run(
                    command, capture_output=True, text=True, cwd=ROOT, check=True, env=child_env()
                )
            line = json.loads(done.stdout.strip().splitlines()[-1])
            runs[variant].append(line)
            print(f"rep {rep + 1} {json.dumps(line)}", file=sys.stderr, flush=True)
    print(f"N={args.n:,}, poll interval {args.poll_interval:g} s, medians of {args.reps} rep(s)")
    print("| variant | client CPU s | wall s | peak RSS MB | poll requests | rounds | parsed |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for variant, lines in runs.items():

        def med(key: str, lines: list[dict[str, Any]] = lines) -> float:
            return statistics.median(float(line[key]) for line in lines)

        print(
            f"| {variant} | {med('cpu'):.2f} | {med('wall'):.2f} | {med('rss_mb'):.0f} "
            f"| {med('polls'):.0f} | {med('rounds'):.0f} | {med('parsed'):.0f} |"
        )


if __name__ == "__main__":
    main()
