"""Safe image downloads, over real HTTP on loopback against a purpose-built aiohttp app."""

from __future__ import annotations

import functools
import os
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from io import BytesIO
from pathlib import Path

import aiohttp
import anyio
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image

from mjasync._batch import download
from mjasync._batch.download import (
    PART_SUFFIX,
    DownloadError,
    contained_path,
    image_kind,
    image_suffix,
    safe_filename,
    split_grid,
    task_image_filename,
)
from mjasync._errors import MjError
from mjasync._models import ImageRef, Task, TaskAction

pytestmark = pytest.mark.anyio

# These tests are about the bytes and the files, served by a test server on loopback: they
# opt in to private hosts. What hosts a download may reach is tested in tests/hostile/.
download_image = functools.partial(download.download_image, allow_private_image_hosts=True)
Downloader = functools.partial(download.Downloader, allow_private_image_hosts=True)

QUADRANTS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]  # U1..U4 order


def make_grid_png(size: int = 64) -> bytes:
    """A real PNG: a 2x2 grid with one solid colour per quadrant."""
    image = Image.new("RGB", (size, size))
    half = size // 2
    for (x, y), colour in zip([(0, 0), (half, 0), (0, half), (half, half)], QUADRANTS, strict=True):
        image.paste(colour, (x, y, x + half, y + half))
    buffer = BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def make_jpeg() -> bytes:
    buffer = BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


PNG = make_grid_png()
JPEG = make_jpeg()
HITS = web.AppKey("hits", Counter[str])
RELEASE = web.AppKey("release", anyio.Event)
GATE = web.AppKey("gate", dict[str, int])
TWO_IN = web.AppKey("two_in", anyio.Event)
BODY_STARTED = web.AppKey("body_started", anyio.Event)


async def stream(
    request: web.Request, body: bytes, content_type: str, *, length: bool
) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": content_type})
    if length:
        resp.content_length = len(body)
    await resp.prepare(request)
    for start in range(0, len(body), 4096):
        await resp.write(body[start : start + 4096])
    await resp.write_eof()
    return resp


def build_app() -> web.Application:
    app = web.Application()
    app[HITS] = Counter()
    app[RELEASE] = anyio.Event()
    app[GATE] = {"active": 0, "max": 0}
    app[TWO_IN] = anyio.Event()
    app[BODY_STARTED] = anyio.Event()

    @web.middleware
    async def count(request: web.Request, handler: Callable[..., object]) -> web.StreamResponse:
        request.app[HITS][request.path] += 1
        result = await handler(request)  # type: ignore[misc]
        assert isinstance(result, web.StreamResponse)
        return result

    app.middlewares.append(count)

    async def png(request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    async def jpeg(request: web.Request) -> web.Response:
        return web.Response(body=JPEG, content_type="image/jpeg")

    async def wrong_type(request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="text/plain")

    async def octet(request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="application/octet-stream")

    async def html(request: web.Request) -> web.Response:
        page = b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>"
        return web.Response(body=page, headers={"Content-Type": "image/png"})

    async def big(request: web.Request) -> web.StreamResponse:
        body = PNG[:16] + b"\0" * 300_000
        return await stream(request, body, "image/png", length=True)

    async def big_chunked(request: web.Request) -> web.StreamResponse:
        body = PNG[:16] + b"\0" * 300_000
        return await stream(request, body, "image/png", length=False)

    async def short(request: web.Request) -> web.StreamResponse:
        # Promises the whole PNG, sends half, then the connection drops.
        resp = web.StreamResponse(headers={"Content-Type": "image/png"})
        resp.content_length = len(PNG)
        await resp.prepare(request)
        await resp.write(PNG[: len(PNG) // 2])
        assert request.transport is not None
        request.transport.close()
        return resp

    async def short_chunked(request: web.Request) -> web.StreamResponse:
        # No Content-Length, and the body ends cleanly -- but half a PNG.
        return await stream(request, PNG[: len(PNG) // 2], "image/png", length=False)

    async def missing(request: web.Request) -> web.Response:
        return web.Response(status=404, text="no such image")

    async def slow(request: web.Request) -> web.Response:
        await request.app[RELEASE].wait()
        return web.Response(body=PNG, content_type="image/png")

    async def slow_body(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "image/png"})
        resp.content_length = len(PNG)
        await resp.prepare(request)
        await resp.write(PNG[:100])
        request.app[BODY_STARTED].set()
        await request.app[RELEASE].wait()
        await resp.write(PNG[100:])
        return resp

    async def disposition(request: web.Request) -> web.Response:
        return web.Response(
            body=PNG,
            content_type="image/png",
            headers={"Content-Disposition": 'attachment; filename="../../escaped.png"'},
        )

    async def gate(request: web.Request) -> web.Response:
        state = request.app[GATE]
        state["active"] += 1
        state["max"] = max(state["max"], state["active"])
        if state["active"] >= 2:
            request.app[TWO_IN].set()
        try:
            await request.app[RELEASE].wait()
        finally:
            state["active"] -= 1
        return web.Response(body=PNG, content_type="image/png")

    app.router.add_get("/img/grid.png", png)
    app.router.add_get("/img/photo.jpg", jpeg)
    app.router.add_get("/wrong-type", wrong_type)
    app.router.add_get("/octet", octet)
    app.router.add_get("/html", html)
    app.router.add_get("/big", big)
    app.router.add_get("/big-chunked", big_chunked)
    app.router.add_get("/short", short)
    app.router.add_get("/short-chunked", short_chunked)
    app.router.add_get("/missing", missing)
    app.router.add_get("/slow", slow)
    app.router.add_get("/slow-body", slow_body)
    app.router.add_get("/disposition", disposition)
    app.router.add_get("/gate/{n}", gate)
    app.router.add_get("/hostile/{tail:.*}", png)
    return app


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    app = build_app()
    srv = TestServer(app, host="127.0.0.1", port=0)
    await srv.start_server()
    try:
        yield srv
    finally:
        app[RELEASE].set()  # let parked handlers finish so the server closes promptly
        await srv.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
def out(tmp_path: Path) -> Path:
    directory = tmp_path / "out"
    directory.mkdir()
    return directory


def url(server: TestServer, path: str) -> str:
    # Built by hand: TestServer.make_url would normalise the hostile paths we want to send.
    return f"http://127.0.0.1:{server.port}{path}"


def hits(server: TestServer, path: str) -> int:
    return server.app[HITS][path]


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink())


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll a condition (for state that offers no event to wait on), failing after timeout."""
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.005)


# --------------------------------------------------------------------------- names


def test_safe_filename_neutralises_hostile_stems() -> None:
    assert safe_filename("../../etc/passwd", None, ".png") == "etc-passwd.png"
    assert safe_filename("/etc/passwd", 3, "png") == "etc-passwd_3.png"
    assert safe_filename("C:\\Windows\\system32", None, ".PNG") == "c-windows-system32.png"
    assert safe_filename("a\x00b", None, ".png") == "a-b.png"
    assert safe_filename("..", None, ".png") == "image.png"
    assert safe_filename("", None, ".png") == "image.png"
    assert safe_filename("café noir", None, ".jpg") == "cafe-noir.jpg"
    assert safe_filename("猫", None, ".png") == "image.png"
    for reserved in ("CON", "nul", "Com1", "LPT9", "aux"):
        assert safe_filename(reserved, None, ".png") == f"{reserved.lower()}_.png"
    assert len(safe_filename("x" * 1000, 99, ".webp")) <= 100 + len("_99.webp")


def test_safe_filename_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="suffix"):
        safe_filename("a", None, "../png")
    with pytest.raises(ValueError, match="suffix"):
        safe_filename("a", None, ".p/ng")
    with pytest.raises(ValueError, match="index"):
        safe_filename("a", -1, ".png")
    with pytest.raises(TypeError, match="index"):
        safe_filename("a", True, ".png")


@pytest.mark.parametrize(
    ("task_id", "prompt", "image_url", "expected"),
    [
        ("1712345", "a black cat --ar 3:2", "https://cdn/x/grid.webp", "a-black-cat_1712345.webp"),
        (
            "1712345",
            "https://s.mj.run/abc a red fox",
            "https://r/mj/image/1712345",
            "a-red-fox_1712345.png",
        ),
        ("42", None, "https://cdn/a.JPEG?ex=1", "image_42.jpg"),
        ("42", "--ar 1:1", "https://cdn/a.exe", "image_42.png"),
    ],
)
def test_task_image_filename(
    task_id: str, prompt: str | None, image_url: str, expected: str
) -> None:
    assert task_image_filename(task_id, prompt, image_url) == expected


def test_task_image_filename_hostile_inputs_stay_distinct_and_flat() -> None:
    names = {
        task_image_filename(tid, "../../etc/passwd", "http://h/..%2F..%2Fetc%2Fpasswd")
        for tid in ("a/b", "a\\b", "a:b", "../../a b", "")
    }
    assert len(names) == 5  # a digest keeps rewritten ids apart
    for name in names:
        assert "/" not in name
        assert "\\" not in name
        assert ".." not in name
        assert name.endswith(".png")
        assert name.startswith("etc-passwd_")


def test_image_suffix_prefers_the_media_type() -> None:
    assert image_suffix("https://cdn/a.png", "image/webp; charset=binary") == ".webp"
    assert image_suffix("https://cdn/a.gif", None) == ".gif"
    assert image_suffix("https://cdn/a.svg", "image/svg+xml") == ".png"


def test_contained_path_rejects_escapes(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    assert contained_path(out_dir, "a.png") == out_dir.resolve() / "a.png"
    for bad in (
        "",
        ".",
        "..",
        "../a.png",
        "/etc/passwd",
        "a/b.png",
        "a\\b.png",
        "C:a.png",
        "a\x00",
    ):
        with pytest.raises(ValueError, match=r"unsafe|outside"):
            contained_path(out_dir, bad)
    (out_dir / "link.png").symlink_to(tmp_path / "outside.png")
    with pytest.raises(ValueError, match="outside"):
        contained_path(out_dir, "link.png")


def test_sniff_image_type() -> None:
    assert image_kind(PNG[:16]) == "png"
    assert image_kind(JPEG[:16]) == "jpeg"
    assert image_kind(b"GIF89a\x01\x00\x01\x00\x00\x00") == "gif"
    assert image_kind(b"RIFF\x10\x00\x00\x00WEBPVP8 ") == "webp"
    assert image_kind(b"RIFF\x10\x00\x00\x00WAVEfmt ") is None
    assert image_kind(b"<!DOCTYPE html>") is None


# --------------------------------------------------------------------------- download_image


async def test_downloads_a_real_png_atomically(
    server: TestServer, session: aiohttp.ClientSession, out: Path
) -> None:
    dest = out / "grid.png"
    result = await download_image(session, url(server, "/img/grid.png"), dest)
    assert not result.skipped
    assert result.path == dest
    assert dest.read_bytes() == PNG
    assert (result.size, result.image_type, result.content_type) == (len(PNG), "png", "image/png")
    assert result.sha256 is not None
    assert len(result.sha256) == 64
    assert all_files(out) == [dest]  # no .part left behind
    with Image.open(dest) as image:
        assert image.size == (64, 64)


async def test_existing_file_is_skipped_without_a_request(
    server: TestServer, session: aiohttp.ClientSession, out: Path
) -> None:
    dest = out / "grid.png"
    await download_image(session, url(server, "/img/grid.png"), dest)
    again = await download_image(session, url(server, "/img/grid.png"), dest)
    assert again.skipped
    assert again.size == len(PNG)
    assert hits(server, "/img/grid.png") == 1
    assert all_files(out) == [dest]


async def test_leftover_part_is_never_taken_for_an_image(
    server: TestServer, session: aiohttp.ClientSession, out: Path
) -> None:
    dest = out / "grid.png"
    # A killed run's partial file. Part names are unique per attempt, so a download never
    # touches another writer's part; sweeping leftovers is the batch's job (sweep_parts).
    part = out / ("grid.png.0123456789ab" + PART_SUFFIX)
    part.write_bytes(b"half an image from a killed run")
    dest.write_bytes(b"")  # an empty file from a crash is not "already present" either
    result = await download_image(session, url(server, "/img/grid.png"), dest)
    assert not result.skipped
    assert hits(server, "/img/grid.png") == 1
    assert dest.read_bytes() == PNG
    assert part.read_bytes() == b"half an image from a killed run"


async def test_jpeg_is_accepted(
    server: TestServer, session: aiohttp.ClientSession, out: Path
) -> None:
    result = await download_image(session, url(server, "/img/photo.jpg"), out / "photo.jpg")
    assert result.image_type == "jpeg"
    assert (out / "photo.jpg").read_bytes() == JPEG


@pytest.mark.parametrize(
    ("path", "reason", "kwargs"),
    [
        ("/wrong-type", "content type 'text/plain' is not an image", {}),
        ("/octet", "content type 'application/octet-stream' is not an image", {}),
        ("/html", "not a PNG/JPEG/WebP/GIF image", {}),
        ("/big", "over the 100000-byte limit", {"max_bytes": 100_000}),
        ("/big-chunked", "exceeds the 100000-byte limit", {"max_bytes": 100_000}),
        ("/short", "body cut short", {}),
        ("/short-chunked", "no IEND chunk", {}),
        ("/missing", "HTTP 404", {}),
        ("/slow", "timed out", {"timeout": 0.2}),
    ],
)
async def test_bad_responses_fail_and_leave_nothing(
    server: TestServer,
    session: aiohttp.ClientSession,
    out: Path,
    path: str,
    reason: str,
    kwargs: dict[str, float],
) -> None:
    dest = out / "image.png"
    with pytest.raises(DownloadError) as info:
        await download_image(session, url(server, path), dest, **kwargs)  # type: ignore[arg-type]
    err = info.value
    assert reason in err.reason
    assert err.url == url(server, path)
    assert isinstance(err, MjError)
    assert all_files(out) == []  # neither the image nor a .part
    if path == "/missing":
        assert err.http_status == 404


async def test_untyped_image_accepted_only_when_allowed(
    server: TestServer, session: aiohttp.ClientSession, out: Path
) -> None:
    result = await download_image(
        session, url(server, "/octet"), out / "bucket.png", allow_untyped=True
    )
    assert result.image_type == "png"
    assert (out / "bucket.png").read_bytes() == PNG


async def test_connection_refused_is_a_download_error(
    session: aiohttp.ClientSession, out: Path
) -> None:
    # Bind a port, then close it: nothing listens there any more.
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    with pytest.raises(DownloadError, match="connection failed"):
        await download_image(session, f"http://127.0.0.1:{port}/a.png", out / "a.png")
    assert all_files(out) == []


async def test_non_http_urls_are_refused(session: aiohttp.ClientSession, out: Path) -> None:
    for bad in ("file:///etc/passwd", "ftp://host/a.png", "data:image/png;base64,AAAA"):
        with pytest.raises(DownloadError, match="unsupported URL scheme"):
            await download_image(session, bad, out / "a.png")
    assert all_files(out) == []


def test_error_message_hides_signed_query() -> None:
    err = DownloadError("HTTP 403", url="https://cdn.example/a.png?ex=1&hm=SIGNATURE")
    assert "SIGNATURE" not in str(err)
    assert "https://cdn.example/a.png" in str(err)
    assert err.url.endswith("hm=SIGNATURE")


async def test_cancellation_removes_the_partial_file(
    server: TestServer, session: aiohttp.ClientSession, out: Path
) -> None:
    dest = out / "image.png"

    def part_exists() -> bool:
        return any(p.name.endswith(PART_SUFFIX) for p in out.iterdir())

    async with anyio.create_task_group() as tg:
        tg.start_soon(download_image, session, url(server, "/slow-body"), dest)
        await server.app[BODY_STARTED].wait()
        await wait_until(part_exists)  # the first bytes are on their way to disk
        tg.cancel_scope.cancel()
    assert all_files(out) == []


# --------------------------------------------------------------------------- hostile names


async def test_hostile_names_never_escape_the_output_dir(
    server: TestServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    out_dir = tmp_path / "nested" / "out"
    downloader = Downloader(session, out_dir)
    task = Task(
        id="../../../escaped",
        action=TaskAction.IMAGINE,
        prompt="../../etc/passwd",
        image_url=url(server, "/hostile/..%2F..%2F..%2Fescaped.png"),
        image_urls=(
            ImageRef(url(server, "/hostile/%2Fetc%2Fpasswd")),
            ImageRef(url(server, "/hostile/C:%5CWindows%5Cwin.ini")),
            ImageRef(url(server, "/disposition")),
        ),
    )
    paths = await downloader.fetch_task_images(task)
    assert len(paths) == 4
    root = out_dir.resolve()
    for path in paths:
        assert path.resolve().parent == root
        assert path.read_bytes() == PNG
        assert ".." not in path.name
    # Everything written under tmp_path is inside out_dir, and nothing is partial.
    assert {p.parent.resolve() for p in all_files(tmp_path)} == {root}
    assert not [p for p in all_files(tmp_path) if p.name.endswith(PART_SUFFIX)]
    assert not (tmp_path / "escaped.png").exists()
    assert sorted(p.name for p in all_files(tmp_path)) == sorted(p.name for p in paths)


async def test_prompt_named_like_a_device_or_path(
    server: TestServer, session: aiohttp.ClientSession, out: Path
) -> None:
    downloader = Downloader(session, out)
    task = Task(id="7", prompt="/abs/path\\CON", image_url=url(server, "/img/grid.png"))
    [path] = await downloader.fetch_task_images(task)
    assert path.name == "abs-path-con_7.png"
    assert path.parent == Path(await anyio.Path(out).resolve())


# --------------------------------------------------------------------------- Downloader


async def test_fetch_task_images_names_skips_and_splits(
    server: TestServer, session: aiohttp.ClientSession, out: Path
) -> None:
    downloader = Downloader(session, out)
    task = Task(
        id="1712345",
        action=TaskAction.IMAGINE,
        prompt="black cat --ar 1:1",
        image_url=url(server, "/img/grid.png"),
        image_urls=(
            ImageRef(url(server, "/img/grid.png")),
            ImageRef(url(server, "/img/photo.jpg")),
        ),
    )
    paths = await downloader.fetch_task_images(task, split=True)
    names = [p.name for p in paths]
    assert names == [
        "black-cat_1712345.png",
        "black-cat_1712345_1.png",
        "black-cat_1712345_2.png",
        "black-cat_1712345_3.png",
        "black-cat_1712345_4.png",
        "black-cat_1712345_2.jpg",  # the duplicate URL was fetched once, as the main image
    ]
    assert hits(server, "/img/grid.png") == 1
    for part, colour in zip(paths[1:5], QUADRANTS, strict=True):
        with Image.open(part) as image:
            assert image.size == (32, 32)
            assert image.convert("RGB").getpixel((16, 16)) == colour

    again = await downloader.fetch_task_images(task, split=True)
    assert again == paths
    assert hits(server, "/img/grid.png") == 1  # present files are not fetched again
    assert hits(server, "/img/photo.jpg") == 1


async def test_upscales_are_not_split(
    server: TestServer, session: aiohttp.ClientSession, out: Path
) -> None:
    downloader = Downloader(session, out)
    task = Task(
        id="9", action=TaskAction.UPSCALE, prompt="cat", image_url=url(server, "/img/grid.png")
    )
    paths = await downloader.fetch_task_images(task, split=True)
    assert [p.name for p in paths] == ["cat_9.png"]
    assert all_files(out) == [out / "cat_9.png"]


async def test_failed_image_raises_after_the_others_complete(
    server: TestServer, session: aiohttp.ClientSession, out: Path
) -> None:
    downloader = Downloader(session, out)
    task = Task(
        id="5",
        prompt="cat",
        image_url=url(server, "/img/grid.png"),
        image_urls=(ImageRef(url(server, "/html")),),
    )
    with pytest.raises(DownloadError, match="not a PNG"):
        await downloader.fetch_task_images(task)
    assert all_files(out) == [out / "cat_5.png"]


async def test_downloader_bounds_concurrency(
    server: TestServer, session: aiohttp.ClientSession, out: Path
) -> None:
    downloader = Downloader(session, out, limit=2)
    async with anyio.create_task_group() as tg:
        for n in range(4):
            tg.start_soon(downloader.download, url(server, f"/gate/{n}"), f"img{n}.png")
        with anyio.fail_after(5):
            await server.app[TWO_IN].wait()
        # Two downloads sit in the server; the other two must be queued in the limiter.
        await wait_until(lambda: downloader.limiter.statistics().tasks_waiting == 2)
        assert server.app[GATE]["active"] == 2
        server.app[RELEASE].set()
    assert server.app[GATE]["max"] == 2
    assert len(all_files(out)) == 4


async def test_downloader_refuses_unsafe_names_and_bad_limits(
    session: aiohttp.ClientSession, out: Path
) -> None:
    downloader = Downloader(session, out)
    with pytest.raises(ValueError, match="unsafe"):
        await downloader.download("http://127.0.0.1:1/a.png", "../a.png")
    with pytest.raises(ValueError, match="limit"):
        Downloader(session, out, limit=0)


# --------------------------------------------------------------------------- split_grid


def test_split_grid_writes_four_quadrants(tmp_path: Path) -> None:
    grid = tmp_path / "cat_1.png"
    grid.write_bytes(PNG)
    parts = split_grid(grid)
    assert [p.name for p in parts] == [f"cat_1_{i}.png" for i in range(1, 5)]
    for part, colour in zip(parts, QUADRANTS, strict=True):
        with Image.open(part) as image:
            assert image.format == "PNG"
            assert image.size == (32, 32)
            assert image.convert("RGB").getpixel((0, 0)) == colour
            assert image.convert("RGB").getpixel((31, 31)) == colour
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(PART_SUFFIX)]

    parts[0].write_bytes(b"kept")  # existing parts are not rewritten
    assert split_grid(grid) == parts
    assert parts[0].read_bytes() == b"kept"


def test_split_grid_without_pillow_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    grid = tmp_path / "g.png"
    grid.write_bytes(PNG)
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r"pip install 'mjasync\[images\]'"):
        split_grid(grid)
    assert sorted(os.listdir(tmp_path)) == ["g.png"]


def test_split_grid_refuses_tiny_and_non_images(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.png"
    buffer = BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, format="PNG")
    tiny.write_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match="too small"):
        split_grid(tiny)
    text = tmp_path / "notes.png"
    text.write_bytes(b"not an image")
    with pytest.raises(OSError):
        split_grid(text)
    assert sorted(os.listdir(tmp_path)) == ["notes.png", "tiny.png"]


# --------------------------------------------------------------------------- names and parts


def test_upscales_and_named_prompts_get_labelled_names() -> None:
    assert task_image_filename("9", "a cat", None, label="U2") == "a-cat_9_U2.png"
    assert task_image_filename("9", "a cat", None, label="U2", index=1) == "a-cat_9_U2_1.png"
    assert task_image_filename("9", "a cat", None, name="Fox Portrait") == "fox-portrait_9.png"
    # Anything but a short button name is slugged like the rest: no path, no dot, no case.
    assert task_image_filename("9", "a cat", None, label="../Up (Subtle)") == (
        "a-cat_9_up-subtle.png"
    )


def test_server_sent_parts_needs_four_images_beside_the_grid() -> None:
    grid = "https://cdn.example/grid.png"
    four = tuple(ImageRef(f"https://cdn.example/{n}.png") for n in range(1, 5))
    assert download.server_sent_parts(
        Task(id="1", action=TaskAction.IMAGINE, image_url=grid, image_urls=four)
    )
    assert not download.server_sent_parts(
        Task(id="1", action=TaskAction.IMAGINE, image_url=grid, image_urls=(ImageRef(grid),))
    )
    assert not download.server_sent_parts(
        Task(id="1", action=TaskAction.UPSCALE, image_url=grid, image_urls=four)
    )


async def test_split_leaves_grids_alone_whose_images_came_from_the_server(
    server: TestServer, session: aiohttp.ClientSession, out: Path
) -> None:
    downloader = Downloader(session, out)
    task = Task(
        id="77",
        action=TaskAction.IMAGINE,
        prompt="cat",
        image_url=url(server, "/img/grid.png"),
        image_urls=tuple(ImageRef(url(server, f"/img/grid.png?part={n}")) for n in range(1, 5)),
    )
    paths = await downloader.fetch_task_images(task, split=True)
    assert [p.name for p in paths] == ["cat_77.png", *(f"cat_77_{n}.png" for n in range(1, 5))]
    assert downloader.expected_files(task, split=True) == paths
