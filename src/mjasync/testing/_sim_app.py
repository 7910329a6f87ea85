"""The aiohttp.web application: routing per accent, auth, faults, and the non-submit routes.

One catch-all route hands every request to :meth:`SimApp.dispatch`, which resolves the mode
prefix and the endpoint itself: that is how each accent gets its own 404 shape, and how the
Java accent refuses mode prefixes while the relay accepts both ``/mj-fast`` and ``/fast``.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ._sim_config import SimOptions
from ._sim_faults import FaultInjector
from ._sim_images import image_key_is_valid, mp4_for_key, png_for_key, video_key_is_valid
from ._sim_render import Refusal, Renderer, json_response
from ._sim_state import SUCCESS, Engine
from ._sim_stats import Counters, SimStats
from ._sim_submit import Submitter

__all__ = ["Route", "SimApp"]

_MAX_BODY = 64 * 1024 * 1024  # describe/blend bodies carry base64 images
# The submit routes of each family, from their source: J novicezk fd045f9
# (controller/SubmitController.java), C trueai-org ed32197 (Controllers/SubmitController.cs,
# which dropped change/simple-change in v10), N QuantumNous/new-api 65b1654
# (router/relay-router.go; video and edits since 2025-06-30).
_SUBMITS = {
    "java": frozenset({"imagine", "blend", "describe", "change"}),
    "csharp": frozenset(
        {
            "imagine",
            "blend",
            "describe",
            "shorten",
            "action",
            "modal",
            "video",
            "edits",
            "edit",
            "retexture",
            "upload-discord-images",
        }
    ),
    "relay": frozenset(
        {
            "imagine",
            "blend",
            "describe",
            "shorten",
            "action",
            "modal",
            "change",
            "video",
            "edits",
            "upload-discord-images",
        }
    ),
}
_RELAY_SINCE_2025_06 = frozenset({"video", "edits"})
_FACE = {"java": frozenset(), "csharp": frozenset({"swap", "video-swap"}), "relay": {"swap"}}
_FAULT_GROUP = {"submit": "submit", "fetch": "poll", "list": "poll", "image_seed": "poll"}


@dataclass(frozen=True, slots=True)
class Route:
    """A resolved request: what it is for and on which account."""

    kind: str  # stats key: submit, fetch, list, image_seed, cancel, image, stats
    method: str
    name: str = ""  # submit endpoint, or the image key
    mode: str = "fast"
    task_id: str = ""
    auth: bool = True


class SimApp:
    """Routes and handlers, bound to one simulator's engine, renderer and counters."""

    def __init__(
        self,
        options: SimOptions,
        engine: Engine,
        renderer: Renderer,
        counters: Counters,
        faults: FaultInjector,
        stats: Callable[[], SimStats],
    ) -> None:
        self.options = options
        self.engine = engine
        self.renderer = renderer
        self.counters = counters
        self.faults = faults
        self.stats = stats
        self.submitter = Submitter(options, engine, renderer, counters)
        self.list_rng = random.Random(f"{options.seed}:lists")

    def build(self) -> web.Application:
        """A fresh aiohttp application serving this simulator."""
        app = web.Application(client_max_size=_MAX_BODY)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    # -- routing -----------------------------------------------------------------------------

    def resolve(self, path: str) -> Route | None:
        """Map a path to a :class:`Route` (method unchecked); ``None`` if the accent has none."""
        parts = path.split("/")[1:]
        if not parts:
            return None
        if parts[0] == "_sim":
            if parts[1:] == ["stats"]:
                return Route("stats", "GET", auth=False)
            if len(parts) == 3 and parts[1] == "img" and parts[2].endswith(".png"):
                key = parts[2].removesuffix(".png")
                return (
                    Route("image", "GET", name=key, auth=False) if image_key_is_valid(key) else None
                )
            if len(parts) == 3 and parts[1] == "video" and parts[2].endswith(".mp4"):
                key = parts[2].removesuffix(".mp4")
                return (
                    Route("video", "GET", name=key, auth=False) if video_key_is_valid(key) else None
                )
            return None
        accent = self.options.accent
        # The families' own pages, served without a key: what client.probe() reads.
        if accent == "relay" and parts == ["api", "status"]:
            return Route("info", "GET", name="status", auth=False)
        if accent == "csharp" and parts == ["mj", "home"]:
            return Route("info", "GET", name="home", auth=False)
        if accent == "java" and parts == ["mj", ""]:
            return Route("info", "GET", name="docs", auth=False)
        mode, rest = self._split_mode(parts)
        if mode is None:
            return None
        return self._api_route(mode, rest)

    def _split_mode(self, parts: list[str]) -> tuple[str | None, list[str]]:
        accent, modes = self.options.accent, self.options.modes
        first = parts[0]
        if first == "mj":
            return "fast", parts[1:]
        if len(parts) < 2 or parts[1] != "mj":
            return None, []
        if accent != "java" and first.startswith("mj-") and first[3:] in modes:
            return first[3:], parts[2:]
        if accent == "relay" and first in modes:
            return first, parts[2:]
        return None, []

    def _api_route(self, mode: str, rest: list[str]) -> Route | None:
        accent = self.options.accent
        if len(rest) == 2 and rest[0] == "submit":
            served = rest[1] in _SUBMITS[accent]
            if accent == "relay" and self.options.relay_legacy and rest[1] in _RELAY_SINCE_2025_06:
                served = False
            if served:
                return Route("submit", "POST", name=rest[1], mode=mode)
            return None
        if len(rest) == 2 and rest[0] == "insight-face" and rest[1] in _FACE[accent]:
            return Route("submit", "POST", name=rest[1], mode=mode)
        if len(rest) == 2 and rest[0] == "image" and accent == "relay":
            return Route("image", "GET", mode=mode, task_id=rest[1], auth=False)
        if len(rest) == 2 and rest == ["task", "list-by-condition"]:
            return Route("list", "POST", mode=mode) if self.options.list_by_condition else None
        if len(rest) == 3 and rest[0] == "task" and rest[1]:
            if rest[2] == "fetch":
                return Route("fetch", "GET", mode=mode, task_id=rest[1])
            if rest[2] == "image-seed" and accent != "java":
                return Route("image_seed", "GET", mode=mode, task_id=rest[1])
            if rest[2] == "cancel" and accent == "csharp":
                return Route("cancel", "POST", mode=mode, task_id=rest[1])
        return None

    def authorized(self, headers: Mapping[str, str]) -> bool:
        """Check the API key the way the configured scheme (or the accent) does."""
        return not self.options.api_keys or self.caller_key(headers) is not None

    def caller_key(self, headers: Mapping[str, str]) -> str | None:
        """The configured key the request authenticates with, or ``None``."""
        keys = self.options.api_keys
        authorization = headers.get("Authorization", "").strip()
        secret = headers.get("mj-api-secret", "").strip()
        bearer = authorization[7:].strip() if authorization[:7].lower() == "bearer " else None
        scheme = self.options.auth_scheme
        if scheme == "any":
            return next((key for key in (bearer, secret) if key in keys), None)
        if scheme == "bearer":
            return bearer if bearer in keys else None
        if scheme == "mj-api-secret":
            if self.options.accent == "csharp" and "Authorization" in headers:
                # C takes the raw Authorization header whenever present, even empty
                # (WorkContext.cs:46-48): "Bearer sk-x" is the token "Bearer sk-x".
                return authorization if authorization in keys else None
            # J reads only mj-api-secret (Constants.java:19), and compares it exactly.
            return secret if secret in keys else None
        # new-api: Authorization first, mj-api-secret only when it is empty; "Bearer " and
        # "sk-" are both stripped before the lookup (middleware/auth.go).
        token = authorization or secret
        token = token[7:].strip() if token[:7].lower() == "bearer " else token
        wanted = token.removeprefix("sk-")
        return next((key for key in keys if key.removeprefix("sk-") == wanted), None)

    # -- dispatch ----------------------------------------------------------------------------

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        """Serve one request: resolve, fault, authenticate, handle."""
        response = await self._dispatch(request)
        if self.options.accent == "relay" and not self.options.relay_legacy:
            # Every answer of new-api builds since 2026-01-30 (middleware/cors.go:18-23).
            response.headers["X-New-Api-Version"] = self.options.version or ""
        return response

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        route = self.resolve(request.path)
        accent = self.options.accent
        if route is None:
            self.counters.requests["other"] += 1
            if self._auth_before_routing(request.path) and not self.authorized(request.headers):
                self.counters.refused["auth"] += 1
                return self.renderer.unauthorized()
            return self.renderer.route_missing(request.method, request.path)
        self.counters.requests[route.kind] += 1
        if request.method != route.method and not (
            route.method == "GET" and request.method == "HEAD"
        ):
            if accent == "relay":
                return self.renderer.route_missing(request.method, request.path)  # gin NoRoute
            return self.renderer.route_missing(request.method, request.path, 405)
        group = _FAULT_GROUP.get(route.kind)
        pending: str | None = None
        if group is not None and self.faults.enabled:
            early, pending = await self.faults.before(request, group)
            if early is not None:
                return early
        if route.auth and not self.authorized(request.headers):
            self.counters.refused["auth"] += 1
            return self.renderer.unauthorized()
        response = await self._handle(request, route)
        if pending is not None and group is not None:
            return self.faults.after(request, group, pending, response)
        return response

    def _auth_before_routing(self, path: str) -> bool:
        """Whether the family checks the key before it finds there is no such route.

        C's middleware runs for every path (SimpleAuthMiddleware.cs); J's interceptor for
        ``/mj/submit/**``, ``/mj/task/**``, ``/mj/account/**`` only (WebMvcConfig.java:27-30);
        new-api serves its web UI without a key.
        """
        if path.startswith("/_sim/"):
            return False  # the simulator's own pages
        if self.options.accent == "csharp":
            return True
        if self.options.accent == "java":
            return path.startswith(("/mj/submit/", "/mj/task/", "/mj/account/"))
        return False

    async def _handle(self, request: web.Request, route: Route) -> web.StreamResponse:
        if route.kind == "submit":
            return await self._submit(request, route)
        if route.kind == "fetch":
            return self._fetch(route)
        if route.kind == "list":
            return await self._list(request)
        if route.kind == "image_seed":
            return await self._image_seed(route)
        if route.kind == "cancel":
            return self._cancel(request, route)
        if route.kind == "image":
            return self._image(route)
        if route.kind == "video":
            return web.Response(body=mp4_for_key(route.name), content_type="video/mp4")
        if route.kind == "info":
            return self._info(route)
        return json_response(self.stats().to_dict())

    def _info(self, route: Route) -> web.Response:
        if route.name == "status":
            return self.renderer.status_page(self.options.version)
        if route.name == "home":
            return self.renderer.home(self.options.version)
        # J: GET /mj/ redirects to its Swagger page (WebMvcConfig.java:21-23).
        return web.Response(status=302, headers={"Location": "/mj/doc.html"})

    async def _json_body(self, request: web.Request) -> dict[str, Any] | None:
        try:
            body = await request.json(loads=json.loads)
        except (ValueError, UnicodeDecodeError):
            return None
        return body if isinstance(body, dict) else None

    async def _form_body(self, request: web.Request) -> dict[str, Any] | None:
        if not request.content_type.startswith("multipart/"):
            return None
        fields: dict[str, Any] = {}
        for name, value in (await request.post()).items():
            fields[name] = value.file.read() if isinstance(value, web.FileField) else value
        return fields

    async def _submit(self, request: web.Request, route: Route) -> web.Response:
        if route.name == "video-swap":
            # C binds this route [FromForm] (InsightFaceController.cs:141): JSON gets 415.
            body = await self._form_body(request)
            if body is None:
                self.counters.refused["invalid"] += 1
                return web.Response(status=415)
        else:
            body = await self._json_body(request)
        if body is None:
            self.counters.refused["invalid"] += 1
            return self.renderer.bad_body(request.path)
        try:
            return self.submitter.submit(route.name.replace("-", "_"), route.mode, body)
        except Refusal as refusal:
            self.counters.refused[refusal.reason] += 1
            return self.renderer.refusal(refusal)

    def _fetch(self, route: Route) -> web.Response:
        task = self.engine.tasks.get(route.task_id)
        if task is None:
            return self.renderer.task_not_found()
        now = self.engine.now()
        return json_response(self.renderer.task(self.engine.visible(task, now), now))

    async def _list(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        ids = (body or {}).get("ids", [])
        if body is None or not isinstance(ids, list):
            return self.renderer.bad_body(request.path)
        now = self.engine.now()
        tasks = self.engine.tasks
        found = [tasks[i] for i in dict.fromkeys(str(i) for i in ids) if i in tasks]
        # Real servers answer in storage order, not request order: clients must map by id.
        self.list_rng.shuffle(found)
        visible = self.engine.visible
        return json_response([self.renderer.task(visible(task, now), now) for task in found])

    async def _image_seed(self, route: Route) -> web.Response:
        task = self.engine.tasks.get(route.task_id)
        if task is None:
            if self.options.accent == "relay":
                return self.renderer.task_not_found()
            return self.renderer.parent_not_found()  # C: 404 + code 3 (TaskController.cs:159)
        if task.status != SUCCESS:
            # C: no message hash yet -> 400 code 4 (TaskController.cs:132-160); new-api
            # forwards the seed call and passes that answer through.
            return json_response(
                {"code": 4, "description": "关联任务状态错误", "result": None, "properties": {}},
                400,
            )
        if self.options.image_seed_delay:
            await asyncio.sleep(self.options.image_seed_delay)  # the real call waits on Discord
        return self.renderer.seed(task)

    def _cancel(self, request: web.Request, route: Route) -> web.Response:
        # C: admin users only (TaskController.cs:55,89-92); then Ok() whatever the id.
        if not self.options.is_admin(self.caller_key(request.headers)):
            return self.renderer.cancel_forbidden()
        task = self.engine.tasks.get(route.task_id)
        if task is not None:
            self.engine.cancel(task)
        return self.renderer.cancelled()

    def _image(self, route: Route) -> web.Response:
        key = route.name
        if route.task_id:
            task = self.engine.tasks.get(route.task_id)
            if task is None or task.image_key is None:
                return web.Response(status=404)
            key = task.image_key
        return web.Response(
            body=png_for_key(key),
            content_type="image/png",
            headers={"Cache-Control": "public, max-age=86400"},
        )
