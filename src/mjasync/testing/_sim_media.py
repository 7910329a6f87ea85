"""The newer submit endpoints: video, edits, retexture, upload and the two face swaps.

Rules and texts follow the servers' source: C is trueai-org/midjourney-proxy ed32197
(``Controllers/SubmitController.cs``, ``Controllers/InsightFaceController.cs``,
``Midjourney.Services/TaskService.cs``, ``FaceSwapService.cs``), N is QuantumNous/new-api
65b1654 (``relay/mjproxy_handler.go``, ``middleware/distributor.go``). On the relay accent
new-api checks little itself and passes its upstream's refusals through (``upstream=True``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ._sim_config import SimOptions
from ._sim_render import Refusal, Renderer
from ._sim_state import SUCCESS, Engine, SimTask
from ._sim_stats import Counters

__all__ = ["MediaEndpoints"]

_DATA_URL = re.compile(r"^data:[\w.+-]+/[\w.+-]+;base64,(?P<data>.+)$", re.DOTALL)
_BASE64 = re.compile(r"^[A-Za-z0-9+/\s]+={0,2}$")
_SMALL_BATCHES = (1, 2)  # C adds "--bs 1"/"--bs 2"; anything else means the default 4
_WHITELIST_ONLY = "对不起，视频换脸功能仅限白名单用户使用，请联系管理员"


def _image_value(value: object) -> bool:
    """C's image forms (``Dto/DataUrl.cs:83-125``): an http URL, a data URL, bare base64."""
    if not isinstance(value, str) or not value.strip():
        return False
    if value.startswith(("http://", "https://")):
        return True
    match = _DATA_URL.match(value)
    payload = match.group("data") if match else value
    if match is None and not _BASE64.match(payload[:256]):
        return False
    try:
        return bool(base64.b64decode(payload, validate=False))
    except (binascii.Error, ValueError):
        return False


def _is_mp4(data: object) -> bool:
    return isinstance(data, bytes) and len(data) >= 12 and data[4:8] == b"ftyp"


def _countable(body: Mapping[str, Any]) -> dict[str, Any]:
    # Counters compare bodies as JSON: an uploaded file counts by its digest.
    return {
        key: hashlib.blake2b(value, digest_size=16).hexdigest()
        if isinstance(value, bytes)
        else value
        for key, value in body.items()
    }


def _video_prompt(prompt: str, body: Mapping[str, Any]) -> str:
    """The prompt C builds (``TaskService.cs:699-725``): loop wins over the end frame."""
    parts = [prompt.strip()]
    if body.get("loop") is True:
        parts.append("--end loop")
    elif isinstance(body.get("endImage"), str) and body["endImage"]:
        parts.append("--end <end image>")
    motion = body.get("motion") or "low"
    if "--motion" not in prompt and isinstance(motion, str):
        parts.append(f"--motion {motion}")
    if body.get("batchSize") in _SMALL_BATCHES:
        parts.append(f"--bs {body['batchSize']}")
    return " ".join(parts)


class MediaEndpoints:
    """The newer submit endpoints (a mixin of the simulator's ``Submitter``)."""

    options: SimOptions
    engine: Engine
    renderer: Renderer
    counters: Counters

    if TYPE_CHECKING:

        def _common(self, body: Mapping[str, Any]) -> tuple[str | None, str | None]: ...

        def _check_prompt(self, prompt: str) -> None: ...

        def _admit(self, task: SimTask, endpoint: str, body: Mapping[str, Any]) -> web.Response: ...

    # -- shared --------------------------------------------------------------------------

    def _off(self, feature: str, c_text: str, model: str) -> None:
        """Refuse a feature the operator switched off (C) or sells no channel for (N)."""
        if feature not in self.options.disabled:
            return
        if self.options.accent == "relay":
            raise Refusal(
                "disabled",
                relay_description=f"当前分组 default 下对于模型 {model} 无可用渠道",
                relay_gate=503,
            )
        raise Refusal("disabled", c_text)

    @staticmethod
    def _upstream(reason: str, text: str, **extra: Any) -> Refusal:
        """A refusal of C's, passed through verbatim by the relay."""
        return Refusal(reason, text, upstream=True, **extra)

    def _relay_parent(self, task_id: str) -> SimTask:
        """new-api's own check of a parent task: this user's, and finished."""
        parent = self.engine.tasks.get(task_id)
        if parent is None:
            raise Refusal("not_found", relay_description="task_not_found")
        if parent.status != SUCCESS:
            raise Refusal("invalid", relay_description="task_status_not_success")
        return parent

    # -- video ---------------------------------------------------------------------------

    def _video(self, mode: str, body: Mapping[str, Any]) -> web.Response:
        relay = self.options.accent == "relay"
        self._off("video", "视频功能未启用", "mj_video")
        task_id, action = body.get("taskId"), body.get("action")
        if relay and task_id not in (None, ""):
            self._relay_parent(str(task_id))  # relay/mjproxy_handler.go:447-477
        state, hook = self._common(body)
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise self._upstream("invalid", "Prompt 不能为空")  # SubmitController.cs:931-934
        parent = None
        if task_id not in (None, ""):
            if action != "extend":
                raise self._upstream("invalid", "任务类型错误")
            parent = self.engine.tasks.get(str(task_id))
            if parent is None:
                raise self._upstream("not_found", "关联任务不存在或已失效", http_status=404)
            if parent.status != SUCCESS:
                raise self._upstream("invalid", "关联任务状态错误")
        elif action == "extend":
            raise self._upstream("not_found", "目标任务不存在", code=3)  # TaskService.cs:439-444
        for key in ("image", "endImage"):
            if body.get(key) not in (None, "") and not _image_value(body[key]):
                raise self._upstream("invalid", f"{key}格式错误")
        self._check_prompt(prompt)
        batch = body.get("batchSize")
        task = self.engine.new_task(
            mode=mode,
            action="VIDEO",
            prompt=prompt.strip(),
            description="/video extend" if parent is not None else "/video",
            result="video",
            state=state,
            notify_hook=hook,
            final_image="{id}-v1",
            final_prompt=_video_prompt(prompt, body),
        )
        task.video_count = batch if batch in _SMALL_BATCHES else 4
        task.extra["videoType"] = body.get("videoType") or "vid_1.1_i2v_480"
        if parent is not None:
            task.extra.update(parentId=parent.id, index=body.get("index"))
        return self._admit(task, "video", body)

    # -- edits and retexture ---------------------------------------------------------------

    def _image_job(self, mode: str, body: Mapping[str, Any], action: str, endpoint: str) -> Any:
        # Uploads off refuses both, even for URL images (SubmitController.cs:790-794,860-864).
        self._off("upload", "禁止上传", "mj_edits")
        state, hook = self._common(body)
        prompt, image = body.get("prompt"), body.get("image")
        if not isinstance(prompt, str) or not prompt.strip() or not image:
            raise self._upstream("invalid", "image或prompt不能为空")
        if not _image_value(image):
            raise self._upstream("invalid", "image格式错误")
        self._check_prompt(prompt)
        task = self.engine.new_task(
            mode=mode,
            action=action,
            prompt=prompt.strip(),
            description=f"/{endpoint} {prompt.strip()}",
            result="grid",
            state=state,
            notify_hook=hook,
        )
        return self._admit(task, endpoint, body)

    def _edits(self, mode: str, body: Mapping[str, Any]) -> web.Response:
        response: web.Response = self._image_job(mode, body, "EDIT", "edits")
        return response

    def _edit(self, mode: str, body: Mapping[str, Any]) -> web.Response:
        return self._edits(mode, body)  # C's alias (SubmitController.cs:781-845)

    def _retexture(self, mode: str, body: Mapping[str, Any]) -> web.Response:
        response: web.Response = self._image_job(mode, body, "RETEXTURE", "retexture")
        return response

    # -- upload ----------------------------------------------------------------------------

    def _upload_discord_images(self, mode: str, body: Mapping[str, Any]) -> web.Response:
        del mode  # uploads go to a channel, not to an account's queue
        self._off("upload", "禁止上传", "mj_upload")
        images = body.get("base64Array")
        if not isinstance(images, list) or not images:
            raise self._upstream("invalid", "base64 参数错误")
        if not all(_image_value(image) for image in images):
            raise self._upstream("invalid", "base64格式错误")
        urls = []
        for image in images:
            digest = hashlib.blake2b(str(image).encode(), digest_size=12).hexdigest()
            urls.append(f"{self.renderer.base_url}/_sim/img/{digest}-single.png")
        return self.renderer.uploaded(urls)

    # -- face swaps ------------------------------------------------------------------------

    def _swap(self, mode: str, body: Mapping[str, Any]) -> web.Response:
        relay = self.options.accent == "relay"
        if relay:
            self._off("face_swap", "", "swap_face")
            # new-api's DTO has only the two base64 fields, both required
            # (dto/midjourney.go:10-13, relay/mjproxy_handler.go:191-193).
            if not body.get("sourceBase64") or not body.get("targetBase64"):
                raise Refusal(
                    "invalid", relay_description="sour_base64_and_target_base64_is_required"
                )
        elif "face_swap" in self.options.disabled:
            raise Refusal("disabled", "服务不支持")
        state, hook = self._common(body)
        source = body.get("sourceBase64") or body.get("sourceUrl")
        target = body.get("targetBase64") or body.get("targetUrl")
        if not source:
            raise self._upstream("invalid", "人脸图片不能为空")
        if not target:
            raise self._upstream("invalid", "目标图片不能为空")
        if source == target:
            raise self._upstream("invalid", "人脸图片和目标图片不能相同")
        for key in ("sourceBase64", "targetBase64"):
            value = body.get(key)
            # A URL in a base64 field has no bytes (FaceSwapService.cs:86-96).
            if value and (not _image_value(value) or str(value).startswith("http")):
                raise self._upstream("invalid", "人脸图片格式错误")
        task = self.engine.new_task(
            mode=mode,
            action="SWAP_FACE",
            prompt="",
            description="/swap",
            result="image",
            state=state,
            notify_hook=hook,
            bot_type="INSIGHT_FACE",
            final_image="{id}-single",
        )
        return self._admit(task, "swap_face", body)

    def _video_swap(self, mode: str, body: Mapping[str, Any]) -> web.Response:
        if "video_swap" in self.options.disabled:
            raise Refusal("disabled", _WHITELIST_ONLY)  # InsightFaceController.cs:143-147
        state, hook = self._common(body)
        source = body.get("sourceBase64") or body.get("sourceUrl")
        target_file, target_url = body.get("targetFile"), body.get("targetUrl")
        if not source:
            raise Refusal("invalid", "人脸图片不能为空")
        if not target_file and not target_url:
            raise Refusal("invalid", "目标视频不能为空")
        if target_file and not _is_mp4(target_file):
            raise Refusal("invalid", "仅支持 mp4 格式")  # VideoFaceSwapService.cs:138-146
        task = self.engine.new_task(
            mode=mode,
            action="SWAP_VIDEO_FACE",
            prompt="",
            description="/video-swap",
            result="video",
            state=state,
            notify_hook=hook,
            bot_type="INSIGHT_FACE",
            final_image="{id}-v1",
        )
        task.video_count = 1
        return self._admit(task, "swap_video_face", _countable(body))
