"""Batches at the account's pace: makespan against the ideal, with and without a stale relay.

    python -m benchmarks.pace                    # 3 interleaved rounds (~9 min)
    python -m benchmarks.pace --reps 1           # one round, a quick look (~3 min)
    python -m benchmarks.pace --write            # ... and rewrite the table in README.md

N jobs on an account that runs ``core`` of them at once cannot finish before
ceil(N / core) × job time: the *ideal makespan*. Every second a core sits idle between one
job's end and the client noticing it (and sending the next) adds to it. Two servers, each a
fresh simulator process per run:

* **relay**: a new-api style relay that shows each task only as of its latest refresh from
  upstream (``relay_refresh``; 15 s on new-api, here in the same proportion to the job time);
* **no lag**: the same relay answering live.

Three clients, side by side, in the order naive, mjasync default, mjasync auto, repeated:

* ``naive``: a semaphore of ``core`` jobs, a fetch per job every poll interval
  (``benchmarks/naive.py``);
* ``mjasync``: ``Client(concurrency=core, poll_interval=...)``, every other setting the
  library's default (``benchmarks/mjasync_run.py``);
* ``auto``: the same with ``concurrency="auto"``.

Per run: the client's makespan (its own wall clock, first request to last result), poll
requests per job and queue-full refusals (the simulator's counters), core idle time (the
simulator's ``core_idle``: core-seconds with no job while jobs were still to come) as a share
of ``core × makespan``, and the peaks of jobs running and waiting on the account.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ._sim import Simulator, child_env, warm_bytecode

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
START, END = "<!-- pace:start -->", "<!-- pace:end -->"
#: name -> (module, extra arguments beyond the common ones)
CLIENTS: dict[str, tuple[str, list[str]]] = {
    "naive": ("benchmarks.naive", []),
    "mjasync": ("benchmarks.mjasync_run", []),
    "auto": ("benchmarks.mjasync_run", ["--concurrency=auto"]),
    "mjasync-c4": ("benchmarks.mjasync_run", ["--concurrency=4"]),
    "mjasync-q0": ("benchmarks.mjasync_run", ["--queue-ahead=0"]),
}
DEFAULT_CLIENTS = ("naive", "mjasync", "auto")
SERVERS = ("relay", "no lag")


@dataclass
class Scenario:
    """The account, the jobs and the pace (the issue's proportions by default)."""

    jobs: int = 30
    core: int = 3
    queue: int = 10
    job_duration: float = 2.1
    start_delay: float = 0.0
    progress_steps: int = 5
    refresh: float = 0.7
    poll_interval: float = 0.1

    @property
    def ideal(self) -> float:
        """ceil(jobs / core) × job time: no client can finish sooner."""
        return math.ceil(self.jobs / self.core) * (self.job_duration + self.start_delay)

    def simulator(self, server: str) -> Simulator:
        return Simulator.with_options(
            accent="relay",
            api_keys=["sk-test"],
            core_size=self.core,
            queue_size=self.queue,
            job_duration=self.job_duration,
            start_delay=self.start_delay,
            progress_steps=self.progress_steps,
            relay_refresh=self.refresh if server == "relay" else 0.0,
        )


@dataclass
class Run:
    """One client on one server: the client's figures and the simulator's counters."""

    server: str
    client: str
    rep: int
    ok: int
    makespan: float
    cpu: float
    polls: int
    refusals: int
    core_idle: float
    core_busy: float
    peak_running: int
    peak_queued: int
    extra: dict[str, Any] = field(default_factory=dict)


def run_one(server: str, client: str, rep: int, s: Scenario, timeout: float) -> Run:
    """A fresh simulator, one client run to the end, the counters, the simulator stopped."""
    module, extra = CLIENTS[client]
    with s.simulator(server) as sim:
        command = [
            sys.executable,
            "-m",
            module,
            f"--url={sim.url}",
            f"--n={s.jobs}",
            f"--concurrency={s.core}",
            f"--poll-interval={s.poll_interval}",
            *extra,
        ]
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=HERE.parent,
            env=child_env(),
        )
        if done.returncode != 0:
            raise RuntimeError(f"{client} on {server} failed:\n{done.stderr[-3000:]}")
        line = json.loads(done.stdout.strip().splitlines()[-1])
        stats = sim.stats()
    requests = stats["requests"]
    return Run(
        server=server,
        client=client,
        rep=rep,
        ok=int(line["ok"]),
        makespan=float(line["wall"]),
        cpu=float(line["cpu"]),
        polls=int(requests.get("fetch", 0)) + int(requests.get("list", 0)),
        refusals=int(stats["refused"].get("queue_full", 0)),
        core_idle=float(stats["core_idle"]["fast"]),
        core_busy=float(stats["core_busy"]["fast"]),
        peak_running=int(stats["peak_running"]["fast"]),
        peak_queued=int(stats["peak_queued"]["fast"]),
        extra={k: v for k, v in line.items() if k == "client"},
    )


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _verdict(ok: bool) -> str:
    return " met" if ok else " **missed**"


def render(runs: Sequence[Run], s: Scenario, clients: Sequence[str], command: str) -> str:
    """The markdown section: one row per server and client, medians over the rounds."""
    reps = max(r.rep for r in runs) + 1
    lines = [
        f"Command: `{command}`  ",
        f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {reps} interleaved "
        f"round(s); {s.jobs} jobs on an account of {s.core} cores and a queue of {s.queue}; "
        f"job {s.job_duration:g} s ({s.progress_steps} progress steps); relay refresh every "
        f"{s.refresh:g} s; poll interval {s.poll_interval:g} s for every client; ideal "
        f"makespan ceil({s.jobs}/{s.core}) × {s.job_duration + s.start_delay:g} s = "
        f"{s.ideal:g} s.",
        "",
        "Medians over the rounds (makespan: the client's wall clock; polls: fetch + "
        "list-by-condition requests the simulator served; core idle: the simulator's "
        "`core_idle` over core × makespan; peaks: jobs IN_PROGRESS / NOT_START on the account).",
        "",
        "| server | client | ok | makespan / ideal (all rounds) | poll requests / job "
        "| core idle | queue-full refusals | peak running | peak waiting | client CPU s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for server in SERVERS:
        naive = [r for r in runs if r.server == server and r.client == "naive"]
        naive_polls = _median([r.polls / s.jobs for r in naive]) if naive else None
        naive_span = _median([r.makespan for r in naive]) if naive else None
        for client in clients:
            rows = [r for r in runs if r.server == server and r.client == client]
            if not rows:
                continue
            ratio = _median([r.makespan / s.ideal for r in rows])
            each = ", ".join(f"{r.makespan / s.ideal:.3f}" for r in rows)
            polls = _median([r.polls / s.jobs for r in rows])
            idle = _median([r.core_idle / (s.core * r.makespan) for r in rows])
            ratio_cell = f"{ratio:.3f} ({each})"
            polls_cell = f"{polls:.2f}"
            idle_cell = f"{idle:.1%}"
            if client == "mjasync":  # the targets are for the library's defaults
                limit = 1.05 if server == "relay" else 1.03
                span = _median([r.makespan for r in rows])
                ok = ratio <= limit
                if server == "relay":  # and never slower than naive there
                    ok = ok and (naive_span is None or span <= naive_span)
                ratio_cell += _verdict(ok)
                if naive_polls is not None:
                    polls_cell += _verdict(polls <= naive_polls / 10)
                if server == "relay":
                    idle_cell += _verdict(idle <= 0.03)
            cells = [
                server,
                client,
                f"{min(r.ok for r in rows)}/{s.jobs}",
                ratio_cell,
                polls_cell,
                idle_cell,
                str(max(r.refusals for r in rows)),
                str(max(r.peak_running for r in rows)),
                str(max(r.peak_queued for r in rows)),
                f"{_median([r.cpu for r in rows]):.2f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "Targets (issue 15), for `mjasync` at its defaults: relay ≤ 1.05 × ideal and never "
        "slower than naive, core idle ≤ 3%, no queue-full refusal; no lag ≤ 1.03 × ideal; "
        "poll requests per job ≤ naive's / 10 on both."
    )
    return "\n".join(lines)


def write_readme(section: str) -> None:
    """Replace the text between the pace markers in benchmarks/README.md."""
    text = README.read_text(encoding="utf-8")
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    README.write_text(f"{head}{START}\n{section}\n{END}{tail}", encoding="utf-8")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pace", description=__doc__)
    parser.add_argument("--reps", type=int, default=3, help="interleaved rounds")
    parser.add_argument(
        "--clients",
        default=",".join(DEFAULT_CLIENTS),
        help=f"comma-separated, from {', '.join(CLIENTS)}",
    )
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--write", action="store_true", help="update benchmarks/README.md")
    parser.add_argument("--json", type=Path, help="also save the raw runs here")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per client run")
    args = parser.parse_args(argv)
    args.clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    args.servers = [c.strip() for c in args.servers.split(",") if c.strip()]
    unknown = [c for c in args.clients if c not in CLIENTS]
    if unknown or not args.clients:
        parser.error(f"clients are {', '.join(CLIENTS)}; got {unknown or 'none'}")
    if any(server not in SERVERS for server in args.servers):
        parser.error(f"servers are {', '.join(SERVERS)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    scenario = Scenario()
    command = "python -m benchmarks.pace " + " ".join(sys.argv[1:] if argv is None else argv)
    warm_bytecode()
    runs: list[Run] = []
    for rep in range(args.reps):
        for server in args.servers:
            for client in args.clients:
                run = run_one(server, client, rep, scenario, args.timeout)
                runs.append(run)
                print(
                    f"round {rep + 1}/{args.reps} {server:<7} {client:<10} makespan "
                    f"{run.makespan:6.2f}s ({run.makespan / scenario.ideal:.3f}) polls/job "
                    f"{run.polls / scenario.jobs:5.2f} idle {run.core_idle:5.2f} core-s "
                    f"refused {run.refusals} peaks run {run.peak_running} wait "
                    f"{run.peak_queued} ok {run.ok}",
                    file=sys.stderr,
                    flush=True,
                )
    section = render(runs, scenario, args.clients, command.strip())
    print(section)
    if args.json is not None:
        raw = {"scenario": asdict(scenario), "runs": [asdict(r) for r in runs]}
        args.json.write_text(json.dumps(raw, indent=1) + "\n", encoding="utf-8")
    if args.write:
        write_readme(section)
        print(f"wrote {README}", file=sys.stderr)


if __name__ == "__main__":
    main()
