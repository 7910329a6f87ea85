"""Argument checks that run before any request, each with a message that says what to fix.

Every function is pure: it returns the normalised value or raises ``ValueError``/``TypeError``.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_MAX_IMAGE_BYTES",
    "REQUEST_MAX_IMAGE_BYTES",
    "ImageInput",
    "check_bot_type",
    "check_custom_id",
    "check_dimensions",
    "check_language",
    "check_media_url",
    "check_notify_hook",
    "check_prompt",
    "check_seconds",
    "check_state",
    "check_task_id",
    "check_timeout",
    "data_url_size",
    "image_data_url",
    "image_or_url",
    "is_task_id",
    "sniff_image_type",
    "video_data_url",
]

#: The default cap on one image, decoded. Discord refuses attachments far above this anyway.
DEFAULT_MAX_IMAGE_BYTES = 10 * 1024 * 1024
#: The ceiling request types enforce on their own (to bound memory); the configurable cap,
#: ``Client(max_image_bytes=...)``, is applied by the client when it sends the request.
REQUEST_MAX_IMAGE_BYTES = 64 * 1024 * 1024
MAX_PROMPT_CHARS = 8192
MAX_STATE_CHARS = 255
MAX_HOOK_CHARS = 2000
BOT_TYPES = ("MID_JOURNEY", "NIJI_JOURNEY")
DIMENSIONS = ("PORTRAIT", "SQUARE", "LANDSCAPE")

ImageInput = bytes | bytearray | memoryview | os.PathLike[str] | str

MAX_URL_CHARS = 2048
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:[_-][A-Za-z0-9]{2,8})?$")
_TASK_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CUSTOM_ID = re.compile(r"^MJ::\S{1,200}$")
_DATA_URL = re.compile(r"^data:(image/[a-z0-9.+-]+);base64,", re.IGNORECASE)


def check_prompt(prompt: object, *, name: str = "prompt") -> str:
    """A prompt must be a non-blank str of reasonable length."""
    if not isinstance(prompt, str):
        raise TypeError(f"{name} must be a str, not {type(prompt).__name__}")
    if not prompt.strip():
        raise ValueError(f"{name} must not be blank")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ValueError(f"{name} is {len(prompt)} characters; the limit is {MAX_PROMPT_CHARS}")
    return prompt


def check_state(state: object) -> str | None:
    """``state`` is echoed back on the task; servers keep at most 255 characters."""
    if state is None:
        return None
    if not isinstance(state, str):
        raise TypeError(f"state must be a str or None, not {type(state).__name__}")
    if len(state) > MAX_STATE_CHARS:
        raise ValueError(
            f"state is {len(state)} characters; servers keep at most {MAX_STATE_CHARS}"
        )
    return state


def check_notify_hook(url: object) -> str | None:
    """A webhook URL: http(s), at most 2000 characters."""
    if url is None:
        return None
    if not isinstance(url, str):
        raise TypeError(f"notify_hook must be a str or None, not {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"notify_hook must be an http(s) URL, not {url!r}")
    if len(url) > MAX_HOOK_CHARS:
        raise ValueError(f"notify_hook is {len(url)} characters; the limit is {MAX_HOOK_CHARS}")
    return url


def check_bot_type(bot_type: object) -> str | None:
    """``MID_JOURNEY`` or ``NIJI_JOURNEY`` (case-insensitive), or ``None`` for the default."""
    if bot_type is None:
        return None
    if not isinstance(bot_type, str):
        raise TypeError(f"bot_type must be a str or None, not {type(bot_type).__name__}")
    value = bot_type.strip().upper()
    if value not in BOT_TYPES:
        raise ValueError(f"bot_type must be one of {', '.join(BOT_TYPES)}, not {bot_type!r}")
    return value


def check_dimensions(dimensions: object) -> str:
    """Blend dimensions: ``PORTRAIT``, ``SQUARE`` or ``LANDSCAPE`` (case-insensitive)."""
    if not isinstance(dimensions, str):
        raise TypeError(f"dimensions must be a str, not {type(dimensions).__name__}")
    value = dimensions.strip().upper()
    if value not in DIMENSIONS:
        raise ValueError(f"dimensions must be one of {', '.join(DIMENSIONS)}, not {dimensions!r}")
    return value


def check_seconds(value: object, name: str, *, allow_inf: bool = False) -> float:
    """A positive duration in seconds (``inf`` only where "never" makes sense)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if math.isnan(value) or value <= 0 or (math.isinf(value) and not allow_inf):
        kind = "a positive number" if allow_inf else "a positive, finite number"
        raise ValueError(f"{name} must be {kind} of seconds, not {value!r}")
    return float(value)


def check_timeout(timeout: object) -> float | None:
    """A caller's overall timeout: ``None`` (no limit) or a number of seconds >= 0.

    Checked before anything is sent: a negative or NaN timeout would otherwise expire at once,
    after the (paid) submit, and abandon the job.
    """
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(
            f"timeout must be a number of seconds or None, not {type(timeout).__name__}"
        )
    if math.isnan(timeout) or timeout < 0:
        raise ValueError(f"timeout must be >= 0 seconds (or None for no limit), not {timeout!r}")
    return float(timeout)


def is_task_id(value: str) -> bool:
    """Whether ``value`` (already stripped) is a task id by the rule of :func:`check_task_id`.

    Ids a server sends are held to the same rule before they go into a URL path.

    >>> is_task_id("1320098173412546"), is_task_id("../../admin/x?y=")
    (True, False)
    """
    return _TASK_ID.fullmatch(value) is not None


def check_task_id(task_id: object) -> str:
    """A task id: a str (or int) of letters, digits, ``-`` and ``_``; it goes into URL paths."""
    if isinstance(task_id, bool) or not isinstance(task_id, str | int):
        raise TypeError(f"task id must be a str, not {type(task_id).__name__}")
    value = str(task_id).strip()
    if not is_task_id(value):
        raise ValueError(f"not a task id: {task_id!r} (expected digits like '1320098173412546')")
    return value


def check_custom_id(custom_id: object) -> str:
    """A button custom id as the server sent it, e.g. ``MJ::JOB::upsample::1::<hash>``."""
    if not isinstance(custom_id, str):
        raise TypeError(f"custom_id must be a str, not {type(custom_id).__name__}")
    if not _CUSTOM_ID.fullmatch(custom_id):
        raise ValueError(
            f"not a button custom id: {custom_id!r} (expected 'MJ::...' from task.buttons)"
        )
    return custom_id


def sniff_image_type(data: bytes) -> str | None:
    """The MIME type from an image's magic bytes (PNG, JPEG, GIF, WEBP), else ``None``."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def data_url_size(data_url: str) -> int:
    """The decoded size of a base64 data URL, without decoding it."""
    payload = data_url.split(",", 1)[1] if "," in data_url else ""
    return len(payload) * 3 // 4 - payload[-2:].count("=")


def _check_size(size: int, max_bytes: int, what: str) -> None:
    if size > max_bytes:
        raise ValueError(
            f"{what} is {size:,} bytes; the limit is {max_bytes:,} "
            "(raise it with Client(max_image_bytes=...))"
        )


def image_data_url(
    image: object, *, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES, what: str = "image"
) -> str:
    """Turn ``bytes``, a ``pathlib.Path`` or a ``data:`` URL into a checked base64 data URL.

    Raises:
        TypeError: not one of the accepted types (a plain str must be a data URL: wrap file
            paths in ``pathlib.Path``).
        ValueError: unreadable file, not an image, or larger than ``max_bytes``.
    """
    if isinstance(image, bytes | bytearray | memoryview):
        data = bytes(image)
    elif isinstance(image, os.PathLike):
        path = Path(image)
        try:
            size = path.stat().st_size
            _check_size(size, max_bytes, f"{what} {path}")
            data = path.read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    elif isinstance(image, str):
        match = _DATA_URL.match(image)
        if match is None:
            raise TypeError(
                f"{what} given as a str must be a 'data:image/...;base64,' URL; wrap file paths "
                "in pathlib.Path or pass the bytes"
            )
        _check_size(data_url_size(image), max_bytes, what)
        try:
            data = base64.b64decode(image[match.end() :], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"{what} data URL has invalid base64: {exc}") from exc
    else:
        raise TypeError(
            f"{what} must be bytes, a pathlib.Path or a data: URL str, not {type(image).__name__}"
        )
    if not data:
        raise ValueError(f"{what} is empty")
    _check_size(len(data), max_bytes, what)
    mime = sniff_image_type(data)
    if mime is None:
        raise ValueError(f"{what} is not a PNG, JPEG, GIF or WEBP image")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def check_media_url(url: object, *, what: str = "image") -> str:
    """An ``http(s)`` URL the server fetches itself (C takes URLs where it takes images)."""
    if not isinstance(url, str):
        raise TypeError(f"{what} URL must be a str, not {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url):
        raise ValueError(f"{what} must be an http(s) URL, not {url!r}")
    if len(url) > MAX_URL_CHARS:
        raise ValueError(f"{what} URL is {len(url)} characters; the limit is {MAX_URL_CHARS}")
    return url


def image_or_url(
    image: object, *, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES, what: str = "image"
) -> str:
    """An image as a checked data URL, or an ``http(s)`` URL passed through for the server.

    Raises:
        TypeError, ValueError: as :func:`image_data_url`, or a malformed URL.
    """
    if isinstance(image, str) and image.startswith(("http://", "https://")):
        return check_media_url(image, what=what)
    return image_data_url(image, max_bytes=max_bytes, what=what)


def _is_mp4(data: bytes) -> bool:
    # ISO base media files start with a box whose type is "ftyp" (size first, then type).
    return len(data) >= 12 and data[4:8] == b"ftyp"


def video_data_url(video: object, *, max_bytes: int, what: str = "video") -> str:
    """An ``.mp4`` (bytes or ``pathlib.Path``) as a ``data:video/mp4;base64,`` URL.

    Raises:
        TypeError: not bytes or a path (a str must be an http(s) URL, see :func:`image_or_url`).
        ValueError: unreadable, empty, not an MP4, or larger than ``max_bytes``.
    """
    if isinstance(video, bytes | bytearray | memoryview):
        data = bytes(video)
    elif isinstance(video, os.PathLike):
        path = Path(video)
        try:
            _check_size(path.stat().st_size, max_bytes, f"{what} {path}")
            data = path.read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    else:
        raise TypeError(
            f"{what} must be bytes, a pathlib.Path or an http(s) URL, not {type(video).__name__}"
        )
    if not data:
        raise ValueError(f"{what} is empty")
    _check_size(len(data), max_bytes, what)
    if not _is_mp4(data):
        raise ValueError(f"{what} is not an MP4 video (the server takes .mp4 only)")
    return f"data:video/mp4;base64,{base64.b64encode(data).decode('ascii')}"


def check_language(language: object) -> str | None:
    """A describe language tag such as ``"zh"`` or ``"zh_cn"`` (C stores at most 20 chars)."""
    if language is None:
        return None
    if not isinstance(language, str):
        raise TypeError(f"language must be a str or None, not {type(language).__name__}")
    value = language.strip()
    if not _LANGUAGE.match(value):
        raise ValueError(f"language must be a tag like 'en' or 'zh_cn', not {language!r}")
    return value
