"""The crash-safe batch journal: keys, records, resume plans, durability, versioning."""

from __future__ import annotations

import hashlib
import json
import signal
import sqlite3
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import anyio
import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mjasync._batch.journal import (
    SCHEMA_VERSION,
    Journal,
    JournalEntry,
    JournalError,
    JournalState,
    JournalStateError,
    JournalStore,
    JournalVersionError,
    plan_resume,
    request_key,
)
from mjasync._errors import MjError
from mjasync._models import TaskStatus

pytestmark = pytest.mark.anyio

IMAGINE = "/mj/submit/imagine"


def key_for(prompt: str, occurrence: int = 0) -> str:
    return request_key(IMAGINE, {"prompt": prompt}, occurrence)


async def intent(journal: Journal, prompt: str, occurrence: int = 0) -> str:
    key = key_for(prompt, occurrence)
    await journal.record_intent(
        key, endpoint=IMAGINE, body={"prompt": prompt}, mode="fast", label=prompt
    )
    return key


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll a condition (for state that offers no event to wait on), failing after timeout."""
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.005)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "out" / "journal.sqlite"


# --------------------------------------------------------------------------- request_key


def test_request_key_is_pinned() -> None:
    # A changed key would make every existing journal resubmit everything: pin the value.
    assert (
        key_for("black cat") == "f70e9d5c8b28d4fec5c21237b6b842ce32158b8e5527fd24aa5440eea783e107"
    )


def test_request_key_is_hex_sha256_and_deterministic() -> None:
    key = key_for("black cat")
    assert len(key) == 64
    assert int(key, 16) >= 0
    assert key == key_for("black cat")


def test_request_key_ignores_volatile_fields_and_none() -> None:
    base = request_key(IMAGINE, {"prompt": "cat", "botType": "MID_JOURNEY"})
    noisy = {
        "botType": "MID_JOURNEY",
        "prompt": "cat",
        "notifyHook": "https://me.example/hooks/s3cret",
        "state": "run-42",
        "accountFilter": None,
    }
    assert request_key(IMAGINE, noisy) == base


def test_request_key_distinguishes_what_matters() -> None:
    base = request_key(IMAGINE, {"prompt": "cat"})
    assert request_key(IMAGINE, {"prompt": "cat "}) != base
    assert request_key("/mj/submit/shorten", {"prompt": "cat"}) != base
    assert request_key(IMAGINE, {"prompt": "cat", "botType": "NIJI_JOURNEY"}) != base
    first, second = (request_key(IMAGINE, {"prompt": "cat"}, n) for n in (0, 1))
    assert first == base
    assert second != first


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8).filter(lambda k: k not in ("notifyHook", "state")),
        st.one_of(st.integers(), st.text(max_size=20), st.booleans()),
        max_size=6,
    )
)
def test_request_key_ignores_field_order(body: dict[str, object]) -> None:
    reversed_body = dict(reversed(list(body.items())))
    assert request_key(IMAGINE, body) == request_key(IMAGINE, reversed_body)


def test_request_key_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="occurrence"):
        request_key(IMAGINE, {"prompt": "cat"}, -1)
    with pytest.raises(TypeError, match="occurrence"):
        request_key(IMAGINE, {"prompt": "cat"}, True)
    with pytest.raises(TypeError):
        request_key(IMAGINE, {"prompt": b"bytes are not JSON"})
    with pytest.raises(ValueError):
        request_key(IMAGINE, {"weight": float("nan")})


# --------------------------------------------------------------------------- records


async def test_round_trip_through_every_record(path: Path) -> None:
    async with Journal(path) as journal:
        key = await intent(journal, "black cat")
        entry = await journal.get(key)
        assert entry is not None
        assert entry.state is JournalState.PENDING
        assert (entry.endpoint, entry.mode, entry.label, entry.attempts) == (
            IMAGINE,
            "fast",
            "black cat",
            1,
        )
        assert entry.body == {"prompt": "black cat"}
        assert entry.task_id is None

        await journal.record_accepted(key, "1712345")
        await journal.record_progress(key, TaskStatus.IN_PROGRESS, 45)
        entry = await journal.get(key)
        assert entry is not None
        assert (entry.state, entry.task_id, entry.status, entry.progress) == (
            JournalState.ACCEPTED,
            "1712345",
            "IN_PROGRESS",
            45,
        )

        task_json = {"id": "1712345", "status": "SUCCESS", "imageUrl": "https://cdn/x.png"}
        await journal.record_terminal(key, TaskStatus.SUCCESS, task_json=task_json)
        entry = await journal.get(key)
        assert entry is not None
        assert entry.state is JournalState.SUCCEEDED
        assert (entry.status, entry.progress) == ("SUCCESS", 100)
        assert entry.task_json == task_json

        await journal.record_files(key, [Path("out/a.png")])
        await journal.record_files(key, ["out/a.png", "out/a_1.png"])

    async with Journal(path) as reopened:
        [entry] = await reopened.entries()
    assert entry.state is JournalState.DONE
    assert entry.files == ("out/a.png", "out/a_1.png")
    assert entry.task_id == "1712345"
    assert entry.is_finished
    assert entry.created_at is not None
    assert entry.updated_at is not None
    assert entry.updated_at >= entry.created_at


async def test_failed_task_keeps_its_reason(path: Path) -> None:
    async with Journal(path) as journal:
        key = await intent(journal, "a banned idea")
        await journal.record_accepted(key, "9")
        await journal.record_terminal(key, "FAILURE", fail_reason="任务超时")
        entry = await journal.get(key)
    assert entry is not None
    assert entry.state is JournalState.FAILED
    assert entry.fail_reason == "任务超时"
    assert entry.is_finished


async def test_entries_keep_insertion_order_and_two_occurrences(path: Path) -> None:
    async with Journal(path) as journal:
        first = await intent(journal, "same prompt", 0)
        other = await intent(journal, "other prompt")
        second = await intent(journal, "same prompt", 1)
        await journal.record_accepted(first, "t-1")
        await journal.record_accepted(second, "t-2")
        entries = await journal.entries()
    assert [e.key for e in entries] == [first, other, second]
    assert first != second
    assert [e.task_id for e in entries] == ["t-1", None, "t-2"]


async def test_large_body_is_elided_but_digested(path: Path) -> None:
    image = "data:image/png;base64," + "A" * 200_000
    body = {"prompt": "cat", "base64Array": [image], "notifyHook": "https://h/s3cret-token"}
    key = request_key(IMAGINE, body)
    async with Journal(path) as journal:
        await journal.record_intent(key, endpoint=IMAGINE, body=body)
        entry = await journal.get(key)
    assert entry is not None
    assert entry.body is not None
    assert entry.body["prompt"] == "cat"
    stored_image = entry.body["base64Array"][0]
    assert stored_image.startswith("<elided sha256:")
    assert len(stored_image) < 200
    full = json.dumps(
        {"prompt": "cat", "base64Array": [image]},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    assert entry.body_sha256 == hashlib.sha256(full).hexdigest()
    assert entry.body_size == len(full)


async def test_body_too_large_even_elided_is_stored_as_digest_only(path: Path) -> None:
    body = {f"field{i}": "x" * 200 for i in range(200)}
    key = request_key(IMAGINE, body)
    async with Journal(path) as journal:
        await journal.record_intent(key, endpoint=IMAGINE, body=body)
        entry = await journal.get(key)
    assert entry is not None
    assert entry.body is None
    assert len(entry.body_sha256) == 64
    assert entry.body_size > 16 * 1024


async def test_notify_hook_never_reaches_the_disk(path: Path) -> None:
    secret = "hook-secret-5f1c9e"
    body = {"prompt": "cat", "notifyHook": f"https://me.example/hooks/{secret}", "state": "s1"}
    async with Journal(path) as journal:
        await journal.record_intent(request_key(IMAGINE, body), endpoint=IMAGINE, body=body)
        [entry] = await journal.entries()
    assert entry.body == {"prompt": "cat", "state": "s1"}  # state is kept: it finds lost tasks
    on_disk = b"".join(p.read_bytes() for p in path.parent.iterdir() if p.is_file())
    assert b"s1" in on_disk
    assert secret.encode() not in on_disk


# --------------------------------------------------------------------------- state rules


async def test_contradictory_records_are_refused(path: Path) -> None:
    async with Journal(path) as journal:
        with pytest.raises(JournalStateError, match="unknown request key"):
            await journal.record_accepted(key_for("never intended"), "1")

        key = await intent(journal, "cat")
        with pytest.raises(JournalStateError, match="no task id"):
            await journal.record_terminal(key, "SUCCESS")
        with pytest.raises(JournalStateError, match="succeeded task"):
            await journal.record_files(key, ["x.png"])

        await journal.record_accepted(key, "first")
        await journal.record_accepted(key, "first")  # idempotent
        with pytest.raises(JournalStateError, match="second task id"):
            await journal.record_accepted(key, "second")
        with pytest.raises(JournalStateError, match="task first"):
            await journal.record_refused(key, "late refusal")
        with pytest.raises(JournalStateError, match="task first"):
            await journal.record_uncertain(key, "late timeout")
        with pytest.raises(JournalStateError, match="watch it instead"):
            await intent(journal, "cat")
        with pytest.raises(ValueError, match="not terminal"):
            await journal.record_terminal(key, TaskStatus.IN_PROGRESS)

        entry = await journal.get(key)
    assert entry is not None
    assert (entry.state, entry.task_id, entry.attempts) == (JournalState.ACCEPTED, "first", 1)
    # One exception type serves both "journal problem" and "bad argument" handlers.
    assert issubclass(JournalStateError, ValueError)
    assert issubclass(JournalStateError, MjError)


async def test_refused_then_retried_counts_attempts(path: Path) -> None:
    async with Journal(path) as journal:
        key = await intent(journal, "cat")
        await journal.record_refused(key, "queue full")
        refused = await journal.get(key)
        await intent(journal, "cat")
        retried = await journal.get(key)
        await journal.record_accepted(key, "77")
        accepted = await journal.get(key)
    assert refused is not None
    assert (refused.state, refused.reason) == (JournalState.REFUSED, "queue full")
    assert retried is not None
    assert (retried.state, retried.attempts, retried.reason) == (JournalState.PENDING, 2, None)
    assert accepted is not None
    assert accepted.task_id == "77"


async def test_uncertain_then_found_becomes_accepted(path: Path) -> None:
    async with Journal(path) as journal:
        key = await intent(journal, "cat")
        await journal.record_uncertain(key, "read timeout after POST")
        uncertain = await journal.get(key)
        await journal.record_accepted(key, "found-by-state")
        found = await journal.get(key)
    assert uncertain is not None
    assert (uncertain.state, uncertain.reason) == (
        JournalState.UNCERTAIN,
        "read timeout after POST",
    )
    assert found is not None
    assert (found.state, found.task_id, found.reason) == (
        JournalState.ACCEPTED,
        "found-by-state",
        None,
    )


async def test_progress_is_buffered_then_flushed(path: Path) -> None:
    async with Journal(path, progress_interval=3600) as journal:
        key = await intent(journal, "cat")
        await journal.record_accepted(key, "1")
        await journal.record_progress(key, "IN_PROGRESS", 10)
        await journal.record_progress(key, "IN_PROGRESS", 30)
        with sqlite3.connect(path) as raw:
            on_disk = raw.execute("SELECT progress FROM entries WHERE key = ?", (key,)).fetchone()
        assert on_disk == (None,)  # coalesced: not written yet
    # close() flushed the last value
    async with Journal(path) as reopened:
        entry = await reopened.get(key)
    assert entry is not None
    assert (entry.status, entry.progress) == ("IN_PROGRESS", 30)


async def test_progress_after_terminal_is_ignored(path: Path) -> None:
    async with Journal(path, progress_interval=0) as journal:
        key = await intent(journal, "cat")
        await journal.record_accepted(key, "1")
        await journal.record_terminal(key, "SUCCESS")
        await journal.record_progress(key, "IN_PROGRESS", 50)  # a stale, late event
        await journal.record_progress(key_for("unknown"), "IN_PROGRESS", 50)
        entry = await journal.get(key)
    assert entry is not None
    assert (entry.state, entry.status, entry.progress) == (JournalState.SUCCEEDED, "SUCCESS", 100)


async def test_accepted_is_recorded_even_when_cancelled(path: Path) -> None:
    async with Journal(path) as journal:
        key = await intent(journal, "cat")
        with anyio.CancelScope() as scope:
            scope.cancel()  # e.g. Ctrl-C arrived just as the task id came back
            await journal.record_accepted(key, "paid-for")
        entry = await journal.get(key)
    assert entry is not None
    assert entry.task_id == "paid-for"


async def test_database_work_never_blocks_the_event_loop(path: Path) -> None:
    async with Journal(path, busy_timeout=5) as journal:
        await intent(journal, "warm up")
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            async with anyio.create_task_group() as tg:
                tg.start_soon(intent, journal, "cat")
                # The write is now waiting for the lock in its worker thread. Were it waiting
                # on the event loop instead, this line would not run until the write failed.
                await wait_until(lambda: journal._limiter.borrowed_tokens == 1)
                assert await journal_row_count(path) == 1  # not written while locked
                other.execute("COMMIT")
        finally:
            other.close()
        entry = await journal.get(key_for("cat"))
    assert entry is not None
    assert entry.state is JournalState.PENDING


async def journal_row_count(path: Path) -> int:
    def count() -> int:
        with sqlite3.connect(path) as raw:
            return int(raw.execute("SELECT count(*) FROM entries").fetchone()[0])

    return await anyio.to_thread.run_sync(count)


async def test_settings_wal_and_full_sync(path: Path) -> None:
    async with Journal(path) as journal:
        conn = journal._conn
        assert conn is not None
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]


async def test_open_close_misuse_and_protocol(path: Path) -> None:
    journal = Journal(path)
    with pytest.raises(RuntimeError, match="not open"):
        await journal.entries()
    opened = await Journal.open(path)
    assert isinstance(opened, JournalStore)
    await opened.close()
    await opened.close()  # twice is fine
    with pytest.raises(RuntimeError, match="closed"):
        await opened.record_progress("k", "IN_PROGRESS", 1)
    entry = JournalEntry(key="k", endpoint=IMAGINE, state=JournalState.PENDING)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        entry.task_id = "x"  # type: ignore[misc]


# --------------------------------------------------------------------------- plans


async def test_plan_covers_every_state(path: Path) -> None:
    async with Journal(path) as journal:
        pending = await intent(journal, "pending")
        accepted = await intent(journal, "accepted")
        await journal.record_accepted(accepted, "t-acc")
        uncertain = await intent(journal, "uncertain")
        await journal.record_uncertain(uncertain, "timeout")
        refused = await intent(journal, "refused")
        await journal.record_refused(refused, "queue full")
        succeeded = await intent(journal, "succeeded")
        await journal.record_accepted(succeeded, "t-ok")
        await journal.record_terminal(succeeded, "SUCCESS")
        done = await intent(journal, "done")
        await journal.record_accepted(done, "t-done")
        await journal.record_terminal(done, "SUCCESS")
        await journal.record_files(done, ["done.png"])
        failed = await intent(journal, "failed")
        await journal.record_accepted(failed, "t-fail")
        await journal.record_terminal(failed, "CANCEL")
        leftover = await intent(journal, "from an older prompts file")
        await journal.record_accepted(leftover, "t-old")
        fresh = key_for("never seen")

        keys = [fresh, pending, accepted, uncertain, refused, succeeded, done, failed]
        cautious = await journal.plan(keys)
        eager = await journal.plan(keys, resubmit_uncertain=True, retry_failed=True)

    assert cautious.submit == (fresh, refused)
    assert cautious.watch == (accepted,)
    assert cautious.task_id(accepted) == "t-acc"
    assert cautious.download == (succeeded,)
    assert cautious.finished == (done, failed)
    assert cautious.uncertain == (pending, uncertain)
    assert cautious.unrequested == (leftover,)
    assert cautious.task_id(fresh) is None

    assert eager.submit == (fresh, pending, uncertain, refused, failed)
    assert eager.uncertain == ()
    assert eager.finished == (done,)
    assert eager.watch == (accepted,)


def test_plan_resume_is_pure_and_rejects_duplicate_keys() -> None:
    entry = JournalEntry(key="a", endpoint=IMAGINE, state=JournalState.ACCEPTED, task_id="1")
    plan = plan_resume([entry], ["b", "a"])
    assert (plan.submit, plan.watch) == (("b",), ("a",))
    assert plan.entries["a"] is entry
    with pytest.raises(ValueError, match="listed twice"):
        plan_resume([], ["a", "a"])


async def test_failed_task_can_be_retried_as_a_new_attempt(path: Path) -> None:
    async with Journal(path) as journal:
        key = await intent(journal, "cat")
        await journal.record_accepted(key, "old")
        await journal.record_terminal(key, "FAILURE", fail_reason="timeout")
        await intent(journal, "cat")
        entry = await journal.get(key)
    assert entry is not None
    assert (entry.state, entry.task_id, entry.fail_reason, entry.attempts) == (
        JournalState.PENDING,
        None,
        None,
        2,
    )


# --------------------------------------------------------------------------- durability


CRASH_SCRIPT = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from mjasync._batch.journal import Journal, request_key

    async def main(path):
        journal = await Journal.open(path, progress_interval=3600)
        body = {"prompt": "paid for"}
        paid = request_key("/mj/submit/imagine", body)
        await journal.record_intent(paid, endpoint="/mj/submit/imagine", body=body, label="paid")
        await journal.record_accepted(paid, "1712345")
        await journal.record_progress(paid, "IN_PROGRESS", 40)   # buffered, may be lost
        body = {"prompt": "in flight"}
        flying = request_key("/mj/submit/imagine", body)
        await journal.record_intent(flying, endpoint="/mj/submit/imagine", body=body)
        print("written", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)   # no close(), no checkpoint, no atexit

    asyncio.run(main(sys.argv[1]))
    """
)


async def test_entries_survive_sigkill(path: Path) -> None:
    result = await anyio.run_process([sys.executable, "-c", CRASH_SCRIPT, str(path)], check=False)
    assert result.returncode == -signal.SIGKILL
    assert result.stdout.strip() == b"written"
    # Nothing was checkpointed: the records live in the WAL, and must be recovered from it.
    assert (await anyio.Path(f"{path}-wal").stat()).st_size > 0

    paid = request_key(IMAGINE, {"prompt": "paid for"})
    flying = request_key(IMAGINE, {"prompt": "in flight"})
    async with Journal(path) as journal:
        entries = {e.key: e for e in await journal.entries()}
        plan = await journal.plan([paid, flying])
    assert entries[paid].state is JournalState.ACCEPTED
    assert entries[paid].task_id == "1712345"
    assert entries[paid].label == "paid"
    assert entries[flying].state is JournalState.PENDING
    # The rerun re-watches the paid task and reports (does not resend) the one in flight.
    assert plan.watch == (paid,)
    assert plan.uncertain == (flying,)
    assert plan.submit == ()


# --------------------------------------------------------------------------- versions


async def test_newer_schema_is_refused_clearly(path: Path) -> None:
    async with Journal(path) as journal:
        await intent(journal, "cat")
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE schema_version SET version = 99, written_by = '9.0.0'")
    with pytest.raises(JournalVersionError) as info:
        await Journal.open(path)
    err = info.value
    assert (err.found, err.supported) == (99, SCHEMA_VERSION)
    assert "9.0.0" in str(err)
    assert "Upgrade mjasync" in str(err)
    assert isinstance(err, JournalError)


async def test_same_schema_reopens(path: Path) -> None:
    async with Journal(path) as journal:
        key = await intent(journal, "cat")
    async with Journal(path) as journal:
        assert [e.key for e in await journal.entries()] == [key]


async def test_foreign_files_are_refused(tmp_path: Path) -> None:
    other_db = tmp_path / "other.sqlite"
    with sqlite3.connect(other_db) as raw:
        raw.execute("CREATE TABLE users (id INTEGER)")
    with pytest.raises(JournalError, match="not an mjasync journal"):
        await Journal.open(other_db)
    assert not isinstance(JournalError("x"), JournalVersionError)

    garbage = tmp_path / "notes.txt"
    garbage.write_bytes(b"this is not a database, just some text " * 100)
    with pytest.raises(JournalError, match="not a usable mjasync journal"):
        await Journal.open(garbage)
    assert garbage.read_bytes().startswith(b"this is not a database")
