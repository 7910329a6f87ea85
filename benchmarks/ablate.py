"""What each optimisation buys at user scale: mjasync with one of them switched off, side by side.

    python -m benchmarks.ablate                       # N = 1,000 (CPU) and 10,000 (memory), 3 pairs
    python -m benchmarks.ablate --sizes 1000 --pairs 5 --variants compact,pooled

Each variant runs ``benchmarks.mjasync_run`` in its own process with one optimisation undone
by a patch applied before the run (nothing in the library knows about this), interleaved with
the unpatched baseline against a fresh simulator each time, so a shared machine's drift hits
both alike. The verdict per variant is the median over pairs of (variant / baseline) for the
client's CPU after startup and for its peak RSS: an optimisation is worth keeping when its
absence costs measurably more than the run-to-run noise (printed as the baseline's spread).

Variants:
  compact   Task.raw keeps the decoded dict instead of compact JSON decoded on first read
  referee   orjson's answers are not checked against the standard library's
  orjson    the `speed` extra is absent (the standard library decodes everything)
  pooled    gather's submitters POST through a background task each (as submit() does)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ._sim import Simulator, child_env, warm_bytecode

HERE = Path(__file__).resolve().parent
VARIANTS = ("compact", "referee", "orjson", "pooled")


def apply(variant: str) -> None:
    """Undo one optimisation in this process (called in the child before the run)."""
    if variant == "orjson":
        sys.modules["orjson"] = None  # type: ignore[assignment]  # import now fails
        return
    from mjasync import _converter, _json
    from mjasync._jobs import engine

    if variant == "compact":

        def keep_decoded(self: Any, payload: Any) -> None:
            self._json, self._data = b"", dict(payload)

        _converter.CompactPayload.__init__ = keep_decoded  # type: ignore[method-assign]
    elif variant == "referee":
        _json._float_id = lambda value: False

        def plain_dumps(value: Any) -> bytes | str:
            return bytes(memoryview(_json._orjson_dumps(value)))

        _converter.dumps = plain_dumps
    elif variant == "pooled":
        start = engine.JobEngine.start

        async def start_detached(self: Any, *args: Any, in_engine_task: bool = False) -> Any:
            return await start(self, *args, in_engine_task=False)

        engine.JobEngine.start = start_detached  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")


def _child(variant: str, argv: list[str]) -> None:
    if variant != "none":
        apply(variant)
    from . import mjasync_run

    sys.argv = ["mjasync_run", *argv]
    mjasync_run.main()


def run_one(variant: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    simulator = Simulator(
        core_size=n,
        queue_size=n,
        job_duration=args.job_duration,
        start_delay=args.start_delay,
        progress_steps=args.progress_steps,
    )
    with simulator:
        command = [
            sys.executable,
            "-m",
            "benchmarks.ablate",
            "--child",
            variant,
            "--",
            f"--url={simulator.url}",
            f"--n={n}",
            f"--concurrency={n}",
            f"--poll-interval={args.poll_interval}",
        ]
        done = subprocess.run(
            command, capture_output=True, text=True, cwd=HERE.parent, env=child_env(), check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{variant} N={n} failed:\n{done.stderr[-3000:]}")
        figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["cpu_run"] = float(figures["cpu"]) - float(figures["cpu_startup"])
    return figures


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        _child(argv[1], argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--job-duration", type=float, default=20.0)
    parser.add_argument("--start-delay", type=float, default=2.0)
    parser.add_argument("--progress-steps", type=int, default=5)
    parser.add_argument("--poll-interval", type=float, default=2.0)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    variants = [v for v in args.variants.split(",") if v]
    warm_bytecode()
    rows: list[str] = []
    for n in sizes:
        ratios: dict[str, dict[str, list[float]]] = {v: {"cpu": [], "rss": []} for v in variants}
        base_cpu: list[float] = []
        for pair in range(args.pairs):
            for variant in variants:
                t0 = time.perf_counter()
                base = run_one("none", n, args)
                other = run_one(variant, n, args)
                base_cpu.append(base["cpu_run"])
                ratios[variant]["cpu"].append(other["cpu_run"] / base["cpu_run"])
                ratios[variant]["rss"].append(other["rss_mb"] / base["rss_mb"])
                print(
                    f"N={n} pair {pair + 1}/{args.pairs} {variant:<8} "
                    f"cpu {other['cpu_run']:.2f}s vs {base['cpu_run']:.2f}s, "
                    f"rss {other['rss_mb']:.0f} vs {base['rss_mb']:.0f} MB "
                    f"({time.perf_counter() - t0:.0f}s)",
                    flush=True,
                )
        spread = statistics.pstdev(base_cpu) / statistics.mean(base_cpu) if base_cpu else 0.0
        for variant in variants:
            cpu = statistics.median(ratios[variant]["cpu"])
            rss = statistics.median(ratios[variant]["rss"])
            rows.append(f"| {n:,} | {variant} | {cpu:.2f}x | {rss:.2f}x | ±{spread:.0%} |")
    print()
    print("| N | without | client CPU after startup | peak RSS | baseline CPU spread |")
    print("|---:|---|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
