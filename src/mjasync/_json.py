"""JSON in and out: orjson when the ``speed`` extra is installed, the standard library if not.

Both paths give the same values and raise the same errors (``ValueError``, ``RecursionError``):
where orjson is stricter or lossy, the standard library decides.

Also here: what every decoded answer is checked for before it is kept. A payload nested
deeper than :data:`MAX_NESTING` is refused (hostile: real answers are a few levels deep, and
a deep one turns every later ``repr``, comparison or re-encoding into a ``RecursionError``),
and the ``notifyHook`` a server echoes (the webhook receiver's secret is in its path) is
taken out of payloads and error texts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

__all__ = [
    "MAX_NESTING",
    "dumps",
    "hide_notify_hooks",
    "loads",
    "loads_dumped",
    "nested_deeper_than",
    "strip_notify_hook",
]

#: The deepest nesting a server answer may have. Task payloads are about four levels deep.
MAX_NESTING: Final = 64
_HOOK_KEY: Final = "notifyHook"
# A notifyHook value inside JSON text or a Python repr ('...' or "..."), also when cut short
# by a snippet's length limit: the value is replaced up to its closing quote or the end.
_HOOK_TEXT = re.compile(
    r"""(?P<key>(?P<kq>["'])notifyHook(?P=kq)\s*:\s*)(?P<q>["'])(?:\\.|(?!(?P=q)).)*(?:(?P=q)|\Z)""",
    re.DOTALL,
)


def nested_deeper_than(value: object, limit: int = MAX_NESTING) -> bool:
    """Whether JSON data has lists/objects nested more than ``limit`` levels (no recursion).

    Walks one level at a time, so it costs a few microseconds for a task payload.

    >>> nested_deeper_than([[1]], 1), nested_deeper_than([[1]], 2)
    (True, False)
    """
    if isinstance(value, Mapping) and not isinstance(value, dict):
        value = dict(value)
    level = [value] if isinstance(value, dict | list) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        level = [
            child
            for item in level
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, (dict, list))
        ]
    return False


def strip_notify_hook(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """``payload`` without ``notifyHook`` (top level and in ``properties``); itself if none.

    Servers echo the hook URL a job was submitted with, and a webhook receiver's URL carries
    its secret: it must not be stored (the batch journal keeps ``task.raw``) or shown.
    """
    props = payload.get("properties")
    in_props = isinstance(props, Mapping) and _HOOK_KEY in props
    if not in_props and _HOOK_KEY not in payload:
        return payload
    stripped = {k: v for k, v in payload.items() if k != _HOOK_KEY}
    if in_props:
        assert isinstance(props, Mapping)
        stripped["properties"] = {k: v for k, v in props.items() if k != _HOOK_KEY}
    return stripped


def hide_notify_hooks(text: str) -> str:
    """``text`` with every quoted ``notifyHook`` value replaced by ``***``.

    >>> hide_notify_hooks('{"notifyHook": "https://me.example/hooks/s3cret", "id": "1"}')
    '{"notifyHook": "***", "id": "1"}'
    """
    if _HOOK_KEY not in text:
        return text
    return _HOOK_TEXT.sub(lambda m: f"{m['key']}{m['q']}***{m['q']}", text)


def _stdlib_loads(body: bytes) -> object:
    return json.loads(body)


def _stdlib_dumps(value: Mapping[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _float_id(value: object) -> bool:
    """Whether a decoded answer carries a task id number that orjson may have rounded."""
    if isinstance(value, list):
        return any(isinstance(item, dict) and isinstance(item.get("id"), float) for item in value)
    if isinstance(value, dict):
        return isinstance(value.get("result"), float) or isinstance(value.get("id"), float)
    return False


def _fast_or_stdlib_loads(body: bytes) -> object:
    try:
        value = _orjson_loads(body)
    except ValueError:
        # orjson is stricter (NaN, UTF-16 bodies, nesting): let the standard decoder decide,
        # so both give the same answers and the same errors.
        return json.loads(body)
    if _float_id(value):
        # orjson reads integers beyond 64 bits as floats: an id must keep every digit.
        return json.loads(body)
    return value


def _fast_or_stdlib_dumps(value: Mapping[str, Any]) -> bytes | str:
    try:
        data = _orjson_dumps(value)
    except TypeError:  # integers beyond 64 bits, or a mapping that is not a dict
        return _stdlib_dumps(dict(value))
    if b"null" in data and _orjson_loads(data) != value:
        # orjson writes NaN and Infinity as null; the standard library keeps them.
        return _stdlib_dumps(value)
    # A copy: orjson's result keeps its whole write buffer (8 KB for a 2 KB task), and these
    # are kept for as long as the tasks are.
    return bytes(memoryview(data))


def loads_dumped(data: bytes | str) -> object:
    """Decode what :func:`dumps` wrote (``str``: only the standard library could write it)."""
    return json.loads(data) if isinstance(data, str) else loads(data)


loads: Callable[[bytes], object]
#: Compact JSON: ``bytes`` from orjson, or ``str`` from the standard library.
dumps: Callable[[Mapping[str, Any]], bytes | str]
try:  # the `speed` extra: decodes a poll round's task list 2-3x faster, encodes 15x faster
    from orjson import dumps as _orjson_dumps
    from orjson import loads as _orjson_loads
except ImportError:  # pragma: no cover - depends on the environment
    loads, dumps = _stdlib_loads, _stdlib_dumps
else:
    loads, dumps = _fast_or_stdlib_loads, _fast_or_stdlib_dumps
