"""The answers each server family gives, as its source has them, and what mjasync makes of them.

Every case is one answer read from a family's source (cited: repository@commit path:lines). It
runs twice:

- **pure**: the documented answer goes through ``interpret`` (and ``parse_task``) alone;
- **simulator**: the same situation is provoked from ``FakeMidjourney`` in that accent; its
  answer must have the documented status and shape, and ``interpret`` must make the same of it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

import mjasync
from mjasync import (
    AuthenticationError,
    BannedPromptError,
    InvalidRequestError,
    NotFoundError,
    QueueFullError,
    RateLimitError,
    ServerError,
    TaskAction,
    TaskStatus,
    UnsupportedEndpointError,
)
from mjasync._converter import parse_task
from mjasync._wire.interpret import RouteKind, interpret, maybe_taken
from mjasync._wire.retry import is_retryable
from mjasync._wire.transport import Response
from mjasync.testing import FaultRates, Faults

from ._sim import PNG, Sim, started
from .sources import c, j, n

pytestmark = pytest.mark.anyio

X = "1700000000000000001"  # an id no simulator hands out
Provoke = Callable[[Sim], Awaitable[Response]]


@attrs.frozen
class AnswerCase:
    """One documented answer and what the client must make of it.

    Attributes:
        expect: the error ``interpret`` raises, or ``None`` when it returns a payload.
        check: more assertions on the error or the payload.
        provoke: how to get the same answer out of the simulator (``None``: not simulated,
            e.g. an exception deep inside a real server).
    """

    id: str
    family: str
    source: str
    kind: RouteKind
    method: str
    path: str
    status: int
    body: bytes = b""
    content_type: str = ""
    expect: type[mjasync.MjError] | None = None
    check: Callable[[Any], None] | None = None
    provoke: Provoke | None = None
    sim: dict[str, Any] = attrs.field(factory=dict)


def jbody(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()


def _task(**fields: Any) -> bytes:
    base = {"id": X, "action": "IMAGINE", "status": "SUCCESS", "progress": "100%"}
    return jbody({**base, **fields})


def _names(*families: str) -> Callable[[Any], None]:
    def check(error: Any) -> None:
        text = str(error)
        for family in families:
            assert family in text, text

    return check


def _video_refs(thumbnails: bool) -> Callable[[Any], None]:
    def check(payload: Any) -> None:
        task = parse_task(payload)
        assert task.action is TaskAction.VIDEO and task.status is TaskStatus.SUCCESS
        assert task.video_urls and all(v.url.endswith(".mp4") for v in task.video_urls)
        assert task.video_url == task.video_urls[0].url
        assert all((v.thumbnail is not None) is thumbnails for v in task.video_urls)
        assert task.videos == task.video_urls

    return check


def _cancelled(payload: Any) -> None:
    task = parse_task(payload)
    assert task.cancelled and task.status is TaskStatus.FAILURE
    assert task.fail_reason == "取消任务"


def _action(name: str) -> Callable[[Any], None]:
    def check(payload: Any) -> None:
        assert parse_task(payload).action is TaskAction(name)

    return check


def _uploaded(payload: Any) -> None:
    result = payload["result"]
    assert isinstance(result, list) and result and all(u.startswith("http") for u in result)


def _not_ready(error: Any) -> None:
    assert "not finished" in str(error)


def _admin_only(error: Any) -> None:
    assert "admin" in str(error)


def _retried_on_reads_only(error: Any) -> None:
    assert is_retryable(error, "read") and not is_retryable(error, "submit")


# -- how the simulator is made to answer ---------------------------------------------------


def get(route: str, **kw: Any) -> Provoke:
    return lambda sim: sim.raw("GET", route, **kw)


def post(route: str, body: dict[str, Any] | None = None, **kw: Any) -> Provoke:
    return lambda sim: sim.raw("POST", route, body=body if body is not None else {}, **kw)


async def _seed_of_running(sim: Sim) -> Response:
    return await sim.raw("GET", f"/mj/task/{await sim.running()}/image-seed")


async def _cancelled_task(sim: Sim) -> Response:
    task_id = await sim.running()
    assert (await sim.raw("POST", f"/mj/task/{task_id}/cancel", body={})).status == 200
    await sim.wait(task_id, "FAILURE")
    return await sim.raw("GET", f"/mj/task/{task_id}/fetch")


async def _video_task(sim: Sim) -> Response:
    task_id = await sim.submit("/mj/submit/video", {"prompt": "a cat walks", "image": PNG})
    await sim.wait(task_id, "SUCCESS")
    return await sim.raw("GET", f"/mj/task/{task_id}/fetch")


async def _edits_task(sim: Sim) -> Response:
    task_id = await sim.submit("/mj/submit/edits", {"prompt": "a hat", "image": PNG})
    await sim.wait(task_id, "SUCCESS")
    return await sim.raw("GET", f"/mj/task/{task_id}/fetch")


async def _queue_full(sim: Sim) -> Response:
    await sim.running()
    return await sim.raw("POST", "/mj/submit/imagine", body={"prompt": "one more"})


async def _picreader_on_relay(sim: Sim) -> Response:
    parent = await sim.finished()
    body = {"taskId": parent, "customId": f"MJ::Job::PicReader::1::{X}"}
    return await sim.raw("POST", "/mj/submit/action", body=body)


async def _change_index_0(sim: Sim) -> Response:
    parent = await sim.finished()
    body = {"taskId": parent, "action": "REROLL", "index": 0}
    return await sim.raw("POST", "/mj/submit/change", body=body)


async def _custom_zoom_on_relay(sim: Sim) -> Response:
    grid = await sim.finished()
    task = sim.fake.task(grid)
    assert task is not None
    upsample = next(b for b in task["buttons"] if b["customId"].startswith("MJ::JOB::upsample::1"))
    up = await sim.submit("/mj/submit/action", {"taskId": grid, "customId": upsample["customId"]})
    done = await sim.wait(up, "SUCCESS")
    zoom = next(b for b in done["buttons"] if b["customId"].startswith("MJ::CustomZoom::"))
    return await sim.raw(
        "POST", "/mj/submit/action", body={"taskId": up, "customId": zoom["customId"]}
    )


BLOCKED = {"faults": Faults(submit=FaultRates(blocked=1.0), poll=FaultRates(blocked=1.0))}
LIMITED = {"faults": Faults.everywhere(rate_limit=1.0, retry_after=3)}
NO_UPSTREAM = {"faults": Faults(poll=FaultRates(upstream_error=1.0))}

CASES: tuple[AnswerCase, ...] = (
    # -- J ----------------------------------------------------------------------------------
    AnswerCase(
        "J-fetch-unknown-is-an-empty-200",
        "java",
        j("controller/TaskController.java:37-42"),
        "fetch",
        "GET",
        f"/mj/task/{X}/fetch",
        200,
        expect=NotFoundError,
        provoke=get(f"/mj/task/{X}/fetch"),
    ),
    AnswerCase(
        "J-wrong-key-is-an-empty-401",
        "java",
        j("support/ApiAuthorizeInterceptor.java:20-30"),
        "fetch",
        "GET",
        f"/mj/task/{X}/fetch",
        401,
        expect=AuthenticationError,
        provoke=get(f"/mj/task/{X}/fetch", auth="none"),
    ),
    AnswerCase(
        "J-has-no-action-route",
        "java",
        j("controller/SubmitController.java") + " (no /submit/action; Spring's own 404)",
        "submit",
        "POST",
        "/mj/submit/action",
        404,
        jbody({"timestamp": "2024-01-01T00:00:00.000+00:00", "status": 404, "error": "Not Found"}),
        "application/json",
        expect=UnsupportedEndpointError,
        check=_names("C (trueai-org", "N (new-api"),
        provoke=post("/mj/submit/action", {"taskId": X, "customId": "MJ::JOB::upsample::1::x"}),
    ),
    AnswerCase(
        "J-has-no-video-route",
        "java",
        j("controller/SubmitController.java") + " (no /submit/video)",
        "submit",
        "POST",
        "/mj/submit/video",
        404,
        jbody({"status": 404, "error": "Not Found"}),
        "application/json",
        expect=UnsupportedEndpointError,
        check=_names("C (trueai-org", "since v8.6.10"),
        provoke=post("/mj/submit/video", {"prompt": "a cat"}),
    ),
    AnswerCase(
        "J-queue-full-is-code-23",
        "java",
        j("loadbalancer/DiscordInstanceImpl.java:110-135"),
        "submit",
        "POST",
        "/mj/submit/imagine",
        200,
        jbody({"code": 23, "description": "队列已满，请稍后尝试"}),
        "application/json",
        expect=QueueFullError,
        provoke=_queue_full,
        sim={"core_size": 1, "queue_size": 0},
    ),
    AnswerCase(
        "J-banned-prompt-is-code-24",
        "java",
        j("ReturnCode.java:10-39"),
        "submit",
        "POST",
        "/mj/submit/imagine",
        200,
        jbody({"code": 24, "description": "可能包含敏感词", "properties": {"bannedWord": "gore"}}),
        "application/json",
        expect=BannedPromptError,
        provoke=post("/mj/submit/imagine", {"prompt": "gore"}),
    ),
    # -- C ----------------------------------------------------------------------------------
    AnswerCase(
        "C-fetch-unknown-is-204",
        "csharp",
        c("Controllers/TaskController.cs:75-79") + " (a null ActionResult: ASP.NET's 204)",
        "fetch",
        "GET",
        f"/mj/task/{X}/fetch",
        204,
        expect=NotFoundError,
        provoke=get(f"/mj/task/{X}/fetch"),
    ),
    AnswerCase(
        "C-no-key-is-401-text",
        "csharp",
        c("SimpleAuthMiddleware.cs:116-121"),
        "fetch",
        "GET",
        f"/mj/task/{X}/fetch",
        401,
        b"Authorization header missing.",
        expect=AuthenticationError,
        provoke=get(f"/mj/task/{X}/fetch", auth="none"),
    ),
    AnswerCase(
        "C-bearer-is-another-token",
        "csharp",
        c("WorkContext.cs:46-48,62-84"),
        "fetch",
        "GET",
        f"/mj/task/{X}/fetch",
        401,
        b"Authorization header missing.",
        expect=AuthenticationError,
        provoke=get(f"/mj/task/{X}/fetch", auth="bearer"),
        sim={"auth": "accent"},
    ),
    AnswerCase(
        "C-has-no-change-route-since-v10",
        "csharp",
        c("Controllers/SubmitController.cs") + " (change removed in 5853eed; ASP.NET's 404)",
        "submit",
        "POST",
        "/mj/submit/change",
        404,
        expect=UnsupportedEndpointError,
        check=_names("J (novicezk", "N (new-api"),
        provoke=post("/mj/submit/change", {"taskId": X, "action": "UPSCALE", "index": 1}),
    ),
    AnswerCase(
        "C-missing-parent-is-404-with-code-3-not-a-missing-route",
        "csharp",
        c("Controllers/SubmitController.cs:498-501"),
        "submit",
        "POST",
        "/mj/submit/action",
        404,
        jbody({"code": 3, "description": "关联任务不存在或已失效", "result": None}),
        "application/json",
        expect=mjasync.NotFoundError,
        provoke=post("/mj/submit/action", {"taskId": X, "customId": "MJ::JOB::upsample::1::x"}),
    ),
    AnswerCase(
        "C-cancel-by-an-admin-is-an-empty-200",
        "csharp",
        c("Controllers/TaskController.cs:86-125"),
        "cancel",
        "POST",
        f"/mj/task/{X}/cancel",
        200,
        check=lambda payload: payload is None or pytest.fail(repr(payload)),
        provoke=post(f"/mj/task/{X}/cancel"),
    ),
    AnswerCase(
        "C-cancel-by-anyone-else-is-400-text",
        "csharp",
        c("Controllers/TaskController.cs:55,89-92"),
        "cancel",
        "POST",
        f"/mj/task/{X}/cancel",
        400,
        "演示模式，禁止操作".encode(),
        "text/plain",
        expect=UnsupportedEndpointError,
        check=_admin_only,
        provoke=post(f"/mj/task/{X}/cancel"),
        sim={"admin_keys": ["someone-else"]},
    ),
    AnswerCase(
        "C-cancelled-task-is-FAILURE-with-reason-取消任务",
        "csharp",
        c("Controllers/TaskController.cs:105,110"),
        "fetch",
        "GET",
        f"/mj/task/{X}/fetch",
        200,
        _task(status="FAILURE", progress="", failReason="取消任务"),
        "application/json",
        check=_cancelled,
        provoke=_cancelled_task,
    ),
    AnswerCase(
        "C-per-user-concurrency-is-back-pressure",
        "csharp",
        c("Controllers/SubmitController.cs:1195-1231") + "; " + c("Models/Result.cs:71-74"),
        "submit",
        "POST",
        "/mj/submit/shorten",
        200,
        jbody({"success": False, "code": -1, "message": "并发数已达上限", "timestamp": 1}),
        "application/json",
        expect=QueueFullError,
        provoke=post("/mj/submit/shorten", {"prompt": "a very long prompt"}),
        sim={"user_core_size": 0},
    ),
    AnswerCase(
        "C-per-user-queue-on-imagine-is-code-4-back-pressure",
        "csharp",
        c("Controllers/SubmitController.cs:196-199,1212-1241"),
        "submit",
        "POST",
        "/mj/submit/imagine",
        200,
        jbody({"code": 4, "description": "队列数已达上限"}),
        "application/json",
        expect=QueueFullError,
        provoke=post("/mj/submit/imagine", {"prompt": "a cat"}),
        sim={"user_queue_size": 0},
    ),
    AnswerCase(
        "C-account-queue-full-is-code-9",
        "csharp",
        c("DiscordService.cs:1585-1589,1628-1632"),
        "submit",
        "POST",
        "/mj/submit/imagine",
        200,
        jbody({"code": 9, "description": "提交失败，队列已满，请稍后重试"}),
        "application/json",
        expect=QueueFullError,
        provoke=_queue_full,
        sim={"core_size": 1, "queue_size": 0},
    ),
    AnswerCase(
        "C-rate-limiter-block-is-an-empty-403",
        "csharp",
        c("RateLimitingMiddleware.cs:100-104,128-145"),
        "submit",
        "POST",
        "/mj/submit/imagine",
        403,
        expect=RateLimitError,
        provoke=post("/mj/submit/imagine", {"prompt": "a cat"}),
        sim=BLOCKED,
    ),
    AnswerCase(
        "C-rate-limiter-rule-is-an-empty-429",
        "csharp",
        c("RateLimitingMiddleware.cs:107-114"),
        "fetch",
        "GET",
        f"/mj/task/{X}/fetch",
        429,
        expect=RateLimitError,
        provoke=get(f"/mj/task/{X}/fetch"),
        sim=LIMITED,
    ),
    AnswerCase(
        "C-seed-of-an-unfinished-task-is-400-code-4",
        "csharp",
        c("Controllers/TaskController.cs:132-160"),
        "seed",
        "GET",
        f"/mj/task/{X}/image-seed",
        400,
        jbody({"code": 4, "description": "关联任务状态错误", "result": None}),
        "application/json",
        expect=InvalidRequestError,
        check=_not_ready,
        provoke=_seed_of_running,
    ),
    AnswerCase(
        "C-seed-of-an-unknown-task-is-404-code-3",
        "csharp",
        c("Controllers/TaskController.cs:159"),
        "seed",
        "GET",
        f"/mj/task/{X}/image-seed",
        404,
        jbody({"code": 3, "description": "关联任务不存在或已失效", "result": None}),
        "application/json",
        expect=NotFoundError,
        provoke=get(f"/mj/task/{X}/image-seed"),
    ),
    AnswerCase(
        "C-video-switched-off",
        "csharp",
        c("Controllers/SubmitController.cs:926-929") + "; " + c("Models/Setting.cs:209"),
        "submit",
        "POST",
        "/mj/submit/video",
        200,
        jbody({"code": 4, "description": "视频功能未启用"}),
        "application/json",
        expect=InvalidRequestError,
        provoke=post("/mj/submit/video", {"prompt": "a cat"}),
        sim={"disabled": ["video"]},
    ),
    AnswerCase(
        "C-video-extend-of-an-unknown-task-is-404-code-3",
        "csharp",
        c("Controllers/SubmitController.cs:999-1003"),
        "submit",
        "POST",
        "/mj/submit/video",
        404,
        jbody({"code": 3, "description": "关联任务不存在或已失效", "result": None}),
        "application/json",
        expect=NotFoundError,
        provoke=post("/mj/submit/video", {"prompt": "go", "action": "extend", "taskId": X}),
    ),
    AnswerCase(
        "C-video-swap-takes-a-form-not-json",
        "csharp",
        c("Controllers/InsightFaceController.cs:140-141") + " ([FromForm]: ASP.NET's 415)",
        "submit",
        "POST",
        "/mj/insight-face/video-swap",
        415,
        expect=InvalidRequestError,
        provoke=post("/mj/insight-face/video-swap", {"sourceUrl": "https://x.example/a.png"}),
    ),
    AnswerCase(
        "C-upload-result-is-a-list-of-urls",
        "csharp",
        c("Controllers/SubmitController.cs:213-273") + "; " + c("Models/SubmitResultVO.cs:51-52"),
        "upload",
        "POST",
        "/mj/submit/upload-discord-images",
        200,
        jbody({"code": 1, "description": "提交成功", "result": ["https://cdn.example/a.png"]}),
        "application/json",
        check=_uploaded,
        provoke=post("/mj/submit/upload-discord-images", {"base64Array": [PNG]}),
    ),
    AnswerCase(
        "C-video-task-has-videoUrls-with-thumbnails",
        "csharp",
        c("Models/TaskInfo.cs:572,578,786-806,1542-1564"),
        "fetch",
        "GET",
        f"/mj/task/{X}/fetch",
        200,
        _task(
            action="VIDEO",
            videoUrl="https://cdn.example/v0.mp4",
            videoUrls=[
                {"url": "https://cdn.example/v0.mp4", "thumbnail": "https://cdn.example/v0.webp"}
            ],
            imageUrls=[
                {"url": "https://cdn.example/v0.mp4", "thumbnail": "https://cdn.example/v0.webp"}
            ],
        ),
        "application/json",
        check=_video_refs(thumbnails=True),
        provoke=_video_task,
    ),
    AnswerCase(
        "C-action-names-parse",
        "csharp",
        c("Models/Enums.cs:243-360"),
        "fetch",
        "GET",
        f"/mj/task/{X}/fetch",
        200,
        _task(action="UPSCALE_HD"),
        "application/json",
        check=_action("UPSCALE_HD"),
    ),
    AnswerCase(
        "C-edit-is-EDIT",
        "csharp",
        c("Controllers/SubmitController.cs:781-845"),
        "fetch",
        "GET",
        f"/mj/task/{X}/fetch",
        200,
        _task(action="EDIT"),
        "application/json",
        check=_action("EDIT"),
        provoke=_edits_task,
    ),
    AnswerCase(
        "C-unexpected-exception-is-500-code-minus-1",
        "csharp",
        c("Filters/CustomLogicExceptionFilterAttribute.cs:39-59"),
        "submit",
        "POST",
        "/mj/submit/blend",
        500,
        jbody({"success": False, "code": -1, "message": "操作失败"}),
        "application/json",
        expect=ServerError,
    ),
    AnswerCase(
        "C-without-redis-refuses-every-submit",
        "csharp",
        c("Controllers/SubmitController.cs:1033-1036"),
        "submit",
        "POST",
        "/mj/submit/describe",
        200,
        jbody({"success": False, "code": -1, "message": "服务暂不可用，请联系管理员"}),
        "application/json",
        expect=ServerError,
        check=lambda error: not maybe_taken(error) or pytest.fail("refused, never taken"),
    ),
    # -- N ----------------------------------------------------------------------------------
    AnswerCase(
        "N-fetch-unknown-is-400-code-4",
        "relay",
        n("relay/mjproxy_handler.go:318-331") + "; " + n("controller/relay.go:425-434"),
        "fetch",
        "GET",
        f"/mj/task/{X}/fetch",
        400,
        jbody({"description": "task_no_found ", "type": "upstream_error", "code": 4}),
        "application/json",
        expect=NotFoundError,
        provoke=get(f"/mj/task/{X}/fetch"),
    ),
    AnswerCase(
        "N-wrong-key-is-401-new-api-error",
        "relay",
        n("middleware/auth.go:276-407") + "; " + n("middleware/utils.go:12-27"),
        "fetch",
        "GET",
        f"/mj/task/{X}/fetch",
        401,
        jbody({"error": {"message": "无效的令牌", "type": "new_api_error", "code": ""}}),
        "application/json",
        expect=AuthenticationError,
        provoke=get(f"/mj/task/{X}/fetch", auth="none"),
    ),
    AnswerCase(
        "N-has-no-cancel-and-serves-its-web-ui",
        "relay",
        n("router/web-router.go:16-30"),
        "cancel",
        "POST",
        f"/mj/task/{X}/cancel",
        200,
        b"<!doctype html><html><head><title>New API</title></head></html>",
        "text/html",
        expect=UnsupportedEndpointError,
        check=_names("HTML", "C (trueai-org"),
        provoke=post(f"/mj/task/{X}/cancel"),
    ),
    AnswerCase(
        "N-has-no-retexture",
        "relay",
        n("router/relay-router.go:215-221") + "; " + n("router/web-router.go:16-30"),
        "submit",
        "POST",
        "/mj/submit/retexture",
        200,
        b"<html></html>",
        "text/html",
        expect=UnsupportedEndpointError,
        check=_names("C (trueai-org"),
        provoke=post("/mj/submit/retexture", {"prompt": "wood", "image": PNG}),
    ),
    AnswerCase(
        "N-before-2025-06-30-has-no-video",
        "relay",
        "Calcium-Ion/new-api@ef8ae4db8052c44b1382d3f3f7cd20a177338728 router/relay-router.go",
        "submit",
        "POST",
        "/mj/submit/video",
        200,
        b"<html></html>",
        "text/html",
        expect=UnsupportedEndpointError,
        check=_names("N (new-api", "2025-06-30"),
        provoke=post("/mj/submit/video", {"prompt": "a cat"}),
        sim={"relay_legacy": True},
    ),
    AnswerCase(
        "N-code-5-is-a-server-error-retried-on-reads",
        "relay",
        n("controller/relay.go:424-434") + "; " + n("service/midjourney.go:165-259"),
        "fetch",
        "GET",
        f"/mj/task/{X}/fetch",
        400,
        jbody({"description": "do_request_failed ", "type": "upstream_error", "code": 5}),
        "application/json",
        expect=ServerError,
        check=_retried_on_reads_only,
        provoke=get(f"/mj/task/{X}/fetch"),
        sim=NO_UPSTREAM,
    ),
    AnswerCase(
        "N-change-refuses-index-0-even-for-reroll",
        "relay",
        n("relay/mjproxy_handler.go:421-428"),
        "submit",
        "POST",
        "/mj/submit/change",
        400,
        jbody({"description": "index_is_required", "type": "upstream_error", "code": 4}),
        "application/json",
        expect=InvalidRequestError,
        provoke=_change_index_0,
    ),
    AnswerCase(
        "N-no-channel-for-the-model-is-503",
        "relay",
        n("middleware/distributor.go:30-165"),
        "submit",
        "POST",
        "/mj/submit/video",
        503,
        jbody(
            {"error": {"message": "no channel", "type": "new_api_error", "code": "model_not_found"}}
        ),
        "application/json",
        expect=UnsupportedEndpointError,
        check=_names("model_not_found"),
        provoke=post("/mj/submit/video", {"prompt": "a cat"}),
        sim={"disabled": ["video"]},
    ),
    AnswerCase(
        "N-face-swap-needs-both-base64-fields",
        "relay",
        n("dto/midjourney.go:10-13") + "; " + n("relay/mjproxy_handler.go:191-193"),
        "submit",
        "POST",
        "/mj/insight-face/swap",
        400,
        jbody(
            {
                "description": "sour_base64_and_target_base64_is_required",
                "type": "upstream_error",
                "code": 4,
            }
        ),
        "application/json",
        expect=InvalidRequestError,
        provoke=post(
            "/mj/insight-face/swap",
            {"sourceUrl": "https://x.example/a.png", "targetUrl": "https://x.example/b.png"},
        ),
    ),
    AnswerCase(
        "N-action-refuses-describe-picks",
        "relay",
        n("service/midjourney.go:77-134") + "; " + n("middleware/distributor.go"),
        "submit",
        "POST",
        "/mj/submit/action",
        400,
        jbody({"error": {"message": "unknown_action", "type": "new_api_error", "code": ""}}),
        "application/json",
        expect=InvalidRequestError,
        provoke=_picreader_on_relay,
    ),
    AnswerCase(
        "N-keeps-code-21-for-custom-zoom",
        "relay",
        n("relay/mjproxy_handler.go:582-637"),
        "submit",
        "POST",
        "/mj/submit/action",
        200,
        jbody({"code": 21, "description": "窗口等待", "result": X, "properties": {}}),
        "application/json",
        check=lambda payload: payload["code"] == 21 or pytest.fail(repr(payload)),
        provoke=_custom_zoom_on_relay,
    ),
    AnswerCase(
        "N-video-task-has-videoUrls-without-thumbnails",
        "relay",
        n("dto/midjourney.go:47-72"),
        "fetch",
        "GET",
        f"/mj/task/{X}/fetch",
        200,
        _task(
            action="VIDEO",
            videoUrl="https://cdn.example/v0.mp4",
            videoUrls=[{"url": "https://cdn.example/v0.mp4"}],
        ),
        "application/json",
        check=_video_refs(thumbnails=False),
        provoke=_video_task,
    ),
    AnswerCase(
        "N-edits-are-EDITS",
        "relay",
        n("constant/midjourney.go:8-27"),
        "fetch",
        "GET",
        f"/mj/task/{X}/fetch",
        200,
        _task(action="EDITS"),
        "application/json",
        check=_action("EDITS"),
        provoke=_edits_task,
    ),
)


def _documented(case: AnswerCase) -> Response:
    headers: CIMultiDict[str] = CIMultiDict()
    if case.content_type:
        headers["Content-Type"] = case.content_type
    return Response(
        status=case.status,
        headers=CIMultiDictProxy(headers),
        body=case.body,
        method=case.method,
        path=case.path,
        mode_prefixed=False,
    )


def _outcome(resp: Response, case: AnswerCase) -> Any:
    """Interpret ``resp``; check it against the case; return the payload or the error."""
    if case.expect is None:
        payload = interpret(resp, case.kind)
        if case.kind == "fetch":
            parse_task(payload)
        result: Any = payload
    else:
        with pytest.raises(mjasync.MjError) as info:
            interpret(resp, case.kind)
        assert type(info.value) is case.expect, f"{type(info.value).__name__}: {info.value}"
        result = info.value
    if case.check is not None:
        case.check(result)
    return result


def _shape(resp: Response) -> str:
    if not resp.body.strip():
        return "empty"
    if resp.content_type == "text/html":
        return "html"
    try:
        json.loads(resp.body)
    except ValueError:
        return "text"
    return "json"


def test_every_case_cites_its_source() -> None:
    repos = ("novicezk/midjourney-proxy@", "trueai-org/midjourney-proxy@", "new-api@")
    for case in CASES:
        assert any(repo in case.source for repo in repos), case.id
    assert len({case.id for case in CASES}) == len(CASES)
    for family in ("java", "csharp", "relay"):
        assert any(case.provoke for case in CASES if case.family == family)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_pure(case: AnswerCase) -> None:
    _outcome(_documented(case), case)


SIMULATED = [case for case in CASES if case.provoke is not None]


@pytest.mark.parametrize("case", SIMULATED, ids=[case.id for case in SIMULATED])
async def test_simulator(case: AnswerCase) -> None:
    assert case.provoke is not None
    async with started(case.family, **case.sim) as sim:
        resp = await case.provoke(sim)
    documented = _documented(case)
    assert resp.status == case.status, resp.body[:200]
    assert _shape(resp) == _shape(documented), resp.body[:200]
    if _shape(documented) == "json":
        mine, theirs = json.loads(resp.body), json.loads(case.body)
        assert set(theirs) <= set(mine), (theirs, mine)
        for key in ("code", "success", "type"):
            if key in theirs:
                assert mine[key] == theirs[key], (key, mine)
        if isinstance(theirs.get("error"), dict):
            assert mine["error"]["type"] == theirs["error"]["type"]
            assert mine["error"].get("code") == theirs["error"].get("code")
    _outcome(resp, case)
