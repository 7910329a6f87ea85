"""The buttons under finished tasks, and what pressing one (an action's ``customId``) does."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "ActionSpec",
    "ButtonSpec",
    "describe_buttons",
    "grid_buttons",
    "parse_custom_id",
    "shorten_buttons",
    "upscale_buttons",
]

ResultKind = Literal["grid", "upscale", "text", "image", "video"]


@dataclass(frozen=True, slots=True)
class ButtonSpec:
    """One Discord button as the servers report it."""

    custom_id: str
    label: str = ""
    emoji: str = ""
    style: int = 2
    type: int = 2

    def to_json(self) -> dict[str, Any]:
        """The wire form: ``{customId, emoji, label, type, style}``."""
        return {
            "customId": self.custom_id,
            "emoji": self.emoji,
            "label": self.label,
            "type": self.type,
            "style": self.style,
        }


def grid_buttons(message_hash: str) -> tuple[ButtonSpec, ...]:
    """U1-U4, reroll, V1-V4: what a 2x2 grid (imagine, variation, blend, ...) offers."""
    ups = tuple(
        ButtonSpec(f"MJ::JOB::upsample::{n}::{message_hash}", label=f"U{n}") for n in range(1, 5)
    )
    reroll = ButtonSpec(f"MJ::JOB::reroll::0::{message_hash}::SOLO", emoji="🔄")
    variations = tuple(
        ButtonSpec(f"MJ::JOB::variation::{n}::{message_hash}", label=f"V{n}") for n in range(1, 5)
    )
    return (*ups, reroll, *variations)


def upscale_buttons(message_hash: str) -> tuple[ButtonSpec, ...]:
    """Vary, zoom, pan and HD-upscale buttons under a single upscaled image."""
    h = message_hash
    return (
        ButtonSpec(f"MJ::JOB::upsample_v6_2x_subtle::1::{h}::SOLO", label="Upscale (Subtle)"),
        ButtonSpec(f"MJ::JOB::low_variation::1::{h}::SOLO", label="Vary (Subtle)", emoji="🪄"),
        ButtonSpec(f"MJ::JOB::high_variation::1::{h}::SOLO", label="Vary (Strong)", emoji="🪄"),
        ButtonSpec(f"MJ::Inpaint::1::{h}::SOLO", label="Vary (Region)", emoji="🖌️"),
        ButtonSpec(f"MJ::Outpaint::50::1::{h}::SOLO", label="Zoom Out 2x", emoji="🔍"),
        ButtonSpec(f"MJ::Outpaint::75::1::{h}::SOLO", label="Zoom Out 1.5x", emoji="🔍"),
        ButtonSpec(f"MJ::CustomZoom::1::{h}", label="Custom Zoom", emoji="🔍"),
        ButtonSpec(f"MJ::JOB::pan_left::1::{h}::SOLO", emoji="⬅️"),
        ButtonSpec(f"MJ::JOB::pan_right::1::{h}::SOLO", emoji="➡️"),
        ButtonSpec(f"MJ::JOB::pan_up::1::{h}::SOLO", emoji="⬆️"),
        ButtonSpec(f"MJ::JOB::pan_down::1::{h}::SOLO", emoji="⬇️"),
    )


_NUMBER_EMOJI = ("1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣")


def describe_buttons(message_hash: str) -> tuple[ButtonSpec, ...]:
    """One button per description; pressing n imagines description n."""
    return tuple(
        ButtonSpec(f"MJ::Job::PicReader::{n}::{message_hash}", emoji=_NUMBER_EMOJI[n - 1])
        for n in range(1, 5)
    )


def shorten_buttons(message_hash: str) -> tuple[ButtonSpec, ...]:
    """One button per shortened prompt; pressing n imagines shortened prompt n."""
    return tuple(
        ButtonSpec(f"MJ::Job::PromptAnalyzer::{n}::{message_hash}", emoji=_NUMBER_EMOJI[n - 1])
        for n in range(1, 6)
    )


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """What a customId does.

    Attributes:
        action: the new task's ``action``.
        result: ``grid`` (U/V buttons follow) or ``upscale`` (a single image).
        index: the image (1-4) for U/V, the option for describe/shorten picks, else ``None``.
        modal: always waits in MODAL for ``/submit/modal`` (custom zoom, vary region).
        remixable: waits in MODAL when the account has remix mode on.
        from_text: imagines the parent's n-th describe/shorten option.
        label: what the server writes in the task's description (``U1``, ``pan_left``, ...).
    """

    action: str
    result: ResultKind
    index: int | None = None
    modal: bool = False
    remixable: bool = False
    from_text: bool = False
    label: str = ""


_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), name)
    for pattern, name in (
        (r"^MJ::JOB::upsample::([1-4])::", "upsample"),
        (r"^MJ::JOB::variation::([1-4])::", "variation"),
        (r"^MJ::JOB::reroll::0::", "reroll"),
        (r"^MJ::JOB::(low|high)_variation::1::", "vary"),
        (r"^MJ::JOB::(upsample_\w+)::1::", "upsample_hd"),
        (r"^MJ::Outpaint::(50|75)::1::", "zoom"),
        (r"^MJ::JOB::pan_(left|right|up|down)::1::", "pan"),
        (r"^MJ::CustomZoom::1::", "custom_zoom"),
        (r"^MJ::Inpaint::1::", "inpaint"),
        (r"^MJ::Job::PicReader::([1-4])::", "pick"),
        (r"^MJ::Job::PromptAnalyzer::([1-5])::", "pick"),
    )
)


def parse_custom_id(custom_id: str) -> ActionSpec | None:
    """What pressing ``custom_id`` does, or ``None`` for an id the simulator does not know."""
    for pattern, name in _PATTERNS:
        match = pattern.match(custom_id)
        if match is None:
            continue
        group = match.group(1) if match.groups() else ""
        if name == "upsample":
            return ActionSpec("UPSCALE", "upscale", index=int(group), label=f"U{group}")
        if name == "variation":
            return ActionSpec(
                "VARIATION", "grid", index=int(group), remixable=True, label=f"V{group}"
            )
        if name == "reroll":
            return ActionSpec("REROLL", "grid", remixable=True, label="reroll")
        if name == "vary":
            return ActionSpec("VARIATION", "grid", remixable=True, label=f"vary_{group}")
        if name == "upsample_hd":
            return ActionSpec("UPSCALE", "upscale", label=group)
        if name == "zoom":
            return ActionSpec("ZOOM", "grid", label=f"zoom_{group}")
        if name == "pan":
            return ActionSpec("PAN", "grid", remixable=True, label=f"pan_{group}")
        if name == "custom_zoom":
            return ActionSpec("CUSTOM_ZOOM", "grid", modal=True, label="custom_zoom")
        if name == "inpaint":
            return ActionSpec("INPAINT", "grid", modal=True, label="vary_region")
        return ActionSpec("IMAGINE", "grid", index=int(group), from_text=True, label=group)
    return None
