"""A hostile midjourney-proxy for the batch, journal, download and CLI tests of issue 12.

Unlike the simulator it does what an attacker (or a badly broken relay) would: image URLs that
point at other services on this machine, redirect chains, thousands of images per task, bodies
that stall, SUCCESS without an image, error texts quoting the API key. It logs every request
with the key it carried, so a test can prove that a run sent *nothing*.

:class:`Bystander` is the "internal service" an SSRF would reach: a second server on another
loopback port that counts every request (and would happily serve a PNG, so a download that
reached it would succeed).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import struct
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from aiohttp import web
from PIL import Image

MODE = "/mj-fast"

TaskShape = Callable[[str, str], dict[str, Any]]


def png(colour: tuple[int, int, int] = (200, 30, 30), size: int = 8) -> bytes:
    """A real, small PNG."""
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def padded_png(total: int) -> bytes:
    """A valid PNG of about ``total`` bytes (an ancillary chunk carries the padding)."""
    base = png()
    pad = max(0, total - len(base) - 12)
    kind = b"tEXt"
    data = b"c\x00" + b"x" * max(0, pad - 2)
    chunk = struct.pack(">I", len(data)) + kind + data
    chunk += struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    end = base.rindex(b"IEND") - 4  # the IEND chunk starts with its length field
    return base[:end] + chunk + base[end:]


def auth_key(request: web.Request) -> str | None:
    """The API key a request carried (``Authorization: Bearer`` or ``mj-api-secret``)."""
    bearer = request.headers.get("Authorization", "")
    if bearer.startswith("Bearer "):
        return bearer.removeprefix("Bearer ")
    return request.headers.get("mj-api-secret")


class HostileProxy:
    """Plays midjourney-proxy (mode prefix ``/mj-fast``): every imagine is accepted.

    Attributes:
        shape: ``(task_id, prompt) -> task fields`` merged over a SUCCESS task whose image is
            served by this server; tests replace it to make the task hostile.
        finish: while not set, every task reads IN_PROGRESS (a batch stays busy).
        submitted: set once the first submit arrived.
        log: ``(method, path, key)`` of every request.
        image_hits: requests per image path.
        bytes_sent: image bytes written to clients.
    """

    def __init__(self) -> None:
        self.base = ""
        self.shape: TaskShape = lambda task_id, prompt: {}
        self.finish = anyio.Event()
        self.finish.set()
        self.submitted = anyio.Event()
        self.closing = anyio.Event()
        self.log: list[tuple[str, str, str | None]] = []
        self.tasks: dict[str, dict[str, Any]] = {}
        self.image_hits: Counter[str] = Counter()
        self.bytes_sent = 0
        self.ids = itertools.count(1)
        self.png = png()
        self.auth_error: str | None = None

    # -- what tests read --------------------------------------------------------------------

    def requests_with(self, key: str) -> int:
        """How many requests carried ``key``."""
        return sum(1 for _, _, k in self.log if k == key)

    def submits(self) -> int:
        """How many submits arrived."""
        return sum(1 for method, path, _ in self.log if method == "POST" and "/submit/" in path)

    def url(self, path: str) -> str:
        """An absolute URL on this server."""
        return f"{self.base}{path}"

    # -- the API ----------------------------------------------------------------------------

    @web.middleware
    async def record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.log.append((request.method, request.path, auth_key(request)))
        if self.auth_error is not None and request.path.startswith(MODE):
            return web.json_response({"code": 401, "description": self.auth_error}, status=401)
        response: web.StreamResponse = await handler(request)
        return response

    def task(self, task_id: str) -> dict[str, Any]:
        data = dict(self.tasks[task_id])
        if not self.finish.is_set():
            data.update(status="IN_PROGRESS", progress="50%", imageUrl=None, imageUrls=[])
        return data

    async def submit(self, request: web.Request) -> web.Response:
        body = await request.json()
        task_id = str(1_700_000 + next(self.ids))
        prompt = str(body.get("prompt", ""))
        self.tasks[task_id] = {
            "id": task_id,
            "action": "IMAGINE",
            "status": "SUCCESS",
            "progress": "100%",
            "prompt": prompt,
            "imageUrl": self.url(f"/img/{task_id}.png"),
            "imageUrls": [],
            "buttons": [],
            "failReason": None,
            **self.shape(task_id, prompt),
        }
        self.submitted.set()
        return web.json_response({"code": 1, "description": "ok", "result": task_id})

    async def list_tasks(self, request: web.Request) -> web.Response:
        ids = (await request.json()).get("ids", [])
        return web.json_response([self.task(i) for i in ids if i in self.tasks])

    async def fetch(self, request: web.Request) -> web.Response:
        task_id = request.match_info["id"]
        if task_id not in self.tasks:
            return web.json_response(None)
        return web.json_response(self.task(task_id))

    # -- images -----------------------------------------------------------------------------

    async def image(self, request: web.Request) -> web.Response:
        self.image_hits[request.path] += 1
        self.bytes_sent += len(self.png)
        return web.Response(body=self.png, content_type="image/png")

    async def sized(self, request: web.Request) -> web.Response:
        self.image_hits[request.path] += 1
        body = padded_png(int(request.match_info["size"]))
        self.bytes_sent += len(body)
        return web.Response(body=body, content_type="image/png")

    async def redirect(self, request: web.Request) -> web.Response:
        """``/redirect?to=URL``: 302 to any URL."""
        self.image_hits[request.path] += 1
        raise web.HTTPFound(request.query["to"])

    async def loop(self, request: web.Request) -> web.Response:
        """``/loop/N``: 302 to ``/loop/N+1``, forever."""
        self.image_hits["/loop"] += 1
        raise web.HTTPFound(f"/loop/{int(request.match_info['n']) + 1}")

    async def stall(self, request: web.Request) -> web.StreamResponse:
        """Headers and the first bytes of a PNG, then silence until the server closes."""
        self.image_hits[request.path] += 1
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        await response.prepare(request)
        await response.write(self.png[:20])
        await self.closing.wait()
        return response

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.record])
        app.router.add_post(f"{MODE}/mj/submit/imagine", self.submit)
        app.router.add_post(f"{MODE}/mj/task/list-by-condition", self.list_tasks)
        app.router.add_get(f"{MODE}/mj/task/{{id}}/fetch", self.fetch)
        app.router.add_get("/img/{name}", self.image)
        app.router.add_get("/sized/{size:\\d+}/{name}", self.sized)
        app.router.add_get("/redirect", self.redirect)
        app.router.add_get("/loop/{n:\\d+}", self.loop)
        app.router.add_get("/stall.png", self.stall)
        return app


class Bystander:
    """A service on another loopback port that no image download may reach by default."""

    def __init__(self) -> None:
        self.base = ""
        self.port = 0
        self.hits = 0
        self.png = png((30, 200, 30))

    async def any_path(self, request: web.Request) -> web.Response:
        self.hits += 1
        return web.Response(body=self.png, content_type="image/png")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self.any_path)
        return app


@contextlib.asynccontextmanager
async def serving(app: web.Application, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve ``app`` on an ephemeral loopback port; yields ``http://host:port``."""
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    bound_host, port = runner.addresses[0][:2]
    try:
        yield f"http://{bound_host}:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def hostile_proxy() -> AsyncIterator[HostileProxy]:
    proxy = HostileProxy()
    async with serving(proxy.app()) as base:
        proxy.base = base
        try:
            yield proxy
        finally:
            proxy.closing.set()
            proxy.finish.set()


@contextlib.asynccontextmanager
async def bystander() -> AsyncIterator[Bystander]:
    service = Bystander()
    async with serving(service.app()) as base:
        service.base = base
        service.port = int(base.rsplit(":", 1)[1])
        yield service
