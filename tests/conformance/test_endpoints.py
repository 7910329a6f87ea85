"""Every newer endpoint end to end through ``Client`` against the simulator, in each accent.

Where the accent serves the endpoint, the job runs to its terminal task; where it does not, the
caller gets :class:`UnsupportedEndpointError` naming the family that has it, and a second call
fails at once: no request, no slot.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import anyio
import pytest

import mjasync
from mjasync import (
    Edit,
    Imagine,
    Retexture,
    SwapFace,
    SwapVideoFace,
    TaskFailedError,
    TaskStatus,
    UnsupportedEndpointError,
    Video,
)
from mjasync._requests import Change
from mjasync.testing import FakeMidjourney, FaultRates, Faults
from mjasync.testing._sim_images import encode_png
from sim_clients import fast_client

from ._sim import KEY, PNG

pytestmark = pytest.mark.anyio

PNG_BYTES = base64.b64decode(PNG.split(",", 1)[1])
OTHER_PNG = encode_png(1, 1, [b"\x00\x00\xff"])
MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00\x00\x00\x08mdat"
AUTH = {"java": "mj-api-secret", "csharp": "mj-api-secret", "relay": "bearer"}

Make = Callable[..., Awaitable[tuple[FakeMidjourney, mjasync.Client]]]


@pytest.fixture
async def make() -> AsyncIterator[Make]:
    """``fake, client = await make(accent, **sim_options)``: an open client on a fresh fake."""
    stack = _Stack()
    try:
        yield stack.make
    finally:
        await stack.aclose()


class _Stack:
    def __init__(self) -> None:
        self._exits: list[Any] = []

    async def aclose(self) -> None:
        for cm in reversed(self._exits):
            await cm.__aexit__(None, None, None)

    async def make(
        self, accent: str, client_options: dict[str, Any] | None = None, **options: Any
    ) -> tuple[FakeMidjourney, mjasync.Client]:
        options.setdefault("job_duration", 0.02)
        fake = FakeMidjourney(accent=accent, api_keys=(KEY,), **options)  # type: ignore[arg-type]
        await fake.__aenter__()
        self._exits.append(fake)
        extra = {"mode": None, **(client_options or {})}
        client = fast_client(fake, KEY, auth=AUTH[accent], **extra)
        await client.__aenter__()
        self._exits.append(client)
        return fake, client


async def _get(url: str) -> bytes:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 200, url
        return await resp.read()


# -- video ------------------------------------------------------------------------------------


@pytest.mark.parametrize("accent", ["csharp", "relay"])
async def test_video_animate_then_extend(make: Make, accent: str) -> None:
    fake, client = await make(accent)
    task = await client.video("a cat walks", image=PNG_BYTES, motion="high", batch_size=2)
    assert task.status is TaskStatus.SUCCESS and task.action is mjasync.TaskAction.VIDEO
    assert len(task.videos) == 2 and task.video_url == task.videos[0].url
    # C gives each video a poster; new-api keeps only the url (dto/midjourney.go:70-72).
    assert all((video.thumbnail is not None) is (accent == "csharp") for video in task.videos)
    data = await _get(task.videos[1].url)
    assert data[4:8] == b"ftyp"  # an MP4
    longer = await client.video(extend=task, index=2)
    assert longer.status is TaskStatus.SUCCESS and longer.id != task.id
    assert longer.prompt == task.prompt  # a Task's own prompt is reused
    assert fake.stats().accepted_by_endpoint["video"] == 2


async def test_video_on_java_is_unsupported_and_remembered(make: Make) -> None:
    fake, client = await make("java", client_options={"concurrency": 1})
    with pytest.raises(UnsupportedEndpointError) as info:
        await client.video("a cat walks", image=PNG_BYTES)
    assert "C (trueai-org/midjourney-proxy, since v8.6.10)" in str(info.value)
    assert client.unsupported(Video("x"))
    asked = fake.stats().requests["other"]
    # The only slot is busy with a long job: a second video call must not wait for it.
    busy = await client.submit(Imagine("a cat --slow --stall"))
    with anyio.fail_after(1):
        with pytest.raises(UnsupportedEndpointError, match="not sent again"):
            await client.video("again", image=PNG_BYTES)
        [result] = await client.gather([Video("again", image=PNG_BYTES)])
        assert isinstance(result, UnsupportedEndpointError)
        events = [event async for event in client.stream([Video("again")])]
        assert [type(event.error) for event in events] == [UnsupportedEndpointError]
    assert fake.stats().requests["other"] == asked  # nothing was sent
    assert client.statistics().requests > 0 and busy.id


async def test_the_wire_level_submit_remembers_too(make: Make) -> None:
    fake, client = await make("java")
    for message in ("no route", "not sent again"):
        with pytest.raises(UnsupportedEndpointError, match=message):
            await client.submit_request(Retexture("wood", PNG_BYTES))
    assert fake.stats().requests["other"] == 1


async def test_old_relay_answers_video_with_its_web_ui(make: Make) -> None:
    fake, client = await make("relay", relay_legacy=True)
    with pytest.raises(UnsupportedEndpointError, match="HTML page"):
        await client.video("a cat", image=PNG_BYTES)
    with pytest.raises(UnsupportedEndpointError, match="not sent again"):
        await client.video("a cat", image=PNG_BYTES)
    assert fake.stats().requests["other"] == 1


async def test_relay_without_a_video_channel(make: Make) -> None:
    _, client = await make("relay", disabled=["video"])
    with pytest.raises(UnsupportedEndpointError, match="model_not_found"):
        await client.video("a cat", image=PNG_BYTES)


async def test_video_switched_off_on_c_is_a_refusal(make: Make) -> None:
    _, client = await make("csharp", disabled=["video"])
    with pytest.raises(mjasync.InvalidRequestError, match="视频功能未启用"):
        await client.video("a cat", image=PNG_BYTES)


# -- edits, retexture, face swaps, upload -----------------------------------------------------


@pytest.mark.parametrize(
    ("accent", "request_", "action"),
    [
        ("csharp", Edit("add a hat", PNG_BYTES), "EDIT"),
        ("relay", Edit("add a hat", PNG_BYTES), "EDITS"),
        ("csharp", Retexture("made of wood", PNG_BYTES), "RETEXTURE"),
        ("csharp", SwapFace(PNG_BYTES, "https://images.example/target.png"), "SWAP_FACE"),
        ("relay", SwapFace(PNG_BYTES, OTHER_PNG), "SWAP_FACE"),
        ("csharp", SwapVideoFace(PNG_BYTES, MP4), "SWAP_VIDEO_FACE"),
    ],
)
async def test_served_endpoints_run_to_the_end(
    make: Make, accent: str, request_: mjasync.Request, action: str
) -> None:
    _, client = await make(accent)
    task = await client.run(request_)
    assert task.status is TaskStatus.SUCCESS and task.action_text == action
    if isinstance(request_, SwapVideoFace):
        assert task.videos and task.videos[0].url.endswith(".mp4")
    elif not isinstance(request_, Edit | Retexture):
        assert task.image_url


@pytest.mark.parametrize(
    ("accent", "request_", "served_by"),
    [
        ("java", Edit("add a hat", PNG_BYTES), "C (trueai-org"),
        ("java", Retexture("wood", PNG_BYTES), "C (trueai-org"),
        ("relay", Retexture("wood", PNG_BYTES), "C (trueai-org"),
        ("java", SwapFace(PNG_BYTES, OTHER_PNG), "N (new-api"),
        ("java", SwapVideoFace(PNG_BYTES, MP4), "C (trueai-org"),
        ("relay", SwapVideoFace(PNG_BYTES, MP4), "C (trueai-org"),
    ],
)
async def test_missing_endpoints_are_unsupported_once(
    make: Make, accent: str, request_: mjasync.Request, served_by: str
) -> None:
    fake, client = await make(accent)
    with pytest.raises(UnsupportedEndpointError) as info:
        await client.run(request_)
    assert served_by in str(info.value)
    before = fake.stats().requests
    results = await client.gather([request_, Imagine("a cat")])
    assert isinstance(results[0], UnsupportedEndpointError)
    assert isinstance(results[1], mjasync.Task)
    after = fake.stats().requests
    assert after.get("other", 0) == before.get("other", 0)
    assert after["submit"] == before.get("submit", 0) + 1  # only the imagine
    events = [event async for event in client.stream([request_])]
    assert len(events) == 1 and isinstance(events[0].error, UnsupportedEndpointError)


async def test_convenience_helpers(make: Make) -> None:
    _, client = await make("csharp")
    assert (await client.edit("a hat", PNG_BYTES)).action_text == "EDIT"
    assert (await client.retexture("wood", PNG_BYTES)).action_text == "RETEXTURE"
    assert (await client.swap_face(PNG_BYTES, OTHER_PNG)).action_text == "SWAP_FACE"
    swapped = await client.swap_video_face(PNG_BYTES, MP4)
    assert swapped.action_text == "SWAP_VIDEO_FACE"


@pytest.mark.parametrize("accent", ["csharp", "relay"])
async def test_upload_images_returns_urls(make: Make, accent: str) -> None:
    fake, client = await make(accent)
    urls = await client.upload_images([PNG_BYTES, "https://images.example/a.png"])
    assert len(urls) == 2 and len(set(urls)) == 2
    assert (await _get(urls[0]))[:8] == b"\x89PNG\r\n\x1a\n"
    assert fake.stats().accepted == 0  # no task, nothing paid


async def test_upload_images_on_java_is_unsupported(make: Make) -> None:
    _, client = await make("java")
    with pytest.raises(UnsupportedEndpointError, match="upload"):
        await client.upload_images([PNG_BYTES])
    with pytest.raises(ValueError, match="at least one"):
        await client.upload_images([])


# -- cancel -----------------------------------------------------------------------------------


async def test_cancel_on_c_ends_the_job_as_cancelled(make: Make) -> None:
    fake, client = await make("csharp")
    job = await client.submit(Imagine("a cat --stall"))
    await client.cancel(job.id)  # C answers an empty 200
    with pytest.raises(TaskFailedError) as info:
        await job.result(timeout=5)
    task = info.value.task
    assert task is not None and task.cancelled and task.status is TaskStatus.FAILURE
    assert info.value.fail_reason == "取消任务"
    assert str(info.value).startswith(f"task {job.id}: the job was cancelled")
    assert fake.stats().requests["cancel"] == 1


async def test_cancel_on_c_without_admin_is_refused_once(make: Make) -> None:
    fake, client = await make("csharp", admin_keys=["somebody-else"])
    job = await client.submit(Imagine("a cat --stall"))
    for _ in range(2):
        with pytest.raises(UnsupportedEndpointError, match="admin"):
            await client.cancel(job.id)
    assert fake.stats().requests["cancel"] == 1
    fake.finish_task(job.id)
    assert (await job.result(timeout=5)).status is TaskStatus.SUCCESS


@pytest.mark.parametrize("accent", ["java", "relay"])
async def test_cancel_where_there_is_none(make: Make, accent: str) -> None:
    fake, client = await make(accent)
    with pytest.raises(UnsupportedEndpointError, match="C \\(trueai-org"):
        await client.cancel("1700000000000000001")
    with pytest.raises(UnsupportedEndpointError, match="not sent again"):
        await client.cancel("1700000000000000002")
    assert fake.stats().requests.get("other", 0) + fake.stats().requests.get("cancel", 0) == 1


# -- reroll through /submit/change, back-pressure, rate limits, relay errors ----------------


@pytest.mark.parametrize("accent", ["java", "relay"])
async def test_reroll_through_change(make: Make, accent: str) -> None:
    _, client = await make(accent)
    grid = await client.imagine("a cat")
    job = await client.submit(Change(grid.id, "REROLL"))
    assert (await job.result(timeout=5)).action is mjasync.TaskAction.REROLL


async def test_c_per_user_limit_is_waited_out(make: Make) -> None:
    # C: "并发数已达上限" as code -1 (SubmitController.cs:1195-1231) refuses before creating.
    fake, client = await make("csharp", user_core_size=1, job_duration=0.2)
    first = await client.submit(Imagine("a cat"))
    with anyio.fail_after(5):
        while (fake.task(first.id) or {}).get("status") != "IN_PROGRESS":
            await anyio.sleep(0.005)
    second = await client.run(mjasync.Shorten("a cat sitting on a mat"))
    assert second.status is TaskStatus.SUCCESS
    assert fake.stats().refused["back_pressure"] >= 1
    assert client.statistics().queue_full >= 1  # counted as queue-full: waited out
    assert fake.stats().accepted == 2


async def test_c_rate_limiter_block_is_waited_out(make: Make) -> None:
    fake, client = await make("csharp")
    fake.set_faults(Faults(submit=FaultRates(blocked=1.0)))
    job = None

    async def submit() -> None:
        nonlocal job
        job = await client.submit(Imagine("a cat"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(submit)
        with anyio.fail_after(5):
            while fake.stats().faults.get("blocked", 0) < 2:
                await anyio.sleep(0.005)
        fake.set_faults(None)
    assert job is not None
    assert (await job.result(timeout=5)).status is TaskStatus.SUCCESS


async def test_relay_code_5_is_retried_on_reads(make: Make) -> None:
    fake, client = await make("relay")
    fake.set_faults(Faults(poll=FaultRates(upstream_error=1.0)))
    with pytest.raises(mjasync.ServerError, match="do_request_failed"):
        await client.fetch("1700000000000000001")
    assert client.statistics().retries == 3
    assert fake.stats().faults["upstream_error"] == 4


async def test_action_with_remix_changes_the_prompt(make: Make) -> None:
    # C parks a remixed variation in MODAL (code 21) for /submit/modal to finish
    # (trueai-org/midjourney-proxy ed32197, src/Midjourney.Services/TaskService.cs:1722-1755).
    fake, client = await make("csharp", remix=True)
    grid = await client.imagine("a cat")
    task = await client.action(grid, "V1", prompt="a dog", enable_remix=True)
    assert task.status is TaskStatus.SUCCESS and task.prompt == "a dog"
    assert fake.stats().accepted_by_endpoint["modal"] == 1
    _, plain = await make("csharp")
    grid = await plain.imagine("a cat")
    with pytest.raises(mjasync.InvalidRequestError, match="remix"):
        await plain.action(grid, "V1", prompt="a dog", enable_remix=True)
