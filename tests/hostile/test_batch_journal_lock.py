"""Issue 12, item 5: one batch per journal (and per output directory); temp files never shared.

Before the fix, two batches on one folder both planned every prompt as "not sent yet": 20 paid
tasks for 40 prompts, 9 orphaned ids, and a raw ``FileNotFoundError`` from the shared
``.manifest.jsonl.tmp``. Now the second run fails at once with ``JournalLockedError`` (the
CLI: one line, exit 2) and sends nothing: the hostile server's log proves it by key. The lock
is ``flock`` on ``journal.sqlite.lock`` (and ``DIR/.mjasync.lock``): a SIGKILLed holder
leaves no stale lock.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import anyio
import pytest

import mjasync
from batch._support import (
    assert_real_png,
    clean_env,
    cli,
    journal_states,
    run_cli,
    wait_until,
)
from mjasync._batch.download import PART_SUFFIX, Downloader
from mjasync._batch.report import write_atomic
from mjasync._errors import JournalLockedError

from .download_server import HostileProxy, hostile_proxy, padded_png, serving

pytestmark = pytest.mark.anyio

FIRST = "sk-first-batch-0000000000"
SECOND = "sk-second-batch-111111111"
PROMPTS = ["a red fox", "a blue whale", "a green owl"]


@pytest.fixture
async def proxy() -> AsyncIterator[HostileProxy]:
    async with hostile_proxy() as server:
        yield server


def client(proxy: HostileProxy, key: str) -> mjasync.Client:
    return mjasync.Client(proxy.base, key, poll_interval=0.02)


async def test_second_batch_on_a_journal_fails_at_once_and_sends_nothing(
    proxy: HostileProxy, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    proxy.finish = anyio.Event()  # the first batch's tasks stay IN_PROGRESS
    summary = None

    async def first() -> None:
        nonlocal summary
        async with client(proxy, FIRST) as c:
            summary = await mjasync.run_batch(c, PROMPTS, out_dir=out)

    async with anyio.create_task_group() as tg:
        tg.start_soon(first)
        with anyio.fail_after(10):
            await proxy.submitted.wait()
        async with client(proxy, SECOND) as c:
            with anyio.fail_after(5), pytest.raises(JournalLockedError) as info:
                await mjasync.run_batch(c, PROMPTS, out_dir=out)
        proxy.finish.set()

    message = str(info.value)
    assert "in use by another batch" in message
    assert f"pid {os.getpid()}" in message
    assert "\n" not in message
    assert isinstance(info.value, mjasync.JournalError)
    assert proxy.requests_with(SECOND) == 0  # nothing at all reached the server
    assert summary is not None
    assert summary.ok
    assert proxy.submits() == len(PROMPTS)  # each prompt paid once

    # The lock ended with the first run: the same call now resumes and sends no submit.
    async with client(proxy, SECOND) as c:
        again = await mjasync.run_batch(c, PROMPTS, out_dir=out)
    assert again.ok
    assert again.submitted == 0
    assert proxy.submits() == len(PROMPTS)


async def test_another_journal_in_the_same_output_directory_is_refused(
    proxy: HostileProxy, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    proxy.finish = anyio.Event()

    async def first() -> None:
        async with client(proxy, FIRST) as c:
            await mjasync.run_batch(c, PROMPTS, out_dir=out)

    async with anyio.create_task_group() as tg:
        tg.start_soon(first)
        with anyio.fail_after(10):
            await proxy.submitted.wait()
        async with client(proxy, SECOND) as c:
            with anyio.fail_after(5), pytest.raises(JournalLockedError, match="output directory"):
                await mjasync.run_batch(c, PROMPTS, out_dir=out, journal=tmp_path / "other.sqlite")
        proxy.finish.set()
    assert proxy.requests_with(SECOND) == 0


async def test_cli_second_batch_prints_one_line_and_exits_2(
    proxy: HostileProxy, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS), encoding="utf-8")
    proxy.finish = anyio.Event()

    async def first() -> None:
        async with client(proxy, FIRST) as c:
            await mjasync.run_batch(c, PROMPTS, out_dir=out)

    async with anyio.create_task_group() as tg:
        tg.start_soon(first)
        with anyio.fail_after(10):
            await proxy.submitted.wait()
        done = await run_cli(
            "batch", str(prompts), "--out", str(out), "--base-url", proxy.base,
            "--api-key", SECOND,
        )  # fmt: skip
        proxy.finish.set()

    stderr = done.stderr.decode()
    assert done.returncode == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("mjasync batch: ")
    assert "in use by another batch" in lines[0]
    assert SECOND not in stderr
    assert proxy.requests_with(SECOND) == 0


async def test_a_killed_batch_leaves_no_stale_lock(proxy: HostileProxy, tmp_path: Path) -> None:
    out = tmp_path / "out"
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS), encoding="utf-8")
    proxy.finish = anyio.Event()

    async def all_accepted() -> bool:
        return journal_states(out / "journal.sqlite").get("ACCEPTED") == len(PROMPTS)

    process = await anyio.open_process(
        [
            *cli(), "batch", str(prompts), "--out", str(out), "--base-url", proxy.base,
            "--api-key", FIRST, "--poll-interval", "0.05",
        ],
        env=clean_env(),
    )  # fmt: skip
    try:
        with anyio.fail_after(20):
            await proxy.submitted.wait()
            # Every prompt's id is journaled: the kill orphans nothing, the rerun watches all.
            await wait_until(all_accepted, what="every id journaled")
        lock = out / "journal.sqlite.lock"
        assert lock.read_text().strip() == str(process.pid)
        process.send_signal(signal.SIGKILL)
        with anyio.fail_after(10):
            await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
        await process.aclose()

    assert lock.exists()  # the file stays; the lock died with the process
    proxy.finish.set()
    async with client(proxy, SECOND) as c:
        summary = await mjasync.run_batch(c, PROMPTS, out_dir=out)
    assert summary.ok
    assert summary.submitted == 0
    assert summary.resumed == len(PROMPTS)
    assert proxy.submits() == len(PROMPTS)


async def test_a_cancelled_batch_releases_its_locks(proxy: HostileProxy, tmp_path: Path) -> None:
    """A notebook cell interrupted mid-batch must not lock the folder until the kernel dies."""
    out = tmp_path / "out"
    proxy.finish = anyio.Event()
    async with client(proxy, FIRST) as c:
        with anyio.move_on_after(10) as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: mjasync.run_batch(c, PROMPTS, out_dir=out))
                await proxy.submitted.wait()
                tg.cancel_scope.cancel()
        assert not scope.cancelled_caught
    proxy.finish.set()
    async with client(proxy, SECOND) as c:
        summary = await mjasync.run_batch(c, PROMPTS, out_dir=out)
    assert summary.ok
    assert proxy.submits() == len(PROMPTS)


def test_report_temp_files_are_unique_per_writer(tmp_path: Path) -> None:
    """Writers of one report never share a temp file (a fixed ``.NAME.tmp`` made them race)."""
    target = tmp_path / "manifest.jsonl"
    texts = [f"writer {n}\n" * 2000 for n in range(6)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(texts))

    def writer(text: str) -> None:
        start.wait()
        try:
            for _ in range(40):
                write_atomic(target, text)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(text,)) for text in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert target.read_text() in texts  # one writer's whole text, never a mix
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.jsonl"]


async def test_two_writers_of_one_image_never_share_a_part_file(tmp_path: Path) -> None:
    """Two downloaders writing the same name both end with a whole image, no error.

    With a fixed ``NAME.part``, the second writer deleted the first one's part file, the first
    renamed the second one's half-written file into place, and the second then failed.
    """
    from aiohttp import web

    body = padded_png(200_000)
    gates = {"a": anyio.Event(), "b": anyio.Event()}

    async def image(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        await response.prepare(request)
        await response.write(body[:1000])
        await gates[request.match_info["who"]].wait()
        await response.write(body[1000:])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/{who}/grid.png", image)
    out = tmp_path / "out"
    out.mkdir()

    def parts() -> set[tuple[str, int]]:
        found = set()
        for p in out.iterdir():
            if p.name.endswith(PART_SUFFIX):
                # lstat: a vanished entry between listing and stat is simply not counted.
                try:
                    found.add((p.name, p.lstat().st_ino))
                except FileNotFoundError:
                    continue
        return found

    results: dict[str, object] = {}
    async with serving(app) as base, aiohttp.ClientSession() as session:

        async def fetch(who: str) -> None:
            downloader = Downloader(session, out, allow_private_image_hosts=True)
            try:
                results[who] = await downloader.download(f"{base}/{who}/grid.png", "grid.png")
            except mjasync.DownloadError as exc:
                results[who] = exc

        first: set[tuple[str, int]] = set()

        async def a_started() -> bool:
            return bool(parts())

        async def b_started() -> bool:  # a new part file, or a's name on a new file
            return bool(parts() - first)

        async def a_done() -> bool:
            return "a" in results

        async with anyio.create_task_group() as tg:
            tg.start_soon(fetch, "a")
            await wait_until(a_started, what="a's part file")
            first = parts()
            tg.start_soon(fetch, "b")
            await wait_until(b_started, what="b's part file")
            gates["a"].set()
            await wait_until(a_done, what="a done")
            gates["b"].set()

    assert not isinstance(results["a"], Exception), results["a"]
    assert not isinstance(results["b"], Exception), results["b"]
    assert (out / "grid.png").read_bytes() == body
    assert_real_png(out / "grid.png")
    assert sorted(p.name for p in out.iterdir()) == ["grid.png"]
