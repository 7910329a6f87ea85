"""Bad arguments fail before any request: the loopback server must record nothing."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import mjasync

from .conftest import JPEG, PNG, LoopbackServer, reply

pytestmark = pytest.mark.anyio

TID = "1320098173412546"
CID = "MJ::JOB::upsample::1::0ddb91a0-af46-4ae9-8e8e-c271074eb6e6"
ACCEPTED = {"code": 1, "description": "ok", "result": "1"}

Call = Callable[[mjasync.Client], Awaitable[Any]]


def png_of(size: int) -> bytes:
    return PNG + b"\x00" * (size - len(PNG))


BAD_CALLS: list[tuple[str, Call, type[Exception], str]] = [
    ("blank-prompt", lambda c: c.submit_imagine(""), ValueError, "blank"),
    ("whitespace-prompt", lambda c: c.submit_imagine("  \n\t "), ValueError, "blank"),
    ("prompt-not-str", lambda c: c.submit_imagine(42), TypeError, "str"),  # type: ignore[arg-type]
    ("prompt-too-long", lambda c: c.submit_imagine("x" * 9000), ValueError, "limit"),
    ("blank-shorten", lambda c: c.submit_shorten(" "), ValueError, "blank"),
    (
        "image-str-path",
        lambda c: c.submit_imagine("cat", images=["cat.png"]),
        TypeError,
        "pathlib.Path",
    ),
    ("image-int", lambda c: c.submit_imagine("cat", images=[7]), TypeError, "bytes"),  # type: ignore[list-item]
    ("images-not-a-list", lambda c: c.submit_imagine("cat", images=PNG), TypeError, "list"),
    (
        "image-missing-file",
        lambda c: c.submit_imagine("cat", images=[Path("/nonexistent/cat.png")]),
        ValueError,
        "cannot read",
    ),
    (
        "image-not-an-image",
        lambda c: c.submit_imagine("cat", images=[b"%PDF-1.7 not an image"]),
        ValueError,
        "not a PNG",
    ),
    ("image-empty", lambda c: c.submit_imagine("cat", images=[b""]), ValueError, "empty"),
    (
        "data-url-bad-base64",
        lambda c: c.submit_imagine("cat", images=["data:image/png;base64,@@@@"]),
        ValueError,
        "base64",
    ),
    (
        "data-url-not-an-image",
        lambda c: c.submit_imagine(
            "cat", images=["data:image/png;base64," + base64.b64encode(b"hello").decode()]
        ),
        ValueError,
        "not a PNG",
    ),
    (
        "data-url-not-image-type",
        lambda c: c.submit_imagine("cat", images=["data:text/plain;base64,aGVsbG8="]),
        TypeError,
        "data:image",
    ),
    ("describe-int", lambda c: c.submit_describe(3), TypeError, "bytes"),  # type: ignore[arg-type]
    ("blend-one-image", lambda c: c.submit_blend([PNG]), ValueError, "2 to 5"),
    ("blend-six-images", lambda c: c.submit_blend([PNG] * 6), ValueError, "2 to 5"),
    (
        "blend-bad-dimensions",
        lambda c: c.submit_blend([PNG, PNG], dimensions="WIDE"),
        ValueError,
        "PORTRAIT",
    ),
    (
        "blend-dimensions-not-str",
        lambda c: c.submit_blend([PNG, PNG], dimensions=1),  # type: ignore[arg-type]
        TypeError,
        "dimensions",
    ),
    ("bad-bot-type", lambda c: c.submit_imagine("cat", bot_type="DALL_E"), ValueError, "NIJI"),
    ("bad-mode", lambda c: c.fetch(TID, mode="slow"), ValueError, "mode"),
    ("bad-mode-submit", lambda c: c.submit_imagine("cat", mode="hyper"), ValueError, "mode"),
    ("bad-custom-id", lambda c: c.submit_action(TID, "U1"), ValueError, "custom id"),
    ("custom-id-not-str", lambda c: c.submit_action(TID, 1), TypeError, "custom_id"),  # type: ignore[arg-type]
    ("task-id-traversal", lambda c: c.fetch("../x"), ValueError, "task id"),
    ("task-id-slash", lambda c: c.fetch("1/2"), ValueError, "task id"),
    ("task-id-blank", lambda c: c.fetch(""), ValueError, "task id"),
    ("task-id-query", lambda c: c.image_seed("1?x=2"), ValueError, "task id"),
    ("task-id-none", lambda c: c.fetch(None), TypeError, "task id"),  # type: ignore[arg-type]
    ("task-id-cancel", lambda c: c.cancel("../../admin"), ValueError, "task id"),
    ("task-id-action", lambda c: c.submit_action("../x", CID), ValueError, "task id"),
    ("task-id-fetch-many", lambda c: c.fetch_many(["1", "../x"]), ValueError, "task id"),
    ("state-256", lambda c: c.submit_imagine("cat", state="s" * 256), ValueError, "255"),
    ("state-not-str", lambda c: c.submit_imagine("cat", state=5), TypeError, "state"),  # type: ignore[arg-type]
    (
        "hook-not-http",
        lambda c: c.submit_imagine("cat", notify_hook="ftp://me.example/hook"),
        ValueError,
        "http",
    ),
    (
        "hook-not-a-url",
        lambda c: c.submit_imagine("cat", notify_hook="me.example/hook"),
        ValueError,
        "http",
    ),
    (
        "hook-too-long",
        lambda c: c.submit_imagine("cat", notify_hook="https://me.example/" + "h" * 2000),
        ValueError,
        "2000",
    ),
    ("modal-nothing", lambda c: c.submit_modal(TID), ValueError, "prompt"),
    ("modal-mask-not-png", lambda c: c.submit_modal(TID, mask=JPEG), ValueError, "PNG"),
    ("modal-blank-prompt", lambda c: c.submit_modal(TID, prompt=" "), ValueError, "blank"),
]


@pytest.mark.parametrize(
    ("call", "error", "words"), [c[1:] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS]
)
async def test_bad_arguments_fail_before_any_request(
    server: LoopbackServer,
    client: mjasync.Client,
    call: Call,
    error: type[Exception],
    words: str,
) -> None:
    server.script("POST", r".*", reply(200, ACCEPTED))
    server.script("GET", r".*", reply(200, {"id": TID}))
    with pytest.raises(error) as info:
        await call(client)
    assert words in str(info.value)
    assert server.requests == []


async def test_unreadable_directory_is_refused(
    server: LoopbackServer, client: mjasync.Client, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="cannot read"):
        await client.submit_describe(tmp_path)
    assert server.requests == []


async def test_state_of_255_is_fine(server: LoopbackServer, client: mjasync.Client) -> None:
    server.script("POST", r".*", reply(200, ACCEPTED))
    await client.submit_imagine("cat", state="s" * 255)
    assert server.requests[0].json["state"] == "s" * 255


# -- image size cap ---------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["bytes", "path", "data-url"])
async def test_oversized_image_is_refused_by_the_client_cap(
    server: LoopbackServer,
    make_client: Callable[..., mjasync.Client],
    tmp_path: Path,
    form: str,
) -> None:
    data = png_of(2000)
    image: Any = data
    if form == "path":
        image = tmp_path / "big.png"
        image.write_bytes(data)
    elif form == "data-url":
        image = "data:image/png;base64," + base64.b64encode(data).decode()
    async with make_client(max_image_bytes=1000) as client:
        with pytest.raises(ValueError, match="max_image_bytes"):
            await client.submit_imagine("cat", images=[image])
        with pytest.raises(ValueError, match="max_image_bytes"):
            await client.submit_blend([PNG, image])
        with pytest.raises(ValueError, match="max_image_bytes"):
            await client.submit_describe(image)
        # exactly at the cap is fine
        server.script("POST", r".*", reply(200, ACCEPTED))
        await client.submit_imagine("cat", images=[png_of(1000)])
    assert len(server.requests) == 1


async def test_oversized_mask_is_refused(
    server: LoopbackServer, make_client: Callable[..., mjasync.Client]
) -> None:
    async with make_client(max_image_bytes=1000) as client:
        with pytest.raises(ValueError, match="max_image_bytes"):
            await client.submit_modal(TID, prompt="hat", mask=png_of(2000))
    assert server.requests == []


async def test_raising_the_cap_above_the_default_lets_big_images_through(
    server: LoopbackServer, make_client: Callable[..., mjasync.Client]
) -> None:
    big = png_of(11 * 1024 * 1024)  # above the 10 MiB default
    server.script("POST", r".*", reply(200, ACCEPTED))
    async with make_client() as client:
        with pytest.raises(ValueError, match="max_image_bytes"):
            await client.submit_describe(big)
    assert server.requests == []
    async with make_client(max_image_bytes=12 * 1024 * 1024) as client:
        await client.submit_describe(big)
    assert len(server.requests) == 1


# -- constructor checks -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "error"),
    [
        ("127.0.0.1:8080", ValueError),
        ("relay.example.com", ValueError),
        ("ftp://relay.example.com", ValueError),
        ("http://", ValueError),
        ("https://user:pw@relay.example.com", ValueError),
        ("https://relay.example.com/?key=1", ValueError),
        ("https://relay.example.com/#x", ValueError),
        ("http://:80", ValueError),
        ("http://relay.example.com:notaport", ValueError),
        ("http://relay.example.com:99999", ValueError),
        ("http://relay.example.com:0", ValueError),
        ("http://bad host.example.com", ValueError),
        ("https://relay.example.com/a b", ValueError),
        (8080, TypeError),
    ],
)
def test_bad_base_url(base_url: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="base_url"):
        mjasync.Client(base_url, "k")


@pytest.mark.parametrize(
    "options",
    [
        {"mode": "slow"},
        {"mode": 3},
        {"timeout": 0},
        {"timeout": -1},
        {"max_retries": -1},
        {"max_image_bytes": 0},
        {"list_batch_size": 0},
        {"poll_interval": 0},
        {"api_key": "   "},
    ],
)
def test_bad_client_options(options: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        mjasync.Client("http://127.0.0.1:1", **options)


def test_request_types_validate_at_construction() -> None:
    with pytest.raises(ValueError, match="blank"):
        mjasync.Imagine("")
    with pytest.raises(ValueError, match="2 to 5"):
        mjasync.Blend([PNG])
    with pytest.raises(ValueError, match="task id"):
        mjasync.Action("../x", CID)
    with pytest.raises(ValueError, match="255"):
        mjasync.Shorten("cat", state="s" * 256)
    with pytest.raises(TypeError):
        mjasync.Describe(["not", "an", "image"])


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:8080",
        "https://relay.example.com/",
        "http://[::1]:9000/api",
        "http://localhost",
    ],
)
def test_good_base_urls(base_url: str) -> None:
    client = mjasync.Client(base_url)
    assert client.base_url == base_url.rstrip("/")
