"""The submit endpoints: validate a body, create the task, admit it to its account.

Every refusal is raised as a :class:`Refusal` and rendered per accent by the caller, so the
rules here are written once for all three server families.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ._sim_buttons import parse_custom_id
from ._sim_config import SimOptions
from ._sim_media import MediaEndpoints
from ._sim_render import Refusal, Renderer
from ._sim_state import IN_PROGRESS, MODAL, NOT_START, SUBMITTED, SUCCESS, Engine, SimTask
from ._sim_stats import Counters
from ._sim_text import banned_word, describe_options, shorten_options

__all__ = ["Submitter"]

_DATA_URL = re.compile(r"^data:[\w.+-]+/[\w.+-]+;base64,(?P<data>.+)$", re.DOTALL)
_BOT_TYPES = frozenset({"MID_JOURNEY", "NIJI_JOURNEY"})
_DIMENSIONS = {"PORTRAIT": "2:3", "SQUARE": "1:1", "LANDSCAPE": "3:2"}
_CHANGE_ACTIONS = frozenset({"UPSCALE", "VARIATION", "REROLL"})
# new-api's /submit/action accepts only these customId job parts; the rest (PicReader,
# animate_*, ...) its distributor refuses (QuantumNous/new-api service/midjourney.go:77-134).
_RELAY_ACTIONS = re.compile(
    r"^MJ::(JOB::\w*(upsample|variation|pan|reroll)|Outpaint|CustomZoom|Inpaint)"
)
# C's per-user limits are checked where a job is created (SubmitController.cs:1195-1241);
# modal and the legacy change never create one there.
_NO_USER_LIMITS = frozenset({"modal", "change"})


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def _invalid(description: str, relay: str) -> Refusal:
    return Refusal("invalid", description, relay)


def _is_data_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    match = _DATA_URL.match(value)
    if match is None:
        return False
    try:
        return bool(base64.b64decode(match.group("data"), validate=True))
    except (binascii.Error, ValueError):
        return False


def _optional_text(body: Mapping[str, Any], key: str, limit: int) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _invalid(f"{key}参数错误", f"{_snake(key)}_is_invalid")
    if len(value) > limit:
        raise _invalid(f"{key}长度不能超过{limit}", f"{_snake(key)}_too_long")
    return value


def _required_text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # ids sent as JSON numbers are still ids
    if not isinstance(value, str) or not value.strip():
        raise _invalid(f"{key}不能为空", f"{_snake(key)}_is_required")
    return value.strip()


class Submitter(MediaEndpoints):
    """Handles the submit endpoints for one simulator."""

    def __init__(
        self, options: SimOptions, engine: Engine, renderer: Renderer, counters: Counters
    ) -> None:
        self.options = options
        self.engine = engine
        self.renderer = renderer
        self.counters = counters

    def submit(self, endpoint: str, mode: str, body: Mapping[str, Any]) -> web.Response:
        """Run one submit endpoint; raises :class:`Refusal` for anything the server refuses."""
        handler = getattr(self, f"_{endpoint}")
        response: web.Response = handler(mode, body)
        return response

    # -- shared steps ------------------------------------------------------------------------

    def _common(self, body: Mapping[str, Any]) -> tuple[str | None, str | None]:
        state = _optional_text(body, "state", 255)
        hook = _optional_text(body, "notifyHook", 2000)
        if hook is not None and not hook.startswith(("http://", "https://")):
            raise _invalid("notifyHook格式错误", "notify_hook_is_invalid")
        if self.options.accent == "relay" and not self.options.relay_notify_hook:
            hook = None  # relays keep callbacks for themselves
        return state, hook

    def _check_prompt(self, prompt: str) -> None:
        word = banned_word(prompt, self.options.banned_words)
        if word is not None:
            raise Refusal("banned", properties={"promptEn": prompt, "bannedWord": word})

    def _user_limits(self, endpoint: str) -> None:
        """C's per-user limits: running / queued jobs of this user (here: of everyone)."""
        options = self.options
        if options.accent != "csharp" or endpoint in _NO_USER_LIMITS:
            return
        tasks = self.engine.tasks.values()
        limits = (
            (options.user_core_size, "并发数已达上限", {IN_PROGRESS}),
            (options.user_queue_size, "队列数已达上限", {NOT_START, SUBMITTED}),
        )
        for limit, text, statuses in limits:
            if limit is not None and sum(t.status in statuses for t in tasks) >= limit:
                # -1 shape on every submit but imagine, which answers code 4 (:196-199).
                raise Refusal("back_pressure", text, fail_shape=endpoint != "imagine")

    def _admit(self, task: SimTask, endpoint: str, body: Mapping[str, Any]) -> web.Response:
        self._user_limits(endpoint)
        ahead = self.engine.admit(task)
        if ahead is None:
            raise Refusal("queue_full")
        self.counters.accept(endpoint, body)
        return self.renderer.accepted(task, ahead=ahead if task.status == NOT_START else None)

    def _images(self, body: Mapping[str, Any], key: str) -> list[str]:
        images = body.get(key) or []
        if not isinstance(images, list):
            raise _invalid(f"{key}参数错误", f"{_snake(key)}_is_invalid")
        if not all(_is_data_url(image) for image in images):
            raise _invalid("base64格式错误", "base64_is_invalid")
        return images

    # -- endpoints ---------------------------------------------------------------------------

    def _imagine(self, mode: str, body: Mapping[str, Any]) -> web.Response:
        state, hook = self._common(body)
        prompt = _required_text(body, "prompt")
        images = self._images(body, "base64Array")
        bot_type = body.get("botType") or "MID_JOURNEY"
        if bot_type not in _BOT_TYPES:
            raise _invalid("botType参数错误", "bot_type_is_invalid")
        self._check_prompt(prompt)
        refs = " ".join(f"<image {n}>" for n in range(1, len(images) + 1))
        task = self.engine.new_task(
            mode=mode,
            action="IMAGINE",
            prompt=prompt,
            description=f"/imagine {prompt}",
            result="grid",
            state=state,
            notify_hook=hook,
            bot_type=bot_type,
            final_prompt=f"{refs} {prompt}" if refs else prompt,
        )
        return self._admit(task, "imagine", body)

    def _blend(self, mode: str, body: Mapping[str, Any]) -> web.Response:
        state, hook = self._common(body)
        images = self._images(body, "base64Array")
        if not 2 <= len(images) <= 5:
            raise _invalid("base64List参数错误: 需要2-5张图片", "base64_array_count_is_invalid")
        dimensions = body.get("dimensions") or "SQUARE"
        if dimensions not in _DIMENSIONS:
            raise _invalid("dimensions参数错误", "dimensions_is_invalid")
        task = self.engine.new_task(
            mode=mode,
            action="BLEND",
            prompt="",
            description=f"/blend {{id}} {len(images)} images",
            result="grid",
            state=state,
            notify_hook=hook,
            final_prompt=f"{len(images)} images --ar {_DIMENSIONS[dimensions]}",
        )
        return self._admit(task, "blend", body)

    def _describe(self, mode: str, body: Mapping[str, Any]) -> web.Response:
        state, hook = self._common(body)
        image, link = body.get("base64"), body.get("link")
        link_ok = (
            self.options.accent == "csharp"
            and isinstance(link, str)
            and link.startswith(("http://", "https://"))
        )
        if not link_ok and not _is_data_url(image):
            raise _invalid("base64格式错误", "base64_is_invalid")
        task = self.engine.new_task(
            mode=mode,
            action="DESCRIBE",
            prompt="",
            description="/describe {id}.png",
            result="text",
            state=state,
            notify_hook=hook,
            final_image="{id}-single",
            final_prompt="",
        )
        task.text_options = describe_options(self.engine.rng)
        return self._admit(task, "describe", body)

    def _shorten(self, mode: str, body: Mapping[str, Any]) -> web.Response:
        state, hook = self._common(body)
        prompt = _required_text(body, "prompt")
        self._check_prompt(prompt)
        task = self.engine.new_task(
            mode=mode,
            action="SHORTEN",
            prompt=prompt,
            description=f"/shorten {prompt}",
            result="text",
            state=state,
            notify_hook=hook,
            final_prompt="",
        )
        task.text_options = shorten_options(prompt)
        return self._admit(task, "shorten", body)

    def _action(self, mode: str, body: Mapping[str, Any]) -> web.Response:
        state, hook = self._common(body)
        task_id = _required_text(body, "taskId")
        custom_id = _required_text(body, "customId")
        if self.options.accent == "relay" and not _RELAY_ACTIONS.match(custom_id):
            raise Refusal(
                "invalid", relay_description=f"unknown_action:{custom_id}", relay_gate=400
            )
        return self._press(mode, task_id, custom_id, body, "action", state, hook)

    def _change(self, mode: str, body: Mapping[str, Any]) -> web.Response:
        # J's legacy form of an action: {taskId, action, index} instead of a customId.
        state, hook = self._common(body)
        task_id = _required_text(body, "taskId")
        action = body.get("action")
        if action not in _CHANGE_ACTIONS:
            raise _invalid("action参数错误", "action_is_invalid")
        index = body.get("index")
        if self.options.accent == "relay" and index in (None, 0):
            # new-api refuses index 0 for every action, reroll included (mjproxy_handler.go:421).
            raise _invalid("index参数错误", "index_is_required")
        if action != "REROLL" and (not isinstance(index, int) or not 1 <= index <= 4):
            raise _invalid("index参数错误", "index_is_invalid")
        parent = self._parent(task_id)
        if action == "REROLL":
            custom_id = f"MJ::JOB::reroll::0::{parent.message_hash}::SOLO"
        else:
            kind = "upsample" if action == "UPSCALE" else "variation"
            custom_id = f"MJ::JOB::{kind}::{index}::{parent.message_hash}"
        return self._press(mode, task_id, custom_id, body, "change", state, hook)

    def _parent(self, task_id: str) -> SimTask:
        parent = self.engine.tasks.get(task_id)
        if parent is None:
            # C: HTTP 404 with a code-3 body (SubmitController.cs:498-501).
            raise Refusal("not_found", "关联任务不存在或已失效", "task_not_found", http_status=404)
        if parent.status != SUCCESS:
            raise _invalid("关联任务状态错误", "task_status_is_not_success")
        return parent

    def _press(
        self,
        mode: str,
        task_id: str,
        custom_id: str,
        body: Mapping[str, Any],
        endpoint: str,
        state: str | None,
        hook: str | None,
    ) -> web.Response:
        parent = self._parent(task_id)
        spec = parse_custom_id(custom_id)
        if spec is None or custom_id not in {b.custom_id for b in parent.buttons}:
            raise _invalid("customId参数错误: 不是该任务的按钮", "custom_id_is_invalid")
        prompt = parent.prompt
        if spec.from_text and spec.index is not None:
            prompt = parent.text_options[spec.index - 1]
        if spec.result == "upscale":
            final_image = (
                f"{parent.id}-u{spec.index}" if spec.index is not None else parent.final_image
            )
        else:
            final_image = "{id}-grid"
        task = self.engine.new_task(
            mode=mode,
            action=spec.action,
            prompt=prompt,
            description=f"/{spec.action.lower()} {parent.id} {spec.label}",
            result=spec.result,
            state=state,
            notify_hook=hook,
            bot_type=parent.bot_type,
            final_image=final_image,
        )
        task.extra.update(customId=custom_id, parentId=parent.id)
        remix = body.get("enableRemix") is True and spec.remixable
        if remix and not self.options.remix:
            # C: the account has Remix off (TaskService.cs:1722-1755).
            raise _invalid("当前账号不支持 remix，请开启 remix 功能", "remix_not_supported")
        if spec.modal or (self.options.remix and spec.remixable):
            self.engine.hold_in_modal(task)
            self.counters.accept(endpoint, body)
            return self.renderer.accepted(task, ahead=None)
        return self._admit(task, endpoint, body)

    def _modal(self, mode: str, body: Mapping[str, Any]) -> web.Response:
        del mode  # the task stays on the account it was created on
        task_id = _required_text(body, "taskId")
        task = self.engine.tasks.get(task_id)
        if task is None:
            raise Refusal("not_found", "任务不存在", "task_not_found")
        if task.status != MODAL:
            raise _invalid("任务状态错误: 不在MODAL状态", "task_status_is_not_modal")
        mask = body.get("maskBase64")
        if mask not in (None, "") and not _is_data_url(mask):
            raise _invalid("maskBase64格式错误", "mask_base64_is_invalid")
        if task.action == "INPAINT" and not mask:
            raise _invalid("maskBase64不能为空", "mask_base64_is_required")
        prompt = body.get("prompt")
        if prompt is not None and not isinstance(prompt, str):
            raise _invalid("prompt参数错误", "prompt_is_invalid")
        if prompt and prompt.strip():
            self._check_prompt(prompt)
            task.prompt = task.final_prompt = prompt.strip()
            self.engine.plan(task)  # markers in the modal prompt decide the job's fate
        return self._admit(task, "modal", body)
