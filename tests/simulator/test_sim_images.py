"""The image URLs serve real PNGs: a 2x2 grid for grids, single images for upscales."""

from __future__ import annotations

import pytest

from ._helpers import decode_png, wait_until

pytestmark = pytest.mark.anyio


async def _download(api, url):
    async with api.session.get(url) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "image/png"
        return await resp.read()


async def test_grid_is_a_png_with_four_coloured_quadrants(sim):
    fake, api = sim
    task = await api.run()
    width, height, rows = decode_png(await _download(api, task["imageUrl"]))
    assert (width, height) == (256, 256)

    def pixel(x, y):
        return rows[y][3 * x : 3 * x + 3]

    quadrants = {pixel(64, 64), pixel(192, 64), pixel(64, 192), pixel(192, 192)}
    assert len(quadrants) == 4, "a grid shows four different images"
    assert pixel(128, 128) not in quadrants  # the gutter between them
    assert fake.stats().requests["image"] == 1


async def test_upscale_is_a_single_image_matching_its_quadrant(sim):
    _, api = sim
    grid = await api.run()
    grid_rows = decode_png(await _download(api, grid["imageUrl"]))[2]
    press = {"taskId": grid["id"], "customId": grid["buttons"][2]["customId"]}  # U3
    upscale = await api.wait_status((await api.submit("action", press))["result"])
    width, height, rows = decode_png(await _download(api, upscale["imageUrl"]))
    assert (width, height) == (256, 256)
    assert rows[0][:3] == grid_rows[192][60:63]  # top row: quadrant 3's colour, full strength
    assert rows[0][:3] == rows[0][-3:]  # one picture, not a grid


async def test_preview_while_running_is_a_smaller_png(make_sim):
    fake, api = await make_sim(job_duration=5, progress_steps=50)
    task_id = await api.imagine()
    url = await wait_until(lambda: fake.task(task_id)["imageUrl"])
    width, height, _ = decode_png(await _download(api, url))
    assert (width, height) == (128, 128)


async def test_unknown_image_is_404(sim):
    _, api = sim
    for path in ("/_sim/img/123-grid.jpg", "/_sim/img/..%2Fetc-grid.png", "/_sim/img/1-u9.png"):
        async with api.session.get(api.base + path) as resp:
            assert resp.status == 404, path
