"""Videos on disk and on the command line: MP4 downloads, the contact sheet, ``mjasync video``,
``mjasync batch --video`` and ``mjasync doctor``.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from mjasync._batch.download import (
    Downloader,
    DownloadError,
    _Mp4Boxes,
    expects_image,
    expects_media,
    task_image_urls,
    task_media_urls,
    task_video_filename,
)
from mjasync._batch.report import render_index
from mjasync._batch.types import BatchOutcome, PromptResult, RequestResult
from mjasync._converter import parse_task
from mjasync.testing import FakeMidjourney

from ._support import read_manifest, run_cli

pytestmark = pytest.mark.anyio

KEY = "sk-video-test-0123456789"


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


MP4 = (
    box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2")
    + box(b"moov", b"\x00" * 40)
    + box(b"mdat", b"frames" * 2000)
)


# -- MP4 completeness, pure --------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 7, 16, 4096])
def test_mp4_boxes_complete_in_any_chunking(chunk: int) -> None:
    boxes = _Mp4Boxes()
    for start in range(0, len(MP4), chunk):
        boxes.feed(MP4[start : start + chunk])
    assert boxes.problem() is None


@pytest.mark.parametrize("cut", [10, 40, len(MP4) - 1])
def test_mp4_boxes_catch_a_body_cut_short(cut: int) -> None:
    boxes = _Mp4Boxes()
    boxes.feed(MP4[:cut])
    assert "cut short" in (boxes.problem() or "")


def test_mp4_boxes_large_size_and_to_end() -> None:
    large = MP4[:24] + struct.pack(">I", 1) + b"mdat" + struct.pack(">Q", 16 + 5) + b"abcde"
    boxes = _Mp4Boxes()
    boxes.feed(large)
    assert boxes.problem() is None
    open_ended = MP4[:24] + struct.pack(">I", 0) + b"mdat" + b"anything"
    boxes = _Mp4Boxes()
    boxes.feed(open_ended)
    assert boxes.problem() is None
    bad = MP4[:24] + struct.pack(">I", 3) + b"mdat"
    boxes = _Mp4Boxes()
    boxes.feed(bad)
    assert "impossible size" in (boxes.problem() or "")


def test_video_task_media() -> None:
    # C mirrors its videos in imageUrls (trueai-org/midjourney-proxy ed32197,
    # src/Midjourney.Base/Models/TaskInfo.cs:786-806): they are videos, not images.
    task = parse_task(
        {
            "id": "42",
            "action": "VIDEO",
            "status": "SUCCESS",
            "prompt": "a cat walks --motion low",
            "imageUrl": "https://cdn.example/poster.webp",
            "imageUrls": [{"url": "https://cdn.example/0.mp4"}],
            "videoUrl": "https://cdn.example/0.mp4",
            "videoUrls": [{"url": "https://cdn.example/0.mp4", "thumbnail": "x.webp"}],
        }
    )
    assert task_image_urls(task) == [("https://cdn.example/poster.webp", "a-cat-walks_42.webp")]
    assert task_media_urls(task)[1] == (
        "https://cdn.example/0.mp4",
        task_video_filename("42", task.prompt, index=1),
        "video",
    )
    assert task_video_filename("42", task.prompt, index=1) == "a-cat-walks_42_1.mp4"


# -- MP4 downloads over HTTP ---------------------------------------------------------------------


async def _serve(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    bodies = {
        "ok.mp4": (MP4, "video/mp4"),
        "short.mp4": (MP4[:-100], "video/mp4"),
        "png.mp4": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "video/mp4"),
        "typed-as-image.mp4": (MP4, "image/png"),
    }
    body, content_type = bodies[name]
    resp = web.StreamResponse(headers={"Content-Type": content_type})
    await resp.prepare(request)
    for start in range(0, len(body), 1000):
        await resp.write(body[start : start + 1000])
    await resp.write_eof()
    return resp


@pytest.fixture
async def video_host() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/{name}", _serve)
    server = TestServer(app)
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def test_video_downloads_are_checked(video_host: str, tmp_path: Path) -> None:
    async with aiohttp.ClientSession() as session:
        downloader = Downloader(session, tmp_path, allow_private_image_hosts=True)
        result = await downloader.download(f"{video_host}/ok.mp4", "v.mp4", media="video")
        assert result.image_type == "mp4" and (tmp_path / "v.mp4").read_bytes() == MP4
        reasons = {
            "short.mp4": "cut short",
            "png.mp4": "not an MP4",
            "typed-as-image.mp4": "not an video",
        }
        for name, reason in reasons.items():
            with pytest.raises(DownloadError, match=reason):
                await downloader.download(f"{video_host}/{name}", name, media="video")
            assert not (tmp_path / name).exists()
        # An image download does not take a video.
        with pytest.raises(DownloadError, match="not an image"):
            await downloader.download(f"{video_host}/ok.mp4", "x.png")
        small = Downloader(session, tmp_path, allow_private_image_hosts=True, max_video_bytes=1000)
        with pytest.raises(DownloadError, match="1000-byte limit"):
            await small.download(f"{video_host}/ok.mp4", "big.mp4", media="video")
    assert sorted(os.listdir(tmp_path)) == ["v.mp4"]  # no .part left


# -- the contact sheet ----------------------------------------------------------------------------


def test_contact_sheet_shows_videos_with_their_poster() -> None:
    files = ("cat_1.png", "cat_1_1.mp4", "cat_1_2.mp4")
    result = PromptResult(
        index=0,
        prompt="video: a cat walks",
        main=RequestResult(key="k", outcome=BatchOutcome.SUCCEEDED, task_id="1", files=files),
    )
    html = render_index([result])
    assert html.count("<video ") == 2
    assert 'poster="cat_1.png" src="cat_1_1.mp4"' in html
    assert "<img" not in html  # the poster is on the player, not beside it


# -- the command line -----------------------------------------------------------------------------


@pytest.fixture
async def csharp() -> AsyncIterator[FakeMidjourney]:
    async with FakeMidjourney(accent="csharp", api_keys=(KEY,), job_duration=0.05) as fake:
        yield fake


def _server(fake: FakeMidjourney, *extra: str) -> list[str]:
    return ["--base-url", fake.base_url, "--api-key", KEY, "--auth", "mj-api-secret", *extra]


async def test_cli_video_downloads_the_mp4s(csharp: FakeMidjourney, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = await run_cli(
        "video",
        "a cat walks",
        "--batch-size",
        "2",
        "--motion",
        "high",
        "--out",
        str(out),
        *_server(csharp),
    )
    assert result.returncode == 0, result.stderr.decode()
    stdout = result.stdout.decode()
    assert "video 1: " in stdout and "video 2: " in stdout
    videos = sorted(out.glob("*.mp4"))
    assert len(videos) == 2 and all(v.read_bytes()[4:8] == b"ftyp" for v in videos)
    assert len(list(out.glob("*.png"))) == 1  # the poster
    task_id = stdout.split()[1].rstrip(":")
    extended = await run_cli("video", "--extend", task_id, "--index", "2", *_server(csharp))
    assert extended.returncode == 0, extended.stderr.decode()
    assert "VIDEO SUCCESS" in extended.stdout.decode()


async def test_cli_video_on_java_names_the_servers_that_have_it(tmp_path: Path) -> None:
    async with FakeMidjourney(accent="java", api_keys=(KEY,)) as fake:
        result = await run_cli("video", "a cat", *_server(fake, "--mode", "none"))
    assert result.returncode == 1
    assert "C (trueai-org/midjourney-proxy" in result.stderr.decode()


async def test_cli_batch_video(csharp: FakeMidjourney, tmp_path: Path) -> None:
    start = tmp_path / "start.png"
    start.write_bytes(
        bytes.fromhex(
            "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
            "0000000c4944415408d763f8cfc000000301010018dd8db40000000049454e44ae426082"
        )
    )
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(f"a cat walks\n{start} the dog runs\nhttps://img.example/a.png it rains\n")
    out = tmp_path / "out"
    result = await run_cli(
        "batch", str(prompts), "--out", str(out), "--video", "--motion", "low", *_server(csharp)
    )
    assert result.returncode == 0, result.stderr.decode()
    manifest = read_manifest(out)
    assert [row["prompt"] for row in manifest] == [
        "video: a cat walks",
        "video: the dog runs",
        "video: it rains",
    ]
    for row in manifest:
        files = row["files"]
        assert sum(f.endswith(".mp4") for f in files) == 4, files
        assert all((out / f).exists() for f in files)
    html = (out / "index.html").read_text()
    assert html.count("<video ") == 12 and "poster=" in html
    stats = csharp.stats()
    assert stats.accepted_by_endpoint["video"] == 3
    again = await run_cli(
        "batch", str(prompts), "--out", str(out), "--video", "--motion", "low", *_server(csharp)
    )
    assert again.returncode == 0 and csharp.stats().accepted_by_endpoint["video"] == 3


async def test_cli_batch_video_refuses_grid_options(csharp: FakeMidjourney, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a cat walks\n")
    for extra in (["--upscale", "1"], ["--split"]):
        result = await run_cli(
            "batch",
            str(prompts),
            "--out",
            str(tmp_path / "o"),
            "--video",
            *extra,
            *_server(csharp),
        )
        assert result.returncode == 2 and "--video makes videos" in result.stderr.decode()
    result = await run_cli(
        "batch", str(prompts), "--out", str(tmp_path / "o"), "--motion", "high", *_server(csharp)
    )
    assert result.returncode == 2 and "--motion goes with --video" in result.stderr.decode()


@pytest.mark.parametrize(
    ("accent", "family", "flags"),
    [
        ("java", "J (novicezk/midjourney-proxy)", "--auth mj-api-secret --mode none"),
        ("csharp", "C (trueai-org/midjourney-proxy) v11.10.3", "--auth mj-api-secret --mode fast"),
        ("relay", "N (new-api relays) v0.9.0", "--auth bearer --mode none"),
    ],
)
async def test_cli_doctor(accent: str, family: str, flags: str) -> None:
    async with FakeMidjourney(accent=accent, api_keys=(KEY,), auth="accent") as fake:  # type: ignore[arg-type]
        # Defaults on purpose: the user does not know the auth or the mode yet.
        result = await run_cli("doctor", "--base-url", fake.base_url, "--api-key", KEY)
        as_json = await run_cli("doctor", "--json", "--base-url", fake.base_url, "--api-key", KEY)
        assert fake.stats().tasks == 0
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    assert f"family: {family}" in out and "api key: accepted" in out
    assert f"--base-url {fake.base_url} {flags}" in out
    assert KEY not in out and KEY not in as_json.stdout.decode()
    profile = json.loads(as_json.stdout)
    assert profile["family"] == accent and profile["key_accepted"] is True
    assert profile["endpoints"]["video"] == ("absent" if accent == "java" else "available")


async def test_a_video_task_without_a_video_is_not_complete(tmp_path: Path) -> None:
    task = parse_task({"id": "42", "action": "VIDEO", "status": "SUCCESS"})
    assert expects_media(task) and not expects_image(task)
    async with aiohttp.ClientSession() as session:
        downloader = Downloader(session, tmp_path)
        with pytest.raises(DownloadError, match="without a video URL"):
            await downloader.fetch_task_images(task)
