"""The ``mjasync`` command line as a user meets it: error paths, plain output, single jobs."""

from __future__ import annotations

import io
import json
from pathlib import Path

import anyio
import pytest
from rich.console import Console

from mjasync._batch.types import BatchEvent, BatchEventKind
from mjasync._models import TaskStatus
from mjasync.cli._display import LiveView

from ._support import assert_real_png, clean_env, read_manifest, run_cli
from .conftest import KEY

pytestmark = pytest.mark.anyio


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.txt"
    path.write_text("# a comment\n\na red fox\n  \na blue whale\n# another\na green tree\n")
    return path


def _one_clean_line(result, code: int = 2) -> str:
    stderr = result.stderr.decode()
    assert result.returncode == code, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


async def test_every_error_is_one_line_and_a_nonzero_exit(fake, prompts, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing but comments\n\n   \n")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00\x81 not text")
    out = str(tmp_path / "out")
    server = ["--base-url", fake.base_url, "--api-key", KEY]
    cases = {
        "no server": (["batch", str(prompts), "--out", out], {}),
        "does not exist": (
            ["batch", str(tmp_path / "missing.txt"), "--out", out, "--simulate"],
            {},
        ),
        "has no prompts": (["batch", str(empty), "--out", out, *server], {}),
        "not UTF-8": (["batch", str(binary), "--out", out, *server], {}),
        "is a directory": (["batch", str(tmp_path), "--out", out, *server], {}),
        "refused the API key": (
            ["batch", str(prompts), "--out", out, "--base-url", fake.base_url],
            {"MJ_API_KEY": "sk-not-the-right-key"},
        ),
        "'--concurrency': '0'": (["batch", str(prompts), "--out", out, "--concurrency", "0"], {}),
        "'--concurrency': 'lots'": (
            ["batch", str(prompts), "--out", out, "--concurrency", "lots", "--simulate"],
            {},
        ),
        "'--upscale'": (["batch", str(prompts), "--out", out, "--upscale", "7", *server], {}),
        "'--mode'": (["batch", str(prompts), "--out", out, *server], {"MJ_MODE": "ludicrous"}),
        "Missing option '--out'": (["batch", str(prompts), "--simulate"], {}),
        "exclude each other": (["batch", str(prompts), "--out", out, "--simulate", *server], {}),
    }
    results = {}

    async def run(name: str, args: list[str], env: dict[str, str]) -> None:
        results[name] = await run_cli(*args, env=clean_env(**env))

    async with anyio.create_task_group() as tg:
        for name, (args, env) in cases.items():
            tg.start_soon(run, name, args, env)

    for name, result in results.items():
        line = _one_clean_line(result)
        assert line.startswith("mjasync batch: "), line
        assert name in line, line
    assert fake.stats().accepted == 0
    assert fake.stats().refused.get("auth", 0) >= 1  # the bad key was really tried


async def test_plain_output_when_not_a_terminal(prompts, tmp_path):
    out = tmp_path / "out"
    result = await run_cli(
        "batch", str(prompts), "--out", str(out), "--simulate", "--simulate-speed", "20"
    )
    stdout = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert "\x1b[" not in stdout  # no colours, no cursor movement
    assert "━" not in stdout  # no progress bars either
    lines = stdout.splitlines()
    assert lines[0].startswith("mjasync batch: 3 prompts on the built-in simulator")
    assert sum(1 for line in lines if " submitted task " in line) == 3
    assert sum(1 for line in lines if line.endswith("finished: succeeded")) == 3
    assert "3 prompts: 3 succeeded, 0 failed, 0 uncertain" in lines
    assert any(line.startswith("cost: ") and "API requests" in line for line in lines)
    manifest = read_manifest(out)
    assert [line["prompt"] for line in manifest] == ["a red fox", "a blue whale", "a green tree"]
    for line in manifest:
        for name in line["files"]:
            assert_real_png(out / name)


async def test_environment_configures_and_flags_override_it(fake, prompts, tmp_path):
    env = clean_env(MJ_BASE_URL=fake.base_url, MJ_API_KEY="sk-wrong-in-the-env", MJ_MODE="relax")
    result = await run_cli(
        "batch", str(prompts), "--out", str(tmp_path), "--api-key", KEY, "--poll-interval", "0.02",
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert fake.stats().accepted == 3
    assert fake.stats().peak_active["relax"] >= 1  # MJ_MODE chose the relax account
    assert fake.stats().peak_active["fast"] == 0


async def test_failed_prompts_exit_1_and_are_listed(fake, tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("a calm sea\na storm --fail\n")
    result = await run_cli(
        "batch", str(path), "--out", str(tmp_path / "o"), "--base-url", fake.base_url,
        "--api-key", KEY, "--poll-interval", "0.02",
    )  # fmt: skip
    assert result.returncode == 1
    stdout = result.stdout.decode()
    assert "2 prompts: 1 succeeded, 1 failed, 0 uncertain" in stdout
    assert "#2 failed: a storm --fail" in stdout


async def test_single_job_commands(fake, tmp_path):
    server = ["--base-url", fake.base_url, "--api-key", KEY, "--poll-interval", "0.02"]
    made = await run_cli("imagine", "a small boat", "--out", str(tmp_path / "i"), *server)
    assert made.returncode == 0, made.stderr.decode()
    task_id = made.stdout.decode().split()[1].rstrip(":")
    assert task_id in fake.task_ids()
    saved = [
        line.split(": ", 1)[1] for line in made.stdout.decode().splitlines() if "saved" in line
    ]
    assert saved
    for name in saved:
        assert_real_png(Path(name))

    shown = await run_cli("fetch", task_id, "--json", *server)
    assert shown.returncode == 0
    assert json.loads(shown.stdout)["id"] == task_id

    pressed = await run_cli("action", task_id, "U2", "--out", str(tmp_path / "a"), *server)
    assert pressed.returncode == 0, pressed.stderr.decode()
    assert "UPSCALE SUCCESS" in pressed.stdout.decode()
    assert len(list((tmp_path / "a").glob("*.png"))) == 1

    missing = await run_cli("action", task_id, "U9", *server)
    assert "no button 'U9'" in _one_clean_line(missing)
    unknown = await run_cli("fetch", "999999", *server)
    assert _one_clean_line(unknown, code=1).startswith("mjasync fetch: ")

    image = next((tmp_path / "a").glob("*.png"))
    described = await run_cli("describe", str(image), "--simulate", "--simulate-speed", "20")
    assert described.returncode == 0, described.stderr.decode()
    assert "1️⃣" in described.stdout.decode()


def test_live_view_shows_bar_eta_counts_and_tasks() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120, color_system=None)
    view = LiveView(3, "header", console=console)
    view.on_event(
        BatchEvent(
            kind=BatchEventKind.PROGRESS,
            index=0,
            prompt="a red fox",
            key="k",
            task_id="17001",
            status=TaskStatus.IN_PROGRESS,
            progress=40,
        )
    )
    console.print(view._render())
    text = buffer.getvalue()
    assert "0/3" in text
    assert "eta" in text
    assert "queued 2" in text
    assert "running 1" in text
    assert "17001" in text
    assert "40%" in text
