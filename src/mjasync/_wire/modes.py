"""Modes: the names a server's accounts run in, and where a mode goes in a URL (pure).

A mode is a path segment before ``/mj/...`` (``/mj-fast/mj/submit/imagine``); some relays put it
as ``/fast/mj/...``; the original Java proxy has none. Each mode is its own budget upstream.
"""

from __future__ import annotations

import re

__all__ = [
    "DEFAULT_MODE_KEY",
    "MODES",
    "check_mode",
    "check_mode_path",
    "mode_key",
    "mode_prefix",
]

MODES = ("fast", "relax", "turbo")
_TEMPLATE_FIELD = re.compile(r"\{(\w*)\}")

DEFAULT_MODE_KEY = "default"


def mode_key(mode: str | None) -> str:
    """The budget key for a mode; ``None`` (no mode segment) shares the ``default`` budget."""
    return mode if mode else DEFAULT_MODE_KEY


def mode_prefix(mode: str | None, template: str) -> str:
    """The path segment for a mode: ``mode_prefix("fast", "/mj-{mode}") == "/mj-fast"``.

    ``None`` means no segment (the server's default mode).
    """
    if mode is None:
        return ""
    return template.replace("{mode}", mode).rstrip("/")


def check_mode(mode: object) -> str | None:
    """Validate a mode name (``fast``, ``relax``, ``turbo`` or ``None``)."""
    if mode is None:
        return None
    if not isinstance(mode, str):
        raise TypeError(f"mode must be a str or None, not {type(mode).__name__}")
    value = mode.strip().lower()
    if value in ("", "none", "default"):
        return None
    if value not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)} or None, not {mode!r}")
    return value


def check_mode_path(template: str) -> str:
    """Validate a mode path template such as ``/mj-{mode}`` or ``/{mode}``."""
    if not isinstance(template, str):
        raise TypeError(f"mode_path must be a str, not {type(template).__name__}")
    fields = _TEMPLATE_FIELD.findall(template)
    if fields != ["mode"] or not template.startswith("/"):
        raise ValueError(
            f"mode_path must start with '/' and contain '{{mode}}' once, e.g. '/mj-{{mode}}', "
            f"not {template!r}"
        )
    return template
