"""run_batch / Batch against the in-process simulator: files, reports, journal, resume."""

from __future__ import annotations

import html
import json
import os
import re
import sqlite3
from contextlib import aclosing

import anyio
import pytest

import mjasync
from mjasync._batch.batch import Batch, run_batch
from mjasync._batch.types import (
    BatchEventKind,
    BatchOutcome,
    BatchSummary,
    PromptResult,
    RequestResult,
)
from mjasync.testing import FakeMidjourney

from ._support import assert_real_png, read_manifest, sole
from .conftest import KEY, fast_client

pytestmark = pytest.mark.anyio

PROMPTS = [
    "a red fox in the snow",
    "a <b>bold</b> & 'quoted' whale",
    "a red fox in the snow",  # the same prompt twice: two jobs, two keys
    "a storm --fail",
    "a gore scene",  # banned by the simulator
    "a quiet harbour --ar 3:2",
]


async def test_end_to_end_images_manifest_and_contact_sheet(make_client, fake, tmp_path):
    out = tmp_path / "out"
    async with make_client() as client:
        summary = await run_batch(client, PROMPTS, out_dir=out)

    assert summary.total == 6
    assert dict(summary.counts) == {"succeeded": 4, "failed": 2, "uncertain": 0, "pending": 0}
    assert not summary.ok
    assert summary.submitted == 5  # the banned prompt was refused, never accepted
    assert fake.stats().accepted == 5
    assert fake.stats().duplicates == 0
    assert summary.requests >= summary.submits >= 6
    assert len(set(summary.task_ids)) == 5

    # Every file is a real PNG, directly in the output directory, and nothing is half-written.
    assert summary.files
    for name in summary.files:
        assert "/" not in name
        assert_real_png(out / name)
    assert not list(out.glob("*.part"))

    manifest = read_manifest(out)
    assert [line["prompt"] for line in manifest] == PROMPTS
    assert [line["outcome"] for line in manifest] == [
        "succeeded",
        "succeeded",
        "succeeded",
        "failed",
        "failed",
        "succeeded",
    ]
    fox, _, fox_again, storm, banned, _ = manifest
    assert fox["key"] != fox_again["key"]
    assert fox["task_id"] != fox_again["task_id"]
    assert fox["status"] == "SUCCESS"
    assert fox["files"]
    assert fox["error"] is None
    assert storm["status"] == "FAILURE"
    assert storm["task_id"]
    assert storm["error"]
    assert banned["task_id"] is None
    assert banned["error"] == "the prompt contains a word the server bans: 'gore'"
    assert banned["server_message"] == "可能包含敏感词"  # the server's own words stay
    for line in manifest:
        assert set(line) >= {"prompt", "key", "task_id", "status", "files", "error"}

    page = (out / "index.html").read_text(encoding="utf-8")
    assert html.escape(PROMPTS[1]) in page
    assert "<b>bold</b>" not in page  # prompts are escaped, never markup
    links = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert set(links) == set(summary.files)  # relative links to exactly our files
    assert "http" not in page.replace("http-equiv", "")  # no external assets
    assert "<script" not in page
    assert page.count('class="card ') == 6


async def test_rerun_submits_nothing_and_restores_deleted_files(make_client, fake, tmp_path):
    out = tmp_path / "out"
    async with make_client() as client:
        first = await run_batch(client, PROMPTS[:3], out_dir=out)
        accepted = fake.stats().accepted
        deleted = out / first.results[0].files[0]
        deleted.unlink()
        second = await run_batch(client, PROMPTS[:3], out_dir=out)

    assert fake.stats().accepted == accepted == 3  # nothing was submitted again
    assert second.submitted == 0
    assert second.skipped == 3
    assert second.ok
    assert second.downloaded == 1  # only the deleted file came back
    assert_real_png(deleted)
    assert all(r.main.earlier for r in second.results)
    assert second.files == first.files


async def test_upscale_all_journals_each_button_and_downloads_them(make_client, fake, tmp_path):
    out = tmp_path / "out"
    async with make_client() as client:
        summary = await run_batch(
            client, ["a lighthouse", "a storm --fail"], out_dir=out, upscale="all"
        )
        again = await run_batch(
            client, ["a lighthouse", "a storm --fail"], out_dir=out, upscale="all"
        )

    lighthouse, storm = summary.results
    assert [u.button for u in lighthouse.upscales] == ["U1", "U2", "U3", "U4"]
    assert all(u.outcome is BatchOutcome.SUCCEEDED for u in lighthouse.upscales)
    assert len({u.task_id for u in lighthouse.upscales}) == 4
    for upscale in lighthouse.upscales:
        assert len(upscale.files) == 1
        assert_real_png(out / upscale.files[0])
    assert storm.outcome is BatchOutcome.FAILED
    assert all(u.outcome is BatchOutcome.PENDING for u in storm.upscales)  # never pressed
    # The grid is kept in addition to the upscales; the upscale keys are distinct requests.
    assert lighthouse.main.files
    assert len({lighthouse.key, *(u.key for u in lighthouse.upscales)}) == 5
    assert fake.stats().accepted_by_endpoint == {"action": 4, "imagine": 2}
    assert again.submitted == 0  # the rerun presses no button twice
    assert fake.stats().accepted == 6


async def test_split_cuts_grids_and_download_false_still_finishes_entries(make_client, tmp_path):
    async with make_client() as client:
        split = await run_batch(client, ["a mosaic"], out_dir=tmp_path / "split", split=True)
        bare = await run_batch(client, ["a mosaic"], out_dir=tmp_path / "bare", download=False)

    names = split.files
    assert len(names) == 5  # the grid and its four quarters
    for name in names:
        assert_real_png(tmp_path / "split" / name)
    assert bare.ok
    assert bare.files == ()
    assert not list((tmp_path / "bare").glob("*.png"))
    conn = sqlite3.connect(tmp_path / "bare" / "journal.sqlite")
    assert conn.execute("SELECT state FROM entries").fetchall() == [("DONE",)]
    conn.close()


async def test_events_stream_one_finished_per_prompt_last(make_client, tmp_path):
    async with make_client() as client:
        batch = Batch(client, ["one", "two", "a storm --fail"], out_dir=tmp_path)
        seen = []
        async with aclosing(batch.events()) as events:
            async for event in events:
                seen.append(event)
    assert batch.summary is not None
    finished = [e for e in seen if e.kind is BatchEventKind.FINISHED]
    assert sorted(e.index for e in finished) == [0, 1, 2]
    for event in finished:
        later = seen[seen.index(event) + 1 :]
        assert all(e.index != event.index for e in later)  # FINISHED is each prompt's last
    progress = [e for e in seen if e.kind is BatchEventKind.PROGRESS and e.index == 0]
    values = [e.progress or 0 for e in progress]
    assert values == sorted(values)
    assert [e.kind for e in seen if e.index == 2][-2:] == [
        BatchEventKind.FAILED,
        BatchEventKind.FINISHED,
    ]


async def test_cancelled_batch_leaves_tasks_running_and_a_resumable_journal(tmp_path):
    # The C# accent has a cancel endpoint: a cancelled consumer must not use it on paid tasks.
    async with FakeMidjourney(api_keys=(KEY,), job_duration=0.4, accent="csharp") as fake:
        prompts = [f"prompt {i}" for i in range(6)]
        async with fast_client(fake, concurrency=3) as client:
            with anyio.move_on_after(5) as scope:
                async with aclosing(Batch(client, prompts, out_dir=tmp_path).events()) as events:
                    async for event in events:
                        if event.kind is BatchEventKind.SUBMITTED and event.index == 2:
                            scope.cancel()
            assert scope.cancel_called
        assert fake.stats().requests.get("cancel", 0) == 0
        manifest = read_manifest(tmp_path)
        assert [line["outcome"] for line in manifest] == ["pending"] * 6
        assert sum(1 for line in manifest if line["task_id"]) == 3

        async with fast_client(fake, concurrency=3) as client:
            summary = await run_batch(client, prompts, out_dir=tmp_path)
        assert summary.ok
        assert summary.resumed == 3
        assert summary.submitted == 3
        assert fake.stats().accepted == 6


async def test_bad_key_stops_the_batch_with_authentication_error(fake, tmp_path):
    client = mjasync.Client(fake.base_url, "sk-wrong-key-00000000", poll_interval=0.02)
    # `async with client` currently wraps what its body raises in an ExceptionGroup.
    with pytest.raises((mjasync.AuthenticationError, ExceptionGroup)) as caught:
        async with client:
            await run_batch(client, ["a", "b", "c"], out_dir=tmp_path)
    assert isinstance(sole(caught.value), mjasync.AuthenticationError)
    assert fake.stats().accepted == 0
    assert fake.stats().refused.get("auth", 0) <= 3  # stopped instead of trying every prompt


async def test_bad_arguments_fail_before_anything_is_sent(make_client, fake, tmp_path):
    async with make_client() as client:
        with pytest.raises(ValueError, match="upscale"):
            Batch(client, ["a"], out_dir=tmp_path, upscale=5)
        with pytest.raises(ValueError, match="prompt 2"):
            Batch(client, ["a", "   "], out_dir=tmp_path)
        with pytest.raises(TypeError):
            Batch(client, "a single string", out_dir=tmp_path)
        with pytest.raises(ValueError, match="split"):
            Batch(client, ["a"], out_dir=tmp_path, split=True, download=False)
    assert fake.stats().requests.get("submit", 0) == 0


async def test_journal_records_intent_before_and_task_id_after(make_client, fake, tmp_path):
    journal = tmp_path / "elsewhere" / "j.sqlite"
    async with make_client() as client:
        summary = await run_batch(client, ["a cat"], out_dir=tmp_path / "out", journal=journal)
    assert summary.journal == os.fspath(journal)
    conn = sqlite3.connect(journal)
    key, state, task_id, body, files, attempts = conn.execute(
        "SELECT key, state, task_id, body, files, attempts FROM entries"
    ).fetchone()
    conn.close()
    assert (key, state, task_id) == (summary.results[0].key, "DONE", summary.task_ids[0])
    assert attempts == 1
    assert json.loads(body)["prompt"] == "a cat"
    assert json.loads(body)["state"].startswith("mjasync-")  # the nonce is kept for lookups
    assert json.loads(files) == list(summary.files)
    assert not (tmp_path / "out" / "journal.sqlite").exists()


def test_prompt_outcome_ranks_failed_then_uncertain_then_pending() -> None:
    result = PromptResult(
        index=0,
        prompt="p",
        main=RequestResult(key="k", outcome=BatchOutcome.SUCCEEDED, files=("a.png",)),
        upscales=(RequestResult(key="u", outcome=BatchOutcome.UNCERTAIN, button="U1"),),
    )
    summary = BatchSummary(results=(result,))
    assert result.outcome is BatchOutcome.UNCERTAIN
    assert summary.uncertain_keys == ("u",)
    assert not summary.ok
    assert result.to_json()["upscales"][0]["button"] == "U1"


async def test_needs_an_open_client_and_touches_nothing_without_one(fake, tmp_path):
    client = fast_client(fake)
    with pytest.raises(RuntimeError, match="open client"):
        await run_batch(client, ["a"], out_dir=tmp_path / "never")
    assert not (tmp_path / "never").exists()
