"""A hostile server cannot make a batch write outside its output directory.

A purpose-built aiohttp server plays midjourney-proxy with evil task ids, image URLs full of
``..`` (plain and percent-encoded), absolute paths, non-HTTP schemes and a
``Content-Disposition`` pointing elsewhere. Prompts are hostile too. Whatever happens to the
jobs, every file written must sit directly inside DIR with a name we chose.
"""

from __future__ import annotations

import io
import itertools
import os
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from PIL import Image

import mjasync
from mjasync._batch.batch import run_batch
from mjasync._batch.download import task_image_filename
from mjasync._batch.types import BatchOutcome

from ._support import assert_real_png, files_under

pytestmark = pytest.mark.anyio


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


class HostileProxy:
    """Accepts every imagine; every task succeeds at once with the URLs ``urls_for`` gives."""

    def __init__(self, escape: Path) -> None:
        self.escape = escape
        self.base = ""
        self.ids = itertools.count(1)
        self.tasks: dict[str, dict[str, Any]] = {}
        self.png = _png()

    def urls_for(self, number: int) -> tuple[str, list[str]]:
        base, escape = self.base, self.escape
        if number % 2:  # every URL is http and serves a PNG, but the paths are hostile
            return f"{base}/img/..%2F..%2F{escape.name}", [
                f"{base}/img/../../../..{escape}",
                f"{base}/img/%2e%2e/%2e%2e/{escape.name}?name=../../x.png",
                f"{base}/img/C:%5CWindows%5C{escape.name}",
            ]
        return f"file://{escape}", [f"javascript:alert(1)//{escape.name}.png"]

    async def submit(self, request: web.Request) -> web.Response:
        body = await request.json()
        number = next(self.ids)
        # Ids with path pieces in them, as a hostile (or broken) relay might send.
        task_id = f"../../{number}" if number % 3 == 0 else str(7000 + number)
        main, others = self.urls_for(number)
        self.tasks[task_id] = {
            "id": task_id,
            "action": "IMAGINE",
            "status": "SUCCESS",
            "progress": "100%",
            "prompt": body["prompt"],
            "imageUrl": main,
            "imageUrls": [{"url": url} for url in others],
            "buttons": [],
            "failReason": None,
        }
        return web.json_response({"code": 1, "description": "ok", "result": task_id})

    async def list_tasks(self, request: web.Request) -> web.Response:
        ids = (await request.json()).get("ids", [])
        return web.json_response([self.tasks[i] for i in ids if i in self.tasks])

    async def image(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self.png,
            content_type="image/png",
            headers={"Content-Disposition": f'attachment; filename="../../..{self.escape}"'},
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/mj-fast/mj/submit/imagine", self.submit)
        app.router.add_post("/mj-fast/mj/task/list-by-condition", self.list_tasks)
        app.router.add_get("/{tail:.*}", self.image)  # any path: clients normalise ".."
        return app


@pytest.fixture
async def hostile(tmp_path: Path) -> AsyncIterator[HostileProxy]:
    proxy = HostileProxy(Path("/tmp") / f"mjasync-escape-{uuid.uuid4().hex}.png")
    runner = web.AppRunner(proxy.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    proxy.base = f"http://{host}:{port}"
    try:
        yield proxy
    finally:
        await runner.cleanup()


HOSTILE_PROMPTS = [
    f"../../../../tmp/{'x' * 10}",
    "/etc/passwd",
    "..\\..\\windows\\system32",
    "CON",
    "a/b\\c:d <script>alert(1)</script>",
    "~/.ssh/authorized_keys",
]


async def test_nothing_escapes_the_output_directory(hostile, tmp_path):
    root = tmp_path / "root"
    out = root / "out"
    outside = root / "outside.png"
    out.mkdir(parents=True)
    outside.write_bytes(b"precious")
    # A symlink planted where the first grid will be saved, pointing outside DIR.
    first = task_image_filename("7001", HOSTILE_PROMPTS[0], f"{hostile.base}/img/x")
    (out / first).symlink_to(outside)
    before = files_under(root)

    async with mjasync.Client(hostile.base, "sk-hostile-000000", poll_interval=0.02) as client:
        summary = await run_batch(client, HOSTILE_PROMPTS, out_dir=out, split=True)

    assert summary.total == len(HOSTILE_PROMPTS)
    assert not hostile.escape.exists()
    assert outside.read_bytes() == b"precious"
    # Every new file is a direct child of DIR with a plain name of ours.
    new = files_under(root) - before
    assert new
    base = out.resolve()
    for path in new:
        assert path.resolve().parent == base, path
        assert re.fullmatch(r"\.?[a-z0-9_.-]+", path.name), path.name
    # The prompts whose URLs were http succeeded (except the planted symlink); the others
    # (file:, javascript:) failed without writing anything.
    outcomes = [r.outcome for r in summary.results]
    assert outcomes[0] is BatchOutcome.FAILED  # the symlink trap was refused
    assert outcomes[1] is BatchOutcome.FAILED  # file:// and javascript: URLs
    # The third submit answer carried the id "../../3": not a task id, so it never goes into
    # a URL or a file name, and the job is uncertain (the server may have made it).
    assert outcomes[2] is BatchOutcome.UNCERTAIN, [r.error for r in summary.results]
    assert outcomes[4] is BatchOutcome.SUCCEEDED, [r.error for r in summary.results]
    assert "scheme" in (summary.results[1].error or "")
    for name in summary.files:
        assert_real_png(out / name)
    assert not list(out.glob("*.part"))
    assert os.readlink(out / first) == str(outside)  # left alone, not written through
