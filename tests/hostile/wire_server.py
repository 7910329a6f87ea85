"""A hostile midjourney-proxy for the wire-level tests: it misbehaves on purpose.

Not the simulator (which is too kind): :class:`HostileServer` is a bare ``aiohttp.web`` app on
loopback that records every request exactly as it arrived (raw path with query, headers,
body) and answers each ``(method, path regex)`` with a handler the test gives it. The module
has handler factories for the misbehaviours the client must survive:

* :func:`redirect` to anywhere;
* :func:`endless` chunked bodies, :func:`sized` bodies of any length (declared or not),
  :func:`trickle` (slowloris) and :func:`stall` (silence mid-body), each counting in
  :attr:`HostileServer.written` the bytes it managed to hand to the socket;
* :func:`answer` for any JSON or raw bytes, :func:`deep_json` for nesting the decoder can
  barely read.

Handlers that stream stop when the client hangs up; ``streams_done`` is set when the last of
them has ended, so a test can read ``written`` without sleeping.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import attrs
from aiohttp import web
from multidict import CIMultiDict

CHUNK = 64 * 1024
#: The socket send buffer streaming handlers ask for: small, so that what the server "managed
#: to write" is close to what the client took (the kernel may double it).
SEND_BUFFER = 16 * 1024


@attrs.define
class Seen:
    """One request as the server saw it."""

    method: str
    raw_path: str  # with the query string, before any normalisation
    headers: CIMultiDict[str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


Handler = Callable[[web.Request, Seen], Awaitable[web.StreamResponse]]


class HostileServer:
    """Loopback server with scripted, hostile answers. Use ``async with HostileServer() as s``.

    Unscripted requests get a 404 with a Spring-style body (a route the server lacks).
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.requests: list[Seen] = []
        self.written = 0  # body bytes streaming handlers handed to the socket
        self.streams_done = asyncio.Event()
        self._streams = 0
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def on(self, method: str, path_regex: str, handler: Handler) -> None:
        """Answer ``method`` (or ``*``) on paths fully matching ``path_regex``; newest wins."""
        self._routes.insert(0, (method.upper(), re.compile(path_regex), handler))

    def paths(self) -> list[str]:
        return [r.raw_path for r in self.requests]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        seen = Seen(request.method, request.raw_path, CIMultiDict(request.headers), b"")
        seen.body = await request.read()
        self.requests.append(seen)
        for method, pattern, handler in self._routes:
            if method in (request.method, "*") and pattern.fullmatch(request.path):
                return await handler(request, seen)
        return web.json_response(
            {"status": 404, "error": "Not Found", "path": request.path}, status=404
        )

    async def __aenter__(self) -> HostileServer:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def stream(
        self,
        request: web.Request,
        chunks: AsyncIterator[bytes],
        headers: dict[str, str] | None = None,
    ) -> web.StreamResponse:
        """Send ``chunks`` as the body, counting in ``written``; end quietly on hang-up."""
        self._streams += 1
        self.streams_done.clear()
        resp = web.StreamResponse(headers={"Content-Type": "application/json", **(headers or {})})
        try:
            sock = request.transport.get_extra_info("socket") if request.transport else None
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
            await resp.prepare(request)
            async for data in chunks:
                await resp.write(data)
                self.written += len(data)
        except ConnectionError:
            pass  # the client hung up: what it did not take was never written
        finally:
            self._streams -= 1
            if self._streams == 0:
                self.streams_done.set()
        return resp


def answer(
    value: Any = None,
    *,
    status: int = 200,
    raw: bytes | None = None,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Handler:
    """A fixed answer: ``value`` as JSON, or ``raw`` bytes as they are."""
    data = raw if raw is not None else json.dumps(value).encode()

    async def handler(request: web.Request, seen: Seen) -> web.StreamResponse:
        return web.Response(
            status=status, body=data, headers={"Content-Type": content_type, **(headers or {})}
        )

    return handler


def redirect(location: str, status: int = 302) -> Handler:
    async def handler(request: web.Request, seen: Seen) -> web.StreamResponse:
        return web.Response(status=status, headers={"Location": location})

    return handler


#: Where an "endless" body gives up after all: far beyond any limit under test, but a client
#: without one (the bug) fails the test in a second instead of eating the machine's memory.
ENDLESS_CEILING = 64 * 1024 * 1024


def endless(server: HostileServer, chunk: bytes = b" " * CHUNK) -> Handler:
    """A chunked 200 whose body does not end (``[`` then whitespace: valid JSON so far).

    After :data:`ENDLESS_CEILING` bytes the server drops the connection.
    """

    async def chunks() -> AsyncIterator[bytes]:
        yield b"["
        while server.written < ENDLESS_CEILING:
            yield chunk

    async def handler(request: web.Request, seen: Seen) -> web.StreamResponse:
        return await server.stream(request, chunks())

    return handler


def sized(server: HostileServer, total: int, *, declare: bool) -> Handler:
    """A 200 of ``total`` bytes (a JSON list of spaces), with or without Content-Length."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b"["
        left = total - 2
        block = b" " * CHUNK
        while left > 0:
            piece = block[: min(CHUNK, left)]
            yield piece
            left -= len(piece)
        yield b"]"

    async def handler(request: web.Request, seen: Seen) -> web.StreamResponse:
        headers = {"Content-Length": str(total)} if declare else {}
        return await server.stream(request, chunks(), headers)

    return handler


def trickle(server: HostileServer, every: float = 0.01) -> Handler:
    """Slowloris: one byte of whitespace every ``every`` seconds, for ever."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b"["
        while True:
            await asyncio.sleep(every)  # the server's pace, not a test synchronisation
            yield b" "

    async def handler(request: web.Request, seen: Seen) -> web.StreamResponse:
        return await server.stream(request, chunks())

    return handler


def stall(server: HostileServer, start: bytes = b'{"id": "1", "sta') -> Handler:
    """Send the start of a 4 KiB answer, then nothing, until the client hangs up."""

    async def chunks(request: web.Request) -> AsyncIterator[bytes]:
        yield start
        transport = request.transport
        while transport is not None and not transport.is_closing():
            await asyncio.sleep(0.02)  # the server's pace, not a test synchronisation

    async def handler(request: web.Request, seen: Seen) -> web.StreamResponse:
        return await server.stream(request, chunks(request), {"Content-Length": "4096"})

    return handler


def deep_json(depth: int, inner: bytes = b"1", *, kind: str = "list") -> bytes:
    """``[[[...1...]]]`` (or ``{"a":{"a":...}}``) ``depth`` levels deep."""
    if kind == "list":
        return b"[" * depth + inner + b"]" * depth
    return b'{"a":' * depth + inner + b"}" * depth


def submit_ids(*task_ids: str) -> Handler:
    """A submit route accepting every job: each answer carries the next of ``task_ids``."""
    pending = list(task_ids)

    async def handler(request: web.Request, seen: Seen) -> web.StreamResponse:
        task_id = pending.pop(0) if len(pending) > 1 else pending[0]
        return web.json_response({"code": 1, "description": "提交成功", "result": task_id})

    return handler


def rounds(build: Callable[[int, list[str]], bytes]) -> Handler:
    """A list-by-condition route answering ``build(round, ids_asked)`` (rounds count from 1)."""
    count = 0

    async def handler(request: web.Request, seen: Seen) -> web.StreamResponse:
        nonlocal count
        count += 1
        asked = seen.json.get("ids", []) if isinstance(seen.json, dict) else []
        body = build(count, [str(i) for i in asked])
        return web.Response(body=body, headers={"Content-Type": "application/json"})

    return handler


def task_json(task_id: str, status: str = "SUCCESS", **fields: Any) -> bytes:
    """One task payload as JSON bytes (``imageUrl`` set for SUCCESS unless given)."""
    progress = "100%" if status == "SUCCESS" else "50%"
    payload: dict[str, Any] = {"id": task_id, "action": "IMAGINE", "status": status}
    payload["progress"] = progress
    if status == "SUCCESS":
        payload["imageUrl"] = f"https://cdn.example/{task_id}.png"
    payload.update(fields)
    return json.dumps(payload).encode()
