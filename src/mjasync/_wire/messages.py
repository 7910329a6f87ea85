"""English sentences for the texts the servers send (pure; no I/O, no mjasync imports).

The proxies answer in Chinese (J, C) or in snake_case tokens (new-api), in ``description``,
``message`` and a task's ``failReason``. :func:`explain` turns a known text into one English
sentence; an unknown text gets ``None``, and callers show it as it came. The original always
stays available: ``APIError.description``, ``TaskFailedError.fail_reason``, the batch
manifest's ``server_message``, and ``--verbose`` on the command line.

Where each text comes from (J novicezk/midjourney-proxy fd045f9, C trueai-org/midjourney-proxy
ed32197, N QuantumNous/new-api 65b1654; details in the servers notes):

- J: "队列已满，请稍后尝试" (code 23), "可能包含敏感词" (code 24), "任务超时" (the timeout sweep,
  ``support/TaskTimeoutSchedule.java``).
- C: "提交失败，队列已满，请稍后重试" (code 9, ``DiscordService.cs``), "可能包含敏感词" as a
  failReason, "任务提交超时" (queued too long), "取消任务" (cancel), the ``code: -1`` texts of
  ``Controllers/SubmitController.cs`` ("并发数已达上限", "队列数已达上限", the daily quotas,
  "服务暂不可用，请联系管理员"), "关联任务不存在或已失效" (404 on a missing parent), and the auth
  middleware's "账号已禁用" / "账号不可用" / "账号无权限".
- N: "task_no_found", "do_request_failed", "unmarshal_response_body_failed", the
  ``*_is_required`` checks (``relay/mjproxy_handler.go``), "上游任务超时（超过1小时）"
  (``controller/midjourney.go``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["explain", "in_english"]

# Exact texts (after trimming whitespace and a final full stop), longest match wins below.
_EXACT: dict[str, str] = {
    # refusals that are the account's state, not the request's fault
    "队列已满，请稍后尝试": "the account's queue is full; try again later",
    "提交失败，队列已满，请稍后重试": "the account's queue is full; try again later",
    "当前分组上游负载已饱和，请稍后再试": "the relay's upstream accounts are all busy; try later",
    "并发数已达上限": "the account already runs as many jobs as it may at once",
    "队列数已达上限": "the account already has as many jobs queued as it may",
    "访客今日绘图次数已达上限": "the guest's image quota for today is used up",
    "用户今日绘图次数已达上限": "the user's image quota for today is used up",
    "今日绘图次数已达上限": "the image quota for today is used up",
    "总绘图次数已达上限": "the account's total image quota is used up",
    "账号已被临时封锁，请勿使用违规词作图": "the account is blocked for a while: banned words",
    # tasks
    "任务不存在": "no such task: the server does not know this task id",
    "task_no_found": "no such task: the server does not know this task id",
    "task_not_found": "no such task: the server does not know this task id",
    "关联任务不存在或已失效": "the task this action refers to does not exist or has expired",
    "目标任务不存在": "the task this action refers to does not exist",
    "关联任务状态错误": "the task this action refers to has not succeeded (yet)",
    "任务状态错误: 任务未完成": "the task has not finished yet",
    "任务状态错误: 不在MODAL状态": "the task is not waiting for a modal answer",
    "任务超时": "the job timed out on the server",
    "任务提交超时": "the job waited too long in the server's queue and timed out",
    "上游任务超时（超过1小时）": "the job did not finish upstream within an hour",
    "取消任务": "the job was cancelled",
    "未找到 seed": "the server found no seed for this task",
    "该任务不支持重新生成": "this task cannot be rerolled",
    "未知的 Action 类型": "the server does not know this button (custom id)",
    "任务类型错误": "wrong task type for this request",
    "customId参数错误: 不是该任务的按钮": "that custom id is not one of the task's buttons",
    # server state and configuration
    "服务暂不可用，请联系管理员": "the server is not set up to take jobs; ask its administrator",
    "提交失败，系统异常": "the server failed to submit the job (internal error)",
    "操作失败": "the server failed (internal error)",
    "无可用的账号实例": "the server has no Midjourney account available for this job",
    "实例不存在或不可用": "the chosen Midjourney account does not exist or is not available",
    "视频功能未启用": "video is not enabled on this server",
    "未开启 REMIX，无法使用视频扩展功能": "video needs remix mode, which is off on the account",
    "当前账号不支持 remix，请开启 remix 功能": "the account has remix mode off; turn it on first",
    "禁止上传": "the server does not accept uploaded images",
    "服务不支持": "the server does not offer this service",
    "演示模式，禁止操作": "not allowed: the server is in demo mode or the key is not an admin's",
    # auth
    "账号已禁用": "the account behind this key is disabled",
    "账号不可用": "the account behind this key is not available",
    "账号无权限": "the key has no permission for this",
    "无效的令牌": "the relay does not know this API key (token)",
    # request checks
    "Prompt 不能为空": "the prompt is empty",
    "base64格式错误": "an image is not valid base64 / data URL",
    "base64 参数错误": "no images were given",
    "base64List参数错误: 需要2-5张图片": "a blend needs 2 to 5 images",
    "链接格式错误": "the image link must be an http(s) URL",
    "image或prompt不能为空": "both an image and a prompt are needed",
    "人脸图片不能为空": "the face image is missing",
    "人脸图片格式错误": "the face image is not a readable image",
    "目标图片不能为空": "the target image is missing",
    "目标视频不能为空": "the target video is missing",
    "人脸图片和目标图片不能相同": "the face and the target are the same image",
    "仅支持 mp4 格式": "the video must be an MP4",
    "对不起，视频换脸功能仅限白名单用户使用，请联系管理员": (
        "video face swap is for whitelisted users only; ask the server's administrator"
    ),
    "maskBase64不能为空": "the mask image is missing",
    "maskBase64格式错误": "the mask image is not valid base64",
    "参数错误": "a parameter is invalid",
    # new-api's own tokens
    "prompt_is_required": "the prompt is required",
    "index_is_required": "this action needs an index (1-4)",
    "action_is_required": "the action is required",
    "sour_base64_and_target_base64_is_required": "both face images are required (as base64)",
    "do_request_failed": "the relay could not reach its upstream server",
    "unmarshal_response_body_failed": "the relay could not read its upstream server's answer",
    "model_not_found": "the relay sells no channel for this kind of job",
}

# Texts that carry a value ("排队中，前面还有3个任务", "state长度不能超过255").
_PATTERNS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (
        re.compile(r"^(?P<key>\w+)长度不能超过(?P<limit>\d+)$"),
        lambda m: f"{m['key']} is too long (at most {m['limit']} characters)",
    ),
    (re.compile(r"^(?P<key>\w+)不能为空$"), lambda m: f"{m['key']} is missing"),
    (re.compile(r"^(?P<key>\w+)参数错误$"), lambda m: f"invalid {m['key']}"),
    (re.compile(r"^(?P<key>\w+)格式错误$"), lambda m: f"{m['key']} has an invalid format"),
    (
        re.compile(r"^任务已结束，无法取消.*$"),
        lambda m: "the task has already ended; there is nothing to cancel",
    ),
    (
        re.compile(r"^排队中，前面还有(?P<n>\d+)个任务$"),
        lambda m: f"queued, {m['n']} jobs ahead",
    ),
    (
        # new-api's distributor: no channel of the user's group sells the model.
        re.compile(r"^当前分组 (?P<group>\S+) 下对于模型 (?P<model>\S+) 无可用渠道$"),
        lambda m: f"the relay sells no channel for {m['model']} to group {m['group']}",
    ),
)

_BANNED = "可能包含敏感词"
_TRAILING = " \t\r\n。.!！"


def _normalise(text: str) -> str:
    return " ".join(text.split()).strip(_TRAILING)


def _banned_word(properties: Mapping[str, Any] | None) -> str | None:
    if properties is None:
        return None
    word = properties.get("bannedWord")
    return word.strip() if isinstance(word, str) and word.strip() else None


def explain(
    text: str | None,
    *,
    code: int | None = None,
    properties: Mapping[str, Any] | None = None,
) -> str | None:
    """One English sentence for a known server text, or ``None`` when it is not known.

    Args:
        text: the server's ``description`` / ``message`` / ``failReason``.
        code: the body's ``code``; 24 (banned prompt) is explained even without a text.
        properties: the body's ``properties``; ``bannedWord`` names the word of a ban.

    Example:
        >>> explain("可能包含敏感词", code=24, properties={"bannedWord": "gore"})
        "the prompt contains a word the server bans: 'gore'"
        >>> explain("任务不存在")
        'no such task: the server does not know this task id'
        >>> explain("Request cancelled due to output filters") is None
        True
    """
    word = _banned_word(properties)
    normalised = _normalise(text) if isinstance(text, str) else ""
    if (
        _BANNED in normalised
        or (code == 24 and not normalised.isascii())
        or (code == 24 and not normalised)
    ):
        if word:
            return f"the prompt contains a word the server bans: {word!r}"
        return "the prompt may contain a word the server bans"
    if not normalised:
        return None
    known = _EXACT.get(normalised)
    if known is not None:
        return known
    for pattern, sentence in _PATTERNS:
        match = pattern.match(normalised)
        if match is not None:
            return sentence(match)
    # A known text inside a longer one ("操作失败 (acct 3)"): the longest known one wins.
    inside = [key for key in _EXACT if len(key) >= 4 and key in normalised]
    if inside:
        return _EXACT[max(inside, key=len)]
    return None


def in_english(
    text: str,
    *,
    code: int | None = None,
    properties: Mapping[str, Any] | None = None,
) -> str:
    """:func:`explain`'s sentence, or ``text`` itself when it is not a known server text."""
    return explain(text, code=code, properties=properties) or text
