"""The contact sheet ``mjasync batch`` writes (``index.html``), rendered in a real browser.

It must work as a user meets it, opened from disk (``file://``) or served by any web server:
every image loads, every video has a poster, the console stays clean, no request leaves the
output folder, and it reads on a phone (no sideways scrolling at 390 px).
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest
from aiohttp import web

from batch._support import clean_env, cli

from ._pages import (
    DESKTOP,
    PHONE,
    PageLog,
    broken_images,
    chromium,
    open_page,
    outside,
    overflowing,
    screenshot,
    videos_without_poster,
)

if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# The README's prompts, plus what makes a sheet hard to lay out: a failed job, a refused
# prompt, and a prompt with a word too long for a phone's width.
EXTRA_PROMPTS = [
    "a storm over a lighthouse that will not render --fail",
    "a gore scene",
    "a prompt with " + "averylongwordwithoutanyplacetobreakit" * 4 + " and ordinary words",
]
# A long folder name becomes the page's title and heading.
OUT_NAME = "renders_for_the_spring_campaign_second_round_final_approved"


@pytest.fixture(scope="module")
def sheet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of one simulated ``mjasync batch --upscale 2`` run."""
    root = tmp_path_factory.mktemp("sheet")
    prompts = root / "prompts.txt"
    readme_prompts = (EXAMPLES / "prompts.txt").read_text(encoding="utf-8")
    prompts.write_text(readme_prompts + "\n".join(EXTRA_PROMPTS) + "\n", encoding="utf-8")
    out = root / OUT_NAME
    command = ["batch", str(prompts), "--simulate", "--simulate-speed", "20", "--upscale", "2"]
    result = subprocess.run(
        [*cli(), *command, "--out", str(out)],
        env=clean_env(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr.decode()  # two prompts fail, on purpose
    assert (out / "index.html").is_file()
    return out


@asynccontextmanager
async def served(folder: Path) -> AsyncIterator[str]:
    """``folder`` served at ``http://127.0.0.1:PORT/sheet/``; yields that URL."""
    app = web.Application()
    app.router.add_static("/sheet/", folder)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}/sheet/"
    finally:
        await runner.cleanup()


async def check_page(page: Page, log: PageLog, folder_url: str) -> None:
    """All the checks of the module docstring, on the page as it is now."""
    assert await page.locator(".card").count() >= 12
    assert await page.locator("img").count() >= 12
    assert await broken_images(page) == []
    assert await videos_without_poster(page) == []
    assert await overflowing(page) == []
    assert log.problems() == []
    assert outside(log.requests, folder_url) == []


@pytest.mark.parametrize("how", ["file", "http"])
async def test_sheet_in_a_browser(sheet: Path, how: str) -> None:
    with anyio.fail_after(90):
        async with served(sheet) as http_url, chromium() as browser:
            folder_url = sheet.as_uri() + "/" if how == "file" else http_url
            for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
                page, log = await open_page(browser, viewport=viewport, allowed_prefix=folder_url)
                await page.goto(folder_url + "index.html")
                await check_page(page, log, folder_url)
                # The failed and the refused prompt say so on their cards.
                assert await page.locator(".card.failed").count() == 2
                assert await page.locator(".card.failed .error").count() == 2
                if name == "desktop":  # a short card is not stretched to its row's height
                    short = await page.locator(".card.failed").first.bounding_box()
                    tall = await page.locator(".card.succeeded").last.bounding_box()
                    assert short is not None and tall is not None
                    assert short["height"] < tall["height"] / 2
                await screenshot(page, f"contact-sheet-{how}-{name}")
                await page.close()


async def test_dark_mode_sheet_keeps_text_readable(sheet: Path) -> None:
    """In dark mode the prompt text is light on a dark card (not black on near-black)."""
    with anyio.fail_after(60):
        async with chromium() as browser:
            page = await browser.new_page(viewport=PHONE, color_scheme="dark")
            await page.goto(sheet.as_uri() + "/index.html")
            text, card = await page.locator(".card .prompt").first.evaluate(
                "p => [getComputedStyle(p).color, getComputedStyle(p.closest('.card'))"
                ".backgroundColor]"
            )
            assert text != card
            assert _luminance(text) > 0.5 > _luminance(card), (text, card)


def _luminance(css_rgb: str) -> float:
    """0 (black) to 1 (white) from ``rgb(r, g, b)``."""
    red, green, blue = (int(part) for part in css_rgb[css_rgb.index("(") + 1 : -1].split(",")[:3])
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255
