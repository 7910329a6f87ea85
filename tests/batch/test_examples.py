"""Every file in ``examples/`` runs against the simulator and does what it says."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from aiohttp.test_utils import TestClient, TestServer

from ._support import assert_real_png, read_manifest, run_cli
from .conftest import fast_client

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a module (examples are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the models' annotations through it
    spec.loader.exec_module(module)
    return module


async def test_prompts_file_is_the_readme_main_job(tmp_path):
    prompts = (EXAMPLES / "prompts.txt").read_text(encoding="utf-8").splitlines()
    active = [p.strip() for p in prompts if p.strip() and not p.strip().startswith("#")]
    assert 10 <= len(active) <= 15
    assert any("--fail" in p for p in prompts)  # the failure demo is there, commented out
    assert not any("--fail" in p for p in active)

    out = tmp_path / "out"
    result = await run_cli(
        "batch", str(EXAMPLES / "prompts.txt"), "--simulate", "--simulate-speed", "20",
        "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    manifest = read_manifest(out)
    assert [line["prompt"] for line in manifest] == active
    assert all(line["outcome"] == "succeeded" for line in manifest)
    assert (out / "index.html").is_file()


async def test_aiohttp_handler_awaits_one_image(fake):
    example = load("aiohttp_handler")
    app = example.make_app(lambda: fast_client(fake))
    async with TestClient(TestServer(app)) as http:
        ok = await http.get("/imagine", params={"prompt": "a red fox"})
        body = await ok.json()
        banned = await http.get("/imagine", params={"prompt": "a gore scene"})
        failed = await http.get("/imagine", params={"prompt": "a storm --fail"})
        missing = await http.get("/imagine")
    assert ok.status == 200
    assert body["task_id"] in fake.task_ids()
    assert body["image_url"].endswith(".png")
    assert "U1" in body["buttons"]
    assert banned.status == 422
    assert failed.status == 502
    assert missing.status == 400
    assert fake.stats().accepted == 2


async def test_fastapi_endpoint_awaits_one_image(fake):
    example = load("fastapi_endpoint")
    app = example.create_app(lambda: fast_client(fake))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as http,
    ):
        ok = await http.post("/imagine", json={"prompt": "a blue whale"})
        banned = await http.post("/imagine", json={"prompt": "nude"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["task_id"] in fake.task_ids()
    assert ok.json()["image_url"].endswith(".png")
    assert banned.status_code == 422


async def test_stream_progress_prints_every_step(make_client, tmp_path, capsys):
    example = load("stream_progress")
    async with make_client() as client:
        summary = await example.show_progress(client, example.PROMPTS, str(tmp_path))
    assert summary.ok
    printed = capsys.readouterr().out.splitlines()
    assert any("IN_PROGRESS" in line and "%" in line for line in printed)
    assert sum(1 for line in printed if "succeeded:" in line) == len(example.PROMPTS)


async def test_batch_upscale_upscales_every_grid(make_client, fake, tmp_path):
    example = load("batch_upscale")
    async with make_client() as client:
        summary = await example.upscale_all(client, str(tmp_path))
    assert summary.ok
    assert fake.stats().accepted_by_endpoint["action"] == 4 * len(example.PROMPTS)
    for result in summary.results:
        assert [u.button for u in result.upscales] == ["U1", "U2", "U3", "U4"]
        for upscale in result.upscales:
            assert_real_png(tmp_path / upscale.files[0])
