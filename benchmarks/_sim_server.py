"""The simulator with any :class:`~mjasync.testing.FakeMidjourney` option, in its own process.

    python -m benchmarks._sim_server '{"accent": "relay", "relay_refresh": 0.7}'

Prints the base URL as its first line and serves until SIGTERM/SIGINT, like
``mjasync simulate`` (which has no switch for every simulator option, e.g. ``relay_refresh``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys

from mjasync.testing import FakeMidjourney


async def serve(options: dict[str, object]) -> None:
    """Serve one simulator until a signal arrives."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    async with FakeMidjourney(port=0, **options) as fake:  # type: ignore[arg-type]
        print(fake.base_url, flush=True)
        await stop.wait()


def main() -> None:
    options = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    if not isinstance(options, dict):
        raise SystemExit("usage: python -m benchmarks._sim_server '{\"option\": value, ...}'")
    asyncio.run(serve(options))


if __name__ == "__main__":
    main()
