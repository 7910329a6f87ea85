"""The contact sheet of ``mjasync batch --video`` in a real browser: players with posters."""

from __future__ import annotations

import subprocess
from pathlib import Path

import anyio
import pytest

from batch._support import clean_env, cli

from ._pages import (
    DESKTOP,
    PHONE,
    broken_images,
    chromium,
    open_page,
    outside,
    overflowing,
    videos_without_poster,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def video_sheet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of one simulated ``mjasync batch --video`` run."""
    root = tmp_path_factory.mktemp("video-sheet")
    prompts = root / "prompts.txt"
    prompts.write_text("a cat walks across a rooftop\na paper boat drifts --fail\n")
    out = root / "videos"
    command = ["batch", str(prompts), "--video", "--simulate", "--simulate-speed", "20"]
    result = subprocess.run(
        [*cli(), *command, "--out", str(out)],
        env=clean_env(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr.decode()  # the --fail prompt fails
    return out


async def test_video_sheet_in_a_browser(video_sheet: Path) -> None:
    folder_url = video_sheet.as_uri() + "/"
    with anyio.fail_after(60):
        async with chromium() as browser:
            for viewport in (DESKTOP, PHONE):
                page, log = await open_page(browser, viewport=viewport, allowed_prefix=folder_url)
                await page.goto(folder_url + "index.html")
                assert await page.locator(".card.succeeded video").count() == 4
                assert await page.locator(".card.failed video").count() == 0
                assert await page.locator("img").count() == 0  # posters sit on the players
                assert await videos_without_poster(page) == []
                assert await broken_images(page) == []
                assert await overflowing(page) == []
                assert log.problems() == []
                assert outside(log.requests, folder_url) == []
                await page.close()
