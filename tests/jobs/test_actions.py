"""Buttons and MODAL flows against the simulator: upscale, custom zoom, vary region, remix."""

from __future__ import annotations

import struct
import zlib

import pytest

import mjasync
from mjasync import TaskAction, TaskStatus
from mjasync._models import ButtonKind
from mjasync.testing import FakeMidjourney

from .conftest import KEY, fast_client

pytestmark = pytest.mark.anyio


def png(width: int = 4, height: int = 4) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + b"\xff\xff\xff" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + (chunk(b"IEND", b""))
    )


async def test_upscale_variation_reroll_by_name_button_and_custom_id(make_client):
    async with make_client() as client:
        grid = await client.imagine("a lighthouse")
        up = await client.upscale(grid, 3)
        var = await client.action(grid, grid.button("V2"))
        again = await client.action(grid.id, grid.button("reroll").custom_id)
    assert up.action is TaskAction.UPSCALE and up.status is TaskStatus.SUCCESS
    assert var.action is TaskAction.VARIATION
    assert again.action is TaskAction.REROLL
    assert {b.kind for b in up.buttons} >= {ButtonKind.CUSTOM_ZOOM, ButtonKind.INPAINT}


async def test_unknown_button_fails_before_any_request(fake, make_client):
    async with make_client() as client:
        grid = await client.imagine("a lighthouse")
        before = fake.stats().requests["submit"]
        with pytest.raises(ValueError, match="available: U1"):
            await client.action(grid, "U9")
        with pytest.raises(ValueError, match="upscaled"):
            await client.custom_zoom(grid, zoom=1.5)  # a grid has no Custom Zoom button
        with pytest.raises(ValueError, match=r"1\.0\.\.2\.0"):
            await client.custom_zoom(grid, zoom=3)
    assert fake.stats().requests["submit"] == before


async def test_custom_zoom_drives_the_modal_step(fake, make_client):
    async with make_client() as client:
        up = await client.upscale(await client.imagine("a canyon"), 1)
        zoomed = await client.custom_zoom(up, zoom=1.5)
    assert zoomed.status is TaskStatus.SUCCESS
    assert fake.stats().accepted_by_endpoint["modal"] == 1
    assert "--zoom 1.5" in (zoomed.prompt or "") + (zoomed.final_prompt or "")


async def test_vary_region_sends_the_mask(fake, make_client):
    async with make_client() as client:
        up = await client.upscale(await client.imagine("a meadow"), 2)
        varied = await client.vary_region(up, mask=png(), prompt="a red barn")
        with pytest.raises(ValueError, match="PNG"):
            await client.vary_region(up, mask=b"GIF89a" + b"\x00" * 10)
    assert varied.status is TaskStatus.SUCCESS
    assert fake.stats().accepted_by_endpoint["modal"] == 1


@pytest.mark.parametrize("accent", ["csharp", "relay"])
async def test_remix_actions_waiting_in_modal_are_finished_not_mistaken(accent):
    async with (
        FakeMidjourney(api_keys=(KEY,), accent=accent, remix=True, job_duration=0.05) as fake,
        fast_client(fake) as client,
    ):
        grid = await client.imagine("a fox")
        varied = await client.variation(grid, 1)
    assert varied.status is TaskStatus.SUCCESS  # not returned while still in MODAL
    assert fake.stats().accepted_by_endpoint["modal"] == 1


async def test_describe_and_shorten_results(make_client):
    async with make_client() as client:
        described = await client.run(mjasync.Describe(png()))
        shortened = await client.run(mjasync.Shorten("a very very long prompt about a cat"))
    assert described.final_prompt and shortened.final_prompt


async def test_blend(make_client):
    async with make_client() as client:
        task = await client.run(mjasync.Blend([png(), png(8, 8)], dimensions="portrait"))
    assert task.status is TaskStatus.SUCCESS and task.action is TaskAction.BLEND


async def test_java_proxy_buttons_go_through_submit_change():
    # J sends no buttons and has no /submit/action: U/V/reroll use its legacy /submit/change.
    async with (
        FakeMidjourney(api_keys=(KEY,), accent="java", job_duration=0.05) as fake,
        fast_client(fake, mode=None, auth="mj-api-secret") as client,
    ):
        grid = await client.imagine("a java cat")
        up = await client.upscale(grid, 4)
        var = await client.action(grid.id, "V1")
        with pytest.raises(mjasync.UnsupportedEndpointError, match="legacy"):
            await client.action(grid, "MJ::CustomZoom::1::abc")
        sent = client.statistics().submits
    assert grid.buttons == ()
    assert up.action is TaskAction.UPSCALE
    assert var.action is TaskAction.VARIATION
    assert fake.stats().accepted_by_endpoint["change"] == 2
    assert sent == 4  # imagine, change, change, and one /submit/action that 404ed
