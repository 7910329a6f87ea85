"""The one cattrs converter: camelCase JSON in, frozen models out, never a crash on odd data.

Servers disagree about zero values (``null``, ``""``, ``0``), send ids as numbers, add fields
at will and invent new statuses. Each hook here accepts all of that and normalises it. What
cannot be repaired is a :class:`ProtocolError`: a task without an id, an id that is not one by
the rule user ids follow (it would go into URL paths), or a payload nested absurdly deep.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, KeysView, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import cattrs
from cattrs.gen import make_dict_structure_fn, override

from ._errors import ProtocolError
from ._json import MAX_NESTING, dumps, loads_dumped, nested_deeper_than, strip_notify_hook
from ._models import Button, ImageRef, Submission, Task, TaskAction, TaskStatus, VideoRef
from ._validation import is_task_id

__all__ = [
    "CompactPayload",
    "ReadOnlyMapping",
    "converter",
    "parse_epoch_millis",
    "parse_progress",
    "parse_status",
    "parse_submission",
    "parse_task",
    "parse_task_id",
]

_E = TypeVar("_E", TaskStatus, TaskAction)
_RAW_KEY = "\x00raw"  # where parse_task hands the untouched payload to the generated function
_PERCENT = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*%?\s*$")
# ASCII digits only: str.isdigit() also accepts "²", which int() refuses; and a bounded length,
# since int() refuses strings of more than 4300 digits.
_INT_TEXT = re.compile(r"^\s*-?[0-9]{1,30}\s*$")
_EMPTY: Mapping[str, Any]  # an empty ReadOnlyMapping, made below its class


def parse_progress(value: object) -> int | None:
    """Turn ``"45%"``, ``45``, ``"45.5"`` into 45; ``""``, ``None`` and other text into ``None``.

    The result is clamped to 0-100.
    """
    if type(value) is int:  # the common case first; bool is not `int` by type
        return max(0, min(100, value))
    if isinstance(value, bool) or value is None:
        return None
    number: float
    if isinstance(value, int):
        return max(0, min(100, value))  # exact; float() of a huge int would overflow
    if isinstance(value, float):
        number = value
    elif isinstance(value, str):
        match = _PERCENT.match(value)
        if match is None:
            return None
        number = float(match.group(1))
    else:
        return None
    if not math.isfinite(number):
        return None
    return max(0, min(100, int(number)))


def parse_epoch_millis(value: object) -> datetime | None:
    """Turn epoch milliseconds (int, float or digit string) into a UTC datetime; 0/"" -> None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text.isdigit() or _INT_TEXT.match(text) is None:
            return None
        value = int(text)
    if not isinstance(value, int | float):
        return None
    try:
        if not math.isfinite(value) or value <= 0:  # isfinite() of a huge int overflows
            return None
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def parse_task_id(value: object) -> str | None:
    """Task ids are strings inside mjasync; servers may send JSON numbers."""
    if type(value) is str:  # the common case, checked once per task per poll
        return value.strip() or None
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
    except ValueError:  # more than 4300 digits: no id, and str() refuses it anyway
        return None
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _optional_str(value: object, _: object = None) -> str | None:
    if type(value) is str or isinstance(value, str):
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _text(value: object, _: object = None) -> str:
    return _optional_str(value) or ""


def _label(value: object) -> str:
    return value if type(value) is str else _text(value)


def _optional_int(value: object, _: object = None) -> int | None:
    if type(value) is int:
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INT_TEXT.match(value):
        return int(value)
    return None


def _enum_hook(enum: type[_E]) -> Callable[[object, object], _E]:
    known = {member.value: member for member in enum}

    def structure(value: object, _: object = None) -> _E:
        if isinstance(value, str):
            return known.get(value.strip().upper(), enum.UNKNOWN)
        return enum.UNKNOWN

    return structure


_STATUS_HOOK = _enum_hook(TaskStatus)


def parse_status(value: object) -> TaskStatus:
    """A status string (anything, really) to a :class:`TaskStatus`; unknown values: UNKNOWN."""
    return _STATUS_HOOK(value, None)


def _mapping(value: object, _: object = None) -> Mapping[str, Any]:
    if isinstance(value, dict) and value:
        # A view, not a copy: payloads are freshly decoded JSON that nothing else changes.
        return ReadOnlyMapping(value)
    if isinstance(value, Mapping) and value:
        return ReadOnlyMapping(dict(value))
    return _EMPTY


class ReadOnlyMapping(Mapping[str, Any]):
    """A read-only view of a dict that, unlike ``MappingProxyType``, pickles and deep-copies.

    ``Task.properties`` is one, so tasks can cross process boundaries (multiprocessing,
    caches) like any other value.
    """

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self._data: dict[str, Any] | None = data

    def _dict(self) -> dict[str, Any]:
        assert self._data is not None
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self._dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict())

    def __len__(self) -> int:
        return len(self._dict())

    def __contains__(self, key: object) -> bool:
        return key in self._dict()

    def keys(self) -> KeysView[str]:
        return self._dict().keys()

    def get(self, key: str, default: Any = None) -> Any:
        return self._dict().get(key, default)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ReadOnlyMapping):
            return self._dict() == other._dict()
        return self._dict() == other if isinstance(other, Mapping) else NotImplemented

    __hash__ = None  # type: ignore[assignment]  # like a dict: equal by value, so unhashable

    def __repr__(self) -> str:
        try:
            return f"{type(self).__name__}({self._dict()!r})"
        except RecursionError:  # a hostile payload nested too deep to print
            return f"{type(self).__name__}(<nested too deep>)"

    def __reduce__(self) -> tuple[Callable[..., ReadOnlyMapping], tuple[Any, ...]]:
        return (ReadOnlyMapping, (self._dict(),))


_EMPTY = ReadOnlyMapping({})


class CompactPayload(ReadOnlyMapping):
    """A task payload kept as compact JSON and decoded on first read (``Task.raw``).

    A finished task's decoded payload weighs about three times its JSON; a batch holding
    10,000 results keeps the JSON, and only the payloads somebody reads are decoded (and then
    kept). Read-only; equal to any mapping with the same items.
    """

    __slots__ = ("_json",)

    def __init__(self, payload: Mapping[str, Any]) -> None:
        # No super().__init__: the decoded dict is what is left out until first read.
        self._json = dumps(payload)
        self._data = None

    @classmethod
    def _from_json(cls, data: bytes | str) -> CompactPayload:
        self = cls.__new__(cls)
        self._json, self._data = data, None
        return self

    def _dict(self) -> dict[str, Any]:
        if self._data is None:
            value = loads_dumped(self._json)
            self._data = value if isinstance(value, dict) else {}
        return self._data

    def __reduce__(self) -> tuple[Callable[..., ReadOnlyMapping], tuple[Any, ...]]:
        return (CompactPayload._from_json, (self._json,))


def _buttons(value: object, _: object = None) -> tuple[Button, ...]:
    if not isinstance(value, list | tuple):
        return ()
    buttons = []
    for item in value:
        if (type(item) is dict or isinstance(item, Mapping)) and isinstance(
            item.get("customId"), str
        ):
            buttons.append(
                Button(
                    custom_id=item["customId"],
                    label=_label(item.get("label")),
                    emoji=_label(item.get("emoji")),
                    style=_optional_int(item.get("style")),
                    type=_optional_int(item.get("type")),
                )
            )
    return tuple(buttons)


def _image_refs(value: object, _: object = None) -> tuple[ImageRef, ...]:
    if not isinstance(value, list | tuple):
        return ()
    refs = []
    for item in value:
        if isinstance(item, str) and item:
            refs.append(ImageRef(url=item))
        elif (
            (type(item) is dict or isinstance(item, Mapping))
            and isinstance(item.get("url"), str)
            and item["url"]
        ):
            url, thumbnail = item["url"], _optional_str(item.get("thumbnail"))
            # Servers often repeat the url as the thumbnail: keep one string, not two.
            refs.append(ImageRef(url=url, thumbnail=url if thumbnail == url else thumbnail))
    return tuple(refs)


def _video_refs(value: object, _: object = None) -> tuple[VideoRef, ...]:
    return tuple(VideoRef(url=ref.url, thumbnail=ref.thumbnail) for ref in _image_refs(value))


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(detailed_validation=False, forbid_extra_keys=False)
    conv.register_structure_hook(TaskStatus, _enum_hook(TaskStatus))
    conv.register_structure_hook(TaskAction, _enum_hook(TaskAction))
    conv.register_structure_hook(
        Task,
        make_dict_structure_fn(
            Task,
            conv,
            _cattrs_detailed_validation=False,
            id=override(struct_hook=lambda v, _: parse_task_id(v)),
            progress=override(struct_hook=lambda v, _: parse_progress(v)),
            prompt=override(struct_hook=_optional_str),
            prompt_en=override(rename="promptEn", struct_hook=_optional_str),
            description=override(struct_hook=_optional_str),
            state=override(struct_hook=_optional_str),
            submit_time=override(
                rename="submitTime", struct_hook=lambda v, _: parse_epoch_millis(v)
            ),
            start_time=override(rename="startTime", struct_hook=lambda v, _: parse_epoch_millis(v)),
            finish_time=override(
                rename="finishTime", struct_hook=lambda v, _: parse_epoch_millis(v)
            ),
            image_url=override(rename="imageUrl", struct_hook=_optional_str),
            image_urls=override(rename="imageUrls", struct_hook=_image_refs),
            video_url=override(rename="videoUrl", struct_hook=_optional_str),
            video_urls=override(rename="videoUrls", struct_hook=_video_refs),
            fail_reason=override(rename="failReason", struct_hook=_optional_str),
            buttons=override(struct_hook=_buttons),
            properties=override(struct_hook=_mapping),
            raw=override(rename=_RAW_KEY, struct_hook=lambda v, _: v),
        ),
    )
    return conv


#: The single converter mjasync uses for everything it reads off the wire.
converter = _make_converter()


def _snippet(payload: object) -> str:
    try:
        if isinstance(payload, Mapping):
            payload = strip_notify_hook(payload)
        return repr(payload)[:200]
    except (ValueError, RecursionError):  # a 4300-digit int, or nested too deep
        return f"<unprintable {type(payload).__name__}>"


def parse_task(payload: object) -> Task:
    """Build a :class:`Task` from one decoded JSON object.

    A ``notifyHook`` the server echoes (top level or in ``properties``) is left out of
    ``properties`` and ``raw``: a webhook receiver's URL carries its secret.

    Raises:
        ProtocolError: the payload is not an object, has no usable ``id`` (one that
            :func:`~mjasync._validation.check_task_id` accepts: it goes into URL paths), or
            is nested more than 64 levels deep.
    """
    payload = _checked_task_payload(payload)
    try:
        raw = payload if isinstance(payload, CompactPayload) else CompactPayload(payload)
        return converter.structure({**payload, _RAW_KEY: raw}, Task)
    except Exception as exc:  # the hooks are total; this is a safety net for cattrs itself
        raise ProtocolError(
            f"unreadable task payload ({type(exc).__name__})", body=_snippet(payload)
        ) from exc


def _checked_task_payload(payload: object) -> Mapping[str, Any]:
    """The payload to build a task from (``notifyHook`` left out), or a ProtocolError."""
    if not isinstance(payload, Mapping):
        raise ProtocolError(
            f"expected a task object, got {type(payload).__name__}", body=_snippet(payload)
        )
    task_id = parse_task_id(payload.get("id"))
    if task_id is None:
        raise ProtocolError("task payload has no usable 'id'", body=_snippet(payload))
    if not is_task_id(task_id):
        raise ProtocolError(
            f"task payload has an id that is not a task id: {task_id[:80]!r}",
            body=_snippet(payload),
        )
    if isinstance(payload, CompactPayload):
        return payload  # a Task's own raw: checked when that task was made
    if nested_deeper_than(payload):
        raise ProtocolError(
            f"task payload is nested more than {MAX_NESTING} levels deep", body=_snippet(payload)
        )
    return strip_notify_hook(payload)


def parse_submission(payload: Mapping[str, Any]) -> Submission:
    """Build a :class:`Submission` from a submit answer already known to be a success code.

    ``task_id`` is what the server sent; whether it may go into a URL is the caller's check
    (``WireAPI.submit`` refuses one that is not a task id). ``properties`` never holds an
    echoed ``notifyHook``, and is left empty when nested more than 64 levels deep: the job
    was accepted, and its id matters more than a hostile extra.
    """
    code = _optional_int(payload.get("code"))
    props = payload.get("properties")
    if not isinstance(props, Mapping) or nested_deeper_than(props):
        props = None
    return Submission(
        task_id=parse_task_id(payload.get("result")),
        code=code if code is not None else 0,
        description=_text(payload.get("description")),
        properties=_mapping(strip_notify_hook(props) if props is not None else None),
    )
