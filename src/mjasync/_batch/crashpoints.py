"""Named places where a test can kill the process outright. Private; a test seam only."""

from __future__ import annotations

import os
import signal
import threading

__all__ = ["crash_point"]


def _armed(setting: str) -> dict[str, int]:
    name, _, count = setting.strip().partition(":")
    if not name:
        return {}
    return {name: int(count) if count.isdigit() and int(count) > 0 else 1}


_ARMED = _armed(os.environ.get("MJASYNC_CRASH_AT", ""))
_PASSES: dict[str, int] = {}
_LOCK = threading.Lock()  # some points run in worker threads


def crash_point(name: str) -> None:
    """SIGKILL this process here if ``MJASYNC_CRASH_AT`` names this point; else do nothing.

    A fault injector for the crash tests (``tests/batch/test_crash_points.py``): they set
    ``MJASYNC_CRASH_AT=NAME`` (or ``NAME:K`` to die on the K-th pass, default the first) in
    the environment of an ``mjasync batch`` process and check that a rerun repairs whatever
    the kill left. The variable is read once, at import; unset, a call costs one dict lookup.
    SIGKILL (TerminateProcess on Windows) is used so no ``finally``, ``atexit`` or buffer
    flush runs: the files and the server are left as an OOM kill or ``kill -9`` would.
    """
    target = _ARMED.get(name)
    if target is None:
        return
    with _LOCK:
        passes = _PASSES[name] = _PASSES.get(name, 0) + 1
    if passes == target:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
