"""Which server family serves which endpoint (pure data, read from the servers' own source).

J is novicezk/midjourney-proxy v2.6.3 (commit fd045f9), C trueai-org/midjourney-proxy v11.10.3
(commit ed32197), N new-api (QuantumNous/new-api 65b1654; Calcium-Ion/new-api v0.6.3.1.1 for
"old N"). The table is what :class:`~mjasync.UnsupportedEndpointError` quotes to say where an
endpoint *is* served, what ``client.probe()`` reports, and what the README's endpoint table
lists. Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

import attrs

__all__ = [
    "ENDPOINTS",
    "FAMILIES",
    "FAMILY_NAMES",
    "FAMILY_ORIGINS",
    "Endpoint",
    "Family",
    "endpoint_for_path",
    "endpoint_named",
    "served_by",
]

Family = Literal["java", "csharp", "relay"]
FAMILIES: tuple[Family, ...] = ("java", "csharp", "relay")
#: Each family's letter and where it comes from.
FAMILY_ORIGINS: Mapping[Family, tuple[str, str]] = {
    "java": ("J", "novicezk/midjourney-proxy"),
    "csharp": ("C", "trueai-org/midjourney-proxy"),
    "relay": ("N", "new-api relays"),
}
FAMILY_NAMES: Mapping[Family, str] = {
    family: f"{letter} ({origin})" for family, (letter, origin) in FAMILY_ORIGINS.items()
}


@attrs.frozen(slots=True)
class Endpoint:
    """One route and the families that serve it.

    Attributes:
        name: a short name (``"video"``, ``"cancel"``, ...), the key of probe results.
        method: ``GET`` or ``POST``.
        route: the path after the mode prefix; ``{id}`` stands for a task id.
        families: family -> a note on the version or limits (``""`` when none).
        call: the mjasync call that uses it.
    """

    name: str
    method: str
    route: str
    families: Mapping[Family, str]
    call: str

    def served_by(self) -> str:
        """``"C (trueai-org/midjourney-proxy, since v8.6.10) and N (...)"``."""
        return served_by(self)

    @property
    def pattern(self) -> re.Pattern[str]:
        """A regex matching a request path that ends in this route (any prefix, any id)."""
        return _PATTERNS[self.name]


def _ep(name: str, method: str, route: str, call: str, **families: str) -> Endpoint:
    return Endpoint(name, method, route, families, call)  # type: ignore[arg-type]


#: Every endpoint mjasync knows, in the order of the README table.
ENDPOINTS: tuple[Endpoint, ...] = (
    _ep("imagine", "POST", "/mj/submit/imagine", "Imagine", java="", csharp="", relay=""),
    _ep("blend", "POST", "/mj/submit/blend", "Blend", java="", csharp="", relay=""),
    _ep(
        "describe",
        "POST",
        "/mj/submit/describe",
        "Describe",
        java="",
        csharp="also a link; language",
        relay="",
    ),
    _ep("shorten", "POST", "/mj/submit/shorten", "Shorten", csharp="", relay=""),
    _ep("action", "POST", "/mj/submit/action", "Action / client.action()", csharp="", relay=""),
    _ep("modal", "POST", "/mj/submit/modal", "Modal", csharp="", relay=""),
    _ep(
        "change",
        "POST",
        "/mj/submit/change",
        "Change (client.action() on J)",
        java="",
        relay="index 1-4 even for reroll",
    ),
    _ep(
        "video",
        "POST",
        "/mj/submit/video",
        "Video / client.video()",
        csharp="since v8.6.10",
        relay="builds since 2025-06-30",
    ),
    _ep(
        "edits",
        "POST",
        "/mj/submit/edits",
        "Edit / client.edit()",
        csharp="since v8.5.4 (also /edit)",
        relay="builds since 2025-06-30",
    ),
    _ep(
        "retexture",
        "POST",
        "/mj/submit/retexture",
        "Retexture / client.retexture()",
        csharp="since v8.5.4",
    ),
    _ep(
        "upload",
        "POST",
        "/mj/submit/upload-discord-images",
        "client.upload_images()",
        csharp="",
        relay="",
    ),
    _ep(
        "swap_face",
        "POST",
        "/mj/insight-face/swap",
        "SwapFace / client.swap_face()",
        csharp="images or URLs",
        relay="base64 images only",
    ),
    _ep(
        "swap_video_face",
        "POST",
        "/mj/insight-face/video-swap",
        "SwapVideoFace / client.swap_video_face()",
        csharp="multipart; whitelisted users",
    ),
    _ep("fetch", "GET", "/mj/task/{id}/fetch", "client.fetch()", java="", csharp="", relay=""),
    _ep(
        "list",
        "POST",
        "/mj/task/list-by-condition",
        "client.fetch_many(), polling",
        java="",
        csharp="",
        relay="",
    ),
    _ep(
        "image_seed", "GET", "/mj/task/{id}/image-seed", "client.image_seed()", csharp="", relay=""
    ),
    _ep("cancel", "POST", "/mj/task/{id}/cancel", "client.cancel()", csharp="admin users only"),
)

_BY_NAME: Mapping[str, Endpoint] = {endpoint.name: endpoint for endpoint in ENDPOINTS}
# C's /mj/submit/edit is the same action as /edits (SubmitController.cs:781-845).
_ALIASES: Mapping[str, str] = {"/mj/submit/edit": "edits"}
_PATTERNS: Mapping[str, re.Pattern[str]] = {
    endpoint.name: re.compile(
        # Every route starts with "/": a mode prefix before it is a whole segment already.
        re.escape(endpoint.route).replace(re.escape("{id}"), "[^/]+") + "$"
    )
    for endpoint in ENDPOINTS
}


def endpoint_named(name: str) -> Endpoint:
    """The endpoint called ``name`` (``KeyError`` if there is none)."""
    return _BY_NAME[name]


def endpoint_for_path(path: str) -> Endpoint | None:
    """The endpoint a request path (mode prefix and task id included) is for, if known.

    >>> endpoint_for_path("/mj-fast/mj/task/123/cancel").name
    'cancel'
    """
    path = path.split("?", 1)[0]
    for suffix, name in _ALIASES.items():
        if path.endswith(suffix):
            return _BY_NAME[name]
    for endpoint in ENDPOINTS:
        if _PATTERNS[endpoint.name].search(path):
            return endpoint
    return None


def served_by(endpoint: Endpoint) -> str:
    """Which families serve ``endpoint``, in words, with their notes."""
    parts = []
    for family in FAMILIES:
        if family in endpoint.families:
            note = endpoint.families[family]
            letter, origin = FAMILY_ORIGINS[family]
            parts.append(f"{letter} ({origin}{f', {note}' if note else ''})")
    if not parts:
        return "no known server family"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
