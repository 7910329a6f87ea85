"""The "progress in a browser" examples, driven as a user would: type a prompt, watch, see it.

``examples/sse_progress_aiohttp.py`` and ``examples/sse_progress_fastapi.py`` serve one page
that submits a prompt and follows the job as Server-Sent Events. Each runs on a real port
against the simulator, and headless Chromium uses the page.
"""

from __future__ import annotations

import importlib.util
import re
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web

import mjasync
import sim_clients
from mjasync.testing import FakeMidjourney

from ._pages import DESKTOP, PHONE, chromium, open_page, overflowing, screenshot

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
KEY = "sk-sse-test-0123456789"


def load(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` (examples are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the models' annotations through it
    spec.loader.exec_module(module)
    return module


@pytest.fixture
async def fake() -> AsyncIterator[FakeMidjourney]:
    # Slow enough that a 50 ms poller sees several progress steps before the end.
    async with FakeMidjourney(
        api_keys=(KEY,), job_duration=1.2, start_delay=0.2, progress_steps=4
    ) as server:
        yield server


def client_factory(fake: FakeMidjourney) -> Callable[[], mjasync.Client]:
    return lambda: sim_clients.fast_client(fake, KEY, poll_interval=0.05)


@asynccontextmanager
async def aiohttp_serving(app: web.Application) -> AsyncIterator[str]:
    """``app`` on a free loopback port; yields its root URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}/"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def uvicorn_serving(app: Any) -> AsyncIterator[str]:
    """An ASGI ``app`` served by uvicorn on a free loopback port; yields its root URL."""
    import uvicorn

    # Bound and listening before uvicorn starts: early connections wait in the backlog, so
    # there is nothing to poll for.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    host, port = sock.getsockname()
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(server.serve, [sock])
            try:
                yield f"http://{host}:{port}/"
            finally:
                server.should_exit = True
    finally:
        sock.close()


def aiohttp_example(fake: FakeMidjourney) -> Any:
    return aiohttp_serving(load("sse_progress_aiohttp").make_app(client_factory(fake)))


def fastapi_example(fake: FakeMidjourney) -> Any:
    return uvicorn_serving(load("sse_progress_fastapi").create_app(client_factory(fake)))


EXAMPLE_SERVERS = {"aiohttp": aiohttp_example, "fastapi": fastapi_example}


@pytest.mark.parametrize("framework", sorted(EXAMPLE_SERVERS))
async def test_page_shows_progress_then_the_image(fake: FakeMidjourney, framework: str) -> None:
    with anyio.fail_after(60):
        async with EXAMPLE_SERVERS[framework](fake) as url, chromium() as browser:
            page, log = await open_page(browser, viewport=PHONE)
            await page.goto(url)
            await page.fill("#prompt", "a lighthouse in a storm")
            await page.click("#go")
            await page.wait_for_function(
                "document.getElementById('image').naturalWidth > 0", timeout=30_000
            )
            steps = await page.locator("#log li").all_inner_texts()
            status = await page.inner_text("#status")
            bar = await page.eval_on_selector("#bar", "bar => bar.value")
            wide = await overflowing(page)
            await screenshot(page, f"sse-progress-{framework}")
    # Progress arrived while the job ran, in order, then the end; the image loaded.
    percents = [int(m.group(1)) for s in steps if (m := re.fullmatch(r"IN_PROGRESS (\d+)%", s))]
    assert any(0 < p < 100 for p in percents), steps
    assert percents == sorted(percents), steps
    assert steps[-1] == "SUCCESS", steps
    [task_id] = fake.task_ids()
    assert status == f"SUCCESS: task {task_id}"
    assert bar == 100
    assert fake.stats().accepted == 1  # one submit: the stream only follows the job
    assert wide == []
    assert log.problems() == []


@pytest.mark.parametrize("framework", sorted(EXAMPLE_SERVERS))
async def test_page_says_why_a_prompt_was_refused(fake: FakeMidjourney, framework: str) -> None:
    with anyio.fail_after(60):
        async with EXAMPLE_SERVERS[framework](fake) as url, chromium() as browser:
            page, _ = await open_page(browser, viewport=DESKTOP)
            await page.goto(url)
            await page.fill("#prompt", "a gore scene")
            await page.click("#go")
            error = page.locator("#error")
            await error.wait_for(state="visible", timeout=30_000)
            text = await error.inner_text()
            image_hidden = await page.locator("#image").is_hidden()
    assert text == "banned word: gore"
    assert image_hidden
    assert fake.stats().accepted == 0


async def test_closing_the_page_does_not_cancel_the_job(fake: FakeMidjourney) -> None:
    example = load("sse_progress_aiohttp")
    app = example.make_app(client_factory(fake))
    with anyio.fail_after(60):
        async with aiohttp_serving(app) as url, chromium() as browser:
            page, _ = await open_page(browser, viewport=PHONE)
            await page.goto(url)
            await page.fill("#prompt", "a paper boat")
            await page.click("#go")
            await page.locator("#log li").first.wait_for(timeout=30_000)  # the stream is open
            await page.close()
            [job] = app[example.JOBS].values()
            task = await job.result()
    assert task.status is mjasync.TaskStatus.SUCCESS
    assert fake.stats().requests.get("cancel", 0) == 0


async def test_quiet_stream_sends_keep_alive_comments(fake: FakeMidjourney) -> None:
    """While nothing changes, the stream still says something, so proxies keep it open."""
    example = load("sse_progress_aiohttp")
    app = example.make_app(client_factory(fake), keep_alive=0.05)
    with anyio.fail_after(30):
        async with aiohttp_serving(app) as url, aiohttp.ClientSession() as http:
            created = await http.post(url + "jobs", json={"prompt": "a slow boat --slow"})
            assert created.status == 202
            task_id = (await created.json())["task_id"]
            async with http.get(f"{url}jobs/{task_id}/events") as stream:
                content_type = stream.headers["Content-Type"]
                body = (await stream.read()).decode()
            missing = await http.get(url + "jobs/1234567890/events")
    assert content_type.startswith("text/event-stream")
    assert ": still working\n\n" in body
    assert body.count("event: progress\n") >= 2
    assert body.rstrip().rsplit("\n\n", 1)[-1].startswith("event: done\n")
    assert '"image_url": "http' in body
    assert missing.status == 404
