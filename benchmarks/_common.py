"""What every contender shares: its command line and the one JSON line it prints at the end.

Each contender runs in its own process, so ``getrusage(RUSAGE_SELF)`` at the end is exactly the
CPU time and peak RSS of that client (interpreter start and imports included); the share spent
before the first request (startup + imports) is reported separately as ``cpu_startup``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from typing import Any

__all__ = ["Meter", "parse_args"]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _concurrency(text: str) -> int | str:
    return "auto" if text == "auto" else int(text)


def parse_args(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    """The options every contender takes (the orchestrator passes all of them)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--url", required=True, help="simulator base URL")
    parser.add_argument("--key", default="sk-test", help="API key")
    parser.add_argument("--n", type=int, required=True, help="number of imagine jobs")
    parser.add_argument(
        "--concurrency", type=_concurrency, required=True, help="jobs in flight (or 'auto')"
    )
    parser.add_argument(
        "--queue-ahead",
        type=int,
        default=None,
        help="mjasync only: jobs let wait in the account's queue (default: the library's)",
    )
    parser.add_argument("--poll-interval", type=float, default=1.0, help="seconds between polls")
    parser.add_argument("--mode", default="fast", help="mode segment: {url}/mj-{mode}/mj/...")
    return parser.parse_args(argv)


class Meter:
    """Wall clock from :meth:`start`; CPU and peak RSS of the whole process at :meth:`report`."""

    def __init__(self) -> None:
        self.cpu_startup = _cpu()  # interpreter start + imports, before any request
        self._t0 = time.perf_counter()

    def start(self) -> None:
        """Start the wall clock (just before the first request)."""
        self.cpu_startup = _cpu()
        self._t0 = time.perf_counter()

    def report(self, **extra: Any) -> None:
        """Print one JSON line: wall, CPU (total and startup), peak RSS in MB, and ``extra``."""
        wall = time.perf_counter() - self._t0
        usage = resource.getrusage(resource.RUSAGE_SELF)
        line = {
            "wall": wall,
            "cpu": usage.ru_utime + usage.ru_stime,
            "cpu_user": usage.ru_utime,
            "cpu_sys": usage.ru_stime,
            "cpu_startup": self.cpu_startup,
            "rss_mb": usage.ru_maxrss / 1024,  # Linux reports KiB
            **extra,
        }
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
