"""A purpose-built loopback server for the wire-layer tests.

``LoopbackServer`` is a tiny ``aiohttp.web`` app on 127.0.0.1 that records every request
(method, path, headers, body) and answers with scripted replies: fixed ``Reply`` objects,
``RESET`` (read the body, then drop the connection), ``truncated(...)`` (promise more bytes than
it sends) or any async callable. Routes are matched with ``re.fullmatch`` on the request path;
a route's replies are used in order and the last one repeats. Anything unscripted gets the
404 JSON a Spring Boot server (the original Java proxy) sends for a route it does not have.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

import mjasync
from mjasync._wire.api import WireAPI
from mjasync._wire.retry import RetryPolicy
from mjasync._wire.transport import Transport

KEY = "sk-test0123456789SECRETabcd"
REDACTED = "sk-…abcd"


def fixtures_dir() -> Path:
    """The in-repo copy of the shared fixtures, else ``shared/fixtures`` beside the clone."""
    repo = Path(__file__).resolve().parents[2]
    in_repo = repo / "tests" / "fixtures"
    if in_repo.is_dir():
        return in_repo
    return repo / ".." / "shared" / "fixtures"


def load_fixture(name: str) -> Any:
    return json.loads((fixtures_dir() / name).read_text(encoding="utf-8"))


@attrs.define
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    headers: CIMultiDict[str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class _NoJson:
    def __repr__(self) -> str:
        return "NO_JSON"


NO_JSON: Any = _NoJson()


@attrs.frozen
class Reply:
    """A scripted answer: a JSON value, raw bytes, or nothing, with a status and headers."""

    status: int = 200
    json: Any = attrs.field(default=NO_JSON, kw_only=True)
    body: bytes | None = attrs.field(default=None, kw_only=True)
    content_type: str | None = attrs.field(default=None, kw_only=True)
    headers: dict[str, str] = attrs.field(factory=dict, kw_only=True)

    def build(self) -> web.StreamResponse:
        headers = dict(self.headers)
        if self.json is not NO_JSON:
            data = json.dumps(self.json, ensure_ascii=False).encode()
            ctype = self.content_type or "application/json"
        else:
            data = self.body or b""
            ctype = self.content_type
        if ctype:
            headers["Content-Type"] = ctype
        return web.Response(status=self.status, body=data, headers=headers)


def reply(status: int = 200, payload: Any = NO_JSON, **kw: Any) -> Reply:
    return Reply(status, json=payload, **kw)


Handler = Callable[[web.Request, "Recorded"], Awaitable[web.StreamResponse]]


async def _reset(request: web.Request, _: Recorded) -> web.StreamResponse:
    # The body has been read and recorded: the server "took" the job. Then the line drops.
    assert request.transport is not None
    request.transport.close()
    return web.Response(status=200, text="never delivered")


#: Read the request, then close the connection without answering.
RESET: Handler = _reset


def truncated(partial: bytes, declared: int = 500, status: int = 200) -> Handler:
    """Send ``partial`` after promising ``declared`` bytes, then drop the connection."""

    async def handler(request: web.Request, _: Recorded) -> web.StreamResponse:
        resp = web.StreamResponse(
            status=status,
            headers={"Content-Type": "application/json", "Content-Length": str(declared)},
        )
        await resp.prepare(request)
        await resp.write(partial)
        assert request.transport is not None
        request.transport.close()
        return resp

    return handler


def spring_404(path: str) -> Reply:
    """What Spring Boot (the Java proxy) answers for a route it does not serve."""
    return reply(
        404,
        {
            "timestamp": "2024-05-01T10:00:00.000+00:00",
            "status": 404,
            "error": "Not Found",
            "path": path,
        },
    )


class LoopbackServer:
    """Records requests and answers from a script. See the module docstring."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._routes: list[tuple[str, re.Pattern[str], list[Reply | Handler]]] = []
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._server = TestServer(app, host="127.0.0.1")

    @property
    def url(self) -> str:
        return str(self._server.make_url("")).rstrip("/")

    def script(self, method: str, path: str, *replies: Reply | Handler) -> None:
        """Answer ``method path`` (a regex, full match) with ``replies`` in turn."""
        assert replies, "script at least one reply"
        self._routes.insert(0, (method.upper(), re.compile(path), list(replies)))

    def requests_to(self, path_regex: str, method: str | None = None) -> list[Recorded]:
        pattern = re.compile(path_regex)
        return [
            r
            for r in self.requests
            if pattern.fullmatch(r.path) and (method is None or r.method == method)
        ]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        recorded = Recorded(
            method=request.method,
            path=request.path,
            headers=CIMultiDict(request.headers),
            body=await request.read(),
        )
        self.requests.append(recorded)
        for method, pattern, replies in self._routes:
            if method == request.method and pattern.fullmatch(request.path):
                answer = replies.pop(0) if len(replies) > 1 else replies[0]
                if isinstance(answer, Reply):
                    return answer.build()
                return await answer(request, recorded)
        return spring_404(request.path).build()

    async def start(self) -> None:
        await self._server.start_server()

    async def close(self) -> None:
        await self._server.close()


class SleepRecorder:
    """An injectable ``sleep`` that records the delays and returns at once."""

    def __init__(self, on_sleep: Callable[[float], Awaitable[None]] | None = None) -> None:
        self.delays: list[float] = []
        self._on_sleep = on_sleep

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if self._on_sleep is not None:
            await self._on_sleep(delay)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see no MJ_* variables unless they set them."""
    for name in ("MJ_BASE_URL", "MJ_API_KEY", "MJ_MODE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def server() -> AsyncIterator[LoopbackServer]:
    srv = LoopbackServer()
    await srv.start()
    try:
        yield srv
    finally:
        await srv.close()


@pytest.fixture
async def make_client(server: LoopbackServer) -> AsyncIterator[Callable[..., mjasync.Client]]:
    """``make_client(**options)``: a Client for the loopback server (no retries by default)."""
    made: list[mjasync.Client] = []

    def factory(**kw: Any) -> mjasync.Client:
        kw.setdefault("base_url", server.url)
        kw.setdefault("api_key", KEY)
        kw.setdefault("max_retries", 0)
        client = mjasync.Client(**kw)
        made.append(client)
        return client

    yield factory
    for made_client in made:
        await made_client.aclose()


@pytest.fixture
async def client(
    make_client: Callable[..., mjasync.Client],
) -> AsyncIterator[mjasync.Client]:
    async with make_client() as c:
        yield c


def make_wire(
    base_url: str,
    *,
    sleep: SleepRecorder,
    api_key: str | None = KEY,
    **policy: Any,
) -> WireAPI:
    """A WireAPI over a real Transport, with an injected sleep and ``random() == 0.5``."""
    transport = Transport(base_url, api_key, timeout=5.0)
    return WireAPI(transport, RetryPolicy(**policy), sleep=sleep, random=lambda: 0.5)


def free_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# Small valid images (magic bytes are what the client checks).
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32
GIF = b"GIF89a" + b"\x00" * 32
WEBP = b"RIFF\x00\x00\x00\x00WEBP" + b"\x00" * 32
