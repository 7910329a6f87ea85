"""Real PNG bytes for the simulator's image URLs, built with zlib and struct only.

An image is named by a key ``{task_id}-{variant}``; the pixels depend only on the key, so an
image URL keeps working after the task is gone and the same URL always serves the same bytes.
Variants: ``grid`` (2x2 grid of four colours), ``preview{N}`` (a small, washed-out grid at N
percent), ``u{n}`` (the single image behind quadrant n of task_id's grid), ``v{n}`` (the
poster of video n) and ``single``. Video keys name a tiny MP4 (:func:`mp4_for_key`).
"""

from __future__ import annotations

import re
import struct
import zlib
from functools import lru_cache

__all__ = [
    "GRID_SIZE",
    "image_key_is_valid",
    "mp4_for_key",
    "png_for_key",
    "quadrant_colours",
    "video_key_is_valid",
]

GRID_SIZE = 256
_PREVIEW_SIZE = 128
_GAP = 4  # px of dark gutter between quadrants, so a grid looks like one
_KEY = re.compile(
    r"^(?P<id>[0-9A-Za-z]{1,40})-(?P<variant>grid|single|u[1-4]|v[1-4]|preview\d{1,3})$"
)
_VIDEO_KEY = re.compile(r"^(?P<id>[0-9A-Za-z]{1,40})-v[1-4]$")

RGB = tuple[int, int, int]


def image_key_is_valid(key: str) -> bool:
    """``True`` if ``key`` names an image this module can draw."""
    return _KEY.match(key) is not None


def video_key_is_valid(key: str) -> bool:
    """``True`` if ``key`` names a video (``{task_id}-v{n}``)."""
    return _VIDEO_KEY.match(key) is not None


def mp4_for_key(key: str) -> bytes:
    """A small ISO-BMFF file (an ``ftyp`` box and an ``mdat``) that stands for video ``key``.

    Not playable: it carries no ``moov``, only what tells an MP4 apart (and the key).
    """
    if not video_key_is_valid(key):
        raise ValueError(f"not a video key: {key!r}")
    ftyp = struct.pack(">I", 24) + b"ftypisom" + struct.pack(">I", 0x200) + b"isomiso2"
    payload = key.encode() * 64
    return ftyp + struct.pack(">I", 8 + len(payload)) + b"mdat" + payload


def quadrant_colours(task_id: str) -> tuple[RGB, RGB, RGB, RGB]:
    """The four colours of ``task_id``'s grid (top-left, top-right, bottom-left, bottom-right)."""
    return (_colour(task_id, 0), _colour(task_id, 1), _colour(task_id, 2), _colour(task_id, 3))


def _colour(task_id: str, quadrant: int) -> RGB:
    digest = zlib.crc32(f"{task_id}/{quadrant}".encode())

    def channel(shift: int) -> int:
        # Keep every channel in 40..215 so quadrants never collapse to black or white.
        return 40 + ((digest >> shift) & 0xFF) * 175 // 255

    return channel(0), channel(8), channel(16)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def encode_png(width: int, height: int, rows: list[bytes]) -> bytes:
    """Encode 8-bit RGB scanlines (each ``3 * width`` bytes) as a PNG file."""
    raw = b"".join(b"\x00" + row for row in rows)  # filter type 0 per scanline
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 6))
        + _chunk(b"IEND", b"")
    )


def _grid(colours: tuple[RGB, RGB, RGB, RGB], size: int) -> bytes:
    half = size // 2
    gap = bytes((16, 16, 16))
    pad = _GAP // 2

    def row(left: RGB, right: RGB) -> bytes:
        return bytes(left) * (half - pad) + gap * (2 * pad) + bytes(right) * (half - pad)

    top, bottom = row(colours[0], colours[1]), row(colours[2], colours[3])
    gutter = gap * size
    rows = [top] * (half - pad) + [gutter] * (2 * pad) + [bottom] * (half - pad)
    return encode_png(size, size, rows)


def _gradient(colour: RGB, size: int) -> bytes:
    # A vertical fade to 60% brightness: one colour per scanline, cheap and not flat.
    rows = []
    for y in range(size):
        factor = 1.0 - 0.4 * y / max(size - 1, 1)
        pixel = bytes(int(channel * factor) for channel in colour)
        rows.append(pixel * size)
    return encode_png(size, size, rows)


def _washed(colour: RGB, percent: int) -> RGB:
    weight = max(0, min(100, percent)) / 100
    return (
        int(128 + (colour[0] - 128) * weight),
        int(128 + (colour[1] - 128) * weight),
        int(128 + (colour[2] - 128) * weight),
    )


@lru_cache(maxsize=512)
def png_for_key(key: str) -> bytes:
    """The PNG for an image key (see the module docstring).

    Raises:
        ValueError: ``key`` is not a valid image key.
    """
    match = _KEY.match(key)
    if match is None:
        raise ValueError(f"not an image key: {key!r}")
    task_id, variant = match.group("id"), match.group("variant")
    colours = quadrant_colours(task_id)
    if variant == "grid":
        return _grid(colours, GRID_SIZE)
    if variant.startswith("preview"):
        percent = int(variant.removeprefix("preview"))
        a, b, c, d = (_washed(colour, percent) for colour in colours)
        return _grid((a, b, c, d), _PREVIEW_SIZE)
    if variant.startswith(("u", "v")):
        return _gradient(colours[int(variant[1]) - 1], GRID_SIZE)
    return _gradient(colours[0], GRID_SIZE)
