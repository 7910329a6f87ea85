"""Job requests: immutable, validated at construction, each knows its route and JSON body.

Images are converted to checked data URLs when the request is built, so a bad file fails at
the line that named it, not deep inside a batch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs

from ._validation import (
    REQUEST_MAX_IMAGE_BYTES,
    check_bot_type,
    check_custom_id,
    check_dimensions,
    check_language,
    check_notify_hook,
    check_prompt,
    check_state,
    check_task_id,
    image_data_url,
    image_or_url,
    video_data_url,
)

# Requests only refuse absurd sizes: the client applies its own, configurable cap when it
# sends them, so Client(max_image_bytes=...) can raise the limit above the default.
_MAX = REQUEST_MAX_IMAGE_BYTES

__all__ = [
    "VIDEO_TYPES",
    "Action",
    "Blend",
    "Change",
    "Describe",
    "Edit",
    "Imagine",
    "Modal",
    "Request",
    "Retexture",
    "Shorten",
    "SwapFace",
    "SwapVideoFace",
    "Video",
    "legacy_change",
    "upload_body",
]


def _images(value: object) -> tuple[str, ...]:
    if isinstance(value, str | bytes | bytearray) or not isinstance(value, Sequence):
        raise TypeError(
            "images must be a list or tuple of images (bytes, pathlib.Path or data: URLs)"
        )
    return tuple(
        image_data_url(item, max_bytes=_MAX, what=f"images[{i}]") for i, item in enumerate(value)
    )


def _blend_images(value: object) -> tuple[str, ...]:
    images = _images(value)
    if not 2 <= len(images) <= 5:
        raise ValueError(f"blend takes 2 to 5 images, not {len(images)}")
    return images


def _optional_prompt(value: object) -> str | None:
    return None if value is None else check_prompt(value)


def _optional_mask(value: object) -> str | None:
    if value is None:
        return None
    url = image_data_url(value, max_bytes=_MAX, what="mask")
    if not url.startswith("data:image/png;"):
        raise ValueError("mask must be a PNG image (white marks the region to vary)")
    return url


def _describe_image(value: object) -> str:
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return value  # C servers take a link; others will say so
    return image_data_url(value, max_bytes=_MAX)


def _check_account_filter(value: object) -> None:
    if value is not None and not isinstance(value, Mapping):
        raise TypeError(f"account_filter must be a mapping or None, not {type(value).__name__}")


def _is_bool(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{attribute.name} must be a bool, not {type(value).__name__}")


def _common(body: dict[str, Any], request: Any) -> dict[str, Any]:
    if request.state is not None:
        body["state"] = request.state
    if request.notify_hook is not None:
        body["notifyHook"] = request.notify_hook
    return body


@attrs.frozen(slots=True)
class Imagine:
    """``/imagine``: a 2x2 grid from a prompt, optionally with reference images.

    >>> Imagine("a black cat --ar 3:2").to_body()
    {'prompt': 'a black cat --ar 3:2', 'base64Array': []}
    """

    route: ClassVar[str] = "/mj/submit/imagine"
    kind: ClassVar[str] = "imagine"

    prompt: str = attrs.field(converter=check_prompt)
    images: tuple[str, ...] = attrs.field(default=(), converter=_images, repr=False)
    bot_type: str | None = attrs.field(default=None, kw_only=True, converter=check_bot_type)
    state: str | None = attrs.field(default=None, kw_only=True, converter=check_state)
    notify_hook: str | None = attrs.field(default=None, kw_only=True, converter=check_notify_hook)
    account_filter: Mapping[str, Any] | None = attrs.field(
        default=None,
        kw_only=True,
        repr=False,
        validator=lambda _, __, value: _check_account_filter(value),
    )

    def sent_images(self) -> tuple[str, ...]:
        """The images this request carries (checked against the client's size cap)."""
        return self.images

    def to_body(self) -> dict[str, Any]:
        """The JSON body for the submit route."""
        body: dict[str, Any] = {"prompt": self.prompt, "base64Array": list(self.images)}
        if self.bot_type is not None:
            body["botType"] = self.bot_type
        if self.account_filter is not None:
            body["accountFilter"] = dict(self.account_filter)
        return _common(body, self)


@attrs.frozen(slots=True)
class Blend:
    """``/blend``: 2 to 5 images merged into one grid."""

    route: ClassVar[str] = "/mj/submit/blend"
    kind: ClassVar[str] = "blend"

    images: tuple[str, ...] = attrs.field(converter=_blend_images, repr=False)
    dimensions: str = attrs.field(default="SQUARE", converter=check_dimensions)
    bot_type: str | None = attrs.field(default=None, kw_only=True, converter=check_bot_type)
    state: str | None = attrs.field(default=None, kw_only=True, converter=check_state)
    notify_hook: str | None = attrs.field(default=None, kw_only=True, converter=check_notify_hook)

    def sent_images(self) -> tuple[str, ...]:
        """The images this request carries (checked against the client's size cap)."""
        return self.images

    def to_body(self) -> dict[str, Any]:
        """The JSON body for the submit route."""
        body: dict[str, Any] = {"base64Array": list(self.images), "dimensions": self.dimensions}
        if self.bot_type is not None:
            body["botType"] = self.bot_type
        return _common(body, self)


@attrs.frozen(slots=True)
class Describe:
    """``/describe``: four prompts for an image (in ``task.final_prompt``)."""

    route: ClassVar[str] = "/mj/submit/describe"
    kind: ClassVar[str] = "describe"

    image: str = attrs.field(converter=_describe_image, repr=False)
    bot_type: str | None = attrs.field(default=None, kw_only=True, converter=check_bot_type)
    #: C only: ``"zh"``/``"zh_cn"`` translate the result where the operator set up a
    #: translator (trueai-org/midjourney-proxy ``Models/TaskInfo.cs:812-836``).
    language: str | None = attrs.field(default=None, kw_only=True, converter=check_language)
    state: str | None = attrs.field(default=None, kw_only=True, converter=check_state)
    notify_hook: str | None = attrs.field(default=None, kw_only=True, converter=check_notify_hook)

    def sent_images(self) -> tuple[str, ...]:
        """The images this request carries (checked against the client's size cap)."""
        return (self.image,)

    def to_body(self) -> dict[str, Any]:
        """The JSON body for the submit route."""
        key = "base64" if self.image.startswith("data:") else "link"
        body: dict[str, Any] = {key: self.image}
        if self.bot_type is not None:
            body["botType"] = self.bot_type
        if self.language is not None:
            body["language"] = self.language
        return _common(body, self)


@attrs.frozen(slots=True)
class Shorten:
    """``/shorten``: shorter variants of a prompt (in ``task.final_prompt``)."""

    route: ClassVar[str] = "/mj/submit/shorten"
    kind: ClassVar[str] = "shorten"

    prompt: str = attrs.field(converter=check_prompt)
    bot_type: str | None = attrs.field(default=None, kw_only=True, converter=check_bot_type)
    state: str | None = attrs.field(default=None, kw_only=True, converter=check_state)
    notify_hook: str | None = attrs.field(default=None, kw_only=True, converter=check_notify_hook)

    def sent_images(self) -> tuple[str, ...]:
        """The images this request carries: none."""
        return ()

    def to_body(self) -> dict[str, Any]:
        """The JSON body for the submit route."""
        body: dict[str, Any] = {"prompt": self.prompt}
        if self.bot_type is not None:
            body["botType"] = self.bot_type
        return _common(body, self)


@attrs.frozen(slots=True)
class Action:
    """Press a button of a finished task (``custom_id`` from ``task.buttons``)."""

    route: ClassVar[str] = "/mj/submit/action"
    kind: ClassVar[str] = "action"

    task_id: str = attrs.field(converter=check_task_id)
    custom_id: str = attrs.field(converter=check_custom_id)
    #: C only: park a reroll/variation/pan in MODAL so its prompt can be changed
    #: (``/submit/modal``); the server answers code 21 (``TaskService.cs:1722-1755``).
    enable_remix: bool | None = attrs.field(
        default=None, kw_only=True, validator=attrs.validators.optional(_is_bool)
    )
    state: str | None = attrs.field(default=None, kw_only=True, converter=check_state)
    notify_hook: str | None = attrs.field(default=None, kw_only=True, converter=check_notify_hook)

    def sent_images(self) -> tuple[str, ...]:
        """The images this request carries: none."""
        return ()

    def to_body(self) -> dict[str, Any]:
        """The JSON body for the submit route."""
        body: dict[str, Any] = {"taskId": self.task_id, "customId": self.custom_id}
        if self.enable_remix is not None:
            body["enableRemix"] = self.enable_remix
        return _common(body, self)


@attrs.frozen(slots=True)
class Modal:
    """Finish a task waiting in MODAL: a prompt (custom zoom) and/or a PNG mask (vary region)."""

    route: ClassVar[str] = "/mj/submit/modal"
    kind: ClassVar[str] = "modal"

    task_id: str = attrs.field(converter=check_task_id)
    prompt: str | None = attrs.field(default=None, kw_only=True, converter=_optional_prompt)
    mask: str | None = attrs.field(default=None, kw_only=True, converter=_optional_mask, repr=False)
    state: str | None = attrs.field(default=None, kw_only=True, converter=check_state)
    notify_hook: str | None = attrs.field(default=None, kw_only=True, converter=check_notify_hook)

    def __attrs_post_init__(self) -> None:
        if self.prompt is None and self.mask is None:
            raise ValueError("Modal needs a prompt, a mask, or both")

    def sent_images(self) -> tuple[str, ...]:
        """The images this request carries (checked against the client's size cap)."""
        return () if self.mask is None else (self.mask,)

    def to_body(self) -> dict[str, Any]:
        """The JSON body for the submit route."""
        body: dict[str, Any] = {"taskId": self.task_id}
        if self.prompt is not None:
            body["prompt"] = self.prompt
        if self.mask is not None:
            body["maskBase64"] = self.mask
        return _common(body, self)


_CHANGE_ACTIONS = ("UPSCALE", "VARIATION", "REROLL")
_LEGACY = re.compile(r"^MJ::JOB::(upsample|variation|reroll)::(\d)::")
_SHORT = re.compile(r"^\s*([UuVv])([1-4])\s*$")


def legacy_change(button: str) -> tuple[str, int] | None:
    """The Java proxy's ``(action, index)`` for a U/V/reroll button, by custom id or short name.

    >>> legacy_change("MJ::JOB::variation::3::abc")
    ('VARIATION', 3)
    >>> legacy_change("U2")
    ('UPSCALE', 2)
    >>> legacy_change("MJ::CustomZoom::1::abc") is None
    True
    """
    match = _LEGACY.match(button)
    if match:
        kind, index = match.group(1), int(match.group(2))
        action = {"upsample": "UPSCALE", "variation": "VARIATION", "reroll": "REROLL"}[kind]
        return action, (index if action != "REROLL" else 0)
    short = _SHORT.match(button)
    if short:
        return ("UPSCALE" if short.group(1) in "Uu" else "VARIATION"), int(short.group(2))
    if button.strip().lower() in ("reroll", "🔄"):
        return "REROLL", 0
    return None


def _change_action(value: object) -> str:
    if not isinstance(value, str) or value.upper() not in _CHANGE_ACTIONS:
        raise ValueError(f"action must be one of {', '.join(_CHANGE_ACTIONS)}, not {value!r}")
    return value.upper()


@attrs.frozen(slots=True)
class Change:
    """The original Java proxy's form of U/V/reroll (``/mj/submit/change``): it has no buttons.

    ``client.action()`` falls back to this by itself when a server lacks ``/submit/action``.
    """

    route: ClassVar[str] = "/mj/submit/change"
    kind: ClassVar[str] = "change"

    task_id: str = attrs.field(converter=check_task_id)
    action: str = attrs.field(converter=_change_action)
    index: int = attrs.field(default=0)
    state: str | None = attrs.field(default=None, kw_only=True, converter=check_state)
    notify_hook: str | None = attrs.field(default=None, kw_only=True, converter=check_notify_hook)

    def __attrs_post_init__(self) -> None:
        if isinstance(self.index, bool) or not isinstance(self.index, int):
            raise TypeError(f"index must be an int, not {type(self.index).__name__}")
        if self.action != "REROLL" and not 1 <= self.index <= 4:
            raise ValueError(f"index must be 1-4 for {self.action}, not {self.index}")

    def sent_images(self) -> tuple[str, ...]:
        """The images this request carries: none."""
        return ()

    def to_body(self) -> dict[str, Any]:
        """The JSON body for the submit route."""
        # new-api refuses index 0 for every action, reroll included ("index_is_required",
        # QuantumNous/new-api relay/mjproxy_handler.go:421-428); J ignores it for reroll
        # (novicezk/midjourney-proxy controller/SubmitController.java:116-118). So: 1.
        index = 1 if self.action == "REROLL" else self.index
        return _common({"taskId": self.task_id, "action": self.action, "index": index}, self)


# -- the newer endpoints (C; new-api builds since 2025-06-30) ---------------------------------
# Field names and rules from trueai-org/midjourney-proxy ed32197 (src/Midjourney.Base/Dto/
# SubmitVideoDTO.cs, SubmitEditsDTO.cs, InsightFaceSwapDto.cs, InsightVideoFaceSwapDto.cs and
# src/Midjourney.Services/TaskService.cs) and QuantumNous/new-api 65b1654 (dto/midjourney.go).

#: The video types C knows: 480p (the default) and 720p ("HD", needs an HD-capable account).
VIDEO_TYPES = ("vid_1.1_i2v_480", "vid_1.1_i2v_720")
_VIDEO_TYPE = re.compile(r"^vid_[0-9A-Za-z._]{1,40}$")
_MOTIONS = ("low", "high")
_BATCH_SIZES = (1, 2, 4)


def _optional_image_or_url(value: object) -> str | None:
    return None if value is None else image_or_url(value, max_bytes=_MAX)


def _required_image_or_url(value: object) -> str:
    return image_or_url(value, max_bytes=_MAX)


def _optional_task_id(value: object) -> str | None:
    return None if value is None else check_task_id(value)


def _motion(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value.strip().lower() not in _MOTIONS:
        raise ValueError(f"motion must be 'low' or 'high', not {value!r}")
    return value.strip().lower()


def _video_type(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _VIDEO_TYPE.match(value.strip()):
        raise ValueError(f"video_type must be one of {', '.join(VIDEO_TYPES)}, not {value!r}")
    return value.strip()


def _batch_size(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value not in _BATCH_SIZES:
        # C adds "--bs 1" or "--bs 2"; 4 is the default; any other value is ignored silently.
        raise ValueError(f"batch_size must be 1, 2 or 4, not {value!r}")
    return value


def _video_index(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4:
        raise ValueError(f"index must be 1, 2, 3 or 4 (which video of the task), not {value!r}")
    return value


def _sent(*images: str | None) -> tuple[str, ...]:
    return tuple(image for image in images if image is not None and image.startswith("data:"))


def _put_image(body: dict[str, Any], base64_key: str, url_key: str, image: str) -> None:
    # C reads bytes from the base64 field and URLs from the url field; a URL in the base64
    # field has no bytes and fails ("格式错误", FaceSwapService.cs:86-96).
    body[base64_key if image.startswith("data:") else url_key] = image


def _filter_body(body: dict[str, Any], request: Any) -> dict[str, Any]:
    if request.account_filter is not None:
        body["accountFilter"] = dict(request.account_filter)
    return _common(body, request)


@attrs.frozen(slots=True)
class Video:
    """``/video``: animate an image into short videos, or extend a finished video.

    The finished task's videos are in ``task.videos`` (``video_urls`` / ``video_url``).

    Args:
        prompt: what happens in the video (the server requires one, also to extend).
        image: the start frame: bytes, a ``pathlib.Path``, a data URL or an http(s) URL.
        end_image: an optional end frame (same forms); not with ``loop``.
        motion: ``"low"`` (the server's default) or ``"high"``.
        loop: end on the start frame (the server ignores ``end_image`` then, so both are
            refused together).
        batch_size: 1, 2 or 4 videos (4 is the server's default).
        video_type: ``"vid_1.1_i2v_480"`` (default) or ``"vid_1.1_i2v_720"`` (HD; needs an
            HD-capable account).
        task_id: the finished video task to extend instead of animating an image (see
            :meth:`extend`).
        index: which of its videos to extend, 1-4 (sent 0-based, as the server counts).

    Example::

        Video("the cat turns its head", image=Path("cat.png"), motion="high")
        Video.extend(video_task, index=2, prompt="and walks away")
    """

    route: ClassVar[str] = "/mj/submit/video"
    kind: ClassVar[str] = "video"

    prompt: str = attrs.field(converter=check_prompt)
    image: str | None = attrs.field(
        default=None, kw_only=True, converter=_optional_image_or_url, repr=False
    )
    end_image: str | None = attrs.field(
        default=None, kw_only=True, converter=_optional_image_or_url, repr=False
    )
    motion: str | None = attrs.field(default=None, kw_only=True, converter=_motion)
    loop: bool = attrs.field(default=False, kw_only=True, validator=_is_bool)
    batch_size: int | None = attrs.field(default=None, kw_only=True, converter=_batch_size)
    video_type: str | None = attrs.field(default=None, kw_only=True, converter=_video_type)
    task_id: str | None = attrs.field(default=None, kw_only=True, converter=_optional_task_id)
    index: int | None = attrs.field(default=None, kw_only=True, converter=_video_index)
    state: str | None = attrs.field(default=None, kw_only=True, converter=check_state)
    notify_hook: str | None = attrs.field(default=None, kw_only=True, converter=check_notify_hook)

    def __attrs_post_init__(self) -> None:
        if self.loop and self.end_image is not None:
            raise ValueError("pass loop=True or end_image=, not both (a loop ends where it began)")
        if (self.task_id is None) != (self.index is None):
            raise ValueError("extending a video needs both task_id= and index= (1-4)")

    @classmethod
    def extend(
        cls,
        task: Any,
        index: int = 1,
        *,
        prompt: str | None = None,
        motion: str | None = None,
        state: str | None = None,
        notify_hook: str | None = None,
    ) -> Video:
        """Extend video ``index`` (1-4) of a finished video task (a ``Task`` or its id).

        ``prompt`` defaults to the task's own prompt when a ``Task`` is given.
        """
        task_id = getattr(task, "id", task)
        text = prompt if prompt is not None else getattr(task, "prompt", None)
        if text is None:
            raise ValueError("extending a video by id needs prompt= (the server requires one)")
        return cls(
            text,
            motion=motion,
            task_id=task_id,
            index=index,
            state=state,
            notify_hook=notify_hook,
        )

    @property
    def is_extend(self) -> bool:
        """``True`` when this extends a finished video rather than animating an image."""
        return self.task_id is not None

    def sent_images(self) -> tuple[str, ...]:
        """The images this request carries (checked against the client's size cap)."""
        return _sent(self.image, self.end_image)

    def to_body(self) -> dict[str, Any]:
        """The JSON body for the submit route."""
        body: dict[str, Any] = {"prompt": self.prompt}
        if self.image is not None:
            body["image"] = self.image
        if self.end_image is not None:
            body["endImage"] = self.end_image
        if self.motion is not None:
            body["motion"] = self.motion
        if self.loop:
            body["loop"] = True
        if self.batch_size is not None:
            body["batchSize"] = self.batch_size
        if self.video_type is not None:
            body["videoType"] = self.video_type
        if self.task_id is not None and self.index is not None:
            # C's index is 0-based (SubmitVideoDTO.cs:64-67): video 1 is index 0.
            body.update(action="extend", taskId=self.task_id, index=self.index - 1)
        return _common(body, self)


@attrs.frozen(slots=True)
class _PromptOnImage:
    """A prompt applied to one image (``Edit`` and ``Retexture`` differ only in the route)."""

    route: ClassVar[str]
    kind: ClassVar[str]

    prompt: str = attrs.field(converter=check_prompt)
    image: str = attrs.field(converter=_required_image_or_url, repr=False)
    account_filter: Mapping[str, Any] | None = attrs.field(
        default=None,
        kw_only=True,
        repr=False,
        validator=lambda _, __, value: _check_account_filter(value),
    )
    state: str | None = attrs.field(default=None, kw_only=True, converter=check_state)
    notify_hook: str | None = attrs.field(default=None, kw_only=True, converter=check_notify_hook)

    def sent_images(self) -> tuple[str, ...]:
        """The images this request carries (checked against the client's size cap)."""
        return _sent(self.image)

    def to_body(self) -> dict[str, Any]:
        """The JSON body for the submit route."""
        return _filter_body({"prompt": self.prompt, "image": self.image}, self)


@attrs.frozen(slots=True)
class Edit(_PromptOnImage):
    """``/edits``: edit an image by a prompt (C also serves ``/edit``; new-api ``/edits``).

    ``image`` is bytes, a ``pathlib.Path``, a data URL or an http(s) URL.
    """

    route: ClassVar[str] = "/mj/submit/edits"
    kind: ClassVar[str] = "edit"


@attrs.frozen(slots=True)
class Retexture(_PromptOnImage):
    """``/retexture``: keep an image's shapes, repaint its surfaces by a prompt (C only).

    ``image`` is bytes, a ``pathlib.Path``, a data URL or an http(s) URL.
    """

    route: ClassVar[str] = "/mj/submit/retexture"
    kind: ClassVar[str] = "retexture"


@attrs.frozen(slots=True)
class SwapFace:
    """``/mj/insight-face/swap``: put the face of ``source`` into the picture ``target``.

    Both are bytes, a ``pathlib.Path``, a data URL or an http(s) URL; new-api relays take
    images only (they require both base64 fields), C takes URLs too.
    """

    route: ClassVar[str] = "/mj/insight-face/swap"
    kind: ClassVar[str] = "swap_face"

    source: str = attrs.field(converter=_required_image_or_url, repr=False)
    target: str = attrs.field(converter=_required_image_or_url, repr=False)
    account_filter: Mapping[str, Any] | None = attrs.field(
        default=None,
        kw_only=True,
        repr=False,
        validator=lambda _, __, value: _check_account_filter(value),
    )
    state: str | None = attrs.field(default=None, kw_only=True, converter=check_state)
    notify_hook: str | None = attrs.field(default=None, kw_only=True, converter=check_notify_hook)

    def __attrs_post_init__(self) -> None:
        if self.source == self.target:
            # C refuses it too (FaceSwapService.cs): nothing would change.
            raise ValueError("source (the face) and target (the picture) are the same image")

    def sent_images(self) -> tuple[str, ...]:
        """The images this request carries (checked against the client's size cap)."""
        return _sent(self.source, self.target)

    def to_body(self) -> dict[str, Any]:
        """The JSON body for the submit route."""
        body: dict[str, Any] = {}
        _put_image(body, "sourceBase64", "sourceUrl", self.source)
        _put_image(body, "targetBase64", "targetUrl", self.target)
        return _filter_body(body, self)


def _target_video(value: object) -> str:
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return image_or_url(value, what="video")
    return video_data_url(value, max_bytes=_MAX)


@attrs.frozen(slots=True)
class SwapVideoFace:
    """``/mj/insight-face/video-swap``: put the face of ``source`` into the video ``target``.

    C only, for users the operator whitelisted. ``source`` is an image (bytes, path, data
    URL or http(s) URL); ``target`` an ``.mp4`` as bytes or a ``pathlib.Path`` (uploaded) or
    an http(s) URL. The server takes a multipart form here, which the client builds.
    """

    route: ClassVar[str] = "/mj/insight-face/video-swap"
    kind: ClassVar[str] = "swap_video_face"

    source: str = attrs.field(converter=_required_image_or_url, repr=False)
    target: str = attrs.field(converter=_target_video, repr=False)
    state: str | None = attrs.field(default=None, kw_only=True, converter=check_state)
    notify_hook: str | None = attrs.field(default=None, kw_only=True, converter=check_notify_hook)

    def sent_images(self) -> tuple[str, ...]:
        """The images this request carries (checked against the client's size cap)."""
        return _sent(self.source)

    def to_body(self) -> dict[str, Any]:
        """The form fields (the video travels as a data URL until the form is built)."""
        body: dict[str, Any] = {}
        _put_image(body, "sourceBase64", "sourceUrl", self.source)
        _put_image(body, "targetFile", "targetUrl", self.target)
        return _common(body, self)


def upload_body(images: object) -> dict[str, Any]:
    """The body of ``upload-discord-images``: 1 or more images (or http(s) URLs).

    Raises:
        TypeError, ValueError: not a list of images, an unusable image, or no image at all.
    """
    if isinstance(images, str | bytes | bytearray) or not isinstance(images, Sequence):
        raise TypeError("images must be a list or tuple of images (bytes, pathlib.Path, URLs)")
    if not images:
        raise ValueError("upload_images() needs at least one image")
    return {
        "base64Array": [
            image_or_url(item, max_bytes=_MAX, what=f"images[{i}]") for i, item in enumerate(images)
        ]
    }


#: Any job request the client can submit.
Request = (
    Imagine
    | Blend
    | Describe
    | Shorten
    | Action
    | Modal
    | Change
    | Video
    | Edit
    | Retexture
    | SwapFace
    | SwapVideoFace
)
