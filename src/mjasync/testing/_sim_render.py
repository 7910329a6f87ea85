"""How each server family (accent) writes tasks, submit answers and errors on the wire.

J is the Java proxy, C the C# fork, N (``relay``) a new-api style gateway in front of them.
The differences reproduced here are the ones a client has to survive: field sets, zero values,
codes, HTTP statuses and error bodies.
"""

from __future__ import annotations

import json
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ._sim_images import GRID_SIZE
from ._sim_state import FAILURE, SUCCESS, SimTask

__all__ = ["Refusal", "Renderer", "json_response"]

_SUCCESS_TEXT = {"java": "成功", "csharp": "Submit success", "relay": "Submit success"}
_QUEUE_FULL = {
    "java": (23, "队列已满，请稍后尝试"),
    "csharp": (9, "提交失败，队列已满，请稍后重试"),
}
_RELAY_OVERLOADED = "当前分组上游负载已饱和，请稍后再试"


def json_response(payload: Any, status: int = 200) -> web.Response:
    """Compact UTF-8 JSON, the way the servers send it (Chinese text unescaped)."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return web.Response(body=body, status=status, content_type="application/json", charset="utf-8")


@dataclass(slots=True)
class Refusal(Exception):
    """A submit the server turns down. Rendered per accent by :meth:`Renderer.refusal`.

    Attributes:
        reason: ``invalid``, ``not_found``, ``banned``, ``queue_full`` or ``disabled`` (the
            stats key).
        description: the J/C ``description`` text.
        relay_description: the relay's short error key (``prompt_is_required``, ...).
        properties: extra ``properties`` (``bannedWord``, ``promptEn`` for code 24).
        code: the J/C body code when it is not the reason's usual one (3 or 4).
        http_status: C's HTTP status (404 for a missing parent task; 200 otherwise).
        fail_shape: C answers with its generic ``{success: false, code: -1, message}``.
        upstream: on the relay, the refusal comes from the upstream (C) and is passed
            through verbatim, status and body; otherwise it is new-api's own.
        relay_gate: on the relay, new-api's gatekeeper refuses before its handler, in the
            OpenAI shape ``{"error": {...}}`` with this HTTP status (503 for a model no
            channel sells, 400 for an unknown action).
    """

    reason: str
    description: str = ""
    relay_description: str = ""
    properties: dict[str, Any] = field(default_factory=dict)
    code: int | None = None
    http_status: int = 200
    fail_shape: bool = False
    upstream: bool = False
    relay_gate: int | None = None


def _instance_id(mode: str) -> str:
    # A stable Discord-style snowflake per account, so properties look like the fixtures.
    return str(1118138338562560102 + zlib.crc32(mode.encode()) % 1_000_000_000)


class Renderer:
    """Turns simulator state into accent-specific JSON and HTTP responses."""

    def __init__(
        self,
        accent: str,
        *,
        numeric_ids: bool,
        relay_blank_status: float,
        relay_rand: bool = False,
    ) -> None:
        self.accent = accent
        self.numeric_ids = numeric_ids
        self.relay_blank_status = relay_blank_status
        self.relay_rand = relay_rand  # new-api's ?rand= on unfinished tasks' imageUrl
        self.base_url = ""

    # -- tasks -------------------------------------------------------------------------------

    def image_url(self, task: SimTask) -> str | None:
        """Where the task's current image is served, or ``None`` before it has one."""
        if task.image_key is None:
            return None
        if self.accent == "relay":
            url = f"{self.base_url}/mj/image/{task.id}"
            if self.relay_rand and task.status != "SUCCESS":
                url += f"?rand={time.time_ns()}"  # a new query on every answer
            return url
        return f"{self.base_url}/_sim/img/{task.image_key}.png"

    def video_refs(self, task: SimTask) -> list[dict[str, str]]:
        """A finished video task's ``[{url, thumbnail}]`` (C's shape)."""
        if task.result != "video" or task.status != SUCCESS:
            return []
        return [
            {
                "url": f"{self.base_url}/_sim/video/{task.id}-v{n}.mp4",
                "thumbnail": f"{self.base_url}/_sim/img/{task.id}-v{n}.png",
            }
            for n in range(1, task.video_count + 1)
        ]

    def task(self, task: SimTask, now: float) -> dict[str, Any]:
        """The task as ``fetch``, ``list-by-condition`` and webhooks show it."""
        if self.accent == "java":
            return self._java_task(task)
        if self.accent == "csharp":
            return self._csharp_task(task)
        return self._relay_task(task, now)

    def _progress(self, task: SimTask) -> str | None:
        if task.progress is None or task.status == FAILURE:
            return None
        return f"{task.progress}%"

    def _java_task(self, task: SimTask) -> dict[str, Any]:
        # J v2.6 shows no buttons (actions go through /submit/change) and few properties.
        return {
            "id": task.id,
            "action": task.action,
            "status": task.status,
            "prompt": task.prompt,
            "promptEn": task.prompt,
            "description": task.description,
            "state": task.state,
            "submitTime": task.submit_ms,
            "startTime": task.start_ms,
            "finishTime": task.finish_ms,
            "imageUrl": self.image_url(task),
            "progress": self._progress(task),
            "failReason": task.fail_reason,
            "properties": {"finalPrompt": task.final_prompt},
        }

    def _csharp_task(self, task: SimTask) -> dict[str, Any]:
        finished_grid = task.status == "SUCCESS" and task.result == "grid"
        videos = self.video_refs(task)
        image_urls = (
            [
                {
                    "url": f"{self.base_url}/_sim/img/{task.id}-u{n}.png",
                    "thumbnail": f"{self.base_url}/_sim/img/{task.id}-u{n}.png",
                }
                for n in range(1, 5)
            ]
            if finished_grid
            else videos  # C mirrors the videos in imageUrls (Models/TaskInfo.cs:786-806)
        )
        started = task.start_ms is not None
        message_id = str(int(task.id) * 7 % 10**19) if started else None
        return {
            "id": task.id,
            "properties": {
                "discordChannelId": "1050703772185268251",
                "botType": task.bot_type,
                "notifyHook": task.notify_hook,
                "discordInstanceId": _instance_id(task.mode),
                "flags": 0,
                "messageId": message_id,
                "messageHash": task.message_hash if started else None,
                "nonce": str(int(task.id) * 3 % 10**19),
                "finalPrompt": task.final_prompt,
                "progressMessageId": message_id,
                "messageContent": f"**{task.final_prompt}** - <@1050702627576483930> ({task.mode})",
            },
            "action": task.action,
            "status": task.status,
            "prompt": task.prompt,
            "promptEn": task.prompt,
            "description": task.description,
            "submitTime": task.submit_ms,
            "startTime": task.start_ms,
            "finishTime": task.finish_ms,
            "progress": self._progress(task),
            "imageUrl": self.image_url(task),
            "imageUrls": image_urls,
            "imageHeight": GRID_SIZE if task.status == "SUCCESS" else None,
            "imageWidth": GRID_SIZE if task.status == "SUCCESS" else None,
            "failReason": task.fail_reason,
            "state": task.state,
            "buttons": [button.to_json() for button in task.buttons],
            "botType": task.bot_type,
            "mode": task.mode.upper(),
            "seed": None,
            "videoUrl": videos[0]["url"] if videos else None,
            "videoUrls": videos or None,
            "videoType": task.extra.get("videoType"),
        }

    def _relay_task(self, task: SimTask, now: float) -> dict[str, Any]:
        # Go structs: "" instead of null, 0 for unset times, "100%" once a job failed.
        videos = self.video_refs(task)
        blank = now - task.created_at < self.relay_blank_status
        if blank:
            status, progress = "", ""
        else:
            status = task.status
            progress = "100%" if task.status == FAILURE else (self._progress(task) or "")
        return {
            "id": task.id,
            # new-api labels tasks itself: its edits are EDITS where C says EDIT.
            "action": "EDITS" if task.action == "EDIT" else task.action,
            "customId": task.extra.get("customId", ""),
            "botType": task.bot_type,
            "prompt": task.prompt,
            "promptEn": task.prompt,
            "description": task.description,
            "state": task.state or "",
            "submitTime": task.submit_ms,
            "startTime": task.start_ms or 0,
            "finishTime": task.finish_ms or 0,
            "imageUrl": self.image_url(task) or "",
            "videoUrl": videos[0]["url"] if videos else "",
            # new-api's DTO keeps only the url of each video (dto/midjourney.go:60-61,70-72).
            "videoUrls": [{"url": video["url"]} for video in videos] or None,
            "status": status,
            "progress": progress,
            "failReason": task.fail_reason or "",
            "buttons": [button.to_json() for button in task.buttons],
            "maskBase64": "",
            "properties": {"finalPrompt": task.final_prompt, "finalZhPrompt": ""},
        }

    # -- submit answers ----------------------------------------------------------------------

    def _result(self, task_id: str) -> str | int:
        return int(task_id) if self.numeric_ids else task_id

    def accepted(self, task: SimTask, *, ahead: int | None) -> web.Response:
        """Code 1 (started), 22 (queued, ``ahead`` waiting in front), 21 for MODAL."""
        properties: dict[str, Any] = {"discordInstanceId": _instance_id(task.mode)}
        if task.status == "MODAL":
            code, text = 21, "窗口等待"
            properties.update(finalPrompt=task.final_prompt, remix=True)
        elif task.status == "NOT_START" and ahead is not None:
            code, text = 22, f"排队中，前面还有{ahead}个任务"
            properties["numberOfQueues"] = ahead
        else:
            code, text = 1, _SUCCESS_TEXT[self.accent]
        if self.accent == "relay" and (
            code == 22 or (code == 21 and task.action not in ("INPAINT", "CUSTOM_ZOOM"))
        ):
            code = 1  # what new-api does to upstream answers (relay/mjproxy_handler.go:582-637)
        return json_response(
            {
                "code": code,
                "description": text,
                "result": self._result(task.id),
                "properties": properties,
            }
        )

    def seed(self, task: SimTask) -> web.Response:
        """The image-seed answer: submit-style, ``result`` = the seed."""
        return json_response(
            {"code": 1, "description": _SUCCESS_TEXT[self.accent], "result": task.seed}
        )

    @staticmethod
    def cancelled() -> web.Response:
        """C's answer to an admin's cancel, whatever the id: ``Ok()``, an empty 200."""
        return web.Response(status=200)

    @staticmethod
    def cancel_forbidden() -> web.Response:
        """C's answer to a cancel by anyone but an admin user: 400 plain text."""
        return web.Response(status=400, text="演示模式，禁止操作", content_type="text/plain")

    @staticmethod
    def c_fail(message: str, status: int = 200) -> web.Response:
        """C's generic failure shape (``Result.Fail``, code -1)."""
        return json_response(
            {
                "success": False,
                "code": -1,
                "message": message,
                "data": None,
                "timestamp": int(datetime.now(UTC).timestamp() * 1000),
            },
            status,
        )

    def uploaded(self, urls: list[str]) -> web.Response:
        """The upload answer: code 1 and ``result`` = the list of URLs."""
        return json_response({"code": 1, "description": "提交成功", "result": urls})

    def home(self, version: str | None) -> web.Response:
        """C's anonymous ``/mj/home`` (``Controllers/HomeController.cs``)."""
        return json_response(
            {
                "success": True,
                "code": 0,
                "message": "",
                "data": {"version": version, "isGuest": False, "isDemoMode": False},
            }
        )

    @staticmethod
    def status_page(version: str | None) -> web.Response:
        """new-api's public ``/api/status`` (``controller/misc.go``)."""
        return json_response(
            {
                "success": True,
                "message": "",
                "data": {
                    "version": version,
                    "system_name": "New API",
                    "mj_notify_enabled": False,
                },
            }
        )

    @staticmethod
    def web_ui() -> web.Response:
        """new-api's web UI, served for every path it has no route for."""
        return web.Response(
            status=200,
            text="<!doctype html><html><head><title>New API</title></head>"
            '<body><div id="root"></div></body></html>',
            content_type="text/html",
        )

    @staticmethod
    def relay_gate(message: str, status: int, code: str = "") -> web.Response:
        """new-api's gatekeeper errors, OpenAI-style (``middleware/utils.go``)."""
        return json_response(
            {"error": {"message": message, "type": "new_api_error", "code": code}}, status
        )

    def refusal(self, refusal: Refusal) -> web.Response:
        """A refused submit: codes 3/4/9/23/24 on J/C, relay error JSON and statuses on N."""
        if refusal.reason == "banned":
            return json_response(
                {"code": 24, "description": "可能包含敏感词", "properties": refusal.properties}
            )
        accent = self.accent
        if accent == "relay":
            if refusal.relay_gate is not None:
                gate_code = "model_not_found" if refusal.relay_gate == 503 else ""
                return self.relay_gate(refusal.relay_description, refusal.relay_gate, gate_code)
            if not refusal.upstream:
                if refusal.reason == "queue_full":
                    return self.relay_error(_RELAY_OVERLOADED, code=30, status=429)
                return self.relay_error(refusal.relay_description or refusal.description)
            accent = "csharp"  # passed through from the upstream, status and body
        if refusal.reason == "queue_full":
            code, text = _QUEUE_FULL[accent]
            return json_response({"code": code, "description": text, "properties": {}})
        status = refusal.http_status if accent == "csharp" else 200
        if refusal.fail_shape and accent == "csharp":
            return self.c_fail(refusal.description, status)
        code = refusal.code or (3 if refusal.reason == "not_found" else 4)
        return json_response(
            {
                "code": code,
                "description": refusal.description,
                "result": None,
                "properties": refusal.properties,
            },
            status,
        )

    # -- errors ------------------------------------------------------------------------------

    @staticmethod
    def relay_error(description: str, *, code: int = 4, status: int = 400) -> web.Response:
        """new-api's own error body: ``{description, type: upstream_error, code}``."""
        return json_response(
            {"description": description, "type": "upstream_error", "code": code}, status
        )

    def task_not_found(self) -> web.Response:
        """Fetching an id the server does not know.

        J's controller returns null: HTTP 200, empty body; C's a null ``ActionResult``, which
        ASP.NET sends as 204; new-api its own code 4.
        """
        if self.accent == "java":
            return web.Response(status=200)
        if self.accent == "csharp":
            return web.Response(status=204)
        return self.relay_error("task_no_found ")

    def parent_not_found(self) -> web.Response:
        """C's image-seed (and action, modal, video extend) of an unknown id: 404 + code 3."""
        return json_response(
            {"code": 3, "description": "关联任务不存在或已失效", "result": None, "properties": {}},
            404,
        )

    def unauthorized(self) -> web.Response:
        """A missing or wrong key."""
        if self.accent == "java":
            return web.Response(status=401)
        if self.accent == "csharp":
            # SimpleAuthMiddleware writes the text without setting a Content-Type; aiohttp
            # then says application/octet-stream, which RFC 9110 makes the same thing.
            return web.Response(status=401, body=b"Authorization header missing.")
        return json_response(
            {
                "error": {
                    "message": "无效的令牌 (invalid token)",
                    "type": "new_api_error",
                    "code": "",
                }
            },
            401,
        )

    def route_missing(self, method: str, path: str, status: int = 404) -> web.Response:
        """An unknown route (or, with ``status=405``, a known path with the wrong method)."""
        if self.accent == "java":
            error = "Not Found" if status == 404 else "Method Not Allowed"
            return json_response(
                {
                    "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "status": status,
                    "error": error,
                    "path": path,
                },
                status,
            )
        if self.accent == "csharp":
            return web.Response(status=status)
        if path.startswith(("/v1", "/api", "/assets")):
            return json_response(
                {
                    "error": {
                        "message": f"Invalid URL ({method} {path})",
                        "type": "invalid_request_error",
                        "param": "",
                        "code": "",
                    }
                },
                404,
            )
        # Everything else is the web UI (QuantumNous/new-api router/web-router.go:16-30).
        return self.web_ui()

    def bad_body(self, path: str) -> web.Response:
        """A body that is not a JSON object."""
        if self.accent == "java":
            return json_response(
                {
                    "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "status": 400,
                    "error": "Bad Request",
                    "path": path,
                },
                400,
            )
        if self.accent == "csharp":
            return json_response(
                {
                    "type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
                    "title": "One or more validation errors occurred.",
                    "status": 400,
                    "errors": {"$": ["The JSON value could not be converted."]},
                },
                400,
            )
        return self.relay_error("bind_request_body_failed")
