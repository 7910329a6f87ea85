"""Result text for describe and shorten, and the prompt checks (banned words, test markers)."""

from __future__ import annotations

import random
import re
from collections.abc import Iterable

__all__ = [
    "FAIL_REASONS",
    "banned_word",
    "describe_options",
    "has_marker",
    "numbered",
    "shorten_options",
]

_NUMBERS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣")
_SUBJECTS = (
    "a red fox",
    "an old lighthouse",
    "a paper boat",
    "a sleeping cat",
    "a mountain village",
    "a brass robot",
    "a field of sunflowers",
    "a koi pond",
)
_STYLES = (
    "watercolor painting",
    "35mm photograph",
    "ink sketch",
    "isometric illustration",
    "oil painting",
    "low-poly render",
)
_SETTINGS = (
    "in morning mist",
    "under neon lights",
    "at golden hour",
    "in heavy rain",
    "on a snowy night",
    "in soft studio light",
)
_RATIOS = ("--ar 1:1", "--ar 4:3", "--ar 16:9", "--ar 2:3")

#: Reasons a job fails when ``failure_rate`` picks it (real servers' wording).
FAIL_REASONS = (
    "Request cancelled due to output filters",
    "[Invalid parameter] Invalid value",
    "Action needed to continue",
    "任务超时",
)


def numbered(options: Iterable[str]) -> str:
    """Join options the way Discord shows them: ``1️⃣ first\\n\\n2️⃣ second ...``."""
    return "\n\n".join(f"{_NUMBERS[i]} {text}" for i, text in enumerate(options))


def describe_options(rng: random.Random) -> tuple[str, ...]:
    """Four image descriptions, drawn from ``rng``."""
    return tuple(
        f"{rng.choice(_STYLES)} of {rng.choice(_SUBJECTS)} {rng.choice(_SETTINGS)} "
        f"{rng.choice(_RATIOS)}"
        for _ in range(4)
    )


def shorten_options(prompt: str) -> tuple[str, ...]:
    """Five shorter versions of ``prompt``: each keeps fewer of its words."""
    words = [w for w in prompt.split() if not w.startswith("--")] or [prompt.strip()]
    options = []
    for n in range(5):
        keep = max(1, len(words) - n * max(1, len(words) // 6))
        options.append(" ".join(words[:keep]))
    return tuple(options)


def has_marker(prompt: str, marker: str) -> bool:
    """``True`` if ``prompt`` carries the test marker (``--fail``, ``--stall``, ``--slow``)."""
    return re.search(rf"(?<!\S){re.escape(marker)}(?!\S)", prompt) is not None


def banned_word(prompt: str, banned: Iterable[str]) -> str | None:
    """The first banned word ``prompt`` contains as a whole word (case-insensitive), if any."""
    lowered = prompt.lower()
    for word in banned:
        if re.search(rf"\b{re.escape(word.lower())}\b", lowered):
            return word
    return None
