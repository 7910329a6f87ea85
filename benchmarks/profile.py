"""Profile one contender against a fresh simulator (a tool for finding where CPU goes).

    python -m benchmarks.profile --n 1000            # mjasync under cProfile
    python -m benchmarks.profile --n 1000 --contender naive
    python -m benchmarks.profile --n 1000 --py-spy   # sampling; needs `pip install py-spy`
    python -m benchmarks.profile --n 1000 --hotspots # CPU inside mjasync's synchronous hot spots

cProfile inflates many small calls, so read its shares as a ranking; ``--py-spy`` samples at
1 kHz with little distortion and prints the inclusive and self shares of the hottest frames;
``--hotspots`` wraps a few synchronous mjasync functions (private names of the current commit)
with ``time.thread_time`` and prints each one's share of the CPU spent after startup.
"""

from __future__ import annotations

import argparse
import collections
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ._sim import ROOT, Simulator, child_env, warm_bytecode

MODULES = {
    "floor": "benchmarks.floor",
    "naive": "benchmarks.naive",
    "mjasync": "benchmarks.mjasync_run",
}


def _frame_name(frame: str) -> str:
    match = re.match(r"(.*) \((.*?)(?::\d+)?\)$", frame)
    if not match:
        return frame
    path = match.group(2).split("site-packages/")[-1].split("src/")[-1]
    return f"{match.group(1)} ({path})"


#: Where a sample's time goes, by the first rule whose frame appears in its stack (outermost
#: rule first, so e.g. a json decode inside a poll counts as "poll: HTTP + JSON decode").
BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("startup: interpreter + imports", ("<module> (mjasync/", "<module> (aiohttp/")),
    ("task parsing (parse_task)", ("parse_task (",)),
    ("poll: list requests (HTTP + JSON decode)", ("fetch_payloads (",)),
    ("submit: HTTP + JSON", ("Scheduler.submit (", "floor.py", "ClientSession._request (")),
    ("observe: compare + events + broadcast", ("Tracker._apply (", "Tracker._broadcast (")),
    ("poll loop bookkeeping", ("Tracker._run_mode (", "Tracker._poll (", "_check_stalls (")),
    ("slots: acquire / release", ("LocalLimiter.", "Scheduler.acquire (", "_release (")),
    ("per-job tasks: _follow / events() / stream", ("Client._follow (", "Job.events (")),
    ("stream() / gather() consumer", ("Client.stream (", "Client.gather (", "Client._feed (")),
    ("background task wrapper", ("BackgroundTasks.",)),
    ("event loop: select()", ("EpollSelector.select (",)),
    ("event loop: socket reads, HTTP parsing, wakeups", ("BaseEventLoop._run_once (",)),
)


def bucket_py_spy(raw: Path) -> str:
    """Share of samples per :data:`BUCKETS` entry (rules matched outermost-first)."""
    shares: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        names = [_frame_name(frame) for frame in stack.split(";")]
        shares[_bucket(names)] += count
    return "\n".join(
        f"{100 * v / total:5.1f}%  {k}" for k, v in sorted(shares.items(), key=lambda kv: -kv[1])
    )


def _bucket(names: list[str]) -> str:
    for label, needles in BUCKETS:
        if any(needle in name for name in names for needle in needles):
            return label
    return "other"


def summarize_py_spy(raw: Path, top: int) -> str:
    """Inclusive and self shares per function from py-spy's ``--format raw`` output."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        names = [_frame_name(frame) for frame in stack.split(";")]
        for name in set(names):
            inclusive[name] += count
        own[names[-1]] += count
    out = [f"{total} samples", "-- inclusive"]
    out += [f"{100 * v / total:5.1f}%  {k}" for k, v in inclusive.most_common(top)]
    out += ["-- self"]
    out += [f"{100 * v / total:5.1f}%  {k}" for k, v in own.most_common(top // 2)]
    return "\n".join(out)


#: (module, attribute, label): synchronous functions timed by ``--hotspots``.
HOTSPOTS = (
    (
        "mjasync._jobs.observing",
        "Observer._apply",
        "Observer._apply (compare, parse status, event)",
    ),
    ("mjasync._jobs.watch", "parse_task", "  parse_task (payload -> Task, when someone looks)"),
    ("mjasync._jobs.observing", "Observer._send", "  of which Observer._send (to listeners)"),
    ("mjasync._jobs.poller", "Poller._check_stalls", "Poller._check_stalls (due watches)"),
    ("mjasync._wire.api", "interpret", "interpret (status checks + JSON decode)"),
    ("mjasync._client.wire_calls", "WireCalls.request_body", "WireCalls.request_body"),
    ("mjasync._jobs.engine", "JobEngine.track", "JobEngine.track"),
)


def hotspots_child(url: str, n: int, poll: float) -> None:
    """Run mjasync's gather with :data:`HOTSPOTS` timed; print a markdown table."""
    import asyncio
    import collections
    import functools
    import importlib
    import resource
    import time
    from typing import Any

    spent: dict[str, float] = collections.defaultdict(float)
    calls: collections.Counter[str] = collections.Counter()

    def timed(function: Any, label: str, by_kind: bool) -> Any:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = f"{label} [{args[1]}]" if by_kind and len(args) > 1 else label
            started = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent[key] += time.thread_time() - started
                calls[key] += 1

        return wrapper

    for module_name, attribute, label in HOTSPOTS:
        owner: Any = importlib.import_module(module_name)
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        setattr(owner, name, timed(getattr(owner, name), label, name == "interpret"))
    import mjasync

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    async def run() -> Any:
        async with mjasync.Client(url, "sk-test", concurrency=n, poll_interval=poll) as client:
            await client.gather(mjasync.Imagine(f"prompt {i}") for i in range(n))
            return client.statistics()

    startup = cpu()
    stats = asyncio.run(run())
    work = cpu() - startup
    print(
        f"N={n:,}: CPU after startup {work:.2f} s (startup {startup:.2f} s); "
        f"{stats.polls} list requests in {stats.poll_rounds} rounds; "
        f"{stats.parsed} payloads parsed; {stats.events} events"
    )
    print("| function | share of CPU after startup | seconds | calls | µs per call |")
    print("|---|---:|---:|---:|---:|")
    order = [label for _, _, label in HOTSPOTS]
    for key, seconds in sorted(spent.items(), key=lambda kv: order.index(kv[0].split(" [")[0])):
        print(
            f"| {key} | {100 * seconds / work:.1f}% | {seconds:.3f} | {calls[key]:,} "
            f"| {1e6 * seconds / calls[key]:.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument("--contender", choices=sorted(MODULES), default="mjasync")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--poll-interval", type=float, default=1.0)
    parser.add_argument("--job-duration", type=float, default=3.0)
    parser.add_argument("--start-delay", type=float, default=0.5)
    parser.add_argument("--progress-steps", type=int, default=3)
    parser.add_argument("--py-spy", action="store_true", help="sample with py-spy")
    parser.add_argument("--hotspots", action="store_true", help="time mjasync's hot spots")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: the simulator URL
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    if args.child:
        hotspots_child(args.child, args.n, args.poll_interval)
        return
    warm_bytecode()
    simulator = Simulator(
        core_size=args.n,
        queue_size=args.n,
        job_duration=args.job_duration,
        start_delay=args.start_delay,
        progress_steps=args.progress_steps,
    )
    client_args = [
        f"--n={args.n}",
        f"--concurrency={args.n}",
        f"--poll-interval={args.poll_interval}",
    ]
    with tempfile.TemporaryDirectory() as tmp, simulator:
        out = Path(tmp) / "profile"
        client_args.append(f"--url={simulator.url}")
        if args.hotspots:
            command = [sys.executable, "-m", "benchmarks.profile", f"--child={simulator.url}"]
            command += [f"--n={args.n}", f"--poll-interval={args.poll_interval}"]
            subprocess.run(command, check=True, cwd=ROOT, env=child_env())
            return
        if args.py_spy:
            py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            profiler = [py_spy, "record", "-r", "1000", "-f", "raw", "-o", str(out), "--"]
            profiler += [sys.executable]
        else:
            profiler = [sys.executable, "-m", "cProfile", "-o", str(out)]
        command = [*profiler, "-m", MODULES[args.contender], *client_args]
        subprocess.run(command, check=True, cwd=ROOT, stdout=sys.stderr, env=child_env())
        if args.py_spy:
            print(summarize_py_spy(out, args.top))
            print("-- buckets")
            print(bucket_py_spy(out))
        else:
            stats = pstats.Stats(str(out))
            stats.sort_stats("tottime").print_stats(args.top)
            stats.sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
