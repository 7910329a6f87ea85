"""Hypothesis strategies for what servers send: task payloads, submit answers, raw responses.

The payloads are hostile on purpose: every known field may be missing, null, ``""``, ``0``, of
the wrong type, an unknown enum value, or nested junk, and unknown keys come along too. A
share of the ids is usable (str, int, integral float, spelled as task ids are:
``[A-Za-z0-9_-]{1,64}``) so the parser gets past the id check and the field hooks are
exercised, not just the early "no id" exit.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

STATUSES = [
    "NOT_START",
    "SUBMITTED",
    "IN_PROGRESS",
    "MODAL",
    "SUCCESS",
    "FAILURE",
    "CANCEL",
]
ACTIONS = ["IMAGINE", "UPSCALE", "VARIATION", "REROLL", "DESCRIBE", "BLEND", "ZOOM", "PAN"]
CUSTOM_IDS = [
    "MJ::JOB::upsample::1::abc",
    "MJ::JOB::variation::4::abc",
    "MJ::JOB::reroll::0::abc::SOLO",
    "MJ::JOB::low_variation::1::abc::SOLO",
    "MJ::JOB::upsample_v6_2x_subtle::1::abc::SOLO",
    "MJ::Outpaint::50::1::abc::SOLO",
    "MJ::Outpaint::75::1::abc::SOLO",
    "MJ::Outpaint::0::1::abc::SOLO",
    "MJ::Outpaint::::1::abc",
    "MJ::Outpaint::" + "9" * 5000 + "::1",
    "MJ::JOB::pan_left::1::abc::SOLO",
    "MJ::CustomZoom::abc",
    "MJ::Inpaint::1::abc::SOLO",
    "MJ::JOB::animate_high::1::abc",
    "MJ::JOB::upsample::٣::abc",
]

# Text that breaks naive number parsing: non-ASCII digits, superscripts, huge digit runs.
TRICKY_TEXT = st.sampled_from(
    [
        "",
        " ",
        "0",
        "-0",
        "-1",
        "45%",
        "45.5%",
        "100%",
        "101%",
        "-3%",
        "1e400%",
        "nan",
        "NaN%",
        "inf",
        "²",
        "٣",
        "４５%",
        "1_000",
        "9" * 5000,
        "-" + "9" * 5000,
        "null",
        "undefined",
        "💥",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([0, -1, 2**63, -(2**63), 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    TRICKY_TEXT,
)
JUNK: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
    ),
    max_leaves=12,
)


def _or_junk(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(strategy, JUNK)


IDS = st.one_of(
    st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
    st.text(min_size=1, max_size=24),
    st.integers(),
    st.integers(min_value=-(2**53), max_value=2**53).map(float),
    st.sampled_from(["", " ", "0", "1320098173412546", "١٢٣"]),
    JUNK,
)
STATUS = _or_junk(
    st.one_of(
        st.sampled_from(STATUSES),
        st.sampled_from(STATUSES).map(str.lower),
        st.sampled_from(STATUSES).map(lambda s: f" {s}\n"),
        st.text(max_size=12),
    )
)
PROGRESS = _or_junk(
    st.one_of(
        st.integers(-200, 300).map(lambda n: f"{n}%"),
        st.floats(-1e6, 1e6).map(lambda n: f"{n}%"),
        st.integers(-200, 300),
        TRICKY_TEXT,
    )
)
EPOCH = _or_junk(
    st.one_of(
        st.integers(min_value=-(10**20), max_value=10**20),
        st.floats(),
        st.integers(0, 2**62).map(str),
        TRICKY_TEXT,
    )
)
BUTTON = _or_junk(
    st.fixed_dictionaries(
        {},
        optional={
            "customId": _or_junk(st.one_of(st.sampled_from(CUSTOM_IDS), st.text(max_size=30))),
            "label": JUNK,
            "emoji": JUNK,
            "style": _or_junk(TRICKY_TEXT),
            "type": _or_junk(TRICKY_TEXT),
            "extra": JUNK,
        },
    )
)
IMAGE_REFS = _or_junk(
    st.lists(
        st.one_of(
            st.text(max_size=20),
            st.fixed_dictionaries({}, optional={"url": JUNK, "thumbnail": JUNK}),
            JUNK,
        ),
        max_size=4,
    )
)
TEXT_FIELD = _or_junk(st.text(max_size=30))

#: The Task fields servers send, each with values worth trying.
TASK_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "action": _or_junk(st.one_of(st.sampled_from(ACTIONS), st.text(max_size=12))),
    "status": STATUS,
    "progress": PROGRESS,
    "prompt": TEXT_FIELD,
    "promptEn": TEXT_FIELD,
    "description": TEXT_FIELD,
    "state": TEXT_FIELD,
    "submitTime": EPOCH,
    "startTime": EPOCH,
    "finishTime": EPOCH,
    "imageUrl": TEXT_FIELD,
    "imageUrls": IMAGE_REFS,
    "videoUrl": TEXT_FIELD,
    "videoUrls": IMAGE_REFS,
    "failReason": TEXT_FIELD,
    "buttons": _or_junk(st.lists(BUTTON, max_size=6)),
    "properties": _or_junk(
        st.dictionaries(
            st.sampled_from(["finalPrompt", "notifyHook", "flags", "messageId", "x"]),
            JUNK,
            max_size=4,
        )
    ),
}


@st.composite
def task_payloads(draw: st.DrawFn) -> dict[str, Any]:
    """A task object as some server, sane or not, might send it."""
    payload: dict[str, Any] = {}
    if draw(st.integers(0, 9)) > 0:  # mostly with an id, sometimes without
        payload["id"] = draw(IDS)
    for name, strategy in TASK_FIELDS.items():
        if draw(st.booleans()):
            payload[name] = draw(strategy)
    extra = draw(st.dictionaries(st.text(max_size=10), JUNK, max_size=3))
    for key, value in extra.items():
        payload.setdefault(key, value)
    return payload


#: Anything a JSON body could decode to where a task object is expected.
ANY_PAYLOAD = st.one_of(task_payloads(), JUNK)

CODES = _or_junk(
    st.one_of(
        st.sampled_from([1, 21, 22, 23, 24, 3, 4, 9, 30, -1, 0]),
        st.sampled_from(["1", "22", "-1", "²", "9" * 5000]),
        st.integers(),
    )
)


@st.composite
def submit_answers(draw: st.DrawFn) -> dict[str, Any]:
    """A submit-style answer: ``code``, ``description``, ``result``, ``properties``, junk."""
    fields = {
        "code": CODES,
        "description": TEXT_FIELD,
        "message": TEXT_FIELD,
        "result": _or_junk(IDS),
        "properties": _or_junk(
            st.dictionaries(
                st.sampled_from(
                    ["numberOfQueues", "bannedWord", "promptEn", "finalPrompt", "status"]
                ),
                _or_junk(TRICKY_TEXT),
                max_size=4,
            )
        ),
        "success": JUNK,
        "error": _or_junk(st.fixed_dictionaries({"message": JUNK, "type": JUNK})),
        "type": JUNK,
    }
    answer: dict[str, Any] = {}
    for name, strategy in fields.items():
        if draw(st.booleans()):
            answer[name] = draw(strategy)
    return answer


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=True).encode()


#: Response bodies: valid JSON of every shape, cut or garbled JSON, HTML, plain text, binary.
BODIES = st.one_of(
    task_payloads().map(_dumps),
    submit_answers().map(_dumps),
    st.lists(task_payloads(), max_size=3).map(_dumps),
    JUNK.map(_dumps),
    st.tuples(submit_answers().map(_dumps), st.integers(0, 60)).map(lambda t: t[0][: t[1]]),
    st.sampled_from(
        [
            b"",
            b"   ",
            b"null",
            b"<html><head><title>502 Bad Gateway</title></head></html>",
            b"<html><title>",
            b"\xff\xfe\x00garbage",
            b'{"code": 1e999}',
            b'{"code": ' + b"9" * 5000 + b"}",
            b'{"id": ' + b"9" * 5000 + b"}",
            b"[" * 5000,
            "提交失败，队列已满，请稍后重试".encode(),
        ]
    ),
    st.binary(max_size=64),
)
CONTENT_TYPES = st.sampled_from(
    [
        "",
        "application/json",
        "application/json; charset=utf-8",
        "text/html",
        "text/plain",
        "TEXT/HTML; charset=gbk",
        "application/octet-stream",
    ]
)
STATUS_CODES = st.one_of(
    st.sampled_from([200, 201, 204, 301, 400, 401, 403, 404, 405, 408, 429, 500, 502, 503, 504]),
    st.integers(100, 599),
)
RETRY_AFTER = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "0",
            "2",
            "-5",
            "1e999",
            "nan",
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Wed, 21 Oct 99999 07:28:00 GMT",
            "Mon, 99 Foo 2015 99:99:99 GMT",
            "",
        ]
    ),
    st.text(max_size=30),
)
