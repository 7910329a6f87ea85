"""``mjasync batch`` killed (SIGKILL) or interrupted (SIGINT) mid-run, then run again.

The simulator runs as its own ``mjasync simulate`` process, so it outlives the batch and
counts every submission it accepted across both runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import anyio
import pytest

from ._support import (
    assert_real_png,
    clean_env,
    cli,
    journal_states,
    read_manifest,
    run_cli,
    sim_stats,
    simulator_process,
    wait_until,
)

pytestmark = pytest.mark.anyio

KEY = "sk-kill-test-000000"
N = 9
SIM = ("--api-key", KEY, "--job-duration", "0.4", "--start-delay", "0", "--core-size", "3")


def _prompts(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.txt"
    lines = ["# nine prompts", *(f"a painting of lighthouse number {i}" for i in range(N))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _batch_args(prompts: Path, out: Path, base_url: str) -> list[str]:
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
        "3",
        "--poll-interval",
        "0.03",
    ]


async def _second_round_in_flight(journal: Path) -> bool:
    # Three prompts DONE and the next three accepted, nothing between intent and answer:
    # the next submission is a whole job duration away, so a kill now hits no submit.
    states = journal_states(journal)
    return states.get("DONE", 0) >= 3 and states.get("ACCEPTED") == 3 and not states.get("PENDING")


def _check_complete(out: Path) -> None:
    manifest = read_manifest(out)
    assert [line["outcome"] for line in manifest] == ["succeeded"] * N
    for line in manifest:
        assert line["files"]
        for name in line["files"]:
            assert_real_png(out / name)
    assert not list(out.glob("*.part"))


async def test_sigkill_then_rerun_pays_each_prompt_exactly_once(session, tmp_path):
    prompts, out = _prompts(tmp_path), tmp_path / "out"
    journal = out / "journal.sqlite"
    async with simulator_process(*SIM) as base_url:
        args = [*cli(), *_batch_args(prompts, out, base_url)]
        process = await anyio.open_process(
            args, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            await wait_until(
                lambda: _second_round_in_flight(journal), timeout=15, what="the second round"
            )
            os.kill(process.pid, signal.SIGKILL)
            with anyio.fail_after(10):
                assert await process.wait() == -signal.SIGKILL
        finally:
            await process.aclose()
        assert (await sim_stats(session, base_url))["accepted"] == 6
        assert journal_states(journal).get("ACCEPTED") == 3  # the paid, unfinished ones

        rerun = await run_cli(*_batch_args(prompts, out, base_url))
        assert rerun.returncode == 0, rerun.stderr.decode()
        stats = await sim_stats(session, base_url)

    assert stats["accepted"] == N  # exactly one submission per prompt, across both runs
    assert stats["duplicates"] == 0
    output = rerun.stdout.decode()
    assert output.count(" resumed task ") == 3
    assert output.count(" submitted task ") == 3
    _check_complete(out)


async def test_sigint_stops_cleanly_without_cancelling_paid_tasks(session, tmp_path):
    prompts, out = _prompts(tmp_path), tmp_path / "out"
    journal = out / "journal.sqlite"
    async with simulator_process(*SIM) as base_url:
        process = await anyio.open_process(
            [*cli(), *_batch_args(prompts, out, base_url)],
            env=clean_env(),
            stdout=subprocess.DEVNULL,
        )
        try:

            async def running() -> bool:
                return journal_states(journal).get("ACCEPTED") == 3

            await wait_until(running, timeout=15, what="three accepted jobs")
            process.send_signal(signal.SIGINT)
            with anyio.fail_after(10):
                code = await process.wait()
            assert process.stderr is not None
            stderr = (await process.stderr.receive()).decode()
        finally:
            await process.aclose()
        assert code == 130
        assert "Traceback" not in stderr
        assert "Resume with: mjasync batch" in stderr
        states = journal_states(journal)
        assert not states.get("PENDING")
        assert states.get("ACCEPTED", 0) + states.get("DONE", 0) + states.get("SUCCEEDED", 0) == 3
        assert (out / "manifest.jsonl").exists()
        # The C# accent has a cancel route; Ctrl-C must not use it on tasks already paid for.
        assert (await sim_stats(session, base_url))["requests"].get("cancel", 0) == 0

        rerun = await run_cli(*_batch_args(prompts, out, base_url))
        assert rerun.returncode == 0, rerun.stderr.decode()
        stats = await sim_stats(session, base_url)
    assert stats["accepted"] == N
    _check_complete(out)
