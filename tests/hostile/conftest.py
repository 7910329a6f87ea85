"""Fixtures for the hostile-world tests: hostile servers of our own, and leak detectors.

The batch/download tests of this directory bring their own server; the wire tests use
:class:`~tests.hostile.wire_server.HostileServer` through the ``server`` and ``elsewhere``
fixtures (two servers on different ports: two origins, as far as a client is concerned).
"""

from __future__ import annotations

import html
import json
import re
import traceback
from collections.abc import AsyncIterator, Iterable
from urllib.parse import unquote

import pytest

from .wire_server import HostileServer

KEY = "sk-Zq8xV3mN7pL2wR9tY4uK6jH1"


@pytest.fixture
async def server() -> AsyncIterator[HostileServer]:
    async with HostileServer() as hostile:
        yield hostile


@pytest.fixture
async def elsewhere() -> AsyncIterator[HostileServer]:
    """A second server: where a hostile one redirects to."""
    async with HostileServer() as other:
        yield other


_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})|\\([/\"\\])")


def decoded_forms(text: str) -> list[str]:
    """``text`` and what it says once JSON escapes, HTML references and %XX are decoded."""

    def unescape_json(value: str) -> str:
        return _JSON_ESCAPE.sub(lambda m: chr(int(m[1], 16)) if m[1] else m[2], value)

    forms = [text]
    for decode in (unescape_json, html.unescape, unquote):
        forms.append(decode(forms[-1]))
    return forms


def leaks(text: str, secrets: Iterable[str]) -> list[str]:
    """Pieces of a secret (any 8 characters in a row) ``text`` shows, in any spelling."""
    found = []
    for form in decoded_forms(text):
        for secret in secrets:
            body = secret.removeprefix("sk-")
            found += [body[i : i + 8] for i in range(len(body) - 7) if body[i : i + 8] in form]
    return found


def everything_about(exc: BaseException) -> str:
    """str, repr, traceback and the text-bearing attributes of an error and its causes."""
    parts = ["".join(traceback.format_exception(exc))]
    seen: set[int] = set()
    item: BaseException | None = exc
    while item is not None and id(item) not in seen:
        seen.add(id(item))
        parts += [str(item), repr(item)]
        for name in ("body", "description", "message", "properties", "task", "fail_reason"):
            value = getattr(item, name, None)
            parts.append(repr(value))
            if name == "task" and value is not None:
                parts += [repr(dict(value.raw)), repr(dict(value.properties))]
        item = item.__cause__ or item.__context__
    return "\n".join(parts)


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every record as it would be printed, with its exception text."""
    return "\n".join(
        f"{r.name} {r.levelname} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records
    )


def json_escaped(text: str, every: int = 3) -> str:
    """``text`` with every ``every``-th character written as a ``\\uXXXX`` escape."""
    return "".join(f"\\u{ord(c):04x}" if i % every == 0 else c for i, c in enumerate(text))


def as_json_string(text: str) -> str:
    """A JSON string literal of ``text`` (with its quotes)."""
    return json.dumps(text)
