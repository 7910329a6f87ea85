"""Headless Chromium for the browser tests: launch it, open a page, and check what a user sees.

Chromium is the system's (Debian's ``chromium`` package), driven by Playwright's Python
package through ``executable_path``; Playwright's own browser download does not work here.
Without either, the tests skip, except under CI (``$CI`` set), where they fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Browser, ConsoleMessage, Page, Request

#: Where screenshots go (CI keeps them); printed at the end of the test run.
ARTIFACTS = Path(
    os.environ.get("MJASYNC_ARTIFACTS") or Path(__file__).resolve().parents[2] / "build/browser"
)
SAVED: list[Path] = []

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

# Without the background-networking flags Chromium keeps dialling Google's hosts, which this
# closed network refuses; a fresh profile per launch is Playwright's default.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{why} (required when $CI is set; .ci/run installs it)")
    pytest.skip(why)


def chromium_path() -> str:
    """The Chromium binary: ``$MJASYNC_CHROMIUM``, else ``chromium`` on the PATH."""
    path = os.environ.get("MJASYNC_CHROMIUM") or shutil.which("chromium")
    if path is None or not Path(path).exists():
        _unavailable("no chromium binary (apt-get install chromium)")
    assert path is not None
    return path


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A headless Chromium for one test."""
    executable = chromium_path()
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _unavailable("Playwright is not installed (pip install -e '.[browser]')")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class PageLog:
    """What a page did while the test looked at it."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions and failed requests."""
        return [
            *(f"console error: {text}" for text in self.console_errors),
            *(f"uncaught exception: {text}" for text in self.page_errors),
            *(f"request failed: {url}" for url in self.failed_requests),
        ]


async def open_page(
    browser: Browser, *, viewport: dict[str, int], allowed_prefix: str | None = None
) -> tuple[Page, PageLog]:
    """A new page whose console, errors and requests are logged.

    With ``allowed_prefix``, a request to any URL outside it is logged and aborted, so nothing
    leaves the machine even when a page asks for it.
    """
    page = await browser.new_page(viewport=viewport)
    log = PageLog()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            log.console_errors.append(message.text)

    def on_request_failed(request: Request) -> None:
        # ERR_ABORTED: the page itself stopped the request (e.g. EventSource.close()).
        if request.failure != "net::ERR_ABORTED":
            log.failed_requests.append(f"{request.url} ({request.failure})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: log.page_errors.append(str(error)))
    page.on("request", lambda request: log.requests.append(request.url))
    page.on("requestfailed", on_request_failed)
    page.on(
        "response",
        lambda response: (
            log.failed_requests.append(f"{response.url} (HTTP {response.status})")
            if response.status >= 400
            else None
        ),
    )
    if allowed_prefix is not None:

        async def guard(route: Any) -> None:
            if route.request.url.startswith(allowed_prefix):
                await route.continue_()
            else:
                await route.abort("blockedbyclient")

        await page.route("**/*", guard)
    return page, log


async def broken_images(page: Page) -> list[str]:
    """Every ``<img>`` scrolled into view (lazy ones load then); those with no pixels."""
    count = await page.locator("img").count()
    for index in range(count):
        image = page.locator("img").nth(index)
        await image.scroll_into_view_if_needed()
        await image.evaluate(
            "img => img.complete ? null : new Promise(done => {"
            " img.addEventListener('load', done); img.addEventListener('error', done); })"
        )
    broken: list[str] = await page.evaluate(
        "[...document.images].filter(img => !(img.naturalWidth > 0))"
        ".map(img => img.getAttribute('src'))"
    )
    return broken


async def videos_without_poster(page: Page) -> list[str]:
    """Every ``<video>`` whose ``poster`` is missing or does not load."""
    problems: list[str] = await page.evaluate(
        """async () => {
            const problems = [];
            for (const video of document.querySelectorAll("video")) {
                const name = video.getAttribute("src")
                    || video.querySelector("source")?.getAttribute("src") || "<video>";
                const poster = video.getAttribute("poster");
                if (!poster) { problems.push(`${name}: no poster`); continue; }
                const image = new Image();
                const loaded = await new Promise(done => {
                    image.onload = () => done(image.naturalWidth > 0);
                    image.onerror = () => done(false);
                    image.src = video.poster;
                });
                if (!loaded) problems.push(`${name}: poster ${poster} does not load`);
            }
            return problems;
        }"""
    )
    return problems


async def overflowing(page: Page) -> list[str]:
    """Elements that stick out to the right of the viewport (the page scrolls sideways)."""
    found: list[str] = await page.evaluate(
        """() => {
            const width = document.documentElement.clientWidth;
            const wide = [];
            if (document.documentElement.scrollWidth > width) {
                wide.push(`page is ${document.documentElement.scrollWidth}px wide in ${width}px`);
            }
            for (const element of document.body.querySelectorAll("*")) {
                const name = element.tagName.toLowerCase()
                    + (element.className ? "." + element.className : "");
                const right = element.getBoundingClientRect().right;
                if (right > width + 0.5) {
                    wide.push(`${name} ends at ${Math.round(right)}px`);
                }
                // Text wider than its own box spills out without moving the box's edge.
                const style = getComputedStyle(element);
                if (style.overflowX === "visible" && element.clientWidth > 0
                        && element.scrollWidth > element.clientWidth + 1) {
                    wide.push(`${name}'s content is ${element.scrollWidth}px wide `
                        + `in ${element.clientWidth}px`);
                }
            }
            return wide;
        }"""
    )
    return found


def outside(requests: list[str], prefix: str) -> list[str]:
    """The requested URLs that do not start with ``prefix``."""
    return [url for url in requests if not url.startswith(prefix)]


async def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save a screenshot under :data:`ARTIFACTS`; the run's summary lists it."""
    path = ARTIFACTS / f"{name}.png"  # Playwright creates the folder
    await page.screenshot(path=str(path), full_page=full_page)
    SAVED.append(path)
    return path
