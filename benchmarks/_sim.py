"""The simulator in its own process: start a fresh one, read its counters, stop it."""

from __future__ import annotations

import json
import os
import resource
import selectors
import subprocess
import sys
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Self

__all__ = ["Simulator", "child_env", "warm_bytecode"]

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 30.0


def child_env() -> dict[str, str]:
    """The environment for measured processes: bytecode caching allowed.

    An installed package imports from cached bytecode; a ``PYTHONDONTWRITEBYTECODE=1`` shell
    would make every child compile mjasync's sources again (~30 ms of CPU per process, which
    the floor, importing only pre-compiled aiohttp, would not pay).
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def warm_bytecode() -> None:
    """Import everything the children import once, so their bytecode is cached."""
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import mjasync, mjasync.cli, mjasync.testing; mjasync.Client; "
            "import benchmarks.floor, benchmarks.naive, benchmarks.mjasync_run",
        ],
        check=True,
        cwd=ROOT,
        env=child_env(),
    )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Simulator:
    """``mjasync simulate --port 0 ...`` with one account (``fast``) of ``core_size`` slots.

    ``with Simulator(...) as sim:`` starts it and waits for the base URL it prints first;
    leaving stops it (SIGTERM) and records the CPU seconds it used in ``sim.cpu``.
    """

    def __init__(
        self,
        *,
        core_size: int,
        queue_size: int,
        job_duration: float,
        start_delay: float,
        progress_steps: int,
    ) -> None:
        self.command = [
            sys.executable,
            "-c",
            "import sys; from mjasync.cli import main; sys.exit(main())",
            "simulate",
            "--port=0",
            "--mode=fast",
            f"--core-size={core_size}",
            f"--queue-size={queue_size}",
            f"--job-duration={job_duration}",
            f"--start-delay={start_delay}",
            f"--progress-steps={progress_steps}",
        ]
        self.url = ""
        self.cpu = 0.0
        self._process: subprocess.Popen[str] | None = None

    @classmethod
    def with_options(cls, **options: Any) -> Simulator:
        """A simulator with any ``FakeMidjourney`` option (``benchmarks._sim_server``)."""
        simulator = cls.__new__(cls)
        simulator.command = [sys.executable, "-m", "benchmarks._sim_server", json.dumps(options)]
        simulator.url = ""
        simulator.cpu = 0.0
        simulator._process = None
        return simulator

    def __enter__(self) -> Self:
        process = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
            env=child_env(),
        )
        self._process = process
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout=STARTUP_TIMEOUT)
        url = process.stdout.readline().strip() if ready else ""
        if not url.startswith("http://127.0.0.1:"):
            self._stop()
            raise RuntimeError(
                f"`mjasync simulate` did not print its URL within {STARTUP_TIMEOUT:g}s "
                f"(got {url!r}); try: {' '.join(self.command[3:])}"
            )
        self.url = url
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    def stats(self) -> dict[str, Any]:
        """``GET {base}/_sim/stats``."""
        with urllib.request.urlopen(f"{self.url}/_sim/stats", timeout=30) as resp:
            stats: dict[str, Any] = json.load(resp)
        return stats

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        before = _children_cpu()  # clients already waited for are counted in `before`
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self.cpu = _children_cpu() - before
