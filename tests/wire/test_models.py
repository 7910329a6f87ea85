"""The fixtures parse with the right values; the converter survives what real servers send."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from typing import Any

import pytest

from mjasync import (
    Button,
    ProtocolError,
    Submission,
    Task,
    TaskAction,
    TaskStatus,
)
from mjasync._converter import (
    parse_epoch_millis,
    parse_progress,
    parse_submission,
    parse_task,
    parse_task_id,
)
from mjasync._json import strip_notify_hook
from mjasync._models import ButtonKind

from .conftest import load_fixture

HASH = "0ddb91a0-af46-4ae9-8e8e-c271074eb6e6"


def _task(**fields: Any) -> Task:
    return parse_task({"id": "1", **fields})


# -- fixtures ---------------------------------------------------------------------------------


def test_java_task_fixture_parses_with_correct_values() -> None:
    task = parse_task(load_fixture("task_imagine_success_java.json"))
    assert task.id == "14001929738841620"
    assert isinstance(task.id, str)
    assert task.status is TaskStatus.SUCCESS
    assert task.is_terminal
    assert task.action is TaskAction.IMAGINE
    assert task.progress == 100
    assert task.prompt == "猫猫"
    assert task.prompt_en == "Cat"
    assert task.description == "/imagine 猫猫"
    assert task.submit_time == datetime(2023, 7, 13, 6, 56, 45, 854000, tzinfo=UTC)
    assert task.start_time == datetime.fromtimestamp(1689231442.755, tz=UTC)
    assert task.finish_time == datetime.fromtimestamp(1689231544.312, tz=UTC)
    assert task.finish_time is not None
    assert task.finish_time.tzinfo is UTC
    assert task.image_url == "https://cdn.discordapp.com/attachments/xxx/xxx/xxxx.png"
    assert task.fail_reason is None
    assert task.buttons == ()  # no buttons field at all
    assert task.final_prompt == "Cat"
    assert dict(task.properties) == {"finalPrompt": "Cat"}


def test_buttons_fixture_parses_buttons_by_custom_id() -> None:
    payload = load_fixture("task_imagine_success_buttons.json")
    task = parse_task(payload)
    assert task.id == "1748339029401828"
    assert task.status is TaskStatus.SUCCESS
    assert task.progress == 100
    assert task.submit_time == datetime.fromtimestamp(1748339029.401, tz=UTC)
    assert task.state is None
    assert len(task.buttons) == 9
    names = [b.name for b in task.buttons]
    assert names == ["U1", "U2", "U3", "U4", "reroll", "V1", "V2", "V3", "V4"]
    u1 = task.button("U1")
    assert u1.custom_id == f"MJ::JOB::upsample::1::{HASH}"
    assert u1.kind is ButtonKind.UPSCALE
    assert u1.index == 1
    assert u1.style == 2
    assert u1.type == 2
    assert task.button("V3").custom_id == f"MJ::JOB::variation::3::{HASH}"
    reroll = task.button("🔄")
    assert reroll.custom_id == f"MJ::JOB::reroll::0::{HASH}::SOLO"
    assert reroll.label == ""
    assert task.button("reroll") == reroll
    assert task.button(f"MJ::JOB::upsample::4::{HASH}").name == "U4"
    # many extra properties and fields are kept
    assert task.properties["messageHash"] == HASH
    assert task.properties["flags"] == 0
    assert task.raw["imageWidth"] == 2048
    assert task.final_prompt == "dog playing ball --v 7.0 --p 77724z8"


def test_missing_button_error_lists_available_names() -> None:
    task = parse_task(load_fixture("task_imagine_success_buttons.json"))
    with pytest.raises(ValueError, match="U5") as info:
        task.button("U5")
    message = str(info.value)
    for name in ("U1", "U4", "V1", "V4", "reroll"):
        assert name in message
    bare = parse_task(load_fixture("task_imagine_success_java.json"))
    with pytest.raises(ValueError, match="available: none"):
        bare.button("U1")


def test_submit_fixtures_parse() -> None:
    ok = parse_submission(load_fixture("submit_success.json"))
    assert ok == Submission(
        task_id="8498455807619990",
        code=1,
        description="成功",
        properties=ok.properties,
    )
    assert ok.properties["discordInstanceId"] == "1118138338562560102"
    assert not ok.queued
    assert ok.queue_position is None

    queued = parse_submission(load_fixture("submit_in_queue.json"))
    assert queued.task_id == "0741798445574458"
    assert queued.code == 22
    assert queued.queued
    assert queued.queue_position == 1


# -- buttons ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("custom_id", "kind", "name"),
    [
        (f"MJ::JOB::upsample::2::{HASH}", ButtonKind.UPSCALE, "U2"),
        (f"MJ::JOB::variation::4::{HASH}", ButtonKind.VARIATION, "V4"),
        (f"MJ::JOB::reroll::0::{HASH}::SOLO", ButtonKind.REROLL, "reroll"),
        (f"MJ::JOB::low_variation::1::{HASH}::SOLO", ButtonKind.VARY_SUBTLE, "vary_subtle"),
        (f"MJ::JOB::high_variation::1::{HASH}::SOLO", ButtonKind.VARY_STRONG, "vary_strong"),
        (f"MJ::JOB::upsample_v6_2x_subtle::1::{HASH}::SOLO", ButtonKind.UPSCALE_HD, "upscale_hd"),
        (f"MJ::Outpaint::50::1::{HASH}::SOLO", ButtonKind.ZOOM, "zoom_2x"),
        (f"MJ::Outpaint::75::1::{HASH}::SOLO", ButtonKind.ZOOM, "zoom_1.5x"),
        (f"MJ::JOB::pan_left::1::{HASH}::SOLO", ButtonKind.PAN, "pan_left"),
        (f"MJ::CustomZoom::1::{HASH}", ButtonKind.CUSTOM_ZOOM, "custom_zoom"),
        (f"MJ::Inpaint::1::{HASH}::SOLO", ButtonKind.INPAINT, "inpaint"),
        ("MJ::Something::new", ButtonKind.OTHER, "MJ::Something::new"),
    ],
)
def test_button_kind_from_custom_id(custom_id: str, kind: ButtonKind, name: str) -> None:
    button = Button(custom_id=custom_id)
    assert button.kind is kind
    assert button.name == name


def test_zoom_out_factors_match_the_labels() -> None:
    assert Button(custom_id=f"MJ::Outpaint::50::1::{HASH}::SOLO").zoom == 2.0
    assert Button(custom_id=f"MJ::Outpaint::75::1::{HASH}::SOLO").zoom == 1.5  # "Zoom Out 1.5x"
    task = _task(buttons=[{"customId": f"MJ::Outpaint::75::1::{HASH}::SOLO", "label": ""}])
    assert task.button("zoom_1.5x").custom_id.startswith("MJ::Outpaint::75::")
    assert task.button("Zoom Out 1.5x").custom_id.startswith("MJ::Outpaint::75::")


def test_button_lookup_by_label_variants() -> None:
    task = _task(
        buttons=[
            {"customId": f"MJ::Inpaint::1::{HASH}::SOLO", "label": "Vary (Region)"},
            {"customId": f"MJ::Outpaint::50::1::{HASH}::SOLO", "label": "Zoom Out 2x"},
            {"customId": f"MJ::JOB::high_variation::1::{HASH}::SOLO", "label": ""},
        ]
    )
    assert task.button("Vary (Region)").kind is ButtonKind.INPAINT
    assert task.button("inpaint").kind is ButtonKind.INPAINT
    assert task.button("Zoom Out 2x").kind is ButtonKind.ZOOM
    assert task.button("zoom_2x").kind is ButtonKind.ZOOM
    assert task.button("Vary (Strong)").kind is ButtonKind.VARY_STRONG


# -- converter robustness ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("45%", 45),
        ("45.5%", 45),
        ("100%", 100),
        (" 7 % ", 7),
        (45, 45),
        (45.9, 45),
        ("150%", 100),
        (150, 100),
        (-3, 0),
        ("-3%", 0),
        ("abc", None),
        ("", None),
        (None, None),
        (True, None),
        ([], None),
        (float("nan"), None),
        (float("inf"), None),
    ],
)
def test_parse_progress(value: object, expected: int | None) -> None:
    assert parse_progress(value) == expected
    assert _task(progress=value).progress == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1689231405854, datetime(2023, 7, 13, 6, 56, 45, 854000, tzinfo=UTC)),
        ("1689231405854", datetime(2023, 7, 13, 6, 56, 45, 854000, tzinfo=UTC)),
        (0, None),
        ("0", None),
        ("", None),
        (None, None),
        (-5, None),
        ("soon", None),
        (True, None),
        (10**30, None),
    ],
)
def test_parse_epoch_millis(value: object, expected: datetime | None) -> None:
    assert parse_epoch_millis(value) == expected
    assert _task(submitTime=value, startTime=value, finishTime=value).finish_time == expected


def test_unset_values_as_empty_string_null_or_zero_become_none() -> None:
    relay = _task(
        status="",
        action="IMAGINE",
        progress="",
        prompt="",
        promptEn="",
        description="",
        state="",
        failReason="",
        imageUrl="",
        submitTime=0,
        startTime=0,
        finishTime=0,
        buttons=None,
        properties=None,
    )
    assert relay.status is TaskStatus.UNKNOWN
    assert relay.status_text == ""
    assert not relay.is_terminal
    for field in ("progress", "prompt", "prompt_en", "description", "state", "fail_reason"):
        assert getattr(relay, field) is None, field
    assert relay.image_url is None
    assert relay.submit_time is relay.start_time is relay.finish_time is None
    assert relay.buttons == ()
    assert dict(relay.properties) == {}


def test_unknown_status_and_action_are_kept_not_raised() -> None:
    task = _task(status="PAUSED_BY_MOD", action="TELEPORT", progress="12%")
    assert task.status is TaskStatus.UNKNOWN
    assert task.status_text == "PAUSED_BY_MOD"
    assert task.action is TaskAction.UNKNOWN
    assert task.action_text == "TELEPORT"
    assert task.progress == 12
    assert not task.is_terminal


def test_status_is_case_insensitive_and_terminal_set() -> None:
    assert _task(status="success").status is TaskStatus.SUCCESS
    for status, terminal in [
        ("NOT_START", False),
        ("SUBMITTED", False),
        ("IN_PROGRESS", False),
        ("MODAL", False),
        ("SUCCESS", True),
        ("FAILURE", True),
        ("CANCEL", True),
    ]:
        assert _task(status=status).is_terminal is terminal, status


def test_unknown_fields_are_kept_in_raw() -> None:
    payload = {
        "id": 1320098173412546,
        "status": "IN_PROGRESS",
        "botType": "NIJI_JOURNEY",
        "seed": 42,
        "nested": {"a": [1, 2]},
    }
    task = parse_task(payload)
    assert task.id == "1320098173412546"
    assert task.raw["botType"] == "NIJI_JOURNEY"
    assert task.raw["seed"] == 42
    assert task.raw["nested"] == {"a": [1, 2]}
    assert task.raw["id"] == 1320098173412546  # the payload as received


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"seed": 2**70},  # beyond 64 bits: kept to the last digit
        {"score": float("inf")},  # not JSON, but the standard decoder reads it
        {"prompt": "猫 🐈", "notifyHook": None},
    ],
)
def test_raw_is_kept_compact_and_reads_back_exactly(extra: dict[str, Any]) -> None:
    received = {**load_fixture("task_imagine_success_buttons.json"), **extra}
    task = parse_task(received)
    # As received, less the echoed notifyHook (a webhook receiver's URL holds its secret).
    payload = dict(strip_notify_hook(received))
    assert "notifyHook" in received["properties"] and "notifyHook" not in payload["properties"]
    assert dict(task.raw) == payload and task.raw == payload
    assert task.raw.get("missing", "default") == "default" and "status" in task.raw
    with pytest.raises(TypeError):
        task.raw["status"] = "FAILURE"  # type: ignore[index]
    # Kept as JSON text until read: a fraction of the decoded payload's weight.
    assert len(task.raw._json) < 2 * len(repr(payload))  # type: ignore[attr-defined]
    copy = pickle.loads(pickle.dumps(task))  # tasks cross process boundaries intact
    assert copy == task and dict(copy.raw) == payload and copy.buttons == task.buttons
    assert copy.properties == task.properties and copy.final_prompt == task.final_prompt
    with pytest.raises(TypeError):
        task.properties["finalPrompt"] = "x"  # type: ignore[index]


@pytest.mark.parametrize("buttons", [None, "U1", 5, {"customId": "x"}, [None, 3, {"label": "U1"}]])
def test_buttons_null_or_wrong_type_give_no_buttons(buttons: object) -> None:
    assert _task(buttons=buttons).buttons == ()


def test_bad_button_entries_are_skipped_and_fields_tolerated() -> None:
    task = _task(
        buttons=[
            {"customId": 17},
            {"customId": f"MJ::JOB::upsample::1::{HASH}", "label": None, "style": "2", "type": []},
        ]
    )
    assert len(task.buttons) == 1
    button = task.buttons[0]
    assert button.label == ""
    assert button.style == 2
    assert button.type is None


@pytest.mark.parametrize("properties", [None, [], "x", 3])
def test_properties_null_or_wrong_type_give_empty_mapping(properties: object) -> None:
    task = _task(properties=properties)
    assert dict(task.properties) == {}
    assert task.final_prompt is None


def test_image_urls_accept_objects_and_strings() -> None:
    task = _task(
        imageUrls=[{"url": "https://a/1.png", "thumbnail": "https://a/t1.png"}, "https://a/2.png"]
    )
    assert [ref.url for ref in task.image_urls] == ["https://a/1.png", "https://a/2.png"]
    assert task.image_urls[0].thumbnail == "https://a/t1.png"
    assert _task(imageUrls="nope").image_urls == ()


def test_task_is_immutable() -> None:
    task = _task(status="SUCCESS")
    with pytest.raises(AttributeError):
        task.status = TaskStatus.FAILURE  # type: ignore[misc]


@pytest.mark.parametrize(
    "payload",
    [
        {"status": "SUCCESS"},
        {"id": None},
        {"id": ""},
        {"id": "   "},
        {"id": True},
        {"id": []},
        [],
        "task",
        None,
    ],
)
def test_missing_or_unusable_id_is_a_protocol_error(payload: object) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_task(payload)
    assert info.value.body is not None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("8498455807619990", "8498455807619990"),
        (8498455807619990, "8498455807619990"),
        (1.0e3, "1000"),
        (" 12 ", "12"),
        ("", None),
        (None, None),
        (False, None),
        (1.5, None),
    ],
)
def test_parse_task_id(value: object, expected: str | None) -> None:
    assert parse_task_id(value) == expected


def test_submission_result_as_number_becomes_str() -> None:
    sub = parse_submission({"code": 1, "description": "ok", "result": 1320098173412546})
    assert sub.task_id == "1320098173412546"


@pytest.mark.parametrize(
    ("payload", "position"),
    [
        ({"code": 22, "result": "1", "properties": {"numberOfQueues": 3}}, 3),
        ({"code": 22, "result": "1", "properties": {"numberOfQueues": "4"}}, 4),
        ({"code": 22, "result": "1", "properties": {"numberOfQueues": True}}, None),
        ({"code": 22, "result": "1", "properties": None}, None),
        ({"code": 1, "result": "1", "properties": {"numberOfQueues": 3}}, None),
    ],
)
def test_submission_queue_position(payload: dict[str, Any], position: int | None) -> None:
    sub = parse_submission(payload)
    assert sub.queue_position == position
    assert sub.queued is (payload["code"] == 22)


def test_submission_code_21_with_final_prompt_needs_modal() -> None:
    modal = parse_submission(
        {"code": 21, "result": "9", "properties": {"finalPrompt": "x", "remix": True}}
    )
    assert modal.needs_modal
    exists = parse_submission({"code": 21, "result": "9", "properties": {"status": "SUCCESS"}})
    assert not exists.needs_modal


def test_describe_result_text_from_final_prompt_or_prompt() -> None:
    c_style = _task(action="DESCRIBE", prompt="", properties={"finalPrompt": "1️⃣ a cat"})
    assert c_style.final_prompt == "1️⃣ a cat"
    j_style = _task(action="DESCRIBE", status="SUCCESS", prompt="1️⃣ a dog", properties={})
    assert j_style.final_prompt == "1️⃣ a dog"
    # for other actions `prompt` is the input, never the result
    shorten = _task(action="SHORTEN", prompt="a very long prompt")
    assert shorten.final_prompt is None
    assert _task(action="IMAGINE", prompt="cat").final_prompt is None
