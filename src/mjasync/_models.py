"""Typed, immutable views of what the server sends: tasks, buttons, submissions.

Instances are built by the one converter in :mod:`mjasync._converter`; the classes here hold no
parsing logic beyond pure derivations (a button's kind from its custom id).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

import attrs

__all__ = [
    "Button",
    "ButtonKind",
    "ImageRef",
    "Submission",
    "Task",
    "TaskAction",
    "TaskStatus",
    "VideoRef",
    "button_kind",
]

_EMPTY: Mapping[str, Any] = {}


class TaskStatus(StrEnum):
    """A task's status. Values the enum does not know parse as :attr:`UNKNOWN`.

    The server's own text is always in ``task.status_text``.
    """

    NOT_START = "NOT_START"
    SUBMITTED = "SUBMITTED"
    IN_PROGRESS = "IN_PROGRESS"
    MODAL = "MODAL"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    CANCEL = "CANCEL"
    #: a status this version of mjasync does not know, or a relay's ``""`` ("not known yet")
    UNKNOWN = "UNKNOWN"

    @property
    def is_terminal(self) -> bool:
        """``True`` for SUCCESS, FAILURE and CANCEL."""
        return self in _TERMINAL


_TERMINAL = frozenset({TaskStatus.SUCCESS, TaskStatus.FAILURE, TaskStatus.CANCEL})


class TaskAction(StrEnum):
    """What kind of job a task is. Unknown values parse as :attr:`UNKNOWN`.

    The set is the union of the three server families' own lists: J has the first six; C adds
    ``UPSCALE_HD``, ``RETEXTURE``, ``SHOW``, ``ACTION``, ``EDIT``, ``VIDEO_EXTEND``,
    ``SWAP_VIDEO_FACE``, ``PIC_READER`` (trueai-org/midjourney-proxy
    ``src/Midjourney.Base/Models/Enums.cs``); new-api labels tasks itself and adds ``MODAL``,
    ``UPLOAD``, ``EDITS``, ``HIGH_VARIATION``, ``LOW_VARIATION`` (``constant/midjourney.go``).
    C spells ``EDIT`` where new-api spells ``EDITS``: both are kept as sent.
    """

    IMAGINE = "IMAGINE"
    UPSCALE = "UPSCALE"
    VARIATION = "VARIATION"
    REROLL = "REROLL"
    DESCRIBE = "DESCRIBE"
    BLEND = "BLEND"
    SHORTEN = "SHORTEN"
    ZOOM = "ZOOM"
    PAN = "PAN"
    INPAINT = "INPAINT"
    OUTPAINT = "OUTPAINT"
    CUSTOM_ZOOM = "CUSTOM_ZOOM"
    HIGH_VARIATION = "HIGH_VARIATION"
    LOW_VARIATION = "LOW_VARIATION"
    UPSCALE_HD = "UPSCALE_HD"
    ACTION = "ACTION"
    SHOW = "SHOW"
    MODAL = "MODAL"
    VIDEO = "VIDEO"
    VIDEO_EXTEND = "VIDEO_EXTEND"
    EDIT = "EDIT"
    EDITS = "EDITS"
    RETEXTURE = "RETEXTURE"
    SWAP_FACE = "SWAP_FACE"
    SWAP_VIDEO_FACE = "SWAP_VIDEO_FACE"
    UPLOAD = "UPLOAD"
    PIC_READER = "PIC_READER"
    UNKNOWN = "UNKNOWN"


class ButtonKind(StrEnum):
    """What pressing a button does, derived from its ``customId`` (labels vary by server)."""

    UPSCALE = "upscale"  # U1-U4
    VARIATION = "variation"  # V1-V4
    REROLL = "reroll"
    VARY_SUBTLE = "vary_subtle"  # low_variation
    VARY_STRONG = "vary_strong"  # high_variation
    UPSCALE_HD = "upscale_hd"  # upsample_v5_2x, upsample_v6_2x_subtle/creative, ...
    ZOOM = "zoom"  # Outpaint: Zoom Out 2x / 1.5x
    PAN = "pan"
    CUSTOM_ZOOM = "custom_zoom"  # goes to MODAL
    INPAINT = "inpaint"  # Vary (Region), goes to MODAL
    ANIMATE = "animate"
    OTHER = "other"


_CUSTOM_ID_KINDS: tuple[tuple[re.Pattern[str], ButtonKind], ...] = (
    (re.compile(r"^MJ::JOB::upsample::[1-4]::"), ButtonKind.UPSCALE),
    (re.compile(r"^MJ::JOB::variation::[1-4]::"), ButtonKind.VARIATION),
    (re.compile(r"^MJ::JOB::reroll::"), ButtonKind.REROLL),
    (re.compile(r"^MJ::JOB::low_variation::"), ButtonKind.VARY_SUBTLE),
    (re.compile(r"^MJ::JOB::high_variation::"), ButtonKind.VARY_STRONG),
    (re.compile(r"^MJ::JOB::upsample_"), ButtonKind.UPSCALE_HD),
    (re.compile(r"^MJ::Outpaint::"), ButtonKind.ZOOM),
    (re.compile(r"^MJ::JOB::pan_(left|right|up|down)::"), ButtonKind.PAN),
    (re.compile(r"^MJ::CustomZoom::"), ButtonKind.CUSTOM_ZOOM),
    (re.compile(r"^MJ::Inpaint::"), ButtonKind.INPAINT),
    (re.compile(r"^MJ::JOB::animate"), ButtonKind.ANIMATE),
)

_INDEX = re.compile(r"^MJ::JOB::(?:upsample|variation)::([1-4])::")
_PAN = re.compile(r"^MJ::JOB::pan_(left|right|up|down)::")
_ZOOM = re.compile(r"^MJ::Outpaint::([0-9]{1,4})::")
# The Outpaint number is not the factor's reciprocal: Midjourney labels 50 "Zoom Out 2x" and
# 75 "Zoom Out 1.5x".
_ZOOM_FACTORS: Mapping[int, float] = {50: 2.0, 75: 1.5}


def button_kind(custom_id: str) -> ButtonKind:
    """Classify a button by its custom id.

    >>> button_kind("MJ::JOB::upsample::2::0ddb91a0")
    <ButtonKind.UPSCALE: 'upscale'>
    """
    for pattern, kind in _CUSTOM_ID_KINDS:
        if pattern.match(custom_id):
            return kind
    return ButtonKind.OTHER


@attrs.frozen(slots=True)
class Button:
    """One button under a finished task, pressed with ``client.action(task, button)``."""

    custom_id: str
    label: str = ""
    emoji: str = ""
    style: int | None = None
    type: int | None = None

    @property
    def kind(self) -> ButtonKind:
        """What the button does, from its custom id."""
        return button_kind(self.custom_id)

    @property
    def index(self) -> int | None:
        """The image number 1-4 for U/V buttons, else ``None``."""
        match = _INDEX.match(self.custom_id)
        return int(match.group(1)) if match else None

    @property
    def direction(self) -> str | None:
        """``left``/``right``/``up``/``down`` for pan buttons, else ``None``."""
        match = _PAN.match(self.custom_id)
        return match.group(1) if match else None

    @property
    def zoom(self) -> float | None:
        """The zoom-out factor for Zoom Out buttons (2.0 or 1.5), else ``None``."""
        match = _ZOOM.match(self.custom_id)
        if not match:
            return None
        percent = int(match.group(1))
        if percent in _ZOOM_FACTORS:
            return _ZOOM_FACTORS[percent]
        return round(100 / percent, 2) if percent else None

    @property
    def name(self) -> str:
        """A server-independent short name: ``U1``, ``V3``, ``reroll``, ``pan_left``, ..."""
        kind = self.kind
        if kind is ButtonKind.UPSCALE:
            return f"U{self.index}"
        if kind is ButtonKind.VARIATION:
            return f"V{self.index}"
        if kind is ButtonKind.PAN:
            return f"pan_{self.direction}"
        if kind is ButtonKind.ZOOM:
            zoom = self.zoom
            return f"zoom_{zoom:g}x" if zoom is not None else kind.value
        if kind is ButtonKind.OTHER:
            return self.label or self.custom_id
        return kind.value


@attrs.frozen(slots=True)
class ImageRef:
    """One entry of ``imageUrls`` (C and newer relays)."""

    url: str
    thumbnail: str | None = None


@attrs.frozen(slots=True)
class VideoRef:
    """One entry of ``videoUrls``: the ``.mp4`` and, on C, a poster image.

    C sends ``[{url, thumbnail}]``; new-api keeps only ``[{url}]`` (its DTO has no thumbnail).
    """

    url: str
    thumbnail: str | None = None


def _normalise_button_name(name: str) -> str:
    return re.sub(r"[\s()_\-]+", "", name).lower()


_ALIASES: Mapping[str, str] = {
    "🔄": "reroll",
    "reroll": "reroll",
    "varysubtle": "vary_subtle",
    "lowvariation": "vary_subtle",
    "varystrong": "vary_strong",
    "highvariation": "vary_strong",
    "varyregion": "inpaint",
    "inpaint": "inpaint",
    "customzoom": "custom_zoom",
    "zoomout2x": "zoom_2x",
    "zoomout1.5x": "zoom_1.5x",
    "zoom2x": "zoom_2x",
    "zoom1.5x": "zoom_1.5x",
    "panleft": "pan_left",
    "panright": "pan_right",
    "panup": "pan_up",
    "pandown": "pan_down",
    "⬅️": "pan_left",
    "➡️": "pan_right",
    "⬆️": "pan_up",
    "⬇️": "pan_down",
}


@attrs.frozen(slots=True)
class Task:
    """A task as the server reported it. Immutable; fetch again for news.

    ``progress`` is 0-100 or ``None`` (not started, or the server sent no number). Times are
    UTC ``datetime`` objects or ``None``. ``raw`` is the payload as received, so fields
    mjasync does not model are still at hand; only an echoed ``notifyHook`` is left out of it
    and of ``properties`` (a webhook receiver's URL carries its secret).
    """

    id: str
    status: TaskStatus = TaskStatus.UNKNOWN
    action: TaskAction = TaskAction.UNKNOWN
    progress: int | None = None
    prompt: str | None = None
    prompt_en: str | None = None
    description: str | None = None
    state: str | None = None
    submit_time: datetime | None = None
    start_time: datetime | None = None
    finish_time: datetime | None = None
    image_url: str | None = None
    image_urls: tuple[ImageRef, ...] = ()
    video_url: str | None = None
    video_urls: tuple[VideoRef, ...] = ()
    fail_reason: str | None = None
    buttons: tuple[Button, ...] = ()
    properties: Mapping[str, Any] = attrs.field(default=_EMPTY, repr=False)
    raw: Mapping[str, Any] = attrs.field(default=_EMPTY, repr=False, eq=False)

    @property
    def is_terminal(self) -> bool:
        """``True`` once the task is SUCCESS, FAILURE or CANCEL."""
        return self.status.is_terminal

    @property
    def cancelled(self) -> bool:
        """``True`` for a cancelled task: status CANCEL, or C's way of saying it.

        C never sets CANCEL: it fails a cancelled task with failReason "取消任务"
        (trueai-org/midjourney-proxy ed32197, Controllers/TaskController.cs:105,110), so such
        a task is FAILURE here too (``status``), and cancelled.
        """
        if self.status is TaskStatus.CANCEL:
            return True
        return self.status is TaskStatus.FAILURE and (self.fail_reason or "").strip() == "取消任务"

    @property
    def videos(self) -> tuple[VideoRef, ...]:
        """The task's videos: ``video_urls``, else ``video_url`` alone, else none.

        C fills ``videoUrls`` only on some account types and otherwise leaves just
        ``videoUrl``; this is the one place that knows.
        """
        if self.video_urls:
            return self.video_urls
        if self.video_url:
            return (VideoRef(url=self.video_url),)
        return ()

    @property
    def status_text(self) -> str:
        """The status exactly as the server sent it (``""`` when absent)."""
        value = self.raw.get("status")
        return value if isinstance(value, str) else self.status.value

    @property
    def action_text(self) -> str:
        """The action exactly as the server sent it (``""`` when absent)."""
        value = self.raw.get("action")
        return value if isinstance(value, str) else self.action.value

    @property
    def final_prompt(self) -> str | None:
        """The result text of describe/shorten, if any.

        ``properties.finalPrompt``; for a DESCRIBE task without it (the Java proxy), ``prompt``,
        which on describe holds the result (other actions' ``prompt`` is their input).
        """
        value = self.properties.get("finalPrompt")
        if isinstance(value, str) and value:
            return value
        if self.action is TaskAction.DESCRIBE:
            return self.prompt
        return None

    def button(self, name: str) -> Button:
        """Find a button by short name, label, emoji or custom id.

        Names are matched by the custom id's meaning first, since labels differ between
        servers: ``"U1"``-``"U4"``, ``"V1"``-``"V4"``, ``"reroll"`` (or ``"🔄"``),
        ``"vary_subtle"``/``"vary_strong"``, ``"zoom_2x"``/``"zoom_1.5x"``, ``"pan_left"``,
        ``"custom_zoom"``, ``"inpaint"`` (``"Vary (Region)"``), then an exact label or custom id.

        Raises:
            ValueError: no such button; the message lists the ones the task has.
        """
        if not isinstance(name, str):
            raise TypeError(f"button name must be a str, not {type(name).__name__}")
        wanted = _normalise_button_name(name)
        wanted = _ALIASES.get(name.strip(), _ALIASES.get(wanted, wanted))
        for button in self.buttons:
            if _normalise_button_name(button.name) == _normalise_button_name(wanted):
                return button
        for button in self.buttons:
            if name in (button.custom_id, button.label) or (button.emoji and name == button.emoji):
                return button
        available = ", ".join(b.name for b in self.buttons) or "none"
        raise ValueError(f"task {self.id} has no button {name!r}; available: {available}")


@attrs.frozen(slots=True)
class Submission:
    """The server's answer to a submit.

    Attributes:
        task_id: the new task's id (always a string), or ``None`` if the server gave none.
        code: 1 submitted, 21 exists/waits in MODAL, 22 queued.
        queue_position: tasks waiting ahead (``numberOfQueues``) for code 22, else ``None``.
    """

    task_id: str | None
    code: int
    description: str = ""
    properties: Mapping[str, Any] = attrs.field(default=_EMPTY, repr=False)

    @property
    def queued(self) -> bool:
        """``True`` when the job was accepted into the account's wait queue (code 22)."""
        return self.code == 22

    @property
    def queue_position(self) -> int | None:
        """How many jobs wait ahead of this one, for code 22."""
        value = self.properties.get("numberOfQueues")
        if self.code != 22 or isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
            return int(value)  # isdigit() alone also accepts "²", which int() refuses
        return None

    @property
    def needs_modal(self) -> bool:
        """Code 21 from C/plus servers: the new task waits in MODAL for ``/submit/modal``."""
        return self.code == 21 and "finalPrompt" in self.properties
