"""The batch and the single-job commands as a new user meets them (issue 16, items 1-9).

Each test walks one path a user takes: interrupt a simulated batch and resume it, lose an
image and rerun, ask for ``--split`` where the server already sent the images, read a server
refusal, press a button of a simulated task in a later command, bring a JSONL or CSV file.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import signal
import subprocess
import tomllib
from pathlib import Path

import anyio
import pytest
from PIL import Image

from mjasync.testing import FakeMidjourney

from ._support import (
    assert_real_png,
    clean_env,
    cli,
    journal_states,
    read_manifest,
    run_cli,
    wait_until,
)
from .conftest import KEY

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
CJK = re.compile(r"[\u4e00-\u9fff]")
FAST_SIM = ("--simulate", "--simulate-speed", "20")


def _prompts(tmp_path: Path, *lines: str, name: str = "prompts.txt") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _server(fake: FakeMidjourney) -> list[str]:
    return ["--base-url", fake.base_url, "--api-key", KEY, "--poll-interval", "0.02"]


def _check_all_succeeded(out: Path, count: int) -> list[dict]:
    manifest = read_manifest(out)
    assert [line["outcome"] for line in manifest] == ["succeeded"] * count, manifest
    for line in manifest:
        assert line["files"]
        for name in line["files"]:
            assert_real_png(out / name)
    return manifest


# --------------------------------------------------------------------------- item 1


@pytest.mark.parametrize("how", ["ctrl-c", "sigkill"])
async def test_a_simulated_batch_resumes_with_the_printed_command(tmp_path, how):
    prompts = _prompts(tmp_path, *(f"a lighthouse number {i}" for i in range(8)))
    out = tmp_path / "out"
    journal = out / "journal.sqlite"
    args = [
        "batch", str(prompts), "--out", str(out), "--simulate", "--simulate-speed", "2",
        "--concurrency", "3",
    ]  # fmt: skip
    process = await anyio.open_process(
        [*cli(), *args], env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:

        async def in_flight() -> bool:
            states = journal_states(journal)
            return states.get("ACCEPTED", 0) >= 2 and not states.get("PENDING")

        await wait_until(in_flight, timeout=20, what="jobs in flight")
        accepted_before = sum(
            journal_states(journal).get(s, 0) for s in ("ACCEPTED", "SUCCEEDED", "DONE")
        )
        if how == "ctrl-c":
            process.send_signal(signal.SIGINT)
        else:
            process.kill()
        with anyio.fail_after(15):
            code = await process.wait()
        assert process.stderr is not None
        stderr = b""
        with anyio.move_on_after(2):
            async for chunk in process.stderr:
                stderr += chunk
    finally:
        await process.aclose()

    if how == "ctrl-c":
        assert code == 130
        line = next(li for li in stderr.decode().splitlines() if "Resume with: " in li)
        command = shlex.split(line.split("Resume with: ", 1)[1])
        assert command[:2] == ["mjasync", "batch"]
        command = command[1:]
    else:
        assert code == -signal.SIGKILL
        command = args
    assert journal_states(journal).get("ACCEPTED", 0) >= 1  # paid tasks left in flight

    rerun = await run_cli(*command, timeout=60)
    output = rerun.stdout.decode()
    assert rerun.returncode == 0, output + rerun.stderr.decode()
    assert "8 prompts: 8 succeeded, 0 failed" in output
    assert "no longer knows" not in output
    jobs = next(li for li in output.splitlines() if li.startswith("jobs: "))
    resumed = int(re.search(r"(\d+) resumed", jobs).group(1))
    new = int(re.search(r"(\d+) new", jobs).group(1))
    assert resumed >= 1  # the tasks in flight were watched again, not paid again
    assert new == 8 - accepted_before  # only what was never sent is submitted now
    _check_all_succeeded(out, 8)


# --------------------------------------------------------------------------- item 2


async def test_a_lost_image_is_fetched_again_on_the_rerun(tmp_path):
    prompts = _prompts(tmp_path, "a red fox", "a blue whale")
    out = tmp_path / "out"
    args = ["batch", str(prompts), "--out", str(out), *FAST_SIM]
    first = await run_cli(*args)
    assert first.returncode == 0, first.stderr.decode()
    fox = read_manifest(out)[0]
    lost = out / fox["files"][2]
    lost.unlink()

    # A new simulator (on a new port) serves the rerun: the stored URLs are dead, so the
    # task is asked for again and its current URLs are used.
    again = await run_cli(*args)
    assert again.returncode == 0, again.stdout.decode() + again.stderr.decode()
    assert "(1 downloaded now)" in again.stdout.decode()
    assert_real_png(lost)
    assert read_manifest(out)[0]["files"] == fox["files"]


async def test_a_lost_task_keeps_its_files_and_is_redone_on_request(tmp_path):
    prompts = _prompts(tmp_path, "a red fox", "a blue whale")
    out = tmp_path / "out"
    args = ["batch", str(prompts), "--out", str(out), *FAST_SIM]
    assert (await run_cli(*args)).returncode == 0
    fox = read_manifest(out)[0]
    (out / fox["files"][1]).unlink()
    (out / "journal.simulator.jsonl").unlink()  # the server forgot everything

    lost = await run_cli(*args)
    assert lost.returncode == 1
    line = read_manifest(out)[0]
    assert line["outcome"] == "failed"
    kept = [f for i, f in enumerate(fox["files"]) if i != 1]
    assert line["files"] == kept  # the four on disk stay in the manifest...
    page = (out / "index.html").read_text(encoding="utf-8")
    for name in kept:
        assert f'src="{name}"' in page  # ...and on the contact sheet
    assert "--retry-failed" in line["error"]
    assert "--retry-failed" in lost.stdout.decode()

    # Failed stays failed on a plain rerun; --retry-failed redoes it (free when simulated).
    assert (await run_cli(*args)).returncode == 1
    redo = await run_cli(*args, "--retry-failed")
    assert redo.returncode == 0, redo.stdout.decode() + redo.stderr.decode()
    assert "1 failed or lost request(s) will be submitted again" in redo.stderr.decode()
    assert "simulated: nothing is paid" in redo.stderr.decode()
    assert "1 retried" in redo.stdout.decode()
    _check_all_succeeded(out, 2)


async def test_retry_failed_says_what_it_pays_and_needs_a_yes(fake, tmp_path):
    prompts = _prompts(tmp_path, "a calm sea", "a storm --fail")
    out = tmp_path / "out"
    args = ["batch", str(prompts), "--out", str(out), *_server(fake)]
    assert (await run_cli(*args)).returncode == 1
    accepted = fake.stats().accepted

    refused = await run_cli(*args, "--retry-failed")
    assert refused.returncode == 2
    stderr = refused.stderr.decode()
    assert "1 failed or lost request(s) will be submitted again" in stderr
    assert "paid again" in stderr
    assert "add --yes" in stderr
    assert fake.stats().accepted == accepted  # nothing was sent

    confirmed = await run_cli(*args, "--retry-failed", "--yes")
    assert confirmed.returncode == 1  # the storm fails again, as it must
    assert fake.stats().accepted == accepted + 1  # exactly the failed one, once


# --------------------------------------------------------------------------- item 3


async def test_split_says_why_it_did_not_cut_server_sent_images(tmp_path):
    out = tmp_path / "out"
    result = await run_cli(
        "batch", str(_prompts(tmp_path, "a red fox", "a blue whale")), "--out", str(out),
        "--split", *FAST_SIM,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert "--split: 2 grids not cut: the server sent each grid's four images itself" in (
        result.stdout.decode()
    )
    for line in read_manifest(out):
        assert len(line["files"]) == len(set(line["files"])) == 5


async def test_split_cuts_grids_when_the_server_sends_only_the_grid(tmp_path):
    out = tmp_path / "out"
    async with FakeMidjourney(accent="java", api_keys=(KEY,), job_duration=0.05) as java:
        result = await run_cli(
            "batch", str(_prompts(tmp_path, "a red fox")), "--out", str(out), "--split",
            "--mode", "none", "--auth", "mj-api-secret", *_server(java),
        )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert "--split:" not in result.stdout.decode()
    [line] = read_manifest(out)
    assert len(line["files"]) == 5  # the grid and its four cut parts
    assert [Path(f).stem.rsplit("_", 1)[1] for f in line["files"][1:]] == ["1", "2", "3", "4"]


# --------------------------------------------------------------------------- item 4


async def test_server_refusals_read_in_english(tmp_path):
    banned = await run_cli("imagine", "some gore here", *FAST_SIM)
    line = banned.stderr.decode().strip()
    assert banned.returncode == 1
    assert line == "mjasync imagine: the prompt contains a word the server bans: 'gore'"

    verbose = await run_cli("imagine", "some gore here", *FAST_SIM, "--verbose")
    assert "可能包含敏感词" in verbose.stderr.decode()  # the original on request

    missing = await run_cli("fetch", "123", "--simulate")
    assert missing.stderr.decode().startswith("mjasync fetch: no such task")
    assert not CJK.search(missing.stderr.decode())

    out = tmp_path / "out"
    batch = await run_cli(
        "batch", str(_prompts(tmp_path, "some gore here", "a red fox")), "--out", str(out),
        *FAST_SIM,
    )  # fmt: skip
    assert "#1 failed: some gore here: the prompt contains a word the server bans: 'gore'" in (
        batch.stdout.decode()
    )
    assert not CJK.search(batch.stdout.decode())
    gore = read_manifest(out)[0]
    assert gore["server_message"] == "可能包含敏感词"


# --------------------------------------------------------------------------- item 6


async def test_single_commands_share_one_simulated_account(tmp_path):
    made = await run_cli("imagine", "a small boat", *FAST_SIM)
    assert made.returncode == 0, made.stderr.decode()
    text = made.stdout.decode()
    task_id = text.split()[1].rstrip(":")
    assert f"mjasync action {task_id} BUTTON --simulate" in text
    assert "--out DIR saves the images" in text  # the URL shown is not a promise

    pressed = await run_cli("action", task_id, "U2", *FAST_SIM, "--out", str(tmp_path / "a"))
    assert pressed.returncode == 0, pressed.stderr.decode()
    assert "UPSCALE SUCCESS" in pressed.stdout.decode()
    [upscale] = (tmp_path / "a").glob("*.png")
    assert upscale.name.endswith("_U2.png")
    assert_real_png(upscale)

    shown = await run_cli("fetch", task_id, "--simulate", "--json")
    assert json.loads(shown.stdout)["id"] == task_id
    saved = await run_cli("fetch", task_id, "--simulate", "--out", str(tmp_path / "f"))
    assert saved.returncode == 0, saved.stderr.decode()
    assert len(list((tmp_path / "f").glob("*.png"))) == 5

    chain = await run_cli(
        "imagine", "a red kite", "--then", "U3", "--out", str(tmp_path / "c"), *FAST_SIM
    )
    assert chain.returncode == 0, chain.stderr.decode()
    names = sorted(p.name for p in (tmp_path / "c").glob("*.png"))
    assert len(names) == 6
    assert sum(name.endswith("_U3.png") for name in names) == 1


# --------------------------------------------------------------------------- item 7


async def test_upscales_are_named_and_labelled_beside_their_grid(tmp_path):
    out = tmp_path / "out"
    result = await run_cli(
        "batch", str(_prompts(tmp_path, "a red fox", "a storm --fail")), "--out", str(out),
        "--upscale", "2", *FAST_SIM,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr.decode()  # the storm fails, on purpose
    line, storm = read_manifest(out)
    [upscale] = line["upscales"]
    [name] = upscale["files"]
    assert name == f"a-red-fox_{upscale['task_id']}_U2.png"
    page = (out / "index.html").read_text(encoding="utf-8")
    cards = page.split('<div class="card')[1:]
    card = cards[0]
    parts = card[card.index('class="parts"') : card.index('class="upscales"')]
    ups = card[card.index('class="upscales"') :]
    assert name not in parts  # the grid's own images...
    assert f'src="{name}"' in ups  # ...then the upscales, apart
    assert "<figcaption>U2</figcaption>" in ups
    assert [f"<figcaption>{n}</figcaption>" in parts for n in "1234"] == [True] * 4
    assert storm["upscales"][0]["outcome"] == "pending"
    assert "U2: not run" in cards[1]  # its grid failed: the upscale never ran


# --------------------------------------------------------------------------- item 8


async def test_batch_reads_prompts_from_standard_input(tmp_path):
    out = tmp_path / "out"
    with anyio.fail_after(30):
        result = await anyio.run_process(
            [*cli(), "batch", "-", "--out", str(out), *FAST_SIM],
            input=b"# from a pipe\na red fox\na blue whale\n",
            env=clean_env(),
            check=False,
        )
    assert result.returncode == 0, result.stderr.decode()
    assert [line["prompt"] for line in read_manifest(out)] == ["a red fox", "a blue whale"]


async def test_help_and_errors_point_the_way():
    fetch_help = (await run_cli("fetch", "--help")).stdout.decode()
    assert "--poll-interval" not in fetch_help  # fetch never polls
    assert "--poll-interval" in (await run_cli("imagine", "--help")).stdout.decode()
    batch_help = " ".join((await run_cli("batch", "--help")).stdout.decode().split())
    for words in ("JSONL", "CSV", "--retry-failed", "'-' reads standard input"):
        assert words in batch_help

    usage = await run_cli("batch", "nowhere.txt", "--out", "o", "--simulate")
    assert usage.returncode == 2
    assert usage.stderr.decode().strip().endswith("(see 'mjasync batch --help')")
    no_server = await run_cli("fetch", "123", env=clean_env())
    assert "(see 'mjasync fetch --help')" in no_server.stderr.decode()


async def test_the_summary_counts_jobs_and_submits_the_same_way(fake, tmp_path):
    out = tmp_path / "out"
    result = await run_cli(
        "batch", str(_prompts(tmp_path, "some gore here", "a red fox")), "--out", str(out),
        *_server(fake),
    )  # fmt: skip
    lines = result.stdout.decode().splitlines()
    assert "jobs: 1 new, 0 resumed, 0 already done; images: 5 (5 downloaded now)" in lines
    cost = next(li for li in lines if li.startswith("cost: "))
    assert "2 submits (1 accepted, 1 refused)" in cost


def test_examples_use_the_public_api_and_say_where_they_write():
    ignored = (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "out/" in ignored
    for path in sorted(EXAMPLES.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("mjasync._"), f"{path.name}: {node.module}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("mjasync._"), f"{path.name}: {alias.name}"
        doc = " ".join((ast.get_docstring(tree) or "").split())
        assert "writes" in doc, f"{path.name} does not say what it writes"
        for target in re.findall(r"\"(out[^\"]*)\"", path.read_text(encoding="utf-8")):
            assert target == "out" or target.startswith("out/"), f"{path.name} writes {target}"


def test_the_fastapi_examples_have_an_extra_that_installs_a_server():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    for example in ("fastapi_endpoint.py", "webhook_fastapi.py"):
        doc = (EXAMPLES / example).read_text(encoding="utf-8")
        named = re.search(r"pip install 'mjasync\[(\w+)\]'", doc)
        assert named, example
        wanted = " ".join(extras[named.group(1)])
        assert "fastapi" in wanted
        assert "uvicorn" in wanted


# --------------------------------------------------------------------------- item 9


async def test_jsonl_rows_bring_their_own_settings(fake, tmp_path):
    Image.new("RGB", (8, 8), (200, 30, 30)).save(tmp_path / "ref.png")
    rows = [
        {"prompt": "a red fox", "upscale": 2, "name": "fox"},
        {"prompt": "a blue whale", "mode": "relax"},
        "a green tree",
        {"prompt": "like this one", "images": ["ref.png", "https://example.com/a.png"]},
    ]
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    result = await run_cli("batch", str(path), "--out", str(out), *_server(fake))
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    fox, whale, tree, like = read_manifest(out)
    assert fox["files"][0] == f"fox_{fox['task_id']}.png"
    assert fox["upscales"][0]["files"] == [f"fox_{fox['upscales'][0]['task_id']}_U2.png"]
    assert fake.stats().peak_active["relax"] == 1  # the whale, in its own mode
    assert whale["upscales"] == tree["upscales"] == []
    assert like["prompt"] == "https://example.com/a.png like this one"
    task = fake.task(like["task_id"])
    assert task is not None


async def test_csv_rows_work_like_jsonl(fake, tmp_path):
    path = tmp_path / "prompts.csv"
    path.write_text(
        'prompt,upscale,name\n"a red fox, asleep",1,fox\na blue whale,,\n', encoding="utf-8"
    )
    out = tmp_path / "out"
    result = await run_cli("batch", str(path), "--out", str(out), *_server(fake))
    assert result.returncode == 0, result.stderr.decode()
    fox, whale = read_manifest(out)
    assert fox["prompt"] == "a red fox, asleep"
    assert fox["upscales"][0]["button"] == "U1"
    assert fox["files"][0].startswith("fox_")
    assert whale["upscales"] == []


@pytest.mark.parametrize(
    ("name", "text", "where", "what"),
    [
        ("p.jsonl", '{"prompt": "a fox"}\n{"promt": "typo"}\n', "line 2", "unknown field"),
        ("p.jsonl", '{"prompt": "a fox"}\n\n{"prompt": "x", "upscale": 7}\n', "line 3", "upscale"),
        ("p.jsonl", '{"prompt": "a fox"}\n{"prompt": "x", "images": ["nope.png"]}\n', "line 2",
         "nope.png"),
        ("p.jsonl", '{"prompt": "a fox"\n', "line 1", "not JSON"),
        ("p.csv", "prompt,mode\na fox,fast\na whale,ludicrous\n", "line 3", "mode"),
        ("p.csv", "text\na fox\n", "line 1", "header row with 'prompt'"),
    ],
)  # fmt: skip
async def test_bad_rows_are_named_before_anything_is_sent(fake, tmp_path, name, text, where, what):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = await run_cli("batch", str(path), "--out", str(tmp_path / "o"), *_server(fake))
    assert result.returncode == 2
    line = result.stderr.decode().strip()
    assert f"{path}, {where}" in line or f"{where}:" in line, line
    assert what in line, line
    assert fake.stats().accepted == 0
    assert not await anyio.Path(tmp_path / "o" / "journal.sqlite").exists()
