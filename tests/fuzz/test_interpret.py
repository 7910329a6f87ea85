"""``interpret()`` on any (status, content type, body, Retry-After): a payload of the shape the
route promises, or an :class:`MjError` subclass, never a foreign exception."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any, get_args

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

import mjasync
from mjasync._converter import parse_submission, parse_task
from mjasync._wire.interpret import RouteKind, interpret
from mjasync._wire.transport import Response

from .conftest import FUZZ
from .strategies import BODIES, CONTENT_TYPES, RETRY_AFTER, STATUS_CODES, submit_answers

KINDS: tuple[RouteKind, ...] = get_args(RouteKind)


def response(status: int, content_type: str, body: bytes, retry_after: str | None) -> Response:
    headers: CIMultiDict[str] = CIMultiDict()
    if content_type:
        headers["Content-Type"] = content_type
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return Response(
        status=status,
        headers=CIMultiDictProxy(headers),
        body=body,
        method="POST",
        path="/mj-fast/mj/submit/imagine",
        mode_prefixed=True,
    )


def check_payload(kind: RouteKind, payload: object) -> None:
    """What a caller may rely on when interpret() returns."""
    if kind == "fetch":
        assert isinstance(payload, Mapping) and "id" in payload
        with contextlib.suppress(mjasync.ProtocolError):  # an unusable id; nothing else
            parse_task(payload)
    elif kind == "list":
        assert isinstance(payload, list)
    elif kind == "cancel" and payload is None:
        pass  # C's success: HTTP 200, empty body
    else:
        assert isinstance(payload, Mapping)
        submission = parse_submission(payload)
        assert submission.code in (1, 21, 22)
        assert submission.task_id is None or (
            isinstance(submission.task_id, str) and submission.task_id
        )
        assert submission.queue_position is None or type(submission.queue_position) is int
        assert isinstance(submission.queued, bool) and isinstance(submission.needs_modal, bool)


def check_error(exc: mjasync.MjError) -> None:
    """An error is usable: printable, with the request named, and its fields typed."""
    text = str(exc)
    assert "/mj-fast/mj/submit/imagine" in text
    if isinstance(exc, mjasync.APIError):
        assert isinstance(exc.description, str)
        assert exc.code is None or type(exc.code) is int
        assert isinstance(exc.properties, Mapping)
    if isinstance(exc, mjasync.RateLimitError | mjasync.QueueFullError):
        assert exc.retry_after is None or exc.retry_after >= 0
    if isinstance(exc, mjasync.BannedPromptError):
        assert exc.banned_word is None or isinstance(exc.banned_word, str)


@FUZZ
@given(
    kind=st.sampled_from(KINDS),
    status=STATUS_CODES,
    content_type=CONTENT_TYPES,
    body=BODIES,
    retry_after=RETRY_AFTER,
)
@example(
    kind="submit",
    status=200,
    content_type="application/json",
    body=b'{"code": "\xc2\xb2"}',
    retry_after=None,
)
@example(
    kind="submit",
    status=429,
    content_type="",
    body=b"",
    retry_after="Wed, 21 Oct 99999 07:28:00 GMT",
)
@example(
    kind="submit",
    status=200,
    content_type="application/json",
    body=b'{"code": 22, "result": 1, "properties": {"numberOfQueues": "\xc2\xb2"}}',
    retry_after=None,
)
def test_interpret_returns_a_payload_or_raises_an_mj_error(
    kind: RouteKind, status: int, content_type: str, body: bytes, retry_after: str | None
) -> None:
    try:
        payload = interpret(response(status, content_type, body, retry_after), kind)
    except mjasync.MjError as exc:
        check_error(exc)
        return
    check_payload(kind, payload)


@FUZZ
@given(answer=submit_answers(), status=st.sampled_from([200, 400, 429, 500]))
def test_submit_answers_map_to_success_or_a_typed_error(
    answer: dict[str, Any], status: int
) -> None:
    body = json.dumps(answer, ensure_ascii=False).encode()
    try:
        payload = interpret(response(status, "application/json", body, None), "submit")
    except mjasync.MjError as exc:
        check_error(exc)
        return
    check_payload("submit", payload)
    assert status == 200


@pytest.mark.parametrize("kind", KINDS)
def test_an_empty_200_is_never_a_success_except_c_cancel_and_not_found(kind: RouteKind) -> None:
    if kind == "cancel":
        # C's cancel answers Ok() with no body (TaskController.cs:124): that is its success.
        assert interpret(response(200, "", b"", None), kind) is None
        return
    with pytest.raises(mjasync.MjError) as caught:
        interpret(response(200, "", b"", None), kind)
    if kind == "fetch":
        assert isinstance(caught.value, mjasync.NotFoundError)  # the Java proxy's "unknown id"
    else:
        assert isinstance(caught.value, mjasync.ProtocolError)
