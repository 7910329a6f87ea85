"""``parse_task`` on hostile payloads: a valid :class:`Task` or a :class:`ProtocolError`, never
anything else, and every task it returns keeps the model's invariants."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, timedelta
from typing import Any

import pytest
from hypothesis import example, given

import mjasync
from mjasync import Button, Task, TaskAction, TaskStatus
from mjasync._converter import parse_task, parse_task_id
from mjasync._json import nested_deeper_than, strip_notify_hook
from mjasync._models import ButtonKind, ImageRef
from mjasync._validation import is_task_id

from .conftest import FUZZ
from .strategies import ANY_PAYLOAD, task_payloads


def _same(a: object, b: object) -> bool:
    """Equal, with NaN equal to NaN (raw is kept as JSON, so NaN comes back a new object)."""
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)  # type: ignore[attr-defined, index]
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))  # type: ignore[arg-type]
    return a == b


def usable(payload: object) -> bool:
    """Whether a task can be built: an object, not absurdly deep, with an id that is one by
    the rule user ids follow (ids go into URL paths)."""
    if not isinstance(payload, Mapping) or nested_deeper_than(payload):
        return False
    task_id = parse_task_id(payload.get("id"))
    return task_id is not None and is_task_id(task_id)


def assert_invariants(task: Task, payload: Mapping[str, Any]) -> None:
    assert isinstance(task.id, str) and task.id and task.id == task.id.strip()
    assert isinstance(task.status, TaskStatus)
    assert isinstance(task.action, TaskAction)
    assert task.progress is None or (type(task.progress) is int and 0 <= task.progress <= 100)
    for moment in (task.submit_time, task.start_time, task.finish_time):
        assert moment is None or moment.utcoffset() == timedelta(0)
        assert moment is None or moment.tzinfo is UTC
    for text in (
        task.prompt,
        task.prompt_en,
        task.description,
        task.state,
        task.image_url,
        task.video_url,
        task.fail_reason,
    ):
        assert text is None or (isinstance(text, str) and text)
    assert isinstance(task.buttons, tuple)
    for button in task.buttons:
        assert isinstance(button, Button) and isinstance(button.custom_id, str)
        assert isinstance(button.label, str) and isinstance(button.emoji, str)
        assert button.style is None or type(button.style) is int
        assert button.type is None or type(button.type) is int
        # Derived views are total too: they must not crash on what a server sent.
        assert isinstance(button.kind, ButtonKind)
        assert isinstance(button.name, str)
        assert button.index in (None, 1, 2, 3, 4)
        assert button.direction in (None, "left", "right", "up", "down")
        assert button.zoom is None or isinstance(button.zoom, float)
    assert isinstance(task.image_urls, tuple)
    assert all(
        isinstance(r, ImageRef) and isinstance(r.url, str) and r.url for r in task.image_urls
    )
    assert isinstance(task.properties, Mapping) and isinstance(task.raw, Mapping)
    # The payload as received, less an echoed notifyHook (it carries a webhook secret).
    assert _same(dict(task.raw), dict(strip_notify_hook(payload)))
    assert isinstance(task.is_terminal, bool)
    assert isinstance(task.status_text, str) and isinstance(task.action_text, str)
    assert task.final_prompt is None or isinstance(task.final_prompt, str)
    # Looking a button up either finds it or says which ones exist: never another error.
    for name in ("U1", "V4", "reroll", "zoom_2x", "pan_left", "custom_zoom", "💥"):
        try:
            found: Button | ValueError = task.button(name)
        except ValueError as exc:
            found = exc
        assert isinstance(found, Button) or "available" in str(found)


@FUZZ
@given(task_payloads())
@example({"id": "1", "submitTime": "²", "progress": "²"})
@example({"id": "1", "startTime": "9" * 5000, "buttons": [{"customId": "x", "style": "9" * 5000}]})
@example({"id": "1", "buttons": [{"customId": "MJ::Outpaint::0::1::x"}]})
@example({"id": "1", "buttons": [{"customId": "MJ::Outpaint::x"}]})
@example({"id": "1", "buttons": [{"customId": "MJ::Outpaint::" + "9" * 5000 + "::1"}]})
@example({"id": 1.5})
@example({"id": float("nan")})
@example({"id": 10**400})
@example({"id": 10**5000})
@example({"id": "1", "progress": 10**400, "finishTime": 10**400})
def test_parse_task_returns_a_valid_task_or_raises_protocol_error(payload: Any) -> None:
    try:
        task = parse_task(payload)
    except mjasync.ProtocolError as exc:
        error = exc
    else:
        assert_invariants(task, payload)
        return
    assert error.body is not None  # the error says what it could not read
    # Only a missing or unusable id (or hostile nesting) is beyond repair; any other field is
    # normalised.
    assert not usable(payload), error


@FUZZ
@given(ANY_PAYLOAD)
def test_parse_task_accepts_only_objects_with_an_id(payload: Any) -> None:
    try:
        parse_task(payload)
    except mjasync.ProtocolError:
        assert not usable(payload)
    else:
        assert usable(payload)


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"id": None},
        {"id": ""},
        {"id": "   "},
        {"id": True},
        {"id": [1]},
        {"id": {"x": 1}},
        {"id": 1.5},
        [],
        "1",
        None,
        7,
    ],
)
def test_payloads_without_a_usable_id_are_protocol_errors(payload: Any) -> None:
    with pytest.raises(mjasync.ProtocolError):
        parse_task(payload)


@pytest.mark.parametrize(
    ("raw_id", "parsed"),
    [
        ("1320098173412546", "1320098173412546"),
        (1320098173412546, "1320098173412546"),
        (17.0, "17"),
        (" 42 ", "42"),
    ],
)
def test_ids_are_strings_whatever_their_json_type(raw_id: Any, parsed: str) -> None:
    assert parse_task({"id": raw_id}).id == parsed
