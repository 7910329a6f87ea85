"""What a server's answer means (``_wire/interpret.py``): a payload, or the most specific error.

These decisions decide who pays. A submit the client calls "refused" may be resent (a second
paid job); one it calls "maybe taken" (``maybe_taken``) becomes a ``SubmissionUncertainError``
and is never resent. A read answered "not found" ends a job; one answered "server error" is
retried. Each row is one answer a real server gives (the family and the server source that
shows it, where known) or an edge of the rule, and the outcome beside it.

Families: J = novicezk/midjourney-proxy (Java, @ 0be95a9), C = trueai-org/midjourney-proxy
(C#, @ ed32197), N = new-api relays (Calcium-Ion/new-api @ ef8ae4d).
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from mjasync import (
    APIError,
    AuthenticationError,
    BannedPromptError,
    InvalidRequestError,
    MjError,
    NotFoundError,
    ProtocolError,
    QueueFullError,
    RateLimitError,
    ServerError,
    TransportError,
    UnsupportedEndpointError,
)
from mjasync._wire.interpret import RouteKind, error_for_code, interpret, maybe_taken
from mjasync._wire.transport import Response

#: The request behind each kind of answer.
REQUEST: dict[str, tuple[str, str]] = {
    "submit": ("POST", "/mj-fast/mj/submit/imagine"),
    "fetch": ("GET", "/mj-fast/mj/task/42/fetch"),
    "list": ("POST", "/mj-fast/mj/task/list-by-condition"),
    "seed": ("GET", "/mj-fast/mj/task/42/image-seed"),
    "cancel": ("POST", "/mj-fast/mj/task/42/cancel"),
}
JSON = "application/json"
QUEUE_FULL_C = "提交失败，队列已满，请稍后重试"  # C's code 9 "queue full" (DiscordService.cs)


@attrs.frozen
class Answer:
    """One HTTP answer: status, body (a JSON value, or raw bytes), content type, headers."""

    status: int
    body: Any = b""
    content_type: str = JSON
    headers: dict[str, str] = attrs.field(factory=dict)
    mode_prefixed: bool = True
    #: another route of the same kind (``/mj/submit/describe``; the mode prefix is added)
    route: str | None = None
    #: the ``Location`` the transport kept for a 3xx, scrubbed of the key
    location: str | None = None

    def request(self, kind: str) -> tuple[str, str]:
        """The method and path this answer came to."""
        method, path = REQUEST[kind]
        if self.route is not None:
            path = "/mj-fast" + self.route
        if not self.mode_prefixed:
            path = path.removeprefix("/mj-fast")
        return method, path

    def response(self, kind: str) -> Response:
        method, path = self.request(kind)
        raw = self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()
        headers: CIMultiDict[str] = CIMultiDict(self.headers)
        if self.content_type:
            headers["Content-Type"] = self.content_type
        return Response(
            self.status,
            CIMultiDictProxy(headers),
            raw,
            method,
            path,
            self.mode_prefixed,
            location=self.location,
        )


def answer(status: int, body: Any = b"", **kwargs: Any) -> Answer:
    return Answer(status, body, **kwargs)


def html(status: int, body: bytes) -> Answer:
    return Answer(status, body, content_type="text/html")


def text(status: int, body: str | bytes, content_type: str = "text/plain; charset=utf-8") -> Answer:
    raw = body.encode() if isinstance(body, str) else body
    return Answer(status, raw, content_type=content_type)


@attrs.frozen
class Raises:
    """The expected error: its exact type and fields (``None`` = not checked)."""

    type: type[MjError]
    code: int | None = None
    description: str | None = None  # exact
    contains: str | None = None  # a fragment of str(error)
    message: str | None = None  # exact: what went wrong in English (``exc.message``)
    retry_after: float | None = None
    properties: dict[str, Any] | None = None


_THE_BODY = object()


@attrs.frozen
class Returns:
    """The expected payload (by default: the answer's body, decoded)."""

    payload: Any = _THE_BODY


Outcome = Raises | Returns

TASK = {"id": "42", "status": "IN_PROGRESS", "progress": "10%"}
SPRING_404 = {
    "timestamp": "2024-05-01T10:00:00.000+00:00",
    "status": 404,
    "error": "Not Found",
    "path": "/mj-fast/mj/submit/imagine",
}
HTML_502 = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
HTML_504 = b"<html><head><title>504 Gateway Time-out</title></head><body>nginx</body></html>"
N_WEB_UI = b"<!doctype html><html><head><title>New API</title></head></html>"
HTML_PAGE = " (it answered with an HTML page, as new-api relays do for routes they lack)"
REDIRECT_ADVICE = (
    "; API calls do not follow redirects (check base_url: scheme, host and path prefix)"
)
# N's distributor when no channel of the user's group sells the model (QuantumNous/new-api
# @ 65b1654 middleware/distributor.go:150-153, middleware/utils.go:12-27 with
# common/utils.go:278-280; the text is i18n/locales/en.yaml:266).
NO_CHANNEL = (
    "No available channel for model mj_imagine under group default (distributor) "
    "(request id: 20260424101010123456789)"
)
N_503_NO_CHANNEL = {
    "error": {"message": NO_CHANNEL, "type": "new_api_error", "code": "model_not_found"}
}
C_UNAVAILABLE = "服务暂不可用，请联系管理员"


def spring_404(path: str) -> dict[str, Any]:
    """J's (Spring Boot's) JSON for a route it lacks."""
    return {**SPRING_404, "path": path}


def nested(depth: int) -> Any:
    """A JSON value ``depth`` lists deep."""
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


#: (id, kind, answer, outcome)
ANSWERS: list[tuple[str, RouteKind, Answer, Outcome]] = [
    # -- success --------------------------------------------------------------------------
    ("J-submitted-code-1", "submit", answer(200, {"code": 1, "result": "42"}), Returns()),
    ("J-existed-code-21", "submit", answer(200, {"code": 21, "result": "42"}), Returns()),
    ("J-queued-code-22", "submit", answer(200, {"code": 22, "result": "42"}), Returns()),
    ("code-as-text-1", "submit", answer(200, {"code": "1", "result": "42"}), Returns()),
    (
        "success-code-with-success-false",
        "submit",
        answer(200, {"code": 1, "success": False}),
        Returns(),
    ),
    ("seed-code-1", "seed", answer(200, {"code": 1, "result": "3315384437"}), Returns()),
    ("cancel-code-1", "cancel", answer(200, {"code": 1}), Returns()),
    ("fetch-task", "fetch", answer(200, TASK), Returns(TASK)),
    ("fetch-task-with-a-code-too", "fetch", answer(200, {"id": "42", "code": 4}), Returns()),
    ("fetch-2xx-edge-299", "fetch", answer(299, TASK), Returns(TASK)),
    ("list-of-tasks", "list", answer(200, [TASK]), Returns([TASK])),
    ("list-empty", "list", answer(200, []), Returns([])),
    # -- J, C, N: an unknown task id on fetch -----------------------------------------------
    # J answers null with HTTP 200 and no body (src/main/java/com/github/novicezk/midjourney/
    # controller/TaskController.java); C returns null, which ASP.NET sends as 204
    # (src/Midjourney.API/Controllers/TaskController.cs, Fetch); N answers code 4
    # "task_no_found" (relay/relay-mj.go), as HTTP 400 (controller/relay.go, RelayMidjourney).
    ("J-empty-200", "fetch", answer(200), Raises(NotFoundError, description="no such task")),
    ("C-204-no-body", "fetch", answer(204, content_type=""), Raises(NotFoundError)),
    ("blank-200", "fetch", answer(200, b" \r\n "), Raises(NotFoundError)),
    (
        "N-400-task-no-found",
        "fetch",
        answer(400, {"description": "task_no_found ", "type": "upstream_error", "code": 4}),
        Raises(NotFoundError, code=4, description="task_no_found"),
    ),
    # Issue 18: an error code inside a 200 answer to a read (the way J and C answer a
    # refused submit, from a server that does the same on reads) is that error, not an
    # unreadable answer.
    (
        "code-4-in-200-fetch",
        "fetch",
        answer(200, {"code": 4, "description": "task_no_found"}),
        Raises(NotFoundError, code=4, description="task_no_found"),
    ),
    (
        "code-3-in-200-fetch",
        "fetch",
        answer(200, {"code": 3}),
        Raises(NotFoundError, code=3, description="error"),
    ),
    (
        "code-9-in-200-fetch",
        "fetch",
        answer(200, {"code": 9, "description": "x"}),
        Raises(ServerError, code=9),
    ),
    (
        "code-as-text-in-200-fetch",
        "fetch",
        answer(200, {"code": "4"}),
        Raises(NotFoundError, code=4),
    ),
    (
        "code-4-in-200-list",
        "list",
        answer(200, {"code": 4, "description": "bad ids"}),
        Raises(InvalidRequestError, code=4),
    ),
    ("code-23-in-200-list", "list", answer(200, {"code": 23}), Raises(QueueFullError, code=23)),
    (
        "code-4-in-200-seed",
        "seed",
        answer(200, {"code": 4, "description": "task_no_found"}),
        Raises(NotFoundError, code=4),
    ),
    # C's image-seed of an unknown task: 404 code 3 (TaskController.cs, ImageSeed); N: 400
    # code 4 "task_no_found" (relay/relay-mj.go, RelayMidjourneyTaskImageSeed).
    (
        "C-seed-404-code-3",
        "seed",
        answer(404, {"code": 3, "description": "关联任务不存在或已失效"}),
        Raises(NotFoundError, code=3, description="关联任务不存在或已失效"),
    ),
    (
        "404-code-with-properties",
        "fetch",
        answer(404, {"code": 3, "description": "gone", "properties": {"discordInstanceId": "1"}}),
        Raises(NotFoundError, code=3, description="gone", properties={"discordInstanceId": "1"}),
    ),
    (
        "N-seed-400-code-4",
        "seed",
        answer(400, {"code": 4, "description": "task_no_found "}),
        Raises(NotFoundError, code=4),
    ),
    (
        "cancel-code-4",
        "cancel",
        answer(400, {"code": 4, "description": "task_no_found"}),
        Raises(NotFoundError, code=4),
    ),
    (
        "C-404-code-3",
        "fetch",
        answer(404, {"code": 3}),
        Raises(NotFoundError, code=3, description="not found"),
    ),
    (
        "C-404-code-3-on-submit",
        "submit",
        answer(404, {"code": 3, "description": "x"}),
        Raises(NotFoundError, code=3),
    ),
    (
        "404-code-4-on-fetch",
        "fetch",
        answer(404, {"code": 4, "description": "gone"}),
        Raises(NotFoundError, code=4),
    ),
    (
        "404-code-4-on-submit",
        "submit",
        answer(404, {"code": 4, "description": "bad"}),
        Raises(InvalidRequestError, code=4),
    ),
    # -- routes a server lacks ------------------------------------------------------------
    # J (Spring Boot) answers an unknown route with its 404 JSON, which has no "code"; J also
    # serves no mode prefix, hence the hint.
    (
        "J-spring-404-prefixed",
        "submit",
        answer(404, SPRING_404),
        Raises(UnsupportedEndpointError, contains="try Client(mode=None)"),
    ),
    (
        "404-unprefixed-no-hint",
        "submit",
        answer(404, mode_prefixed=False),
        Raises(UnsupportedEndpointError, description="the server has no route /mj/submit/imagine"),
    ),
    ("405-on-route", "fetch", answer(405), Raises(UnsupportedEndpointError)),
    ("405-with-a-code", "fetch", answer(405, {"code": 3}), Raises(UnsupportedEndpointError)),
    # A route only some families serve is named with them. J has neither cancel nor image-seed
    # (§2.6-2.7 of the servers notes: its Spring 404), and serves no mode prefix.
    (
        "J-has-no-cancel-404",
        "cancel",
        answer(404, spring_404("/mj/task/42/cancel"), mode_prefixed=False),
        Raises(
            UnsupportedEndpointError,
            description="the server has no route /mj/task/42/cancel; cancel is served by "
            "C (trueai-org/midjourney-proxy, admin users only)",
        ),
    ),
    (
        "J-has-no-image-seed-404",
        "seed",
        answer(404, spring_404("/mj/task/42/image-seed"), mode_prefixed=False),
        Raises(
            UnsupportedEndpointError,
            description="the server has no route /mj/task/42/image-seed; image_seed is served by "
            "C (trueai-org/midjourney-proxy) and N (new-api relays)",
        ),
    ),
    # N serves its web UI (HTML 200) for every route it lacks (QuantumNous/new-api @ 65b1654
    # router/web-router.go:16-30; retexture: router/relay-router.go:215-221): the page is
    # named, and no mode-prefix hint is given (N strips /mj-* prefixes).
    (
        "N-has-no-retexture-html-200",
        "submit",
        Answer(200, N_WEB_UI, "text/html", route="/mj/submit/retexture", mode_prefixed=False),
        Raises(
            UnsupportedEndpointError,
            description="the server has no route /mj/submit/retexture"
            + HTML_PAGE
            + "; retexture is served by C (trueai-org/midjourney-proxy, since v8.5.4)",
        ),
    ),
    (
        "N-html-200-prefixed-no-hint",
        "submit",
        html(200, N_WEB_UI),
        Raises(
            UnsupportedEndpointError,
            description="the server has no route /mj-fast/mj/submit/imagine" + HTML_PAGE,
        ),
    ),
    # -- the API key ----------------------------------------------------------------------
    (
        "J-empty-401",
        "submit",
        answer(401),
        Raises(AuthenticationError, description="the server refused the API key"),
    ),
    # C answers an unknown key (it compares the raw header, WorkContext.cs) with 401 text and a
    # disabled account with 403 text (src/Midjourney.API/SimpleAuthMiddleware.cs).
    (
        "C-401-text",
        "fetch",
        text(401, "Authorization header missing."),
        Raises(AuthenticationError, description="Authorization header missing."),
    ),
    (
        "C-403-text",
        "fetch",
        text(403, "账号不可用"),
        Raises(
            AuthenticationError,
            description="账号不可用",
            message="the account behind this key is not available",
        ),
    ),
    (
        "N-401-openai-shape",
        "submit",
        answer(401, {"error": {"message": "无效的令牌", "type": "new_api_error"}}),
        Raises(
            AuthenticationError,
            description="无效的令牌",
            message="the relay does not know this API key (token)",
        ),
    ),
    (
        "401-with-a-code",
        "submit",
        answer(401, {"code": 4, "description": "bad key"}),
        Raises(AuthenticationError, code=4, description="bad key"),
    ),
    (
        "401-code-as-text",
        "submit",
        answer(401, {"code": "401"}),
        Raises(AuthenticationError, code=401),
    ),
    (
        "401-unreadable-json",
        "submit",
        answer(401, b"{not json"),
        Raises(AuthenticationError, code=None, description="the server refused the API key"),
    ),
    # C's rate limiter blocks a blacklisted network, or a client over a "black-rate" rule for
    # BlockTime minutes, with an empty 403 (trueai-org/midjourney-proxy @ ed32197
    # src/Midjourney.API/RateLimitingMiddleware.cs:100-104,128-145): no auth verdict.
    (
        "C-403-empty-rate-limiter-block",
        "submit",
        answer(403, content_type=""),
        Raises(
            RateLimitError,
            code=None,
            description=(
                "the server's rate limiter blocked this client for a while (HTTP 403, empty body)"
            ),
            retry_after=None,
        ),
    ),
    # C sends no Retry-After with it; one that a gateway in front adds is honoured.
    (
        "403-empty-with-retry-after",
        "fetch",
        answer(403, content_type="", headers={"Retry-After": "120"}),
        Raises(RateLimitError, code=None, retry_after=120.0),
    ),
    # -- refusals in the body (J and C answer errors with HTTP 200) -------------------------
    # Codes: J src/main/java/com/github/novicezk/midjourney/ReturnCode.java, C
    # src/Midjourney.Base/Dto/ReturnCode.cs (3, 4, 9, 21, 22, 23, 24).
    (
        "J-code-23-queue-full",
        "submit",
        answer(200, {"code": 23, "description": "队列已满，请稍后尝试"}),
        Raises(
            QueueFullError,
            code=23,
            description="队列已满，请稍后尝试",
            message="the account's queue is full; try again later",
        ),
    ),
    (
        "J-code-23-retry-after",
        "submit",
        answer(200, {"code": 23, "description": "full"}, headers={"Retry-After": "4"}),
        Raises(QueueFullError, code=23, retry_after=4.0),
    ),
    (
        "C-code-9-queue-full",
        "submit",
        answer(200, {"code": 9, "description": QUEUE_FULL_C}),
        Raises(QueueFullError, code=9, description=QUEUE_FULL_C),
    ),
    (
        "C-code-9-queue-full-retry-after",
        "submit",
        answer(200, {"code": 9, "description": QUEUE_FULL_C}, headers={"Retry-After": "2"}),
        Raises(QueueFullError, code=9, retry_after=2.0),
    ),
    (
        "C-code-9-queue-full-on-500",
        "submit",
        answer(500, {"code": 9, "description": QUEUE_FULL_C}),
        Raises(QueueFullError, code=9),
    ),
    (
        "C-code-9-failure",
        "submit",
        answer(200, {"code": 9, "description": "提交失败: 账号被封禁"}),
        Raises(ServerError, code=9),
    ),
    (
        "J-code-24-banned",
        "submit",
        answer(
            200,
            {
                "code": 24,
                "description": "可能包含敏感词",
                "properties": {"promptEn": "nude body", "bannedWord": "nude"},
            },
        ),
        Raises(
            BannedPromptError,
            code=24,
            properties={"promptEn": "nude body", "bannedWord": "nude"},
            message="the prompt contains a word the server bans: 'nude'",
        ),
    ),
    (
        "code-24-on-400",
        "submit",
        answer(400, {"code": 24, "description": "banned"}),
        Raises(BannedPromptError, code=24),
    ),
    (
        "J-code-3-no-account",
        "submit",
        answer(200, {"code": 3, "description": "无可用的账号实例"}),
        Raises(NotFoundError, code=3),
    ),
    (
        "J-code-4-validation",
        "submit",
        answer(200, {"code": 4, "description": "prompt不能为空"}),
        Raises(InvalidRequestError, code=4),
    ),
    (
        "code-4-in-200-cancel",
        "cancel",
        answer(200, {"code": 4, "description": "x"}),
        Raises(NotFoundError, code=4),
    ),
    ("code-as-text-23", "submit", answer(200, {"code": "23"}), Raises(QueueFullError, code=23)),
    # Not a number: "23" followed by a newline is text, and a 2xx without a code is a shape
    # we cannot read (the server may have taken the job).
    ("code-as-text-23-newline", "fetch", answer(200, {"code": "23\n"}), Raises(ProtocolError)),
    (
        "code-as-text-negative",
        "submit",
        answer(200, {"code": "-1", "message": "x"}),
        Raises(APIError, code=-1),
    ),
    (
        "unknown-code-in-200",
        "submit",
        answer(200, {"code": 5, "description": "odd"}),
        Raises(APIError, code=5),
    ),
    # C's exception filter: HTTP 200 {"success": false, "code": -1, "message": ...}
    # (src/Midjourney.API/Filters/CustomLogicExceptionFilterAttribute.cs, Models/Result.cs).
    (
        "C-code-minus-1",
        "submit",
        answer(200, {"success": False, "code": -1, "message": "参数错误"}),
        Raises(APIError, code=-1, description="参数错误"),
    ),
    (
        "success-false-without-code",
        "submit",
        answer(200, {"success": False, "message": "boom"}),
        Raises(APIError, code=-1, description="boom"),
    ),
    (
        "success-false-no-text",
        "submit",
        answer(200, {"success": False}),
        Raises(APIError, code=-1, description="the server refused the request"),
    ),
    (
        "code-9-no-text",
        "seed",
        answer(200, {"code": 9}),
        Raises(ServerError, code=9, description="the server refused the request"),
    ),
    (
        "properties-not-a-mapping",
        "submit",
        answer(200, {"code": 4, "properties": [1]}),
        Raises(InvalidRequestError, code=4, properties={}),
    ),
    # C's per-user limits refuse the job before it is created: back-pressure, waited out like
    # queue-full. As code -1 on the submits whose handler calls NewTask (here shorten), as
    # code 4 on imagine (trueai-org/midjourney-proxy @ ed32197
    # src/Midjourney.API/Controllers/SubmitController.cs:196-199,1195-1241,
    # src/Midjourney.Base/Models/Result.cs:71-74).
    (
        "C-per-user-concurrency-code-minus-1",
        "submit",
        answer(
            200,
            {"success": False, "code": -1, "message": "并发数已达上限", "timestamp": 1},
            route="/mj/submit/shorten",
        ),
        Raises(
            QueueFullError,
            code=-1,
            description="并发数已达上限",
            message="the account already runs as many jobs as it may at once",
        ),
    ),
    (
        "C-per-user-queue-on-imagine-code-4",
        "submit",
        answer(200, {"code": 4, "description": "队列数已达上限"}),
        Raises(QueueFullError, code=4, description="队列数已达上限"),
    ),
    # (C sends no Retry-After; a gateway's is honoured, as for every refusal.)
    (
        "back-pressure-with-retry-after",
        "submit",
        answer(
            200,
            {"success": False, "code": -1, "message": "队列数已达上限"},
            headers={"Retry-After": "9"},
            route="/mj/submit/shorten",
        ),
        Raises(QueueFullError, code=-1, retry_after=9.0),
    ),
    # C without Redis refuses every submit but imagine this way (SubmitController.cs:1033-1036):
    # the server is not set up, which no resend changes.
    (
        "C-without-redis-refuses-every-submit",
        "submit",
        answer(
            200,
            {"success": False, "code": -1, "message": C_UNAVAILABLE},
            route="/mj/submit/describe",
        ),
        Raises(
            ServerError,
            code=-1,
            description=C_UNAVAILABLE,
            message="the server is not set up to take jobs; ask its administrator",
        ),
    ),
    # Code 24 is a ban whatever its words (J and C send "可能包含敏感词"; another text, or
    # none, is still a ban).
    (
        "code-24-other-text",
        "submit",
        answer(200, {"code": 24, "description": "提示词不合规"}),
        Raises(
            BannedPromptError,
            code=24,
            description="提示词不合规",
            message="the prompt may contain a word the server bans",
        ),
    ),
    # C's image-seed of a task without a Discord message hash yet (not finished): HTTP 400
    # code 4 (src/Midjourney.API/Controllers/TaskController.cs:132-160 @ ed32197).
    (
        "C-seed-of-an-unfinished-task-400-code-4",
        "seed",
        answer(400, {"code": 4, "description": "关联任务状态错误", "result": None}),
        Raises(
            InvalidRequestError,
            code=4,
            description="关联任务状态错误",
            message="the task has no seed yet: it has not finished",
        ),
    ),
    # N's own code-4 errors on image-seed (QuantumNous/new-api @ 65b1654
    # relay/mjproxy_handler.go:285-298, sent by controller/relay.go:424-434): the task's
    # channel is gone or disabled, so the relay cannot reach the task: not found, not "wait".
    (
        "N-seed-channel-disabled-400-code-4",
        "seed",
        answer(
            400, {"description": "该任务所属渠道已被禁用 ", "type": "upstream_error", "code": 4}
        ),
        Raises(NotFoundError, code=4, description="该任务所属渠道已被禁用"),
    ),
    (
        "N-seed-channel-info-failed-400-code-4",
        "seed",
        answer(
            400, {"description": "get_channel_info_failed ", "type": "upstream_error", "code": 4}
        ),
        Raises(NotFoundError, code=4, description="get_channel_info_failed"),
    ),
    # The relay's own marker decides on any status with a body code.
    # N's other "no such task" word (relay/mjproxy_handler.go:459 @ 65b1654), as a relay
    # in front passes it on without N's marker: on image-seed, too, an unknown task.
    (
        "task-not-found-word-on-seed",
        "seed",
        answer(400, {"code": 4, "description": "task_not_found "}),
        Raises(NotFoundError, code=4, description="task_not_found"),
    ),
    (
        "404-relay-own-code-4-on-seed",
        "seed",
        answer(404, {"description": "gone", "type": "upstream_error", "code": 4}),
        Raises(NotFoundError, code=4, description="gone"),
    ),
    (
        "properties-nested-too-deep-dropped",
        "submit",
        answer(200, {"code": 4, "description": "x", "properties": {"a": nested(70)}}),
        Raises(InvalidRequestError, code=4, description="x", properties={}),
    ),
    (
        "properties-nested-64-kept",
        "submit",
        answer(200, {"code": 4, "description": "x", "properties": {"a": nested(63)}}),
        Raises(InvalidRequestError, code=4, properties={"a": nested(63)}),
    ),
    # -- refusals by HTTP status ----------------------------------------------------------
    # N: its own errors as HTTP 400 {"description", "type": "upstream_error", "code"}, code 30
    # as HTTP 429 (controller/relay.go, RelayMidjourney; constant/midjourney.go: 4, 5).
    (
        "N-400-code-4-on-submit",
        "submit",
        answer(400, {"description": "prompt is required", "type": "upstream_error", "code": 4}),
        Raises(InvalidRequestError, code=4, description="prompt is required"),
    ),
    (
        "N-400-code-4-on-list",
        "list",
        answer(400, {"description": "x", "code": 4}),
        Raises(InvalidRequestError, code=4),
    ),
    (
        # new-api's code 5 (MjErrorUnknown: upstream unreachable or unreadable) is the
        # server failing, not the request (QuantumNous/new-api 65b1654 controller/relay.go,
        # service/midjourney.go): a ServerError, which reads retry.
        "N-400-code-5",
        "submit",
        answer(400, {"description": "do_request_failed", "type": "upstream_error", "code": 5}),
        Raises(ServerError, code=5),
    ),
    (
        "N-429-code-30",
        "submit",
        answer(
            429,
            {"description": "当前分组上游负载已饱和", "type": "upstream_error", "code": 30},
            headers={"Retry-After": "3"},
        ),
        Raises(RateLimitError, code=30, retry_after=3.0),
    ),
    # Issue 18: `code == 30 or status == 429` -- either one alone is a rate limit.
    (
        "code-30-on-400",
        "submit",
        answer(400, {"code": 30, "description": "saturated"}),
        Raises(RateLimitError, code=30),
    ),
    ("code-30-in-200", "submit", answer(200, {"code": 30}), Raises(RateLimitError, code=30)),
    (
        "429-with-another-code",
        "submit",
        answer(429, {"code": 5, "description": "slow down"}, headers={"Retry-After": "6"}),
        Raises(RateLimitError, code=5, retry_after=6.0),
    ),
    # C's rate limiter: HTTP 429, empty body (src/Midjourney.API/RateLimitingMiddleware.cs).
    (
        "C-429-empty",
        "fetch",
        answer(429, content_type=""),
        Raises(RateLimitError, code=None, description="HTTP 429", retry_after=None),
    ),
    (
        "429-retry-after",
        "fetch",
        answer(429, headers={"Retry-After": "7"}),
        Raises(RateLimitError, retry_after=7.0),
    ),
    (
        "429-retry-after-unusable",
        "fetch",
        answer(429, headers={"Retry-After": "soon"}),
        Raises(RateLimitError, retry_after=None),
    ),
    ("success-code-on-429", "fetch", answer(429, {"code": 1}), Raises(RateLimitError, code=1)),
    (
        "N-503-openai-shape",
        "fetch",
        answer(503, {"error": {"message": "当前分组负载已饱和", "type": "new_api_error"}}),
        Raises(ServerError, code=None, description="当前分组负载已饱和"),
    ),
    # C's exception filter for other exceptions: HTTP 500 with code -1.
    (
        "C-500-code-minus-1",
        "submit",
        answer(500, {"success": False, "code": -1, "message": "操作失败"}),
        Raises(ServerError, code=-1, description="操作失败"),
    ),
    ("success-code-on-500", "submit", answer(500, {"code": 1}), Raises(ServerError, code=1)),
    ("code-22-on-502", "submit", answer(502, {"code": 22}), Raises(ServerError, code=22)),
    ("bare-500", "submit", answer(500), Raises(ServerError, code=None, description="HTTP 500")),
    (
        "html-502",
        "fetch",
        html(502, HTML_502),
        Raises(ServerError, description="HTTP 502 (an HTML error page: '502 Bad Gateway')"),
    ),
    (
        "html-504",
        "submit",
        html(504, HTML_504),
        Raises(ServerError, contains="504 Gateway Time-out"),
    ),
    (
        "text-500",
        "fetch",
        text(500, "Internal Server Error"),
        Raises(ServerError, description="Internal Server Error"),
    ),
    ("599", "fetch", answer(599), Raises(ServerError)),
    ("408", "fetch", answer(408), Raises(APIError, code=None, description="HTTP 408")),
    ("400-empty", "submit", answer(400), Raises(InvalidRequestError, description="HTTP 400")),
    # C's cancel in demo mode: 400 text/plain (TaskController.cs, Cancel).
    (
        # C lets only admin users cancel (TaskController.cs:55,89-92): for this key the
        # endpoint does not exist, and the client stops asking (remembered per mode).
        "C-cancel-demo-mode",
        "cancel",
        text(400, "演示模式，禁止操作"),
        Raises(
            UnsupportedEndpointError,
            description="演示模式，禁止操作",
            message="this server lets only admin users cancel tasks",
        ),
    ),
    ("499", "fetch", answer(499), Raises(InvalidRequestError)),
    ("code-4-on-499", "fetch", answer(499, {"code": 4}), Raises(NotFoundError, code=4)),
    (
        "unknown-code-on-499",
        "fetch",
        answer(499, {"code": 77}),
        Raises(InvalidRequestError, code=77),
    ),
    (
        "unknown-code-on-400",
        "submit",
        answer(400, {"code": 77}),
        Raises(InvalidRequestError, code=77),
    ),
    # Issue 12: API calls never follow redirects; any 3xx is an APIError naming its Location
    # (never a Submission, never a code read from the redirect's body).
    ("redirect-302", "fetch", answer(302), Raises(APIError, contains="no Location given")),
    (
        "redirect-307-submit",
        "submit",
        answer(307, {"code": 1, "result": "42"}, headers={"Location": "http://evil.example/x"}),
        Raises(APIError, contains="'http://evil.example/x'"),
    ),
    ("edge-300", "fetch", answer(300, TASK), Raises(APIError, contains="redirect")),
    ("edge-399", "fetch", answer(399, TASK), Raises(APIError, contains="redirect")),
    ("informational-199", "fetch", answer(199, TASK), Raises(InvalidRequestError)),
    ("edge-400-not-a-redirect", "fetch", answer(400), Raises(InvalidRequestError)),
    ("unknown-code-on-302", "submit", answer(302, {"code": 77}), Raises(APIError, code=None)),
    # N's 503 model_not_found: no channel of the relay sells this kind of job, so for this key
    # the endpoint does not exist (see NO_CHANNEL for the source).
    (
        "N-503-no-channel-for-the-model",
        "submit",
        answer(503, N_503_NO_CHANNEL, mode_prefixed=False),
        Raises(
            UnsupportedEndpointError,
            code=None,
            description=NO_CHANNEL,
            message="this relay sells no channel for imagine (model_not_found)",
        ),
    ),
    (
        "N-503-no-channel-prefixed",
        "submit",
        answer(503, N_503_NO_CHANNEL),
        Raises(UnsupportedEndpointError, description=NO_CHANNEL, contains="(model_not_found)"),
    ),
    # Only the 503 is N's "no channel"; the same body with another status is what the status says.
    (
        "500-with-model-not-found-body",
        "submit",
        answer(500, N_503_NO_CHANNEL),
        Raises(ServerError, code=None, description=NO_CHANNEL),
    ),
    # A server's words are explained wherever they come, here C's "操作失败" without its code.
    (
        "known-text-without-a-code-on-500",
        "submit",
        answer(500, {"message": "操作失败"}),
        Raises(
            ServerError,
            code=None,
            description="操作失败",
            message="the server failed (internal error)",
        ),
    ),
    # A cancel refused with a 400 whose body is neither JSON nor text: the default words.
    (
        "cancel-400-untyped-body",
        "cancel",
        answer(400, b"forbidden", content_type=""),
        Raises(UnsupportedEndpointError, description="refused"),
    ),
    (
        "redirect-302-text",
        "fetch",
        answer(302),
        Raises(
            APIError,
            code=None,
            description="the server answered with a redirect to no Location given"
            + REDIRECT_ADVICE,
        ),
    ),
    # N with FRONTEND_BASE_URL (a non-master node) answers 301 to its frontend
    # (QuantumNous/new-api @ 65b1654 router/main.go:21-34). The transport keeps the Location
    # scrubbed of the key; the raw header is not shown.
    (
        "N-301-location-scrubbed",
        "submit",
        answer(
            301,
            headers={"Location": "https://front.example/mj?key=sk-SECRET"},
            location="https://front.example/mj?key=***",
        ),
        Raises(
            APIError,
            description="the server answered with a redirect to "
            "'https://front.example/mj?key=***'" + REDIRECT_ADVICE,
        ),
    ),
    (
        "redirect-location-cut-at-300",
        "fetch",
        answer(302, headers={"Location": "https://h.example/" + "x" * 400}),
        Raises(
            APIError,
            description="the server answered with a redirect to "
            + repr(("https://h.example/" + "x" * 400)[:300])
            + REDIRECT_ADVICE,
        ),
    ),
    # -- answers nobody can read ----------------------------------------------------------
    # Issue 18: a 2xx submit answer without any code is no refusal: the job was probably
    # taken (maybe_taken), so it must not look refused.
    ("codeless-2xx-submit", "submit", answer(200, {"result": "42"}), Raises(ProtocolError)),
    (
        "success-true-no-code",
        "submit",
        answer(200, {"success": True, "result": "42"}),
        Raises(ProtocolError),
    ),
    ("success-null-no-code", "submit", answer(200, {"success": None}), Raises(ProtocolError)),
    ("code-bool-is-no-code", "submit", answer(200, {"code": True}), Raises(ProtocolError)),
    ("code-float-is-no-code", "submit", answer(200, {"code": 1.0}), Raises(ProtocolError)),
    ("code-superscript-is-no-code", "submit", answer(200, {"code": "²"}), Raises(ProtocolError)),
    ("code-padded-text-is-no-code", "submit", answer(200, {"code": " 1"}), Raises(ProtocolError)),
    ("code-null", "submit", answer(200, {"code": None}), Raises(ProtocolError)),
    ("submit-json-list", "submit", answer(200, [1, 2]), Raises(ProtocolError)),
    ("submit-json-string", "submit", answer(200, "ok"), Raises(ProtocolError)),
    ("submit-empty-200", "submit", answer(200), Raises(ProtocolError)),
    (
        # new-api serves its web UI (HTML 200) for every route it lacks
        # (router/web-router.go): an HTML page on an API route is a missing route.
        "submit-html-200-is-a-missing-route",
        "submit",
        html(200, b"<html>captive portal</html>"),
        Raises(UnsupportedEndpointError),
    ),
    (
        "xhtml-200-is-a-missing-route",
        "fetch",
        Answer(200, b"<html/>", "application/xhtml+xml"),
        Raises(UnsupportedEndpointError),
    ),
    ("fetch-without-id", "fetch", answer(200, {"status": "SUCCESS"}), Raises(ProtocolError)),
    ("fetch-success-code-no-id", "fetch", answer(200, {"code": 1}), Raises(ProtocolError)),
    ("fetch-list", "fetch", answer(200, [TASK]), Raises(ProtocolError)),
    ("list-not-a-list", "list", answer(200, {"ids": []}), Raises(ProtocolError)),
    ("list-success-code", "list", answer(200, {"code": 1}), Raises(ProtocolError)),
    ("list-empty-200", "list", answer(200), Raises(ProtocolError)),
    ("seed-json-number", "seed", answer(200, 5), Raises(ProtocolError)),
    ("fetch-truncated", "fetch", answer(200, b'{"id": "42", "sta'), Raises(ProtocolError)),
    ("fetch-deeply-nested", "fetch", answer(200, b"[" * 100_000), Raises(ProtocolError)),
    # Properties travel with every error that has them, whichever branch decides.
    (
        "code-in-200-fetch-with-properties",
        "fetch",
        answer(200, {"code": 4, "description": "task_no_found", "properties": {"a": 1}}),
        Raises(NotFoundError, code=4, properties={"a": 1}),
    ),
    (
        "N-400-code-with-properties",
        "submit",
        answer(400, {"code": 4, "description": "x", "properties": {"a": 1}}),
        Raises(InvalidRequestError, code=4, properties={"a": 1}),
    ),
    (
        "500-properties-without-code",
        "fetch",
        answer(500, {"message": "x", "properties": {"a": 1}}),
        Raises(ServerError, code=None, description="x", properties={"a": 1}),
    ),
]


def _ids(rows: list[tuple[Any, ...]]) -> list[str]:
    return [row[0] for row in rows]


def test_row_ids_are_unique() -> None:
    for rows in (ANSWERS, DESCRIPTIONS, TAKEN, SUBMITS):
        ids = _ids(rows)
        assert len(ids) == len(set(ids))


def check(kind: RouteKind, ans: Answer, outcome: Outcome) -> MjError | None:
    """Interpret ``ans`` and compare with ``outcome``; return the error, if one was expected."""
    method, path = ans.request(kind)
    if isinstance(outcome, Returns):
        payload = interpret(ans.response(kind), kind)
        expected = ans.body if outcome.payload is _THE_BODY else outcome.payload
        assert payload == expected
        return None
    with pytest.raises(MjError) as info:
        interpret(ans.response(kind), kind)
    exc = info.value
    assert type(exc) is outcome.type, f"{type(exc).__name__}: {exc}"
    assert (getattr(exc, "method", None), getattr(exc, "path", None)) == (method, path)
    if isinstance(exc, APIError):
        assert exc.http_status == ans.status
        assert exc.code == outcome.code
        if outcome.description is not None:
            assert exc.description == outcome.description
        assert dict(exc.properties) == (outcome.properties or {})
    else:
        assert outcome.code is None and outcome.description is None
    if isinstance(exc, RateLimitError | QueueFullError):
        assert exc.retry_after == outcome.retry_after
    else:
        assert not hasattr(exc, "retry_after")
    if outcome.contains is not None:
        assert outcome.contains in str(exc)
    if outcome.message is not None:
        assert exc.message == outcome.message
    return exc


@pytest.mark.parametrize(("kind", "ans", "outcome"), [r[1:] for r in ANSWERS], ids=_ids(ANSWERS))
def test_interpret(kind: RouteKind, ans: Answer, outcome: Outcome) -> None:
    check(kind, ans, outcome)


# -- the error's text: which field of which answer shape --------------------------------------

DEFAULT = "the server refused the API key"  # a 401's text when the answer has none

#: (id, content type, body, the description a 401 with this body gets)
DESCRIPTIONS: list[tuple[str, str, Any, str]] = [
    ("description", JSON, {"description": " bad "}, "bad"),
    ("message", JSON, {"message": "m"}, "m"),
    ("msg", JSON, {"msg": "x"}, "x"),  # issue 18: the "msg" shape
    ("description-before-message", JSON, {"msg": "x", "message": "m", "description": "d"}, "d"),
    ("message-before-msg", JSON, {"msg": "x", "message": "m"}, "m"),
    ("blank-description-skipped", JSON, {"description": "  ", "message": "m"}, "m"),
    ("number-description-skipped", JSON, {"description": 5, "msg": "x"}, "x"),
    (
        "openai-error-object",
        JSON,
        {"error": {"message": " 无效的令牌 ", "type": "x"}},
        "无效的令牌",
    ),
    ("error-object-blank", JSON, {"error": {"message": "  "}}, DEFAULT),
    ("error-object-number", JSON, {"error": {"message": 5}}, DEFAULT),
    ("error-object-without-message", JSON, {"error": {"type": "x"}}, DEFAULT),
    ("error-text", JSON, {"error": " text "}, "text"),  # issue 18: the {"error": "text"} shape
    ("error-text-blank", JSON, {"error": "   "}, DEFAULT),
    ("description-before-error", JSON, {"error": "e", "description": "d"}, "d"),
    ("msg-before-error-object", JSON, {"error": {"message": "e"}, "msg": "m"}, "m"),
    ("json-list", JSON, [1, 2], DEFAULT),
    ("json-in-text-plain", "text/plain", {"description": "d"}, "d"),
    (
        "html-title",
        "text/html",
        b"<title> 401 Authorization Required </title>",
        f"{DEFAULT} (an HTML error page: '401 Authorization Required')",
    ),
    (
        "html-title-any-case",
        "text/html; charset=utf-8",
        b"<TITLE>Denied</Title>",
        f"{DEFAULT} (an HTML error page: 'Denied')",
    ),
    (
        "html-title-across-lines",
        "text/html",
        b"<title>a\nb</title>",
        f"{DEFAULT} (an HTML error page: 'a\\nb')",
    ),
    (
        "html-title-bad-utf8",
        "text/html",
        b"<title>\xff</title>",
        f"{DEFAULT} (an HTML error page: '\ufffd')",
    ),
    (
        "html-without-title",
        "text/html",
        b"<html><body>no</body></html>",
        f"{DEFAULT} (an HTML error page: 'HTML page')",
    ),
    (
        "html-title-ends-at-4096",
        "text/html",
        b" " * 4080 + b"<title>x</title>",
        f"{DEFAULT} (an HTML error page: 'x')",
    ),
    (
        "html-title-ends-at-4097",
        "text/html",
        b" " * 4081 + b"<title>x</title>",
        f"{DEFAULT} (an HTML error page: 'HTML page')",
    ),
    ("html-empty", "text/html", b"", DEFAULT),
    ("text-plain", "text/plain", "密钥错误".encode(), "密钥错误"),
    ("text-plain-padded", "text/plain", b"  denied \n", "denied"),
    ("text-plain-blank", "text/plain", b"   ", DEFAULT),
    ("text-plain-first-200", "text/plain", b"y" * 300, "y" * 200),
    ("text-plain-bad-utf8", "text/plain", b"\xffno", "\ufffdno"),
    ("text-other-subtype", "text/csv", b"a,b", "a,b"),
    ("octet-stream", "application/octet-stream", b"denied", DEFAULT),
    ("no-content-type", "", b"denied", DEFAULT),
]


@pytest.mark.parametrize(
    ("content_type", "body", "description"), [r[1:] for r in DESCRIPTIONS], ids=_ids(DESCRIPTIONS)
)
def test_description(content_type: str, body: Any, description: str) -> None:
    check(
        "fetch",
        Answer(401, body, content_type=content_type),
        Raises(AuthenticationError, description=description),
    )


# -- the error's text when the answer could not be read at all ---------------------------------


@pytest.mark.parametrize(
    ("ans", "message", "body"),
    [
        (
            answer(200, b'{"id": "42", "sta'),
            "unreadable JSON body (HTTP 200, application/json)",
            '{"id": "42", "sta',
        ),
        (
            answer(200, b"<" + b"x" * 300, content_type=""),
            "unreadable JSON body (HTTP 200, no type)",
            "<" + "x" * 199,
        ),
        (
            answer(200, b"\xff{", content_type="text/plain"),
            "unreadable JSON body (HTTP 200, text/plain)",
            "\ufffd{",
        ),
        (
            answer(200, {"status": "SUCCESS"}),
            "unexpected fetch answer shape: dict",
            '{"status": "SUCCESS"}',
        ),
        (
            answer(200, [1] * 100),
            "unexpected fetch answer shape: list",
            json.dumps([1] * 100)[:200],
        ),
        (
            answer(200, ('{"message": "' + "中" * 100 + '"}').encode()),
            "unexpected fetch answer shape: dict",
            '{"message": "' + "中" * 62 + "\ufffd",  # 200 bytes end inside a character
        ),
    ],
    ids=[
        "truncated",
        "no-type-long-body",
        "bad-utf8",
        "wrong-shape",
        "wrong-shape-long",
        "wrong-shape-cut-utf8",
    ],
)
def test_protocol_error_text(ans: Answer, message: str, body: str) -> None:
    exc = check("fetch", ans, Raises(ProtocolError))
    assert isinstance(exc, ProtocolError)
    assert exc.message == message
    assert exc.body == body


def test_c_cancel_success_is_an_empty_200() -> None:
    # C: `return Ok();` at the end of Cancel (src/Midjourney.API/Controllers/TaskController.cs
    # @ ed32197), for a cancelled task and an unknown id alike.
    assert interpret(answer(200, content_type="").response("cancel"), "cancel") is None


def test_route_missing_text() -> None:
    exc = check("fetch", answer(404, SPRING_404), Raises(UnsupportedEndpointError))
    assert isinstance(exc, UnsupportedEndpointError)
    assert exc.description == (
        "the server has no route /mj-fast/mj/task/42/fetch; servers of the original Java proxy "
        "serve no mode prefixes: try Client(mode=None), or set mode_path= to the relay's pattern "
        "(e.g. '/{mode}')"
    )


def test_a_prefixed_route_is_named_like_an_unprefixed_one() -> None:
    # N strips /mj-* prefixes and serves its web UI for the cancel it lacks (see the rows).
    exc = check("cancel", html(200, N_WEB_UI), Raises(UnsupportedEndpointError))
    assert "; cancel is served by C (trueai-org/midjourney-proxy, admin users only)" in str(exc)
    exc = check("submit", answer(503, N_503_NO_CHANNEL), Raises(UnsupportedEndpointError))
    assert exc.message == "this relay sells no channel for imagine (model_not_found)"


# -- error_for_code directly: the code x status x route table ---------------------------------

#: (id, code, description, kind, HTTP status, error type)
CODES: list[tuple[str, int, str, RouteKind, int, type[APIError]]] = [
    ("23", 23, "full", "submit", 200, QueueFullError),
    ("9-C-queue-full", 9, QUEUE_FULL_C, "submit", 200, QueueFullError),
    ("9-queue-full-text-anywhere", 9, "队列已满", "fetch", 503, QueueFullError),
    ("9-english-is-not-the-signal", 9, "queue full", "submit", 200, ServerError),
    ("24", 24, "banned", "submit", 200, BannedPromptError),
    ("3-any-route", 3, "x", "list", 200, NotFoundError),
    ("4-fetch", 4, "x", "fetch", 200, NotFoundError),
    # C's image-seed answers code 4 for a task that has not finished (TaskController.cs:132-160);
    # new-api's own code 4 there is its "task_no_found" (relay/mjproxy_handler.go:285-316).
    ("4-seed", 4, "x", "seed", 200, InvalidRequestError),
    ("4-seed-relay-no-found", 4, "task_no_found ", "seed", 400, NotFoundError),
    ("4-cancel", 4, "x", "cancel", 200, NotFoundError),
    ("4-submit", 4, "x", "submit", 200, InvalidRequestError),
    ("4-list", 4, "x", "list", 200, InvalidRequestError),
    ("30", 30, "x", "fetch", 200, RateLimitError),
    ("any-code-http-429", 1, "x", "fetch", 429, RateLimitError),
    ("9", 9, "x", "fetch", 200, ServerError),
    ("any-code-http-500", 0, "x", "fetch", 500, ServerError),
    ("any-code-http-499", 0, "x", "fetch", 499, InvalidRequestError),
    ("any-code-http-400", 0, "x", "fetch", 400, InvalidRequestError),
    ("any-code-http-399", 0, "x", "fetch", 399, APIError),
    ("any-code-http-200", 0, "x", "fetch", 200, APIError),
    ("minus-1-http-200", -1, "x", "submit", 200, APIError),
]


@pytest.mark.parametrize(
    ("code", "description", "kind", "status", "error"), [r[1:] for r in CODES], ids=_ids(CODES)
)
def test_error_for_code(
    code: int, description: str, kind: RouteKind, status: int, error: type[APIError]
) -> None:
    resp = answer(status, headers={"Retry-After": "5"}).response(kind)
    exc = error_for_code(code, description, kind=kind, resp=resp, properties={"p": 1})
    assert type(exc) is error
    assert (exc.code, exc.description, exc.http_status) == (code, description, status)
    assert (exc.method, exc.path, dict(exc.properties)) == (*REQUEST[kind], {"p": 1})
    if isinstance(exc, RateLimitError | QueueFullError):
        assert exc.retry_after == 5.0


# -- maybe_taken: may a failed submit still have created a (paid) job? --------------------------

#: (id, error, may have been taken)
TAKEN: list[tuple[str, MjError, bool]] = [
    ("connection-never-opened", TransportError("refused", request_sent=False), False),
    ("reset-after-sending", TransportError("reset", request_sent=True), True),
    ("unreadable-2xx", ProtocolError("truncated"), True),
    # Issue 18: a bare 500 from the proxy or a gateway: the job may be running.
    ("bare-500", ServerError("HTTP 500", http_status=500), True),
    ("gateway-502", ServerError("HTTP 502", http_status=502), True),
    ("gateway-timeout-504", ServerError("HTTP 504", http_status=504), True),
    ("unavailable-503", ServerError("HTTP 503", http_status=503), False),
    ("not-implemented-501", ServerError("HTTP 501", http_status=501), False),
    ("C-500-code-minus-1", ServerError("操作失败", http_status=500, code=-1), False),
    ("502-with-a-code", ServerError("x", http_status=502, code=22), False),
    ("code-9-failure", ServerError("x", http_status=200, code=9), False),
    ("server-error-no-status", ServerError("x"), False),
    ("queue-full", QueueFullError("x", http_status=200, code=23), False),
    ("rate-limited", RateLimitError("x", http_status=429), False),
    ("banned", BannedPromptError("x", http_status=200, code=24), False),
    ("invalid", InvalidRequestError("x", http_status=400, code=4), False),
    ("auth", AuthenticationError("x", http_status=401), False),
    ("no-route", UnsupportedEndpointError("x", http_status=404), False),
    ("http-408", APIError("x", http_status=408), False),
    ("api-error-500", APIError("x", http_status=500), False),
    # N's code 5: the upstream was unreachable or answered something unreadable; it may
    # have taken the job (QuantumNous/new-api @ 65b1654 service/midjourney.go:165-259).
    ("N-code-5", ServerError("do_request_failed", http_status=400, code=5), True),
    ("code-5-on-500", ServerError("x", http_status=500, code=5), True),
    ("code-6-on-400", ServerError("x", http_status=400, code=6), False),
]


@pytest.mark.parametrize(("error", "taken"), [r[1:] for r in TAKEN], ids=_ids(TAKEN))
def test_maybe_taken(error: MjError, taken: bool) -> None:
    assert maybe_taken(error) is taken


# -- the money table: a submit's answer -> refused (may resend) or maybe taken (never resend) --

#: (id, answer to POST /mj/submit/imagine, error, maybe taken)
SUBMITS: list[tuple[str, Answer, type[MjError], bool]] = [
    ("bare-500", answer(500), ServerError, True),
    ("text-500", text(500, "Internal Server Error"), ServerError, True),
    ("html-502", html(502, HTML_502), ServerError, True),
    ("html-504", html(504, HTML_504), ServerError, True),
    ("bare-503", answer(503), ServerError, False),
    (
        "C-500-code-minus-1",
        answer(500, {"success": False, "code": -1, "message": "操作失败"}),
        ServerError,
        False,
    ),
    ("codeless-200", answer(200, {"result": "42"}), ProtocolError, True),
    ("truncated-200", answer(200, b'{"code": 1, "resu'), ProtocolError, True),
    ("empty-200", answer(200), ProtocolError, True),
    ("J-code-23", answer(200, {"code": 23}), QueueFullError, False),
    (
        "C-code-9-queue-full",
        answer(200, {"code": 9, "description": QUEUE_FULL_C}),
        QueueFullError,
        False,
    ),
    ("J-code-24", answer(200, {"code": 24}), BannedPromptError, False),
    ("N-429-code-30", answer(429, {"code": 30}), RateLimitError, False),
    ("J-401", answer(401), AuthenticationError, False),
    ("J-spring-404", answer(404, SPRING_404), UnsupportedEndpointError, False),
    ("C-success-false", answer(200, {"success": False, "message": "x"}), APIError, False),
    (
        "N-400-code-5",
        answer(400, {"description": "do_request_failed ", "type": "upstream_error", "code": 5}),
        ServerError,
        True,
    ),
    (
        "C-without-redis",
        answer(200, {"success": False, "code": -1, "message": C_UNAVAILABLE}),
        ServerError,
        False,
    ),
    (
        "C-per-user-concurrency",
        answer(200, {"success": False, "code": -1, "message": "并发数已达上限"}),
        QueueFullError,
        False,
    ),
]


@pytest.mark.parametrize(("ans", "error", "taken"), [r[1:] for r in SUBMITS], ids=_ids(SUBMITS))
def test_a_failed_submit_is_refused_or_maybe_taken(
    ans: Answer, error: type[MjError], taken: bool
) -> None:
    with pytest.raises(MjError) as info:
        interpret(ans.response("submit"), "submit")
    assert type(info.value) is error
    assert maybe_taken(info.value) is taken
