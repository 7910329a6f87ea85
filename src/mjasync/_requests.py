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
    check_notify_hook,
    check_prompt,
    check_state,
    check_task_id,
    image_data_url,
)

# Requests only refuse absurd sizes: the client applies its own, configurable cap when it
# sends them, so Client(max_image_bytes=...) can raise the limit above the default.
_MAX = REQUEST_MAX_IMAGE_BYTES

__all__ = [
    "Action",
    "Blend",
    "Change",
    "Describe",
    "Imagine",
    "Modal",
    "Request",
    "Shorten",
    "legacy_change",
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
    state: str | None = attrs.field(default=None, kw_only=True, converter=check_state)
    notify_hook: str | None = attrs.field(default=None, kw_only=True, converter=check_notify_hook)

    def sent_images(self) -> tuple[str, ...]:
        """The images this request carries: none."""
        return ()

    def to_body(self) -> dict[str, Any]:
        """The JSON body for the submit route."""
        return _common({"taskId": self.task_id, "customId": self.custom_id}, self)


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
        body: dict[str, Any] = {"taskId": self.task_id, "action": self.action}
        if self.action != "REROLL":
            body["index"] = self.index
        return _common(body, self)


#: Any job request the client can submit.
Request = Imagine | Blend | Describe | Shorten | Action | Modal | Change
