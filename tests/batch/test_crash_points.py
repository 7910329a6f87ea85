"""``mjasync batch`` SIGKILLed at exact points of the journal protocol, then run again.

``MJASYNC_CRASH_AT=NAME[:K]`` makes the batch process kill itself (SIGKILL) the K-th time it
passes the crash point NAME (see ``mjasync._batch.crashpoints``), so every kill lands where it is
meant to, with nothing else in flight that could make the outcome depend on timing:

* ``submit.intent``: the intent is committed, the POST is not sent. Concurrency 1 and K=3,
  so prompts 1-2 are paid for and prompt 4 was never started.
* ``submit.accepted``: the server accepted the submit; its task id is not journaled yet.
  Same set-up: three submissions accepted, the third one unknown to the journal.
* ``download.synced``: an image's bytes are all in its ``.part`` file, fsynced, not renamed:
  a ``.part`` that is a valid PNG, the most convincing leftover a crash can leave. (The
  simulator's images are about 1 KB: they reach the ``.part`` file in one write, after the
  body is checked, so "some bytes written" is this point. Bigger bodies are written in
  512 KiB batches; no simulator image is that big.) All jobs run at once and K is one more
  than the images of N-1 tasks, so every task has finished, and been journaled, by then.
* ``terminal.recorded``: SUCCESS is journaled, the files are not (no download started for
  it). K=N with all jobs at once: every task is terminal, nothing is left to submit.

The simulator is its own ``mjasync simulate`` process: it outlives the killed batch and counts
the submissions it accepted across every run. Its ``duplicates`` counter compares bodies, and
each submit carries a fresh ``state`` nonce, so it cannot see a request resent by a later run;
``_check_paid`` closes that gap by matching every accepted task to its prompt.
"""

from __future__ import annotations

import json
import signal
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ._support import (
    assert_real_png,
    clean_env,
    read_manifest,
    run_cli,
    sim_stats,
    simulator_process,
)

pytestmark = pytest.mark.anyio

KEY = "sk-crash-test-000000"
N = 4
#: A finished grid in the simulator's default accent: the grid and its four U-images.
IMAGES_PER_TASK = 5
SIM = ("--api-key", KEY, "--job-duration", "0.2", "--start-delay", "0.05")
SIM += ("--core-size", str(N))
PROMPTS = [f"a lighthouse in a storm, study {i}" for i in range(1, N + 1)]


def _prompts_file(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.txt"
    path.write_text("\n".join(PROMPTS) + "\n", encoding="utf-8")
    return path


def _args(prompts: Path, out: Path, base_url: str, concurrency: int, *extra: str) -> list[str]:
    return [
        "batch",
        str(prompts),
        "--out",
        str(out),
        "--base-url",
        base_url,
        "--api-key",
        KEY,
        "--concurrency",
        str(concurrency),
        "--poll-interval",
        "0.03",
        *extra,
    ]


async def _run_until_crash(args: list[str], crash_at: str) -> None:
    done = await run_cli(*args, env=clean_env(MJASYNC_CRASH_AT=crash_at))
    assert done.returncode == -signal.SIGKILL, (
        f"the batch was meant to die at {crash_at} but exited {done.returncode}:\n"
        + done.stdout.decode()
        + done.stderr.decode()
    )


async def _rerun(args: list[str], expected_code: int) -> str:
    done = await run_cli(*args)
    output: str = done.stdout.decode()
    assert done.returncode == expected_code, output + done.stderr.decode()
    assert "Traceback" not in done.stderr.decode()
    return output


def _journal(out: Path) -> dict[str, dict[str, Any]]:
    """Prompt -> its journal row (state, task id, files, stored body); read-only."""
    conn = sqlite3.connect(f"file:{out / 'journal.sqlite'}?mode=ro", uri=True, timeout=5)
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute("SELECT label, state, task_id, files, body FROM entries").fetchall()
    finally:
        conn.close()
    return {
        row["label"]: {
            "state": row["state"],
            "task_id": row["task_id"],
            "files": json.loads(row["files"] or "[]"),
            "body": json.loads(row["body"] or "{}"),
        }
        for row in rows
    }


def _images_on_disk(out: Path) -> set[str]:
    return {p.name for p in out.iterdir() if p.is_file() and p.suffix == ".png"}


def _check_after_kill(out: Path) -> list[Path]:
    """What a kill may leave: whole images, and ``.part`` files nothing refers to."""
    for name in _images_on_disk(out):  # renamed into place only when complete
        assert_real_png(out / name)
    parts = sorted(out.glob("*.part"))
    named = {f for row in _journal(out).values() for f in row["files"]}
    if (out / "manifest.jsonl").exists():
        named |= {f for line in read_manifest(out) for f in line["files"]}
    assert not any(f.endswith(".part") for f in named)
    for name in named:
        assert_real_png(out / name)
    return parts


def _check_complete(out: Path) -> None:
    """Every prompt succeeded, every image is whole and listed, nothing else is left."""
    manifest = read_manifest(out)
    assert [line["outcome"] for line in manifest] == ["succeeded"] * N
    listed: set[str] = set()
    for line in manifest:
        assert len(line["files"]) == IMAGES_PER_TASK
        listed.update(line["files"])
    for name in listed:
        assert_real_png(out / name)
    assert _images_on_disk(out) == listed
    assert not list(out.rglob("*.part"))
    journal = _journal(out)
    assert {row["state"] for row in journal.values()} == {"DONE"}
    assert sorted(f for row in journal.values() for f in row["files"]) == sorted(listed)


async def _check_paid(
    session: aiohttp.ClientSession, base_url: str, out: Path, accepted: int = N
) -> None:
    """``accepted`` submits in all, and every journaled task is a distinct one of its prompt.

    ``accepted == N`` alone would also hold if one prompt were paid twice and another never;
    each journaled task is fetched, and its prompt and ``state`` nonce must be its row's.
    """
    stats = await sim_stats(session, base_url)
    assert (stats["accepted"], stats["duplicates"]) == (accepted, 0)
    journal = _journal(out)
    assert sorted(journal) == sorted(PROMPTS)
    known = {prompt: row for prompt, row in journal.items() if row["task_id"] is not None}
    assert len({row["task_id"] for row in known.values()}) == len(known)
    for prompt, row in known.items():
        url = f"{base_url}/mj/task/{row['task_id']}/fetch"
        async with session.get(url, headers={"mj-api-secret": KEY}) as resp:
            assert resp.status == 200
            task = await resp.json()
        assert (task["prompt"], task["state"]) == (prompt, row["body"]["state"])


async def test_killed_after_intent_before_post(session, tmp_path):
    prompts, out = _prompts_file(tmp_path), tmp_path / "out"
    async with simulator_process(*SIM) as base_url:
        args = _args(prompts, out, base_url, 1)
        await _run_until_crash(args, "submit.intent:3")
        assert (await sim_stats(session, base_url))["accepted"] == 2
        journal = _journal(out)
        assert journal[PROMPTS[2]]["state"] == "PENDING"
        assert PROMPTS[3] not in journal
        _check_after_kill(out)

        # The journal cannot tell "never sent" from "sent, answer lost": by default the
        # request is reported, not resent.
        output = await _rerun(args, expected_code=1)
        assert output.count(" submitted task ") == 1  # prompt 4 only
        assert "3 succeeded, 0 failed, 1 uncertain" in output
        assert [line["outcome"] for line in read_manifest(out)][2] == "uncertain"
        await _check_paid(session, base_url, out, accepted=N - 1)

        # Opting in sends it; it never reached the server, so this is its only payment.
        output = await _rerun([*args, "--resubmit-uncertain"], expected_code=0)
        submitted = [line for line in output.splitlines() if " submitted task " in line]
        assert len(submitted) == 1
        assert submitted[0].endswith(PROMPTS[2])
        await _check_paid(session, base_url, out)
    _check_complete(out)


async def test_killed_between_accept_and_journal(session, tmp_path):
    prompts, out = _prompts_file(tmp_path), tmp_path / "out"
    async with simulator_process(*SIM) as base_url:
        args = _args(prompts, out, base_url, 1)
        await _run_until_crash(args, "submit.accepted:3")
        assert (await sim_stats(session, base_url))["accepted"] == 3
        journal = _journal(out)
        assert journal[PROMPTS[2]]["state"] == "PENDING"
        assert journal[PROMPTS[2]]["task_id"] is None
        assert PROMPTS[3] not in journal
        _check_after_kill(out)

        # Paid for but unknown to the journal: reported as uncertain and NOT sent again.
        output = await _rerun(args, expected_code=1)
        assert output.count(" submitted task ") == 1  # prompt 4 only
        assert "3 succeeded, 0 failed, 1 uncertain" in output
        manifest = read_manifest(out)
        assert [line["outcome"] for line in manifest] == [
            "succeeded",
            "succeeded",
            "uncertain",
            "succeeded",
        ]
        assert manifest[2]["task_id"] is None
        assert not manifest[2]["files"]
        for line in (manifest[0], manifest[1], manifest[3]):
            assert len(line["files"]) == IMAGES_PER_TASK
            for name in line["files"]:
                assert_real_png(out / name)
        # Prompts 1, 2 and 4 are their journaled tasks; the fourth payment is the lost one.
        await _check_paid(session, base_url, out)

        # --resubmit-uncertain pays for that one prompt a second time, and only that one.
        output = await _rerun([*args, "--resubmit-uncertain"], expected_code=0)
        submitted = [line for line in output.splitlines() if " submitted task " in line]
        assert len(submitted) == 1
        assert submitted[0].endswith(PROMPTS[2])
        await _check_paid(session, base_url, out, accepted=N + 1)
    _check_complete(out)


async def test_killed_mid_download(session, tmp_path):
    prompts, out = _prompts_file(tmp_path), tmp_path / "out"
    async with simulator_process(*SIM) as base_url:
        args = _args(prompts, out, base_url, N)
        await _run_until_crash(args, f"download.synced:{IMAGES_PER_TASK * (N - 1) + 1}")
        assert (await sim_stats(session, base_url))["accepted"] == N
        journal = _journal(out)
        assert len(journal) == N
        assert {row["state"] for row in journal.values()} <= {"SUCCEEDED", "DONE"}
        assert "SUCCEEDED" in {row["state"] for row in journal.values()}
        parts = _check_after_kill(out)
        # The killed download's .part holds the whole image, yet it is not an output.
        complete_parts = [p for p in parts if p.stat().st_size > 0]
        assert complete_parts
        for part in complete_parts:
            assert_real_png(part)
            assert not part.with_suffix("").exists()
        assert len(_images_on_disk(out)) < IMAGES_PER_TASK * N

        output = await _rerun(args, expected_code=0)
        assert " submitted task " not in output
        assert " resumed task " not in output
        await _check_paid(session, base_url, out)
    _check_complete(out)


async def test_killed_after_terminal_before_files(session, tmp_path):
    prompts, out = _prompts_file(tmp_path), tmp_path / "out"
    async with simulator_process(*SIM) as base_url:
        args = _args(prompts, out, base_url, N)
        await _run_until_crash(args, f"terminal.recorded:{N}")
        assert (await sim_stats(session, base_url))["accepted"] == N
        journal = _journal(out)
        assert len(journal) == N
        assert {row["state"] for row in journal.values()} <= {"SUCCEEDED", "DONE"}
        unrecorded = [p for p, row in journal.items() if row["state"] == "SUCCEEDED"]
        assert unrecorded
        assert all(not journal[p]["files"] for p in unrecorded)
        _check_after_kill(out)

        output = await _rerun(args, expected_code=0)
        assert " submitted task " not in output
        assert " resumed task " not in output
        assert output.count(f" downloaded {IMAGES_PER_TASK} file(s) ") >= len(unrecorded)
        await _check_paid(session, base_url, out)
    _check_complete(out)
