"""Pushes across worker processes: event latency and poll requests, with and without the bus.

    python -m benchmarks.push_bus                  # 3 workers x 30 jobs, poll 0.2 s, jobs 4.5 s
    python -m benchmarks.push_bus --workers 4 --jobs 50

A deployment of ``--workers`` processes, each with ``mjasync.Client(webhook=WebhookReceiver(
..., secret=shared))``; the simulator (in this process) posts every hook to worker 1, the only
one serving the shared URL, as a load balancer might. Three runs on a fresh simulator each:

* ``single process``: one client with its own receiver (``benchmarks/push.py``'s push run),
  the figure to compare with;
* ``workers, no bus``: the pushes of workers 2.. reach worker 1, which does not follow their
  jobs (404): they poll;
* ``workers + RedisPushBus``: worker 1 publishes every post on a ``redis-server`` started here;
  the others apply it.

Measured, as in ``benchmarks/push.py``: *delay* from the simulator's state change (its change
callback, stamped with ``time.monotonic()``) to the worker's event for it. ``CLOCK_MONOTONIC``
is one clock for every process of a Linux machine, so the stamps of different processes
compare. Delays are split into worker 1's own jobs (pushed to it directly) and the other
workers' (pushed through the bus). *Poll requests*: fetch + list-by-condition served by the
simulator, with ``list_batch_size=1`` so a request is one task poll.

Needs ``redis-server`` on the PATH. Prints a markdown table; exits 1 if a job did not succeed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import mjasync
from benchmarks.push import _key, _record_changes
from benchmarks.push import run as single_process_run
from mjasync._integrations.redis_bus import RedisPushBus
from mjasync._integrations.webhook import WebhookReceiver
from mjasync.testing import FakeMidjourney

KEY = "sk-test"
SECRET = "benchmark-deployment-secret_0123"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _RedisServer:
    """A throwaway redis-server without persistence."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed (apt-get install redis-server)")
        self.port = _free_port()
        self._dir = tempfile.mkdtemp(prefix="mjasync-bench-redis-")
        self._process = subprocess.Popen(
            [
                binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", self._dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise SystemExit("redis-server did not start")
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)
        shutil.rmtree(self._dir, ignore_errors=True)


# -- one worker process ----------------------------------------------------------------------


async def worker(args: argparse.Namespace) -> None:
    """Run ``--jobs`` jobs through ``stream()``; print one JSON line with every event seen."""
    bus = RedisPushBus(args.redis, name="bench") if args.redis else None
    receiver = WebhookReceiver(
        "127.0.0.1" if args.serve else None,
        args.port if args.serve else 0,
        public_url=f"http://127.0.0.1:{args.port}",
        secret=SECRET,
        bus=bus,
    )
    seen: list[tuple[str, str, int | None, float, str]] = []
    async with mjasync.Client(
        args.base_url,
        KEY,
        concurrency=args.concurrency,
        poll_interval=args.poll_interval,
        list_batch_size=1,
        webhook=receiver,
    ) as client:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # "go"
        requests = (mjasync.Imagine(f"bench {args.tag} {i}") for i in range(args.jobs))
        async for event in client.stream(requests):
            if event.task_id is None or event.source == "submit":
                continue
            seen.append(
                (event.task_id, event.status.value, event.progress, time.monotonic(), event.source)
            )
        stats = client.statistics()
        print(
            json.dumps(
                {
                    "events": seen,
                    "ok": stats.jobs_succeeded,
                    "completed_by_push": stats.completed_by_push,
                    "completed_by_poll": stats.completed_by_poll,
                }
            ),
            flush=True,
        )
        # Worker 1 keeps serving the hook URL until every worker is done.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # "stop"


# -- the orchestrator ------------------------------------------------------------------------


async def deployment(args: argparse.Namespace, *, redis_url: str | None) -> dict[str, Any]:
    """One run of ``args.workers`` worker processes on a fresh simulator."""
    async with FakeMidjourney(
        api_keys=(KEY,),
        core_size=args.workers * args.concurrency,
        queue_size=args.workers * args.jobs,
        job_duration=args.job_duration,
        progress_steps=args.progress_steps,
    ) as fake:
        changes = _record_changes(fake)
        port = _free_port()
        processes = []
        for index in range(args.workers):
            command = [
                sys.executable, "-m", "benchmarks.push_bus", "--worker",
                "--base-url", fake.base_url, "--port", str(port), "--tag", f"w{index}",
                "--jobs", str(args.jobs), "--concurrency", str(args.concurrency),
                "--poll-interval", str(args.poll_interval),
            ]  # fmt: skip
            if index == 0:
                command.append("--serve")
            if redis_url:
                command += ["--redis", redis_url]
            processes.append(
                await asyncio.create_subprocess_exec(
                    *command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=dict(os.environ)
                )
            )
        for process in processes:
            assert process.stdout is not None
            line = await process.stdout.readline()
            assert line.strip() == b"ready", line
        for process in processes:
            assert process.stdin is not None
            process.stdin.write(b"go\n")
            await process.stdin.drain()
        reports = []
        for process in processes:
            assert process.stdout is not None
            reports.append(json.loads(await process.stdout.readline()))
        for process in processes:
            assert process.stdin is not None
            process.stdin.write(b"stop\n")
            await process.stdin.drain()
            await process.wait()
        served = fake.stats().requests

    def delays(reports_: list[dict[str, Any]]) -> list[float]:
        out = []
        for report in reports_:
            for task_id, status, progress, at, _source in report["events"]:
                key = _key(task_id, status, progress)
                if key in changes:
                    out.append((at - changes[key]) * 1000)
        return out

    jobs = args.workers * args.jobs
    return {
        "ok": sum(report["ok"] for report in reports),
        "jobs": jobs,
        "local": delays(reports[:1]),
        "remote": delays(reports[1:]),
        "polls": served.get("list", 0) + served.get("fetch", 0),
        "by_push": sum(report["completed_by_push"] for report in reports),
        "by_poll": sum(report["completed_by_poll"] for report in reports),
    }


def _ms(values: list[float]) -> tuple[str, str]:
    if len(values) < 2:
        return "–", "–"
    p99 = statistics.quantiles(values, n=100)[-1]
    return f"{statistics.median(values):.1f} ms", f"{p99:.1f} ms"


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="w", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=30, help="jobs per worker")
    parser.add_argument("--concurrency", type=int, default=10, help="per worker")
    parser.add_argument("--poll-interval", type=float, default=0.2, help="client base interval")
    parser.add_argument("--job-duration", type=float, default=4.5, help="seconds per job")
    parser.add_argument("--progress-steps", type=int, default=10)
    args = parser.parse_args(argv)
    if args.worker:
        await worker(args)
        return 0

    single = await single_process_run(args, push=True)
    redis = _RedisServer()
    try:
        without = await deployment(args, redis_url=None)
        with_bus = await deployment(args, redis_url=redis.url)
    finally:
        redis.stop()

    print(
        f"{args.workers} workers x {args.jobs} jobs ({args.concurrency} at a time each), "
        f"poll interval {args.poll_interval:g} s, jobs {args.job_duration:g} s in "
        f"{args.progress_steps} steps; hooks go to worker 1\n"
    )
    print("| run | events of | median delay | p99 delay | poll requests | done by push / poll |")
    print("|---|---|---:|---:|---:|---:|")
    median, p99 = _ms(single["delays"])
    per_job = single["polls"] / max(1, single["jobs"])
    print(
        f"| single process (push.py) | its own jobs | {median} | {p99} "
        f"| {single['polls']} ({per_job:.1f}/job) "
        f"| {single['completed_by_push']} / {single['completed_by_poll']} |"
    )
    for title, run in (("workers, no bus", without), ("workers + RedisPushBus", with_bus)):
        per_job = run["polls"] / max(1, run["jobs"])
        for index, (who, values) in enumerate(
            (("worker 1 (receives the posts)", run["local"]), ("workers 2.. (via the bus)"
             if run is with_bus else "workers 2.. (pushes lost: 404)", run["remote"]))
        ):  # fmt: skip
            median, p99 = _ms(values)
            tail = (
                f"| {run['polls']} ({per_job:.1f}/job) | {run['by_push']} / {run['by_poll']} |"
                if index == 0
                else "| | |"
            )
            print(f"| {title if index == 0 else ''} | {who} | {median} | {p99} {tail}")
    failed = [
        name
        for name, run in (("single", single), ("no bus", without), ("bus", with_bus))
        if run["ok"] != run["jobs"]
    ]
    for name in failed:
        print(f"MISSED: not every job of the {name!r} run succeeded", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
