"""Helpers for the batch tests: the CLI as a subprocess, a simulator process, deadlines."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import anyio.abc
from PIL import Image

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def cli() -> list[str]:
    """The installed ``mjasync`` script (or the module, when run from an uninstalled tree)."""
    script = Path(sys.executable).with_name("mjasync")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys, mjasync.cli; sys.exit(mjasync.cli.main())"]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without MJ_* settings (tests choose their own), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MJ_")}
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("COLUMNS", None)
    return env


async def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> Any:
    """Run ``mjasync ARGS`` to completion; returns the CompletedProcess (never raises on exit)."""
    with anyio.fail_after(timeout):
        return await anyio.run_process(
            [*cli(), *args], env=env if env is not None else clean_env(), check=False
        )


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], *, timeout: float = 10.0, what: str = "condition"
) -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    try:
        with anyio.fail_after(timeout):
            while not await predicate():
                await anyio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None


@contextlib.asynccontextmanager
async def simulator_process(*options: str) -> AsyncIterator[str]:
    """``mjasync simulate --port 0 OPTIONS`` in its own process; yields its base URL."""
    process = await anyio.open_process(
        [*cli(), "simulate", "--port", "0", *options],
        env=clean_env(),
        stderr=None,
    )
    try:
        assert process.stdout is not None
        line = b""
        with anyio.fail_after(15):
            while not line.endswith(b"\n"):
                line += await process.stdout.receive(1)
        yield line.decode().strip()
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        with anyio.move_on_after(5):
            await process.wait()
        if process.returncode is None:
            process.kill()
        await process.aclose()


async def sim_stats(session: aiohttp.ClientSession, base_url: str) -> dict[str, Any]:
    """``GET /_sim/stats`` of a simulator process."""
    async with session.get(f"{base_url}/_sim/stats") as resp:
        resp.raise_for_status()
        data: dict[str, Any] = await resp.json()
        return data


def journal_states(path: Path) -> dict[str, int]:
    """Entries per state in a journal file (read-only; safe while a batch writes it)."""
    if not path.exists():
        return {}
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        rows = conn.execute("SELECT state, count(*) FROM entries GROUP BY state").fetchall()
    except sqlite3.OperationalError:  # the schema is not there yet
        return {}
    finally:
        conn.close()
    return dict(rows)


def read_manifest(out_dir: Path) -> list[dict[str, Any]]:
    """The manifest's lines, parsed."""
    lines = (out_dir / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def assert_real_png(path: Path) -> None:
    """``path`` is a complete PNG: the signature, and Pillow decodes every pixel."""
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC), f"{path.name} is not a PNG"
    with Image.open(io.BytesIO(data)) as image:
        image.load()  # decodes the whole file: a truncated one raises here
        assert image.format == "PNG"
        assert image.width > 0
        assert image.height > 0


def files_under(root: Path) -> set[Path]:
    """Every regular file below ``root``."""
    return {p for p in root.rglob("*") if p.is_file()}


def sole(error: BaseException) -> BaseException:
    """The one exception inside (nested) single-member exception groups."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error
