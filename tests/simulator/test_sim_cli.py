"""``mjasync simulate`` as a separate process: prints its URL first, serves, stops on SIGINT."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

pytestmark = pytest.mark.anyio


def _command() -> list[str]:
    script = Path(sys.executable).with_name("mjasync")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys, mjasync.cli; sys.exit(mjasync.cli.main())"]


@contextlib.asynccontextmanager
async def _simulator(*options: str) -> AsyncIterator[str]:
    """Start ``mjasync simulate --port 0 OPTIONS``; yield its URL; stop it with SIGINT (exit 0)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = await anyio.open_process([*_command(), "simulate", "--port", "0", *options], env=env)
    try:
        assert process.stdout is not None
        with anyio.fail_after(15):
            line = b""
            while not line.endswith(b"\n"):
                line += await process.stdout.receive(1)
        yield line.decode().strip()
    finally:
        process.send_signal(signal.SIGINT)
        with anyio.fail_after(10):
            code = await process.wait()
    assert code == 0


async def test_simulate_prints_its_url_and_serves(session):
    options = ("--accent", "relay", "--api-key", "sk-cli", "--job-duration", "0.02")
    sizes = ("--start-delay", "0", "--core-size", "1", "--queue-size", "0")
    async with _simulator(*options, *sizes) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        headers = {"Authorization": "Bearer sk-cli"}
        async with session.post(
            f"{base_url}/fast/mj/submit/imagine", json={"prompt": "a cat"}, headers=headers
        ) as resp:
            body = await resp.json()
            assert body["code"] == 1
        async with session.post(
            f"{base_url}/mj/submit/imagine", json={"prompt": "a dog"}, headers=headers
        ) as resp:
            assert resp.status == 429  # --core-size 1 --queue-size 0 on the relay accent
        async with session.get(f"{base_url}/_sim/stats") as resp:
            stats = await resp.json()
            assert stats["accepted"] == 1 and stats["refused"] == {"queue_full": 1}


async def test_simulate_rejects_bad_options():
    result = await anyio.run_process(
        [*_command(), "simulate", "--port", "0", "--fault-502", "0.7", "--fault-429", "0.7"],
        check=False,
    )
    assert result.returncode != 0
    assert b"more than 1" in result.stderr


async def test_simulate_takes_the_real_server_options(session):
    """The options that model the servers' source are reachable from the command line too.

    A relay refreshing every 30 s shows a just-submitted task with status "" (new-api's record
    before its first refresh); a disabled feature is refused; ids come as JSON numbers.
    """
    options = ("--accent", "relay", "--api-key", "sk-cli", "--relay-refresh", "30")
    async with _simulator(*options, "--disable", "video", "--numeric-ids") as base_url:
        headers = {"Authorization": "Bearer sk-cli"}
        async with session.post(
            f"{base_url}/fast/mj/submit/imagine", json={"prompt": "a cat"}, headers=headers
        ) as resp:
            body = await resp.json()
        assert body["code"] == 1 and isinstance(body["result"], int)
        async with session.get(
            f"{base_url}/fast/mj/task/{body['result']}/fetch", headers=headers
        ) as resp:
            task = await resp.json()
        assert task["status"] == "" and task["progress"] == "0%"
        async with session.post(
            f"{base_url}/fast/mj/submit/video", json={"prompt": "a cat"}, headers=headers
        ) as resp:
            refused = await resp.read()
        assert b'"code":1,' not in refused.replace(b" ", b"")
        async with session.get(f"{base_url}/_sim/stats") as resp:
            stats = await resp.json()
        assert stats["accepted"] == 1 and stats["refused"] == {"disabled": 1}
