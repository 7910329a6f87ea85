"""Know your server: what cheap, unpaid answers say about the family, key, modes and endpoints.

Everything here is pure: each function reads one answer (a :class:`ProbeAnswer`) and says what
it means; :class:`ServerProfile` is the verdict, with the ``Client(...)`` arguments and CLI
flags that fit. The requests themselves are sent by ``client.probe()``
(:mod:`mjasync._client.probe`). The meanings come from the servers' source (J novicezk
fd045f9, C trueai-org ed32197, N QuantumNous/new-api 65b1654; see ``tests/conformance``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from .endpoints import ENDPOINTS, FAMILY_NAMES, Family

__all__ = [
    "C_MODES",
    "EndpointState",
    "FetchVerdict",
    "HomeFacts",
    "ProbeAnswer",
    "ServerProfile",
    "c_endpoints",
    "c_switch",
    "classify_fetch",
    "family_from_docs",
    "family_from_home",
    "family_from_status",
    "java_endpoints",
    "relay_endpoints",
    "relay_switch",
]

EndpointState = Literal["available", "absent", "disabled", "unknown"]
#: The mode prefixes C serves (``SubmitController.cs:37-40``, ``TaskController.cs:34-37``).
C_MODES = ("fast", "relax", "turbo")
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


@attrs.frozen(slots=True)
class ProbeAnswer:
    """What the probe keeps of one answer: status, media type, a few headers, the body."""

    status: int
    content_type: str = ""
    body: bytes = b""
    location: str | None = None
    new_api_version: str | None = None

    @property
    def empty(self) -> bool:
        """``True`` when the body is empty (or only whitespace)."""
        return not self.body.strip()

    @property
    def html(self) -> bool:
        """``True`` for an HTML page (new-api's web UI, or some other site)."""
        return self.content_type in ("text/html", "application/xhtml+xml")

    def json(self) -> Any:
        """The body as JSON, or ``None`` when it is not JSON."""
        if self.empty or self.html:
            return None
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            return None

    def text(self) -> str:
        """The body as text (first 200 characters)."""
        return self.body[:200].decode("utf-8", "replace").strip()

    def description(self) -> str:
        """The ``description`` / ``message`` of a JSON body, else the text."""
        payload = self.json()
        if isinstance(payload, Mapping):
            for key in ("description", "message"):
                value = payload.get(key)
                if isinstance(value, str):
                    return value
            error = payload.get("error")
            if isinstance(error, Mapping) and isinstance(error.get("message"), str):
                return str(error["message"])
        return self.text()


# -- step 1: which family, from anonymous GETs ----------------------------------------------


def family_from_status(answer: ProbeAnswer) -> tuple[Family, str | None] | None:
    """``GET /api/status``: new-api answers ``{success: true, data: {version, ...}}``.

    Any answer with an ``X-New-Api-Version`` header is new-api too (builds since 2026-01-30,
    ``middleware/cors.go:18-23``). Source: ``controller/misc.go:42,52,86``.
    """
    payload = answer.json()
    if answer.status == 200 and isinstance(payload, Mapping) and payload.get("success") is True:
        data = payload.get("data")
        if isinstance(data, Mapping) and "version" in data:
            version = data.get("version")
            return "relay", version if isinstance(version, str) and version else None
    if answer.new_api_version:
        return "relay", answer.new_api_version
    return None


@attrs.frozen(slots=True)
class HomeFacts:
    """What C's ``/mj/home`` says about itself."""

    version: str | None
    guest: bool
    demo: bool


def family_from_home(answer: ProbeAnswer) -> HomeFacts | None:
    """``GET /mj/home`` (anonymous on C): ``{success, data: {version, isGuest, isDemoMode}}``.

    Source: trueai-org/midjourney-proxy ``Controllers/HomeController.cs:36-39,58-59,230``.
    """
    payload = answer.json()
    if answer.status != 200 or not isinstance(payload, Mapping):
        return None
    data = payload.get("data")
    if payload.get("success") is not True or not isinstance(data, Mapping):
        return None
    if "isGuest" not in data and "isDemoMode" not in data and "version" not in data:
        return None
    version = data.get("version")
    return HomeFacts(
        version=version if isinstance(version, str) and version else None,
        guest=data.get("isGuest") is True,
        demo=data.get("isDemoMode") is True,
    )


def family_from_docs(answer: ProbeAnswer) -> bool:
    """``GET /mj/``: J redirects to its Swagger page ``doc.html``.

    Source: novicezk/midjourney-proxy ``spring/config/WebMvcConfig.java:21-23``.
    """
    return 300 <= answer.status < 400 and (answer.location or "").rstrip("/").endswith("doc.html")


# -- step 2: the key, from a fetch of an id that cannot exist --------------------------------


@attrs.frozen(slots=True)
class FetchVerdict:
    """What a fetch of a made-up id says.

    Attributes:
        family: the family whose answer it is, if the answer is that specific.
        key_ok: the key was accepted (``None``: the answer does not say).
        route_ok: the MJ API is at this base URL (``False`` for 404 or an HTML page).
        note: the verdict in words.
    """

    family: Family | None
    key_ok: bool | None
    route_ok: bool
    note: str


def classify_fetch(answer: ProbeAnswer) -> FetchVerdict:
    """Read the answer to ``GET /mj/task/<made-up id>/fetch`` (see the table in the docs).

    J answers an unknown id with an empty 200 (``controller/TaskController.java:37-42``), C
    with 204 (a null ``ActionResult``, ``Controllers/TaskController.cs:75-79``), new-api with
    400 ``{code: 4, "task_no_found "}`` (``relay/mjproxy_handler.go:318-331``).
    """
    status, payload = answer.status, answer.json()
    error = payload.get("error") if isinstance(payload, Mapping) else None
    if answer.html:
        return FetchVerdict(None, None, False, "an HTML page: no MJ API at this base URL")
    if status == 200 and answer.empty:
        return FetchVerdict("java", True, True, "J: the key was accepted")
    if status == 204:
        return FetchVerdict("csharp", True, True, "C: the key was accepted")
    if status == 400 and isinstance(payload, Mapping) and payload.get("code") == 4:
        return FetchVerdict("relay", True, True, "N: the key was accepted")
    if status == 401:
        if answer.empty:
            return FetchVerdict("java", False, True, "J: the key was refused")
        if isinstance(error, Mapping):
            return FetchVerdict(
                "relay", False, True, f"N: the key was refused ({answer.description()})"
            )
        return FetchVerdict("csharp", False, True, f"C: the key was refused ({answer.text()})")
    if status in (403, 429) and answer.empty:
        return FetchVerdict(
            "csharp" if status == 403 else None,
            None,
            True,
            "rate-limited (C blocks a client for a while with an empty 403): try again later",
        )
    if status == 403:
        if isinstance(error, Mapping):
            return FetchVerdict(
                "relay", False, True, f"N: the token may not do this ({answer.description()})"
            )
        return FetchVerdict(
            "csharp", False, True, f"C: the user is not available ({answer.text()})"
        )
    if status == 404:
        return FetchVerdict(None, None, False, "HTTP 404: no MJ API at this base URL")
    return FetchVerdict(None, None, status < 500, f"unexpected HTTP {status}: {answer.text()!r}")


# -- step 4: endpoints -----------------------------------------------------------------------

_ALL = tuple(endpoint.name for endpoint in ENDPOINTS)


def java_endpoints() -> dict[str, EndpointState]:
    """J v2.6.3 has a fixed set (``controller/SubmitController.java``, ``TaskController``)."""
    served = {name for name in _ALL if "java" in _endpoint(name).families}
    return {name: "available" if name in served else "absent" for name in _ALL}


def _version(text: str | None) -> tuple[int, int, int] | None:
    match = _VERSION.search(text or "")
    if match is None:
        return None
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch)


# The first C release of each route, from the tags containing the commits that added (or, for
# change, removed) them; see the research notes' section 7.
_C_SINCE: Mapping[str, tuple[int, int, int]] = {
    "video": (8, 6, 10),
    "edits": (8, 5, 4),
    "retexture": (8, 5, 4),
    "upload": (3, 6, 0),
    "swap_face": (4, 0, 0),
    "swap_video_face": (4, 0, 0),
    "image_seed": (1, 2, 0),
}
_C_CHANGE_REMOVED = (10, 0, 0)


def c_endpoints(version: str | None) -> dict[str, EndpointState]:
    """C's routes by release (all of them from v11; ``change`` gone since v10)."""
    parsed = _version(version)
    states: dict[str, EndpointState] = {}
    for name in _ALL:
        if name == "change":
            if parsed is None:
                states[name] = "unknown"
            else:
                states[name] = "absent" if parsed >= _C_CHANGE_REMOVED else "available"
        elif name in _C_SINCE and parsed is not None and parsed < _C_SINCE[name]:
            states[name] = "absent"
        else:
            states[name] = "available"
    states["swap_video_face"] = "unknown" if states["swap_video_face"] != "absent" else "absent"
    return states


def relay_endpoints() -> dict[str, EndpointState]:
    """new-api's routes (``router/relay-router.go``); video and edits are probed."""
    states: dict[str, EndpointState] = {}
    for name in _ALL:
        states[name] = "available" if "relay" in _endpoint(name).families else "absent"
    states["video"] = states["edits"] = "unknown"
    return states


def c_switch(answer: ProbeAnswer) -> EndpointState:
    """C's answer to an empty submit ``{}``: the feature is off, or on (refused as empty).

    ``/submit/video`` says "视频功能未启用" when video is off (``SubmitController.cs:926-929``),
    ``/submit/upload-discord-images`` "禁止上传" when uploads are off (``:213-273``; edits and
    retexture are then off too), ``/insight-face/swap`` "服务不支持" when face swap is not set
    up (``FaceSwapService.cs``). Any other refusal means the route is there and working.
    """
    if answer.html or (answer.status == 404 and answer.empty):
        return "absent"
    text = answer.description()
    if any(mark in text for mark in ("未启用", "禁止上传", "服务不支持")):
        return "disabled"
    if answer.status in (200, 400):
        return "available"
    return "unknown"


def relay_switch(answer: ProbeAnswer) -> EndpointState:
    """new-api's answer to a submit it refuses locally: route there, and sold or not.

    An HTML page = no such route (builds before 2025-06-30 for video); 503
    ``model_not_found`` = no channel sells it (``middleware/distributor.go``); a 400 code 4
    = the relay checked the body itself, so the route is there and sold.
    """
    if answer.html:
        return "absent"
    payload = answer.json()
    if answer.status == 503:
        return "disabled"
    if answer.status == 400 and isinstance(payload, Mapping) and payload.get("code") == 4:
        return "available"
    return "unknown"


def _endpoint(name: str) -> Any:
    for endpoint in ENDPOINTS:
        if endpoint.name == name:
            return endpoint
    raise KeyError(name)


# -- the verdict -----------------------------------------------------------------------------


@attrs.frozen(slots=True)
class ServerProfile:
    """What ``client.probe()`` learned about the server, from cheap, unpaid requests.

    Attributes:
        base_url: the server probed.
        family: ``"java"`` (J, novicezk/midjourney-proxy), ``"csharp"`` (C,
            trueai-org/midjourney-proxy), ``"relay"`` (N, new-api), or ``None`` if unknown.
        version: the server's version where it tells (C, N).
        key_accepted: the API key worked (``None``: could not tell, e.g. rate-limited).
        auth: the auth scheme to use (``"bearer"`` or ``"mj-api-secret"``).
        mode: the mode to use (``None``: no mode segment).
        mode_path: the mode path template to use.
        modes: the mode prefixes verified to work (C's ``/mj-fast``, ``/mj-relax``, ...).
        endpoints: endpoint name -> ``"available"``, ``"absent"``, ``"disabled"`` (the route
            exists, but the operator turned it off or sells no channel for it), ``"unknown"``.
        notes: what was seen, step by step.
        warnings: what the user should know (guest mode, stripped webhooks, ...).
    """

    base_url: str
    family: Family | None
    version: str | None = None
    key_accepted: bool | None = None
    auth: Literal["bearer", "mj-api-secret"] = "mj-api-secret"
    mode: str | None = None
    mode_path: str = "/mj-{mode}"
    modes: tuple[str, ...] = ()
    endpoints: Mapping[str, EndpointState] = attrs.field(factory=dict)
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def family_name(self) -> str:
        """The family in words."""
        return FAMILY_NAMES[self.family] if self.family else "unknown server"

    def available(self, name: str) -> bool:
        """Whether endpoint ``name`` (``"video"``, ``"cancel"``, ...) is known to work."""
        return self.endpoints.get(name) == "available"

    def client_arguments(self) -> dict[str, Any]:
        """The ``Client(...)`` keyword arguments that fit this server (key left out)."""
        arguments: dict[str, Any] = {"base_url": self.base_url, "auth": self.auth}
        arguments["mode"] = self.mode
        if self.mode is not None and self.mode_path != "/mj-{mode}":
            arguments["mode_path"] = self.mode_path
        return arguments

    def client_code(self) -> str:
        """``mjasync.Client(...)`` as Python source, the key read from ``$MJ_API_KEY``."""
        parts = [repr(self.base_url), 'os.environ["MJ_API_KEY"]']
        parts.append(f"auth={self.auth!r}")
        parts.append(f"mode={self.mode!r}")
        if self.mode is not None and self.mode_path != "/mj-{mode}":
            parts.append(f"mode_path={self.mode_path!r}")
        return f"mjasync.Client({', '.join(parts)})"

    def cli_flags(self) -> list[str]:
        """The ``mjasync`` command-line flags that fit this server."""
        flags = ["--base-url", self.base_url, "--auth", self.auth]
        return [*flags, "--mode", self.mode if self.mode is not None else "none"]
