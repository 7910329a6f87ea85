"""Argument checks (``_validation.py``): refused before anything is sent, with a message that
says what to fix.

A check that lets bad input through costs a paid submit that fails (or a job that is
abandoned: a negative timeout would expire at once, after the submit). A check that refuses
good input blocks a user. Each row is one input at or beside an edge, and the outcome.
"""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any

import pytest

import mjasync
from mjasync._validation import (
    DEFAULT_MAX_IMAGE_BYTES,
    REQUEST_MAX_IMAGE_BYTES,
    check_bot_type,
    check_custom_id,
    check_dimensions,
    check_language,
    check_media_url,
    check_notify_hook,
    check_prompt,
    check_seconds,
    check_state,
    check_task_id,
    check_timeout,
    data_url_size,
    image_data_url,
    image_or_url,
    sniff_image_type,
    video_data_url,
)

NAN, INF = math.nan, math.inf


class Fails:
    """The expected refusal: the exception type and a fragment of its message."""

    def __init__(self, error: type[Exception], words: str) -> None:
        self.error, self.words = error, words

    def __repr__(self) -> str:
        return f"Fails({self.error.__name__}, {self.words!r})"


def expect(call: Any, outcome: Any) -> None:
    """Run ``call()``; it must return ``outcome`` (same type too), or fail as ``outcome`` says."""
    if isinstance(outcome, Fails):
        with pytest.raises(outcome.error) as info:
            call()
        assert outcome.words in str(info.value)
        return
    result = call()
    assert result == outcome or (result != result and outcome != outcome)  # NaN == NaN here
    assert type(result) is type(outcome)


def _ids(rows: list[tuple[Any, ...]]) -> list[str]:
    return [row[0] for row in rows]


# -- text arguments -----------------------------------------------------------------------------

#: (id, call, outcome)
TEXT: list[tuple[str, Any, Any]] = [
    ("prompt", lambda: check_prompt("a cat"), "a cat"),
    ("prompt-kept-as-given", lambda: check_prompt(" a cat "), " a cat "),
    ("prompt-8192-chars", lambda: check_prompt("x" * 8192), "x" * 8192),
    (
        "prompt-8193-chars",
        lambda: check_prompt("x" * 8193),
        Fails(ValueError, "prompt is 8193 characters; the limit is 8192"),
    ),
    ("prompt-empty", lambda: check_prompt(""), Fails(ValueError, "prompt must not be blank")),
    ("prompt-blank", lambda: check_prompt(" \n\t"), Fails(ValueError, "prompt must not be blank")),
    (
        "prompt-none",
        lambda: check_prompt(None),
        Fails(TypeError, "prompt must be a str, not NoneType"),
    ),
    ("prompt-bytes", lambda: check_prompt(b"a cat"), Fails(TypeError, "not bytes")),
    (
        "prompt-named",
        lambda: check_prompt("", name="modal prompt"),
        Fails(ValueError, "modal prompt must"),
    ),
    (
        "prompt-named-type",
        lambda: check_prompt(1, name="text"),
        Fails(TypeError, "text must be a str"),
    ),
    (
        "prompt-named-length",
        lambda: check_prompt("x" * 9000, name="text"),
        Fails(ValueError, "text is 9000 characters"),
    ),
    ("state-none", lambda: check_state(None), None),
    ("state-empty", lambda: check_state(""), ""),
    ("state-255-chars", lambda: check_state("s" * 255), "s" * 255),
    (
        "state-256-chars",
        lambda: check_state("s" * 256),
        Fails(ValueError, "state is 256 characters; servers keep at most 255"),
    ),
    ("state-int", lambda: check_state(5), Fails(TypeError, "state must be a str or None, not int")),
    ("hook-none", lambda: check_notify_hook(None), None),
    ("hook-https", lambda: check_notify_hook("https://h.example/cb"), "https://h.example/cb"),
    ("hook-http", lambda: check_notify_hook("http://127.0.0.1:8080"), "http://127.0.0.1:8080"),
    ("hook-upper-scheme", lambda: check_notify_hook("HTTPS://h.example"), "HTTPS://h.example"),
    (
        "hook-2000-chars",
        lambda: check_notify_hook("https://h/" + "x" * 1990),
        "https://h/" + "x" * 1990,
    ),
    (
        "hook-2001-chars",
        lambda: check_notify_hook("https://h/" + "x" * 1991),
        Fails(ValueError, "notify_hook is 2001 characters; the limit is 2000"),
    ),
    (
        "hook-ftp",
        lambda: check_notify_hook("ftp://h.example"),
        Fails(ValueError, "notify_hook must be an http(s) URL, not 'ftp://h.example'"),
    ),
    ("hook-no-host", lambda: check_notify_hook("https://"), Fails(ValueError, "http(s) URL")),
    ("hook-no-scheme", lambda: check_notify_hook("h.example/cb"), Fails(ValueError, "http(s) URL")),
    (
        "hook-int",
        lambda: check_notify_hook(1),
        Fails(TypeError, "notify_hook must be a str or None, not int"),
    ),
    ("bot-none", lambda: check_bot_type(None), None),
    ("bot-mj", lambda: check_bot_type("MID_JOURNEY"), "MID_JOURNEY"),
    ("bot-niji-any-case-padded", lambda: check_bot_type(" niji_Journey "), "NIJI_JOURNEY"),
    (
        "bot-unknown",
        lambda: check_bot_type("MJ"),
        Fails(ValueError, "bot_type must be one of MID_JOURNEY, NIJI_JOURNEY, not 'MJ'"),
    ),
    (
        "bot-int",
        lambda: check_bot_type(1),
        Fails(TypeError, "bot_type must be a str or None, not int"),
    ),
    ("dimensions-portrait", lambda: check_dimensions("PORTRAIT"), "PORTRAIT"),
    ("dimensions-any-case-padded", lambda: check_dimensions(" square "), "SQUARE"),
    ("dimensions-landscape", lambda: check_dimensions("landscape"), "LANDSCAPE"),
    (
        "dimensions-unknown",
        lambda: check_dimensions("wide"),
        Fails(ValueError, "dimensions must be one of PORTRAIT, SQUARE, LANDSCAPE, not 'wide'"),
    ),
    (
        "dimensions-int",
        lambda: check_dimensions(3),
        Fails(TypeError, "dimensions must be a str, not int"),
    ),
    # describe's language (C's DescribeDTO): a tag, two or three letters and a subtag of 2-8.
    ("language-none", lambda: check_language(None), None),
    ("language-en", lambda: check_language("en"), "en"),
    ("language-zh-cn-padded", lambda: check_language(" zh_cn "), "zh_cn"),
    ("language-three-letters-dash", lambda: check_language("yue-Hant"), "yue-Hant"),
    ("language-subtag-8", lambda: check_language("zh_abcdefgh"), "zh_abcdefgh"),
    (
        "language-subtag-9",
        lambda: check_language("zh_abcdefghi"),
        Fails(ValueError, "language must be a tag like 'en' or 'zh_cn', not 'zh_abcdefghi'"),
    ),
    ("language-one-letter", lambda: check_language("e"), Fails(ValueError, "not 'e'")),
    ("language-word", lambda: check_language("english"), Fails(ValueError, "a tag like")),
    ("language-subtag-1", lambda: check_language("zh_c"), Fails(ValueError, "a tag like")),
    ("language-blank", lambda: check_language("  "), Fails(ValueError, "not '  '")),
    (
        "language-int",
        lambda: check_language(5),
        Fails(TypeError, "language must be a str or None, not int"),
    ),
]


@pytest.mark.parametrize(("call", "outcome"), [r[1:] for r in TEXT], ids=_ids(TEXT))
def test_text_arguments(call: Any, outcome: Any) -> None:
    expect(call, outcome)


# -- durations ----------------------------------------------------------------------------------

#: (id, call, outcome)
DURATIONS: list[tuple[str, Any, Any]] = [
    ("seconds-int-as-float", lambda: check_seconds(2, "interval"), 2.0),
    ("seconds-fraction", lambda: check_seconds(0.25, "interval"), 0.25),
    ("seconds-tiny", lambda: check_seconds(1e-9, "interval"), 1e-9),
    (
        "seconds-zero",
        lambda: check_seconds(0, "interval"),
        Fails(ValueError, "interval must be a positive, finite number of seconds, not 0"),
    ),
    ("seconds-negative", lambda: check_seconds(-1.5, "interval"), Fails(ValueError, "not -1.5")),
    ("seconds-nan", lambda: check_seconds(NAN, "interval"), Fails(ValueError, "not nan")),
    ("seconds-inf-refused", lambda: check_seconds(INF, "interval"), Fails(ValueError, "finite")),
    ("seconds-inf-allowed", lambda: check_seconds(INF, "ttl", allow_inf=True), INF),
    (
        "seconds-zero-inf-allowed",
        lambda: check_seconds(0, "ttl", allow_inf=True),
        Fails(ValueError, "ttl must be a positive number of seconds, not 0"),
    ),
    (
        "seconds-minus-inf-allowed",
        lambda: check_seconds(-INF, "ttl", allow_inf=True),
        Fails(ValueError, "not -inf"),
    ),
    (
        "seconds-nan-inf-allowed",
        lambda: check_seconds(NAN, "ttl", allow_inf=True),
        Fails(ValueError, "not nan"),
    ),
    (
        "seconds-bool",
        lambda: check_seconds(True, "interval"),
        Fails(TypeError, "interval must be a number of seconds, not bool"),
    ),
    ("seconds-str", lambda: check_seconds("2", "interval"), Fails(TypeError, "not str")),
    ("timeout-none-no-limit", lambda: check_timeout(None), None),
    ("timeout-zero", lambda: check_timeout(0), 0.0),  # issue 18: the exact edge
    ("timeout-int-as-float", lambda: check_timeout(30), 30.0),
    ("timeout-inf", lambda: check_timeout(INF), INF),
    ("timeout-minus-zero", lambda: check_timeout(-0.0), -0.0),
    (
        "timeout-negative",
        lambda: check_timeout(-1),
        Fails(ValueError, "timeout must be >= 0 seconds (or None for no limit), not -1"),
    ),
    ("timeout-tiny-negative", lambda: check_timeout(-1e-9), Fails(ValueError, "not -1e-09")),
    ("timeout-nan", lambda: check_timeout(NAN), Fails(ValueError, "not nan")),
    (
        "timeout-bool",
        lambda: check_timeout(False),
        Fails(TypeError, "timeout must be a number of seconds or None, not bool"),
    ),
    ("timeout-str", lambda: check_timeout("30"), Fails(TypeError, "not str")),
]


@pytest.mark.parametrize(("call", "outcome"), [r[1:] for r in DURATIONS], ids=_ids(DURATIONS))
def test_durations(call: Any, outcome: Any) -> None:
    expect(call, outcome)


# -- ids that go into URL paths and button payloads --------------------------------------------

HASH = "0ddb91a0-af46-4ae9-8e8e-c271074eb6e6"

#: (id, call, outcome)
IDS: list[tuple[str, Any, Any]] = [
    ("task-id-J-digits", lambda: check_task_id("1320098173412546"), "1320098173412546"),
    ("task-id-number", lambda: check_task_id(1320098173412546), "1320098173412546"),
    ("task-id-padded", lambda: check_task_id(" 42\n"), "42"),
    ("task-id-letters-dash-underscore", lambda: check_task_id("aZ-9_x"), "aZ-9_x"),
    ("task-id-64-chars", lambda: check_task_id("9" * 64), "9" * 64),
    ("task-id-65-chars", lambda: check_task_id("9" * 65), Fails(ValueError, "not a task id")),
    ("task-id-empty", lambda: check_task_id(""), Fails(ValueError, "not a task id: ''")),
    ("task-id-slash", lambda: check_task_id("1/../2"), Fails(ValueError, "not a task id")),
    ("task-id-space-inside", lambda: check_task_id("4 2"), Fails(ValueError, "not a task id")),
    ("task-id-arabic-digit", lambda: check_task_id("\u0661"), Fails(ValueError, "not a task id")),
    ("task-id-negative-number-is-url-safe", lambda: check_task_id(-5), "-5"),
    (
        "task-id-bool",
        lambda: check_task_id(True),
        Fails(TypeError, "task id must be a str, not bool"),
    ),
    ("task-id-float", lambda: check_task_id(4.2), Fails(TypeError, "not float")),
    ("task-id-none", lambda: check_task_id(None), Fails(TypeError, "not NoneType")),
    (
        "custom-id-upsample",
        lambda: check_custom_id(f"MJ::JOB::upsample::1::{HASH}"),
        f"MJ::JOB::upsample::1::{HASH}",
    ),
    ("custom-id-200-after-prefix", lambda: check_custom_id("MJ::" + "x" * 200), "MJ::" + "x" * 200),
    (
        "custom-id-201-after-prefix",
        lambda: check_custom_id("MJ::" + "x" * 201),
        Fails(ValueError, "not a button custom id"),
    ),
    ("custom-id-prefix-only", lambda: check_custom_id("MJ::"), Fails(ValueError, "not a button")),
    ("custom-id-space", lambda: check_custom_id("MJ::JOB:: 1"), Fails(ValueError, "not a button")),
    ("custom-id-lower-prefix", lambda: check_custom_id("mj::JOB"), Fails(ValueError, "'mj::JOB'")),
    ("custom-id-label", lambda: check_custom_id("U1"), Fails(ValueError, "from task.buttons")),
    (
        "custom-id-int",
        lambda: check_custom_id(1),
        Fails(TypeError, "custom_id must be a str, not int"),
    ),
]


@pytest.mark.parametrize(("call", "outcome"), [r[1:] for r in IDS], ids=_ids(IDS))
def test_ids(call: Any, outcome: Any) -> None:
    expect(call, outcome)


# -- images: the type from the magic bytes, the size before anything is read or decoded ----------

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 8
WEBP = b"RIFF\x00\x00\x00\x00WEBP"

#: (id, leading bytes, MIME type or None)
MAGIC: list[tuple[str, bytes, str | None]] = [
    ("png", PNG, "image/png"),
    ("png-magic-only", b"\x89PNG\r\n\x1a\n", "image/png"),
    ("png-magic-cut", b"\x89PNG\r\n\x1a", None),
    ("jpeg", JPEG, "image/jpeg"),
    ("jpeg-3-bytes", b"\xff\xd8\xff", "image/jpeg"),
    ("jpeg-2-bytes", b"\xff\xd8", None),
    ("gif87a", b"GIF87a....", "image/gif"),
    ("gif89a", b"GIF89a", "image/gif"),
    ("gif88a", b"GIF88a", None),
    ("webp-12-bytes", WEBP, "image/webp"),
    ("webp-with-data", WEBP + b"VP8 ", "image/webp"),
    ("webp-11-bytes", WEBP[:11], None),
    ("riff-not-webp", b"RIFF\x00\x00\x00\x00WAVE", None),
    ("webp-tag-without-riff", b"RIFX\x00\x00\x00\x00WEBP", None),
    ("empty", b"", None),
    ("text", b"hello world!", None),
]


@pytest.mark.parametrize(("data", "mime"), [r[1:] for r in MAGIC], ids=_ids(MAGIC))
def test_sniff_image_type(data: bytes, mime: str | None) -> None:
    assert sniff_image_type(data) == mime


#: (id, data URL, decoded size counted without decoding)
SIZES: list[tuple[str, str, int]] = [
    ("four-chars-three-bytes", "data:image/png;base64,AAAA", 3),
    ("one-pad", "data:image/png;base64,AAA=", 2),
    ("two-pad", "data:image/png;base64,AA==", 1),
    ("eight-chars", "data:image/png;base64,AAAAAAAA", 6),
    # Only the last two characters can be padding: an "=" elsewhere is not subtracted.
    ("equals-third-from-the-end", "data:image/png;base64,A=AA", 3),
    ("equals-mid-payload", "data:image/png;base64,AAAA=AAA", 6),
    ("empty-payload", "data:image/png;base64,", 0),
    ("no-comma", "data:image/png;base64", 0),
    ("comma-in-payload", "data:x,AAAA,AAA", 6),
]


@pytest.mark.parametrize(("url", "size"), [r[1:] for r in SIZES], ids=_ids(SIZES))
def test_data_url_size(url: str, size: int) -> None:
    assert data_url_size(url) == size


def b64(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


#: (id, image, keyword arguments, outcome: the data URL, or a refusal)
IMAGES: list[tuple[str, Any, dict[str, Any], Any]] = [
    ("png-bytes", PNG, {}, b64(PNG)),
    ("jpeg-bytearray", bytearray(JPEG), {}, b64(JPEG, "image/jpeg")),
    ("webp-memoryview", memoryview(WEBP), {}, b64(WEBP, "image/webp")),
    ("data-url", b64(PNG), {}, b64(PNG)),
    ("data-url-any-case", b64(PNG, "IMAGE/PNG").replace("data:", "DATA:"), {}, b64(PNG)),
    ("data-url-type-from-the-bytes", b64(PNG, "image/jpeg"), {}, b64(PNG)),
    ("exactly-max-bytes", PNG, {"max_bytes": len(PNG)}, b64(PNG)),
    (
        "one-over-max-bytes",
        PNG + b"\x00",
        {"max_bytes": len(PNG)},
        Fails(
            ValueError, "image is 17 bytes; the limit is 16 (raise it with Client(max_image_bytes"
        ),
    ),
    (
        "thousands-separators",
        PNG + b"\x00" * 2000,
        {"max_bytes": 1024},
        Fails(ValueError, "image is 2,016 bytes; the limit is 1,024"),
    ),
    ("data-url-exactly-max", b64(PNG), {"max_bytes": len(PNG)}, b64(PNG)),
    (
        "data-url-over-max",
        b64(PNG + b"\x00\x00"),
        {"max_bytes": len(PNG)},
        Fails(ValueError, "image is 18 bytes; the limit is 16"),
    ),
    # Counted before decoding: an oversized URL is refused for its size, never decoded.
    (
        "data-url-over-max-not-decoded",
        "data:image/png;base64," + "!" * 2000,
        {"max_bytes": 1000},
        Fails(ValueError, "image is 1,500 bytes; the limit is 1,000"),
    ),
    (
        "data-url-bad-base64",
        "data:image/png;base64,iVBO!!",
        {},
        Fails(ValueError, "image data URL has invalid base64"),
    ),
    ("data-url-empty", "data:image/png;base64,", {}, Fails(ValueError, "image is empty")),
    ("bytes-empty", b"", {}, Fails(ValueError, "image is empty")),
    (
        "not-an-image",
        b"hello world!",
        {},
        Fails(ValueError, "image is not a PNG, JPEG, GIF or WEBP image"),
    ),
    (
        "file-path-as-str",
        "cat.png",
        {},
        Fails(
            TypeError,
            "image given as a str must be a 'data:image/...;base64,' URL; wrap file paths "
            "in pathlib.Path or pass the bytes",
        ),
    ),
    ("data-url-not-image", "data:text/plain;base64,AAAA", {}, Fails(TypeError, "data:image/")),
    (
        "int",
        5,
        {},
        Fails(TypeError, "image must be bytes, a pathlib.Path or a data: URL str, not int"),
    ),
    ("named", b"", {"what": "mask"}, Fails(ValueError, "mask is empty")),
    ("named-type", 5, {"what": "mask"}, Fails(TypeError, "mask must be bytes")),
    ("named-size", PNG, {"what": "mask", "max_bytes": 1}, Fails(ValueError, "mask is 16 bytes")),
    ("named-str", "x", {"what": "images[1]"}, Fails(TypeError, "images[1] given as a str")),
    (
        "named-base64",
        "data:image/png;base64,!",
        {"what": "mask"},
        Fails(ValueError, "mask data URL"),
    ),
    ("named-magic", b"text", {"what": "mask"}, Fails(ValueError, "mask is not a PNG")),
    (
        "default-cap-10-MiB",
        PNG + b"\x00" * (DEFAULT_MAX_IMAGE_BYTES - len(PNG) + 1),
        {},
        Fails(ValueError, "image is 10,485,761 bytes; the limit is 10,485,760"),
    ),
]


@pytest.mark.parametrize(("image", "kwargs", "outcome"), [r[1:] for r in IMAGES], ids=_ids(IMAGES))
def test_image_data_url(image: Any, kwargs: dict[str, Any], outcome: Any) -> None:
    expect(lambda: image_data_url(image, **kwargs), outcome)


# -- images or URLs (C takes an http(s) URL where it takes an image; the server fetches it) ------

URL = "https://cdn.example/cat.png"

#: (id, call, outcome)
MEDIA_URLS: list[tuple[str, Any, Any]] = [
    ("url-https", lambda: check_media_url(URL), URL),
    (
        "url-http-port",
        lambda: check_media_url("http://127.0.0.1:9/a.png"),
        "http://127.0.0.1:9/a.png",
    ),
    ("url-upper-scheme", lambda: check_media_url("HTTPS://cdn.example/a"), "HTTPS://cdn.example/a"),
    (
        "url-2048-chars",
        lambda: check_media_url("https://h/" + "x" * 2038),
        "https://h/" + "x" * 2038,
    ),
    (
        "url-2049-chars",
        lambda: check_media_url("https://h/" + "x" * 2039),
        Fails(ValueError, "image URL is 2049 characters; the limit is 2048"),
    ),
    (
        "url-ftp",
        lambda: check_media_url("ftp://cdn.example/a.png"),
        Fails(ValueError, "image must be an http(s) URL, not 'ftp://cdn.example/a.png'"),
    ),
    ("url-no-host", lambda: check_media_url("https:///a.png"), Fails(ValueError, "http(s) URL")),
    ("url-scheme-only", lambda: check_media_url("https://"), Fails(ValueError, "http(s) URL")),
    ("url-space", lambda: check_media_url("https://h/a b.png"), Fails(ValueError, "http(s) URL")),
    ("url-newline", lambda: check_media_url(URL + "\n"), Fails(ValueError, "http(s) URL")),
    ("url-no-scheme", lambda: check_media_url("cdn.example/a"), Fails(ValueError, "http(s) URL")),
    (
        "url-int",
        lambda: check_media_url(5),
        Fails(TypeError, "image URL must be a str, not int"),
    ),
    (
        "url-named",
        lambda: check_media_url("https://", what="endImage"),
        Fails(ValueError, "endImage must be an http(s) URL, not 'https://'"),
    ),
    (
        "url-named-length",
        lambda: check_media_url("https://h/" + "x" * 2039, what="video"),
        Fails(ValueError, "video URL is 2049 characters"),
    ),
    ("url-named-type", lambda: check_media_url(None, what="video"), Fails(TypeError, "video URL")),
    # image_or_url: an http(s) str goes to the server as it is; anything else is an image.
    ("either-https", lambda: image_or_url(URL), URL),
    ("either-http", lambda: image_or_url("http://h.example/a"), "http://h.example/a"),
    ("either-png-bytes", lambda: image_or_url(PNG), b64(PNG)),
    ("either-data-url", lambda: image_or_url(b64(PNG)), b64(PNG)),
    (
        "either-path-as-str",
        lambda: image_or_url("cat.png"),
        Fails(TypeError, "image given as a str"),
    ),
    (
        "either-int",
        lambda: image_or_url(5),
        Fails(TypeError, "image must be bytes, a pathlib.Path or a data: URL str, not int"),
    ),
    (
        "either-bad-url",
        lambda: image_or_url("https://"),
        Fails(ValueError, "image must be an http(s) URL, not 'https://'"),
    ),
    ("either-url-long", lambda: image_or_url("http://h/" + "x" * 2040), Fails(ValueError, "2049")),
    (
        "either-bytes-over-max",
        lambda: image_or_url(PNG + b"\x00", max_bytes=len(PNG)),
        Fails(ValueError, "image is 17 bytes; the limit is 16"),
    ),
    ("either-bytes-at-max", lambda: image_or_url(PNG, max_bytes=len(PNG)), b64(PNG)),
    (
        "either-default-cap-10-MiB",
        lambda: image_or_url(PNG + b"\x00" * (DEFAULT_MAX_IMAGE_BYTES - len(PNG) + 1)),
        Fails(ValueError, "the limit is 10,485,760"),
    ),
    (
        "either-named-url",
        lambda: image_or_url("https://", what="images[2]"),
        Fails(ValueError, "images[2] must be an http(s) URL"),
    ),
    (
        "either-named-image",
        lambda: image_or_url(b"text", what="images[2]"),
        Fails(ValueError, "images[2] is not a PNG"),
    ),
]


@pytest.mark.parametrize(("call", "outcome"), [r[1:] for r in MEDIA_URLS], ids=_ids(MEDIA_URLS))
def test_media_urls(call: Any, outcome: Any) -> None:
    expect(call, outcome)


# -- videos (C's /mj/insight-face/video-swap target): an .mp4, told by its "ftyp" box -----------

MP4 = b"\x00\x00\x00\x18ftypmp42"  # 12 bytes: a box size, then the type "ftyp", then a brand

#: (id, video, keyword arguments, outcome: the data URL, or a refusal)
VIDEOS: list[tuple[str, Any, dict[str, Any], Any]] = [
    ("mp4-bytes", MP4, {}, b64(MP4, "video/mp4")),
    ("mp4-bytearray", bytearray(MP4 + b"moov"), {}, b64(MP4 + b"moov", "video/mp4")),
    ("mp4-memoryview", memoryview(MP4), {}, b64(MP4, "video/mp4")),
    ("mp4-12-bytes-is-enough", MP4[:12], {}, b64(MP4, "video/mp4")),
    (
        "mp4-11-bytes",
        MP4[:11],
        {},
        Fails(ValueError, "video is not an MP4 video (the server takes .mp4 only)"),
    ),
    ("ftyp-a-byte-late", b"\x00" + MP4, {}, Fails(ValueError, "not an MP4")),
    ("ftyp-a-byte-early", MP4[1:] + b"\x00", {}, Fails(ValueError, "not an MP4")),
    ("ftyp-upper-case", MP4.replace(b"ftyp", b"FTYP"), {}, Fails(ValueError, "not an MP4")),
    ("png-is-not-a-video", PNG, {}, Fails(ValueError, "not an MP4")),
    ("video-empty", b"", {}, Fails(ValueError, "video is empty")),
    ("video-exactly-max", MP4, {"max_bytes": 12}, b64(MP4, "video/mp4")),
    (
        "video-over-max",
        MP4 + b"\x00",
        {"max_bytes": 12},
        Fails(ValueError, "video is 13 bytes; the limit is 12 (raise it with Client("),
    ),
    (
        "video-url-str",
        "https://cdn.example/a.mp4",
        {},
        Fails(TypeError, "video must be bytes, a pathlib.Path or an http(s) URL, not str"),
    ),
    ("video-int", 5, {}, Fails(TypeError, "not int")),
    ("named-empty", b"", {"what": "target"}, Fails(ValueError, "target is empty")),
    ("named-type", None, {"what": "target"}, Fails(TypeError, "target must be bytes")),
    ("named-size", MP4, {"what": "target", "max_bytes": 1}, Fails(ValueError, "target is 12")),
    ("named-magic", PNG, {"what": "target"}, Fails(ValueError, "target is not an MP4")),
]


@pytest.mark.parametrize(("video", "kwargs", "outcome"), [r[1:] for r in VIDEOS], ids=_ids(VIDEOS))
def test_video_data_url(video: Any, kwargs: dict[str, Any], outcome: Any) -> None:
    kwargs.setdefault("max_bytes", DEFAULT_MAX_IMAGE_BYTES)
    expect(lambda: video_data_url(video, **kwargs), outcome)


def test_video_file(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(MP4)
    assert video_data_url(path, max_bytes=12) == b64(MP4, "video/mp4")
    not_mp4 = tmp_path / "clip.png"
    not_mp4.write_bytes(PNG)
    with pytest.raises(ValueError) as info:
        video_data_url(not_mp4, max_bytes=100)
    assert str(info.value).startswith("video is not an MP4 video")


def test_video_file_over_the_cap_is_refused_by_its_size_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.mp4"
    with path.open("wb") as f:  # sparse: 1 GiB on paper, never read
        f.write(MP4)
        f.truncate(2**30)
    with pytest.raises(ValueError) as info:
        video_data_url(path, max_bytes=100, what="target")
    assert str(info.value) == (
        f"target {path} is 1,073,741,824 bytes; the limit is 100 "
        "(raise it with Client(max_image_bytes=...))"
    )


@pytest.mark.parametrize(
    ("name", "words"),
    [("missing.mp4", "No such file or directory"), (".", "Is a directory")],
    ids=["missing-file", "a-directory"],
)
def test_unreadable_video_file(tmp_path: Path, name: str, words: str) -> None:
    path = tmp_path / name
    with pytest.raises(ValueError) as info:
        video_data_url(path, max_bytes=DEFAULT_MAX_IMAGE_BYTES)
    assert f"cannot read video {path}: {words}" == str(info.value)


def test_an_image_file_or_url(tmp_path: Path) -> None:
    path = tmp_path / "cat.png"
    path.write_bytes(PNG)
    assert image_or_url(path) == b64(PNG)
    with pytest.raises(ValueError) as info:
        image_or_url(path, max_bytes=15, what="start frame")
    assert str(info.value).startswith(f"start frame {path} is 16 bytes; the limit is 15")


def test_image_at_the_default_cap_is_accepted() -> None:
    image = PNG + b"\x00" * (DEFAULT_MAX_IMAGE_BYTES - len(PNG))
    assert image_data_url(image) == b64(image)


# -- images from files: the size is checked (stat) before the file is read ---------------------


def test_image_file(tmp_path: Path) -> None:
    path = tmp_path / "cat.png"
    path.write_bytes(PNG)
    assert image_data_url(path) == b64(PNG)
    assert image_data_url(path, max_bytes=len(PNG)) == b64(PNG)


def test_image_file_over_the_cap_is_refused_by_its_size_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(PNG + b"\x00")
    with pytest.raises(ValueError) as info:
        image_data_url(path, max_bytes=len(PNG), what="mask")
    # The message names the file: it came from the stat() before the read, not from the
    # check of the bytes read (which names no file).
    assert f"mask {path} is 17 bytes; the limit is 16" in str(info.value)


def test_request_types_cap_a_file_at_64_mib_before_reading_it(tmp_path: Path) -> None:
    # A sparse file: 64 MiB + 1 byte on paper, nothing on disk, and never read.
    path = tmp_path / "huge.png"
    with path.open("wb") as f:
        f.write(PNG)
        f.truncate(REQUEST_MAX_IMAGE_BYTES + 1)
    with pytest.raises(ValueError) as info:
        mjasync.Imagine("a cat", images=[path])
    assert f"images[0] {path} is 67,108,865 bytes; the limit is 67,108,864" in str(info.value)


@pytest.mark.parametrize(
    ("name", "words"),
    [("missing.png", "No such file or directory"), (".", "Is a directory")],
    ids=["missing-file", "a-directory"],
)
def test_unreadable_image_file(tmp_path: Path, name: str, words: str) -> None:
    path = tmp_path / name
    with pytest.raises(ValueError) as info:
        image_data_url(path, what="images[0]")
    assert f"cannot read images[0] {path}: {words}" == str(info.value)


def test_custom_id_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(ValueError, match="not a button custom id"):
        check_custom_id(f"MJ::JOB::upsample::1::{HASH}\n")
