"""Every server answer the protocol doc lists maps to the most specific error.

Each case runs twice: through :func:`mjasync._wire.api.interpret` directly (pure), and over real
HTTP through ``Client`` against the loopback server, where the message must name the request.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

import mjasync
from mjasync import (
    APIError,
    AuthenticationError,
    BannedPromptError,
    InvalidRequestError,
    NotFoundError,
    ProtocolError,
    QueueFullError,
    RateLimitError,
    ServerError,
    UnsupportedEndpointError,
)
from mjasync._wire.interpret import interpret
from mjasync._wire.retry import is_retryable
from mjasync._wire.transport import Response

from .conftest import LoopbackServer, Reply, load_fixture, reply, spring_404

pytestmark = pytest.mark.anyio

SUBMIT = "/mj-fast/mj/submit/imagine"
FETCH = "/mj-fast/mj/task/123/fetch"

HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
HTML_504 = HTML_502.replace(b"502 Bad Gateway", b"504 Gateway Time-out")


@attrs.frozen
class Case:
    """One server answer and what the client must make of it."""

    id: str
    kind: str  # "submit" or "fetch"
    reply: Reply | Callable[[], Reply]  # a callable builds it when the test runs
    error: type[Exception]
    http_status: int | None = None
    code: int | None = None
    description: str | None = None  # exact, when given
    contains: str | None = None  # a substring of the description
    properties: dict[str, Any] | None = None
    check: Callable[[Exception], None] | None = None
    #: on a submit, the answer does not prove the job was refused: SubmissionUncertainError
    uncertain: bool = False


def _banned(exc: Exception) -> None:
    assert isinstance(exc, BannedPromptError)
    assert exc.banned_word == "nude"
    assert exc.prompt_en == "nude body"


def _retry_after(seconds: float) -> Callable[[Exception], None]:
    def check(exc: Exception) -> None:
        assert isinstance(exc, RateLimitError)
        assert exc.retry_after == seconds

    return check


def _no_retry_after(exc: Exception) -> None:
    assert isinstance(exc, RateLimitError)
    assert exc.retry_after is None


def _http_date(seconds: int) -> str:
    return email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=seconds), usegmt=True)


def _retry_after_date(exc: Exception) -> None:
    assert isinstance(exc, RateLimitError)
    assert exc.retry_after is not None
    assert 20 < exc.retry_after <= 30  # the date was "now + 30 s" at one-second resolution


def _mode_none_hint(exc: Exception) -> None:
    assert "mode=None" in str(exc)


def _no_hint(exc: Exception) -> None:
    assert "mode=None" not in str(exc)


QUEUE_FULL_C = "提交失败，队列已满，请稍后重试"

CASES = [
    Case(
        "code23-queue-full-J",
        "submit",
        reply(200, {"code": 23, "description": "队列已满，请稍后尝试", "result": None}),
        QueueFullError,
        http_status=200,
        code=23,
        description="队列已满，请稍后尝试",
    ),
    Case(
        "code24-banned-fixture",
        "submit",
        reply(200, load_fixture("submit_banned_prompt.json")),
        BannedPromptError,
        http_status=200,
        code=24,
        description="可能包含敏感词",
        properties={"promptEn": "nude body", "bannedWord": "nude"},
        check=_banned,
    ),
    Case(
        "code3-no-account",
        "submit",
        reply(200, {"code": 3, "description": "无可用的账号实例", "properties": {"x": 1}}),
        NotFoundError,
        http_status=200,
        code=3,
        description="无可用的账号实例",
        properties={"x": 1},
    ),
    Case(
        "code4-validation-on-submit",
        "submit",
        reply(200, {"code": 4, "description": "prompt不能为空"}),
        InvalidRequestError,
        http_status=200,
        code=4,
        description="prompt不能为空",
    ),
    Case(
        "code9-queue-full-C",
        "submit",
        reply(200, {"code": 9, "description": QUEUE_FULL_C}),
        QueueFullError,
        http_status=200,
        code=9,
        description=QUEUE_FULL_C,
    ),
    Case(
        "code9-other-failure",
        "submit",
        reply(200, {"code": 9, "description": "提交失败: 账号被封禁"}),
        ServerError,
        http_status=200,
        code=9,
        description="提交失败: 账号被封禁",
    ),
    Case(
        "code-1-C-generic",
        "submit",
        reply(200, {"success": False, "code": -1, "message": "参数错误"}),
        APIError,
        http_status=200,
        code=-1,
        description="参数错误",
    ),
    Case(
        "code-1-C-generic-on-http-500",
        "submit",
        reply(500, {"success": False, "code": -1, "message": "内部错误"}),
        ServerError,
        http_status=500,
        code=-1,
        description="内部错误",
    ),
    Case(
        "relay-400-task-no-found-on-fetch",
        "fetch",
        reply(400, {"description": "task_no_found ", "type": "upstream_error", "code": 4}),
        NotFoundError,
        http_status=400,
        code=4,
        contains="task_no_found",
    ),
    Case(
        "relay-400-code4-on-submit",
        "submit",
        reply(400, {"description": "prompt is required", "type": "upstream_error", "code": 4}),
        InvalidRequestError,
        http_status=400,
        code=4,
        description="prompt is required",
    ),
    Case(
        "relay-429-code30",
        "submit",
        reply(
            429,
            {"description": "当前分组上游负载已饱和", "type": "upstream_error", "code": 30},
            headers={"Retry-After": "3"},
        ),
        RateLimitError,
        http_status=429,
        code=30,
        description="当前分组上游负载已饱和",
        check=_retry_after(3.0),
    ),
    Case(
        "openai-401",
        "submit",
        reply(401, {"error": {"message": "无效的令牌", "type": "new_api_error"}}),
        AuthenticationError,
        http_status=401,
        description="无效的令牌",
    ),
    Case(
        "openai-403",
        "fetch",
        reply(
            403, {"error": {"message": "该令牌无权访问模型 mj_imagine", "type": "new_api_error"}}
        ),
        AuthenticationError,
        http_status=403,
        description="该令牌无权访问模型 mj_imagine",
    ),
    Case(
        "openai-503",
        "fetch",
        reply(503, {"error": {"message": "当前分组负载已饱和", "type": "new_api_error"}}),
        ServerError,
        http_status=503,
        description="当前分组负载已饱和",
    ),
    Case(
        "J-empty-401",
        "submit",
        Reply(401),
        AuthenticationError,
        http_status=401,
        contains="refused the API key",
    ),
    Case(
        "C-401-text-plain",
        "fetch",
        Reply(401, body="密钥错误".encode(), content_type="text/plain; charset=utf-8"),
        AuthenticationError,
        http_status=401,
        description="密钥错误",
    ),
    Case(
        "J-empty-200-on-fetch",
        "fetch",
        Reply(200),
        NotFoundError,
        http_status=200,
    ),
    Case(
        "C-404-code3-on-fetch",
        "fetch",
        reply(404, {"code": 3}),
        NotFoundError,
        http_status=404,
        code=3,
    ),
    Case(
        "empty-429-retry-after-seconds",
        "fetch",
        Reply(429, headers={"Retry-After": "7"}),
        RateLimitError,
        http_status=429,
        check=_retry_after(7.0),
    ),
    Case(
        "empty-429-retry-after-http-date",
        "submit",
        lambda: Reply(429, headers={"Retry-After": _http_date(30)}),
        RateLimitError,
        http_status=429,
        check=_retry_after_date,
    ),
    Case(
        "empty-429-no-retry-after",
        "fetch",
        Reply(429),
        RateLimitError,
        http_status=429,
        check=_no_retry_after,
    ),
    Case(
        "html-502",
        "fetch",
        Reply(502, body=HTML_502, content_type="text/html"),
        ServerError,
        http_status=502,
        contains="502 Bad Gateway",
    ),
    Case(
        "html-504",
        "submit",
        Reply(504, body=HTML_504, content_type="text/html"),
        ServerError,
        http_status=504,
        contains="504 Gateway Time-out",
        uncertain=True,
    ),
    Case(
        "truncated-json-on-fetch",
        "fetch",
        Reply(200, body=b'{"id": "123", "status": "IN_PRO', content_type="application/json"),
        ProtocolError,
    ),
    Case(
        "spring-404-prefixed-route",
        "submit",
        spring_404(SUBMIT),
        UnsupportedEndpointError,
        http_status=404,
        check=_mode_none_hint,
    ),
    Case(
        "405-on-route",
        "fetch",
        Reply(405),
        UnsupportedEndpointError,
        http_status=405,
    ),
    Case(
        "plain-500-text",
        "fetch",
        Reply(500, body=b"Internal Server Error", content_type="text/plain"),
        ServerError,
        http_status=500,
        description="Internal Server Error",
    ),
    Case(
        "408",
        "fetch",
        Reply(408),
        APIError,
        http_status=408,
    ),
    Case(
        "submit-200-not-json",
        "submit",
        Reply(200, body=b"{not json", content_type="application/json"),
        ProtocolError,
        uncertain=True,
    ),
    Case(
        # new-api serves its web UI for every route it lacks: nothing was submitted
        # (QuantumNous/new-api 65b1654, router/web-router.go:16-30).
        "submit-200-html-is-a-missing-route",
        "submit",
        Reply(200, body=b"<html>new-api</html>", content_type="text/html"),
        UnsupportedEndpointError,
        http_status=200,
    ),
]


def _reply(case: Case) -> Reply:
    return case.reply if isinstance(case.reply, Reply) else case.reply()


def _response(case: Case, path: str, *, method: str, mode_prefixed: bool = True) -> Response:
    scripted = _reply(case)
    built = scripted.build()
    body = built.body if isinstance(built.body, bytes) else b""
    headers = CIMultiDictProxy(CIMultiDict(built.headers))
    return Response(
        status=scripted.status,
        headers=headers,
        body=body,
        method=method,
        path=path,
        mode_prefixed=mode_prefixed,
    )


def _check(case: Case, exc: Exception, method: str, path: str) -> None:
    assert type(exc) is case.error, f"{type(exc).__name__} is not {case.error.__name__}"
    assert f"[{method} {path}]" in str(exc)
    if isinstance(exc, APIError):
        assert exc.http_status == case.http_status
        assert exc.code == case.code
        assert exc.method == method
        assert exc.path == path
        if case.description is not None:
            assert exc.description == case.description
        if case.properties is not None:
            assert dict(exc.properties) == case.properties
    if case.contains is not None:
        assert case.contains in str(exc)
    if case.check is not None:
        case.check(exc)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_interpret_maps_each_answer(case: Case) -> None:
    method, path = ("POST", SUBMIT) if case.kind == "submit" else ("GET", FETCH)
    resp = _response(case, path, method=method)
    with pytest.raises(case.error) as info:
        interpret(resp, "submit" if case.kind == "submit" else "fetch")
    _check(case, info.value, method, path)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_http_maps_each_answer(
    case: Case, server: LoopbackServer, client: mjasync.Client
) -> None:
    if case.kind == "submit":
        server.script("POST", SUBMIT, _reply(case))
        method, path = "POST", SUBMIT
    else:
        server.script("GET", FETCH, _reply(case))
        method, path = "GET", FETCH
    expected: type[Exception] = case.error
    if case.uncertain:
        # a 2xx nobody could read, or a gateway that gave up waiting: the job may well have
        # been taken, so the client must not claim it was refused (nor send it again)
        expected = mjasync.SubmissionUncertainError
    call = client.submit_imagine("a black cat") if case.kind == "submit" else client.fetch("123")
    with pytest.raises(expected) as info:
        await call
    exc = info.value
    if expected is not case.error:
        assert isinstance(exc, mjasync.SubmissionUncertainError)
        assert exc.state is not None
        assert exc.state.startswith("mjasync-")
        assert exc.body["prompt"] == "a black cat"
        assert isinstance(exc.__cause__, case.error)
        _check(case, exc.__cause__, method, path)
    else:
        _check(case, exc, method, path)
    assert len(server.requests) == 1  # max_retries=0: exactly one request


# -- interpret: success shapes and the finer points -------------------------------------------


def _resp(
    status: int = 200,
    body: bytes = b"",
    *,
    path: str = FETCH,
    method: str = "GET",
    content_type: str = "application/json",
    mode_prefixed: bool = True,
) -> Response:
    headers = CIMultiDictProxy(CIMultiDict({"Content-Type": content_type}))
    return Response(status, headers, body, method, path, mode_prefixed)


@pytest.mark.parametrize("code", [1, 21, 22])
def test_interpret_accepts_success_codes(code: int) -> None:
    body = f'{{"code": {code}, "description": "ok", "result": "77"}}'.encode()
    payload = interpret(_resp(body=body, path=SUBMIT, method="POST"), "submit")
    assert payload == {"code": code, "description": "ok", "result": "77"}


def test_interpret_returns_task_and_list_payloads() -> None:
    task = interpret(_resp(body=b'{"id": "5", "status": "SUCCESS"}'), "fetch")
    assert task == {"id": "5", "status": "SUCCESS"}
    listed = interpret(_resp(body=b'[{"id": "5"}, {"id": "6"}]'), "list")
    assert listed == [{"id": "5"}, {"id": "6"}]


@pytest.mark.parametrize(
    "body",
    [
        b'{"error": {"message": "", "type": "x"}}',
        b'{"error": {"message": "   "}}',
        b'{"description": "", "message": ""}',
        b'{"error": ""}',
    ],
)
def test_interpret_blank_server_text_falls_back_to_a_default(body: bytes) -> None:
    with pytest.raises(AuthenticationError) as info:
        interpret(_resp(401, body), "fetch")
    assert info.value.description == "the server refused the API key"


def test_interpret_success_false_without_code_is_an_error() -> None:
    body = b'{"success": false, "message": "boom"}'
    with pytest.raises(APIError) as info:
        interpret(_resp(body=body, path=SUBMIT, method="POST"), "submit")
    assert info.value.description == "boom"


def test_interpret_code4_means_not_found_on_reads_only() -> None:
    body = b'{"code": 4, "description": "task_no_found ", "type": "upstream_error"}'
    for kind in ("fetch", "seed", "cancel"):
        with pytest.raises(NotFoundError):
            interpret(_resp(400, body), kind)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError):
        interpret(_resp(400, body, method="POST", path=SUBMIT), "submit")


def test_interpret_c_seed_code4_means_not_finished_yet() -> None:
    # C: no seed and no message hash yet -> HTTP 400 {code: 4, "关联任务状态错误"}
    # (trueai-org/midjourney-proxy ed32197, Controllers/TaskController.cs:132-160).
    body = '{"code": 4, "description": "关联任务状态错误", "result": null}'.encode()
    with pytest.raises(InvalidRequestError, match="not finished"):
        interpret(_resp(400, body), "seed")


def test_interpret_unprefixed_404_has_no_mode_hint() -> None:
    resp = _resp(404, b"", path="/mj/submit/shorten", method="POST", mode_prefixed=False)
    with pytest.raises(UnsupportedEndpointError) as info:
        interpret(resp, "submit")
    _no_hint(info.value)
    assert "/mj/submit/shorten" in str(info.value)


def test_interpret_unexpected_shapes_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError):
        interpret(_resp(body=b'{"status": "SUCCESS"}'), "fetch")  # a task without id
    with pytest.raises(ProtocolError):
        interpret(_resp(body=b'{"ids": []}'), "list")  # not a list
    with pytest.raises(ProtocolError) as info:
        interpret(_resp(body=b"[1, 2"), "list")
    assert info.value.body == "[1, 2"


def test_408_is_retryable_for_reads() -> None:
    with pytest.raises(APIError) as info:
        interpret(_resp(408), "fetch")
    assert is_retryable(info.value, "read")
    assert not is_retryable(info.value, "submit")


def test_error_tree() -> None:
    for cls in (
        AuthenticationError,
        NotFoundError,
        InvalidRequestError,
        RateLimitError,
        QueueFullError,
        BannedPromptError,
        ServerError,
        UnsupportedEndpointError,
    ):
        assert issubclass(cls, APIError)
    for cls in (
        mjasync.TransportError,
        APIError,
        ProtocolError,
        mjasync.SubmissionUncertainError,
        mjasync.TaskError,
    ):
        assert issubclass(cls, mjasync.MjError)
    for cls in (mjasync.TaskFailedError, mjasync.TaskTimeoutError, mjasync.TaskStalledError):
        assert issubclass(cls, mjasync.TaskError)
