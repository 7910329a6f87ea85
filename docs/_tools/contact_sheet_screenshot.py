"""Make ``docs/images/contact-sheet.png``: README's main job, as the contact sheet shows it.

Runs ``mjasync batch examples/prompts.txt --simulate`` into a temporary folder and photographs
the top of its ``index.html`` in headless Chromium (Debian's ``chromium``; Playwright from the
``browser`` extra)::

    .venv/bin/python docs/_tools/contact_sheet_screenshot.py [OUTPUT.png]
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


async def photograph(index: Path, output: Path) -> None:
    """The first screenful of ``index`` at a laptop's width."""
    chromium = os.environ.get("MJASYNC_CHROMIUM") or shutil.which("chromium") or "chromium"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1200, "height": 820})
        await page.goto(index.as_uri())
        await page.evaluate(
            "Promise.all([...document.images].filter(i => !i.complete).map(i => new Promise("
            "done => { i.onload = i.onerror = done; })))"
        )
        await page.screenshot(path=str(output))
        await browser.close()


def main() -> None:
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs/images/contact-sheet.png"
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "out"
        mjasync = Path(sys.executable).with_name("mjasync")
        readme_job = ["batch", str(ROOT / "examples/prompts.txt"), "--simulate", "--out", str(out)]
        subprocess.run(
            [str(mjasync), *readme_job, "--simulate-speed", "20"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        asyncio.run(photograph(out / "index.html", output))
    print(output)


if __name__ == "__main__":
    main()
