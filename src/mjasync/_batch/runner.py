"""One execution of a batch: plan from the journal, submit, watch, download, upscale, report.

The journal protocol, per request:

1. take a slot (so nothing is journaled while it merely waits its turn);
2. commit the intent (key, endpoint, body) — before the POST;
3. submit; commit the task id at once (or "refused", or "uncertain");
4. follow the task; progress is coalesced by the journal; commit the terminal task;
5. download its images; commit the file list (the entry is then DONE).

Slots, submits and re-attachment go through the client's job engine
(:mod:`mjasync._jobs.engine`). Jobs are followed as an *observer* (``job.observe()``), never as
an owner: an owner that leaves abandons its job (cancelled upstream where the server can),
while a batch that is interrupted must leave paid tasks running, so a rerun can collect them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import aclosing
from pathlib import Path

import anyio
import anyio.abc
import anyio.to_thread
import attrs

from .._client import Client
from .._converter import parse_task
from .._errors import (
    APIError,
    AuthenticationError,
    DownloadError,
    JournalError,
    LimiterError,
    MjError,
    NotFoundError,
    SubmissionUncertainError,
    TaskError,
    TaskFailedError,
    TaskLostError,
    TransportError,
)
from .._jobs.job import Job
from .._jobs.limiter import Slot
from .._models import Task, TaskStatus
from .._requests import Action, Request
from .._validation import check_task_id
from .._wire.messages import in_english
from .crashpoints import crash_point
from .download import expects_media, expects_video, is_grid, server_sent_parts, task_media_urls
from .files import CountingDownloader, present_files, relative_names, sweep_parts
from .journal import JournalEntry, JournalState, JournalStore, ResumePlan
from .report import render_index, render_manifest, write_atomic
from .types import BatchEvent, BatchEventKind, BatchOutcome, PromptResult, RequestResult

__all__ = ["PromptSpec", "Runner", "UnitSpec"]

log = logging.getLogger("mjasync")

Emit = Callable[[BatchEvent], Awaitable[None]]


#: Errors that will not heal by going on with the next prompt: stop the whole batch. A
#: TransportError only gets this far from a submit that never reached the server, even after
#: the client's retries: every next prompt would fail the same slow way.
FATAL = (AuthenticationError, JournalError, LimiterError, TransportError)


@attrs.frozen(slots=True)
class UnitSpec:
    """One journaled request of a prompt: its own job (``button=None``) or an upscale."""

    key: str
    label: str
    button: str | None = None


@attrs.frozen(slots=True)
class PromptSpec:
    """One prompt of the batch, as planned before anything runs.

    ``mode``: the mode this prompt is submitted in (``None``: the client's); ``name``: the
    words its files are named with (``None``: the prompt's).
    """

    index: int
    label: str
    request: Request
    main: UnitSpec
    upscales: tuple[UnitSpec, ...] = ()
    mode: str | None = None
    name: str | None = None


@attrs.define(eq=False)
class _Unit:
    """A request being worked on in this run: what is known so far."""

    spec: UnitSpec
    prompt: PromptSpec
    mode: str | None = None
    task_id: str | None = None
    status: TaskStatus | None = None
    progress: int | None = None
    result: RequestResult | None = None

    def pending(self) -> RequestResult:
        return RequestResult(
            key=self.spec.key,
            outcome=BatchOutcome.PENDING,
            task_id=self.task_id,
            status=self.status.value if self.status is not None else None,
            button=self.spec.button,
        )


def error_texts(exc: BaseException) -> tuple[str, str | None]:
    """What went wrong in English, and the server's own words when they differ. Pure."""
    if isinstance(exc, APIError):
        return exc.message, exc.description if exc.description != exc.message else None
    if isinstance(exc, TaskFailedError):
        reason = exc.fail_reason
        return exc.message, reason if reason and reason != exc.message else None
    if isinstance(exc, TaskError | SubmissionUncertainError):
        return exc.message, None
    return str(exc), None


def _english(reason: str) -> tuple[str, str | None]:
    english = in_english(reason)
    return english, reason if english != reason else None


class _Handoff:
    """A slot taken by the feeder for a prompt task that may never start (cancellation)."""

    def __init__(self, slot: Slot) -> None:
        self.slot: Slot | None = slot

    def take(self) -> Slot | None:
        slot, self.slot = self.slot, None
        return slot


def _stored_task(entry: JournalEntry) -> Task | None:
    """The terminal task the journal kept for ``entry`` (``None`` if absent or unreadable)."""
    if entry.task_json is None:
        return None
    try:
        return parse_task(entry.task_json)
    except MjError:
        return None


class Runner:
    """Runs the prompts of one batch once. Built and driven by :class:`mjasync.Batch`.

    Args:
        client: an open client.
        prompts: the planned prompts.
        journal: an open journal.
        out_dir: the output directory (exists).
        downloader: where images go, or ``None`` when downloads are off.
        split: also cut grids into four files.
        resubmit_uncertain: resend requests whose earlier submit is uncertain.
        retry_failed: submit again requests that failed (or whose task was lost) earlier.
        emit: receives every event, in order.
    """

    def __init__(
        self,
        client: Client,
        prompts: Sequence[PromptSpec],
        *,
        journal: JournalStore,
        out_dir: Path,
        downloader: CountingDownloader | None,
        split: bool,
        resubmit_uncertain: bool,
        emit: Emit,
        report_interval: float = 1.0,
        retry_failed: bool = False,
    ) -> None:
        self._client = client
        self._engine = client.engine
        self._journal = journal
        self._out_dir = out_dir
        self._downloader = downloader
        self._split = split
        self._resubmit_uncertain = resubmit_uncertain
        self._retry_failed = retry_failed
        self._emit = emit
        self._report_interval = report_interval
        self._mode = client.mode
        self._prompts = [
            (
                spec,
                _Unit(spec.main, spec, mode=spec.mode),
                [_Unit(up, spec) for up in spec.upscales],
            )
            for spec in prompts
        ]
        self._finished: dict[int, PromptResult] = {}
        self._handoffs: list[_Handoff] = []
        self._plan = ResumePlan()
        self._bucket: dict[str, str] = {}
        self._fatal: BaseException | None = None
        self._items_scope: anyio.CancelScope | None = None
        self._dirty = False
        self.submitted = 0
        self.resumed = 0
        self.skipped = 0
        self.refused = 0
        self.retried = 0
        self.split_skipped = 0

    @property
    def fetched(self) -> int:
        """Image files fetched in this run."""
        return self._downloader.fetched if self._downloader is not None else 0

    # -- results -----------------------------------------------------------------------------

    def results(self) -> list[PromptResult]:
        """One result per prompt; unfinished prompts show as PENDING with what is known."""
        out = []
        for spec, main, ups in self._prompts:
            done = self._finished.get(spec.index)
            if done is None:
                done = PromptResult(
                    index=spec.index,
                    prompt=spec.label,
                    main=main.result or main.pending(),
                    upscales=tuple(u.result or u.pending() for u in ups),
                )
            out.append(done)
        return out

    async def write_reports(self, *, index: bool) -> None:
        """Rewrite ``manifest.jsonl`` (and ``index.html``) from the current results."""
        results = self.results()
        self._dirty = False
        out_dir = self._out_dir

        def write() -> None:  # rendering 10,000 prompts takes a while: not on the event loop
            write_atomic(out_dir / "manifest.jsonl", render_manifest(results))
            if index:
                page = render_index(results, title=f"mjasync batch: {out_dir.name}")
                write_atomic(out_dir / "index.html", page)

        await anyio.to_thread.run_sync(write)

    # -- the run -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Do the whole batch. Raises the first fatal error (bad key, broken journal)."""
        await anyio.to_thread.run_sync(sweep_parts, self._out_dir)
        keys = [u.spec.key for _, main, ups in self._prompts for u in (main, *ups)]
        self._plan = await self._journal.plan(
            keys, resubmit_uncertain=self._resubmit_uncertain, retry_failed=self._retry_failed
        )
        for bucket in ("submit", "watch", "download", "finished", "uncertain"):
            for key in getattr(self._plan, bucket):
                self._bucket[key] = bucket
        try:
            async with anyio.create_task_group() as helpers:
                helpers.start_soon(self._reporter)
                with anyio.CancelScope() as scope:
                    self._items_scope = scope
                    async with anyio.create_task_group() as items:
                        await self._feed(items)
                helpers.cancel_scope.cancel()
        finally:
            for handoff in self._handoffs:
                slot = handoff.take()
                if slot is not None:
                    self._engine.release_unused(slot)
        if self._fatal is not None:
            raise self._fatal

    async def _feed(self, items: anyio.abc.TaskGroup) -> None:
        """Start every prompt: journal-only ones at once, then re-watches, then new submits.

        Slots for re-watches and submits are taken here, in order, so a 10,000-prompt batch
        keeps only ``concurrency`` jobs (plus downloads) in memory, and tasks paid for in an
        earlier run get their slots before new work does.
        """
        later: list[tuple[PromptSpec, _Unit, list[_Unit]]] = []
        for entry in self._prompts:
            bucket = self._bucket[entry[1].spec.key]
            if bucket in ("finished", "download", "uncertain"):
                items.start_soon(self._prompt, *entry, None)
            else:
                later.append(entry)
        for wanted in ("watch", "submit"):
            for spec, main, ups in later:
                if self._bucket[main.spec.key] != wanted:
                    continue
                if wanted == "watch":
                    mode = self._entry_mode(main.spec.key)
                else:
                    mode = spec.mode or self._mode
                handoff = _Handoff(await self._engine.acquire(mode))
                self._handoffs.append(handoff)
                items.start_soon(self._prompt, spec, main, ups, handoff)
            # Handed-off slots are in their tasks now; forget them to keep the list short.
            self._handoffs = [h for h in self._handoffs if h.slot is not None]

    def _entry_mode(self, key: str) -> str | None:
        entry = self._plan.entries.get(key)
        return entry.mode if entry is not None else self._mode

    async def _prompt(
        self, spec: PromptSpec, main: _Unit, ups: list[_Unit], handoff: _Handoff | None
    ) -> None:
        slot = handoff.take() if handoff is not None else None
        try:
            task = await self._unit(main, slot)
            succeeded = main.result is not None and main.result.outcome is BatchOutcome.SUCCEEDED
            if ups and succeeded:
                if task is None:  # finished earlier, and the journal kept no task payload
                    task = await self._fetch(main)
                async with anyio.create_task_group() as tg:
                    for unit in ups:
                        tg.start_soon(self._child, unit, task)
        except FATAL as exc:
            self._stop(exc)
            return
        result = PromptResult(
            index=spec.index,
            prompt=spec.label,
            main=main.result or main.pending(),
            upscales=tuple(u.result or u.pending() for u in ups),
        )
        self._finished[spec.index] = result
        self._dirty = True
        await self._emit(
            BatchEvent(
                kind=BatchEventKind.FINISHED,
                index=spec.index,
                prompt=spec.label,
                key=spec.main.key,
                task_id=result.task_id,
                status=main.status,
                progress=main.progress,
                files=result.files,
                error=result.error,
                result=result,
            )
        )

    async def _child(self, unit: _Unit, parent: Task | None) -> None:
        try:
            await self._unit(unit, None, parent=parent)
        except FATAL as exc:
            self._stop(exc)

    async def _fetch(self, unit: _Unit) -> Task | None:
        if unit.task_id is None:
            return None
        try:
            return await self._client.fetch(unit.task_id, mode=unit.mode)
        except (MjError, ValueError) as exc:
            log.warning("mjasync batch: cannot fetch task %s: %s", unit.task_id, exc)
            return None

    def _stop(self, error: BaseException) -> None:
        if self._fatal is None:
            self._fatal = error
        if self._items_scope is not None:
            self._items_scope.cancel()

    # -- one request -------------------------------------------------------------------------

    async def _unit(
        self, unit: _Unit, slot: Slot | None, *, parent: Task | None = None
    ) -> Task | None:
        """Bring one request as far as it goes; returns its task if it succeeded."""
        key = unit.spec.key
        bucket = self._bucket[key]
        entry = self._plan.entries.get(key)
        try:
            if entry is not None and bucket != "submit":
                unit.task_id, unit.mode = entry.task_id, entry.mode
            if bucket == "finished":
                assert entry is not None
                return await self._earlier(unit, entry)
            if bucket == "uncertain":
                assert entry is not None
                why = entry.reason or "the process stopped while submitting"
                await self._settle(unit, BatchOutcome.UNCERTAIN, error=why, earlier=True)
                return None
            if bucket == "download":
                assert entry is not None
                self.skipped += 1
                task = await self._succeeded_task(unit, entry)
                if task is None:
                    await self._settle(
                        unit, BatchOutcome.FAILED, error="the finished task is unreadable"
                    )
                    return None
                return await self._collect(unit, task, earlier=True)
            if bucket == "watch":
                assert entry is not None
                assert entry.task_id is not None
                held, slot = slot or await self._engine.acquire(entry.mode), None
                try:
                    task_id = check_task_id(entry.task_id)
                except ValueError as exc:  # the journal holds an id no server would accept
                    self._engine.release_unused(held)
                    await self._settle(unit, BatchOutcome.FAILED, error=str(exc))
                    return None
                job = self._engine.attach(task_id, entry.mode, slot=held)
                self.resumed += 1
                await self._event(unit, BatchEventKind.RESUMED, job)
                return await self._follow(unit, job)
            request = await self._request_for(unit, parent)
            if request is None:
                return None
            if entry is not None and entry.state is JournalState.FAILED:
                self.retried += 1  # --retry-failed: a failed or lost request, paid again
            held, slot = slot or await self._engine.acquire(unit.mode or self._mode), None
            submitted = await self._submit(unit, request, held)
            return None if submitted is None else await self._follow(unit, submitted)
        finally:
            if slot is not None:
                self._engine.release_unused(slot)

    async def _request_for(self, unit: _Unit, parent: Task | None) -> Request | None:
        if unit.spec.button is None:
            return unit.prompt.request
        unit.mode = self._prompts[unit.prompt.index][1].mode
        if parent is None:
            await self._settle(unit, BatchOutcome.FAILED, error="the grid's task could not be read")
            return None
        try:
            return Action(parent.id, parent.button(unit.spec.button).custom_id)
        except ValueError as exc:  # e.g. a Java proxy shows no buttons
            await self._settle(unit, BatchOutcome.FAILED, error=str(exc))
            return None

    async def _submit(self, unit: _Unit, request: Request, slot: Slot) -> Job | None:
        """Intent, submit, outcome — the journal sees each before the next step."""
        key, mode = unit.spec.key, unit.mode or self._mode
        try:
            body = self._client.request_body(request)
            await self._journal.record_intent(
                key, endpoint=request.route, body=body, mode=mode, label=unit.spec.label
            )
        except BaseException:
            self._engine.release_unused(slot)
            raise
        # No await between the intent and the POST: a cancellation arriving now is only
        # delivered inside the client's shielded submit, so the id is still recorded below.
        crash_point("submit.intent")
        try:
            job = await self._engine.start(request, body, mode, slot, in_engine_task=True)
        except SubmissionUncertainError as exc:
            await self._journal.record_uncertain(key, exc.message)
            await self._settle(unit, BatchOutcome.UNCERTAIN, error=exc.message)
            return None
        except (AuthenticationError, TransportError) as exc:  # fatal: see FATAL
            await self._journal.record_refused(key, str(exc))
            raise
        except MjError as exc:  # refused: banned, invalid, queue full for too long, ...
            await self._journal.record_refused(key, str(exc))
            self.refused += 1
            error, server = error_texts(exc)
            await self._settle(unit, BatchOutcome.FAILED, error=error, server_message=server)
            return None
        crash_point("submit.accepted")
        await self._journal.record_accepted(key, job.id)
        unit.mode = mode
        self.submitted += 1
        await self._event(unit, BatchEventKind.SUBMITTED, job)
        return job

    async def _follow(self, unit: _Unit, job: Job) -> Task | None:
        """Follow the job to its end, journal its progress and outcome, then download.

        The batch observes its jobs without owning them: a batch that is stopped leaves them
        running upstream, and the journal lets the rerun pick them up again.
        """
        async with aclosing(job.observe()) as events:
            async for event in events:
                if event.is_terminal:
                    break
                if (event.status, event.progress) != (unit.status, unit.progress):
                    unit.status, unit.progress = event.status, event.progress
                    await self._journal.record_progress(unit.spec.key, event.status, event.progress)
                    await self._emit(self._make(unit, BatchEventKind.PROGRESS))
        key = unit.spec.key
        try:
            task = await job.result()
        except TaskFailedError as exc:
            failed = exc.task
            status = failed.status if failed is not None else TaskStatus.FAILURE
            if not status.is_terminal:
                status = TaskStatus.FAILURE
            reason = exc.fail_reason or exc.message  # the server's own words, in the journal
            await self._journal.record_terminal(
                key,
                status,
                task_json=failed.raw if failed is not None else None,
                fail_reason=reason,
            )
            unit.status = status
            error, server = error_texts(exc)
            await self._settle(unit, BatchOutcome.FAILED, error=error, server_message=server)
            return None
        except TaskLostError as exc:
            # The server said it does not know the task: nothing more will come of it. Failed
            # in the journal, so a rerun does not watch it again (--retry-failed redoes it).
            await self._journal.record_terminal(key, TaskStatus.FAILURE, fail_reason=exc.message)
            unit.status = TaskStatus.FAILURE
            await self._settle(unit, BatchOutcome.FAILED, error=exc.message)
            return None
        except FATAL:
            raise
        except (TaskError, MjError) as exc:
            # Stalled, or the client closed: the task may still finish upstream, so the
            # journal keeps it ACCEPTED and a rerun watches it again.
            await self._settle(unit, BatchOutcome.FAILED, error=error_texts(exc)[0])
            return None
        unit.status, unit.progress = task.status, task.progress
        await self._journal.record_terminal(key, task.status, task_json=task.raw)
        crash_point("terminal.recorded")
        await self._event(unit, BatchEventKind.SUCCEEDED, job)
        return await self._collect(unit, task)

    async def _succeeded_task(self, unit: _Unit, entry: JournalEntry) -> Task | None:
        """The task of a request that succeeded earlier but has no files recorded yet.

        The stored payload when it has the image(s); otherwise the server is asked again —
        a task that reported SUCCESS before its image URL was filled in may have it now.
        """
        task = _stored_task(entry)
        if task is not None and (task_media_urls(task) or not expects_media(task)):
            return task
        fresh = await self._fetch(unit)
        if fresh is None or fresh.status is not TaskStatus.SUCCESS:
            return task or fresh
        await self._journal.record_terminal(unit.spec.key, fresh.status, task_json=fresh.raw)
        return fresh

    async def _collect(self, unit: _Unit, task: Task, *, earlier: bool = False) -> Task | None:
        """Download a succeeded task's images and mark the request DONE.

        A task whose action makes images but that came without any image URL is not done:
        it fails for this run and stays SUCCEEDED in the journal, so a rerun asks the server
        again and downloads then. A download that fails keeps the files that did arrive in
        the results (manifest, contact sheet), and a rerun fetches the rest.
        """
        unit.task_id, unit.status = task.id, task.status
        files: tuple[str, ...] = ()
        if expects_media(task) and not task_media_urls(task):
            what = "a video" if expects_video(task) else "an image"
            why = f"task {task.id} succeeded without {what} URL; a rerun asks again"
            await self._settle(unit, BatchOutcome.FAILED, error=why, earlier=earlier)
            return None
        if self._downloader is not None:
            self._note_split(unit, task)
            paths, error = await self._download(unit, task)
            if error is not None:
                await self._settle(
                    unit, BatchOutcome.FAILED, files=paths, error=error, earlier=earlier
                )
                return None
            files = paths
        await self._journal.record_files(unit.spec.key, files)
        if files:
            await self._emit(self._make(unit, BatchEventKind.DOWNLOADED, files=files))
        await self._settle(unit, BatchOutcome.SUCCEEDED, files=files, earlier=earlier)
        return task

    def _split_here(self, unit: _Unit) -> bool:
        return self._split and unit.spec.button is None

    def _note_split(self, unit: _Unit, task: Task) -> None:
        if self._split_here(unit) and is_grid(task) and server_sent_parts(task):
            self.split_skipped += 1

    async def _images(self, unit: _Unit, task: Task) -> tuple[str, ...]:
        assert self._downloader is not None
        paths = await self._downloader.fetch_task_images(
            task, split=self._split_here(unit), name=unit.prompt.name, label=unit.spec.button
        )
        return await anyio.to_thread.run_sync(relative_names, self._out_dir, paths)

    async def _on_disk(self, unit: _Unit, task: Task) -> tuple[str, ...]:
        downloader = self._downloader
        assert downloader is not None

        def present() -> tuple[str, ...]:
            paths = downloader.files_on_disk(
                task, split=self._split_here(unit), name=unit.prompt.name, label=unit.spec.button
            )
            return relative_names(self._out_dir, paths)

        return await anyio.to_thread.run_sync(present)

    async def _download(self, unit: _Unit, task: Task) -> tuple[tuple[str, ...], str | None]:
        """Download ``task``'s images: (the files, ``None``), or (the files there, why not).

        When the URLs fail, the server is asked for the task as it is now and its URLs are
        tried once more: signed CDN links expire, and a restarted server moves its images.
        A task the server no longer knows is recorded as failed (lost), so ``retry_failed``
        can redo it; any other failure leaves the journal as it is, and a rerun tries again.
        """
        try:
            return await self._images(unit, task), None
        except (DownloadError, OSError, ValueError) as exc:
            error = str(exc)
        fresh: Task | None = None
        if unit.task_id is not None:
            try:
                fresh = await self._client.fetch(unit.task_id, mode=unit.mode)
            except NotFoundError:
                lost = f"{error}; the server no longer knows task {task.id}, so a rerun with "
                lost += "retry_failed (--retry-failed) makes it again"
                await self._journal.record_terminal(
                    unit.spec.key, TaskStatus.FAILURE, fail_reason=lost
                )
                return await self._on_disk(unit, task), lost
            except (MjError, ValueError) as exc:
                log.info("mjasync batch: cannot fetch task %s again: %s", unit.task_id, exc)
        moved = fresh is not None and [url for url, _, _ in task_media_urls(fresh)] != [
            url for url, _, _ in task_media_urls(task)
        ]
        if fresh is not None and fresh.status is TaskStatus.SUCCESS and moved:
            await self._journal.record_terminal(unit.spec.key, fresh.status, task_json=fresh.raw)
            try:
                return await self._images(unit, fresh), None
            except (DownloadError, OSError, ValueError) as exc:
                error = str(exc)
        return await self._on_disk(unit, task), f"{error}; a rerun tries again"

    async def _earlier(self, unit: _Unit, entry: JournalEntry) -> Task | None:
        """A request finished in an earlier run: report it; fetch again what went missing."""
        self.skipped += 1
        unit.status = TaskStatus.__members__.get((entry.status or "").upper())
        present = await anyio.to_thread.run_sync(present_files, self._out_dir, entry.files)
        if entry.state is not JournalState.DONE:
            why = entry.fail_reason or entry.reason or "failed in an earlier run"
            error, server = _english(why)
            await self._settle(
                unit,
                BatchOutcome.FAILED,
                files=present,
                error=error,
                server_message=server,
                earlier=True,
            )
            return None
        task = _stored_task(entry)
        if task is not None and self._downloader is not None:
            # Files deleted since, downloads off last time, or --split new this time.
            missing = not entry.files or len(present) < len(entry.files)
            if not missing and self._split_here(unit) and is_grid(task):
                expected = await anyio.to_thread.run_sync(self._split_parts_missing, unit, task)
                missing = expected
            if missing:
                task = await self._succeeded_task(unit, entry) or task
                return await self._collect(unit, task, earlier=True)
            self._note_split(unit, task)
        await self._settle(unit, BatchOutcome.SUCCEEDED, files=entry.files, earlier=True)
        return task

    def _split_parts_missing(self, unit: _Unit, task: Task) -> bool:
        """Whether ``--split`` still has parts to cut for ``task`` (blocking)."""
        downloader = self._downloader
        assert downloader is not None
        name = unit.prompt.name
        wanted = downloader.expected_files(task, split=True, name=name, label=None)
        plain = downloader.expected_files(task, split=False, name=name, label=None)
        return any(not path.is_file() for path in wanted if path not in plain)

    # -- events ------------------------------------------------------------------------------

    def _make(
        self,
        unit: _Unit,
        kind: BatchEventKind,
        *,
        files: tuple[str, ...] = (),
        error: str | None = None,
    ) -> BatchEvent:
        return BatchEvent(
            kind=kind,
            index=unit.prompt.index,
            prompt=unit.prompt.label,
            key=unit.spec.key,
            task_id=unit.task_id,
            status=unit.status,
            progress=unit.progress,
            button=unit.spec.button,
            files=files,
            error=error,
        )

    async def _event(self, unit: _Unit, kind: BatchEventKind, job: Job) -> None:
        unit.task_id = job.id
        if kind is not BatchEventKind.SUCCEEDED:
            unit.status, unit.progress = job.status, job.progress
        await self._emit(self._make(unit, kind))

    async def _settle(
        self,
        unit: _Unit,
        outcome: BatchOutcome,
        *,
        files: Iterable[str] = (),
        error: str | None = None,
        server_message: str | None = None,
        earlier: bool = False,
    ) -> None:
        unit.result = RequestResult(
            key=unit.spec.key,
            outcome=outcome,
            task_id=unit.task_id,
            status=unit.status.value if unit.status is not None else None,
            files=tuple(files),
            error=error,
            button=unit.spec.button,
            earlier=earlier,
            server_message=server_message,
        )
        kinds: Mapping[BatchOutcome, BatchEventKind] = {
            BatchOutcome.FAILED: BatchEventKind.FAILED,
            BatchOutcome.UNCERTAIN: BatchEventKind.UNCERTAIN,
        }
        if outcome in kinds:
            await self._emit(self._make(unit, kinds[outcome], error=error))

    # -- helpers running beside the prompts --------------------------------------------------

    async def _reporter(self) -> None:
        """Keep ``manifest.jsonl`` current while the batch runs (at most once a second)."""
        while True:
            await anyio.sleep(self._report_interval)
            if self._dirty:
                try:
                    await self.write_reports(index=False)
                except OSError as exc:  # a full disk must not stop the jobs; the end retries
                    log.warning("mjasync batch: cannot update the manifest: %s", exc)
