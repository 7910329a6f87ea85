"""The ``mjasync`` command line (needs the ``cli`` extra: ``pip install 'mjasync[cli]'``).

Each sub-command lives in its own private module and registers itself on :data:`app`.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the ``mjasync`` command; returns the process exit code."""
    try:
        from ._app import app
    except ImportError as exc:  # click/rich are an optional extra
        missing = getattr(exc, "name", None) or str(exc)
        print(
            f"mjasync: the command line needs the 'cli' extra ({missing} is missing): "
            "pip install 'mjasync[cli]'",
            file=sys.stderr,
        )
        return 2
    try:
        app.main(args=argv, prog_name="mjasync")
    except SystemExit as exc:
        code: object = exc.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
