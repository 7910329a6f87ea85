"""Plain-aiohttp helpers for the simulator tests (deliberately independent of mjasync.Client)."""

from __future__ import annotations

import base64
import contextlib
import json
import struct
import zlib
from collections.abc import Callable
from typing import Any, TypeVar

import aiohttp
import anyio

from mjasync.testing import FakeMidjourney

T = TypeVar("T")
KEY = "sk-test"
TERMINAL = frozenset({"SUCCESS", "FAILURE", "CANCEL"})


def tiny_png() -> bytes:
    """A valid 1x1 PNG."""
    raw = b"\x00\xff\x00\x00"
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


DATA_URL = "data:image/png;base64," + base64.b64encode(tiny_png()).decode()


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB bytes) of an 8-bit RGB, unfiltered PNG; asserts validity."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert (depth, colour) == (8, 2)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = 1 + 3 * width
    assert len(raw) == stride * height
    rows = [raw[y * stride + 1 : (y + 1) * stride] for y in range(height)]
    assert all(raw[y * stride] == 0 for y in range(height))
    return width, height, rows


async def wait_until(condition: Callable[[], T | None], timeout: float = 3.0) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    with anyio.fail_after(timeout):
        while True:
            result = condition()
            if result:
                return result
            await anyio.sleep(0.002)


class Api:
    """Raw HTTP against one fake: returns (status, decoded JSON or text, headers)."""

    def __init__(
        self, session: aiohttp.ClientSession, fake: FakeMidjourney, headers: dict[str, str]
    ) -> None:
        self.session = session
        self.fake = fake
        self.headers = headers

    @property
    def base(self) -> str:
        return self.fake.base_url

    async def request(
        self, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, Any]:
        merged = {**self.headers, **(headers or {})}
        data = None if body is None else json.dumps(body)
        if data is not None:
            merged.setdefault("Content-Type", "application/json")
        async with self.session.request(
            method, self.base + path, data=data, headers=merged
        ) as resp:
            text = await resp.text()
            payload: Any = text
            if "json" in resp.content_type and text:
                # A truncated body stays text, for the fault tests to inspect.
                with contextlib.suppress(ValueError):
                    payload = json.loads(text)
            return resp.status, payload, resp.headers

    async def submit(self, endpoint: str, body: dict[str, Any], prefix: str = "") -> Any:
        """POST a submit and return its JSON, asserting HTTP 200."""
        status, payload, _ = await self.request("POST", f"{prefix}/mj/submit/{endpoint}", body)
        assert status == 200, (status, payload)
        return payload

    async def imagine(self, prompt: str = "a cat", prefix: str = "", **extra: Any) -> str:
        """Submit an imagine that must be accepted; returns the task id."""
        payload = await self.submit("imagine", {"prompt": prompt, **extra}, prefix)
        assert payload["code"] in (1, 22), payload
        return str(payload["result"])

    async def fetch(self, task_id: str, prefix: str = "") -> Any:
        status, payload, _ = await self.request("GET", f"{prefix}/mj/task/{task_id}/fetch")
        assert status == 200, (status, payload)
        return payload

    async def wait_status(self, task_id: str, *statuses: str, timeout: float = 3.0) -> Any:
        """Poll ``fetch`` until the task's status is one of ``statuses``; return the task."""
        wanted = set(statuses) or TERMINAL
        with anyio.fail_after(timeout):
            while True:
                task = await self.fetch(task_id)
                if task and task["status"] in wanted:
                    return task
                await anyio.sleep(0.005)

    async def run(self, prompt: str = "a cat", **extra: Any) -> Any:
        """Imagine and wait for the terminal task."""
        return await self.wait_status(await self.imagine(prompt, **extra))
