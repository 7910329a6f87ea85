"""The browser checks themselves: each finds the problem it is there to find.

A check that never fails proves nothing, so a deliberately broken page is put through all of
them, opened from disk and over HTTP as the contact sheet is.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from ._pages import (
    PHONE,
    broken_images,
    chromium,
    open_page,
    outside,
    overflowing,
    videos_without_poster,
)
from .test_contact_sheet import served

pytestmark = pytest.mark.anyio

BROKEN_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<meta name="viewport" content="width=device-width, initial-scale=1"></head><body>
<img src="good.png" alt="">
<img src="missing.png" alt="">
<img src="../outside.png" alt="">
<video src="clip.mp4"></video>
<video src="clip2.mp4" poster="missing-poster.png"></video>
<div style="width: 800px">a table far too wide for a phone</div>
<script>console.error("something broke");</script>
</body></html>
"""

# A 1x1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478"
    "9c63f8cfc0f01f0005000201e2cd0c8c0000000049454e44ae426082"
)


@pytest.mark.parametrize("how", ["file", "http"])
async def test_checks_find_every_problem(tmp_path: Path, how: str) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "index.html").write_text(BROKEN_PAGE, encoding="utf-8")
    (folder / "good.png").write_bytes(PNG)
    (tmp_path / "outside.png").write_bytes(PNG)  # exists, but outside the folder
    with anyio.fail_after(60):
        async with served(folder) as http_url, chromium() as browser:
            folder_url = folder.as_uri() + "/" if how == "file" else http_url
            page, log = await open_page(browser, viewport=PHONE, allowed_prefix=folder_url)
            await page.goto(folder_url + "index.html")
            broken = await broken_images(page)
            posters = await videos_without_poster(page)
            wide = await overflowing(page)
    assert "missing.png" in broken
    assert "../outside.png" in broken  # the request was blocked
    assert "good.png" not in broken
    assert [url.rsplit("/", 1)[-1] for url in outside(log.requests, folder_url)] == ["outside.png"]
    assert posters == ["clip.mp4: no poster", "clip2.mp4: poster missing-poster.png does not load"]
    assert any("800px" in line or "div" in line for line in wide), wide
    assert "something broke" in log.console_errors
    assert any("missing.png" in url for url in log.failed_requests), log.failed_requests
