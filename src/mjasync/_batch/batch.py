"""Batch generation: many prompts, a crash-safe journal, downloads, upscales, and reports.

``Batch`` is the object (stream its events from a notebook); ``run_batch`` is the one-call
form. Both write into one output directory: the images, ``manifest.jsonl`` (one line per
prompt), ``index.html`` (a contact sheet) and, by default, ``journal.sqlite``.

Upscales: with ``upscale=`` set, every grid that succeeds gets its U-buttons pressed; each
press is its own journaled request (keyed from the grid's key and the button), and its image
is downloaded **in addition to** the grid. The grid is already paid for and is what the
contact sheet shows; the upscales are the deliverables.
"""

from __future__ import annotations

import importlib.util
import inspect
import math
import os
import time
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Literal

import aiohttp
import anyio
import anyio.to_thread

from .._client import Client
from .._requests import (
    Action,
    Blend,
    Change,
    Describe,
    Edit,
    Imagine,
    Modal,
    Request,
    Retexture,
    Shorten,
    SwapFace,
    SwapVideoFace,
    Video,
)
from .download import (
    DEFAULT_MAX_BYTES_PER_TASK,
    DEFAULT_MAX_IMAGES_PER_TASK,
    DEFAULT_READ_TIMEOUT,
    ImageHostPolicy,
    image_session,
)
from .files import CountingDownloader
from .journal import Journal, JournalState, JournalStore, ResumePlan, request_key
from .lock import DIR_LOCK_NAME, BatchLock, journal_lock_path
from .runner import PromptSpec, Runner, UnitSpec
from .types import BatchEvent, BatchItem, BatchPlan, BatchSummary

__all__ = ["Batch", "UpscaleChoice", "run_batch"]

#: ``None`` (no upscales), a button number 1-4, or ``"all"`` four.
UpscaleChoice = int | Literal["all"] | None
EventHook = Callable[[BatchEvent], object]

_REQUEST_TYPES = (
    Imagine,
    Blend,
    Describe,
    Shorten,
    Action,
    Modal,
    Video,
    Edit,
    Retexture,
    SwapFace,
    SwapVideoFace,
)


def _buttons(upscale: UpscaleChoice) -> tuple[str, ...]:
    if upscale is None:
        return ()
    if upscale == "all":
        return ("U1", "U2", "U3", "U4")
    if isinstance(upscale, bool) or not isinstance(upscale, int) or not 1 <= upscale <= 4:
        raise ValueError(f"upscale must be None, 1, 2, 3, 4 or 'all', not {upscale!r}")
    return (f"U{upscale}",)


def _check_positive(name: str, value: object, *, number: bool = False) -> None:
    kinds: tuple[type, ...] = (int, float) if number else (int,)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise TypeError(f"{name} must be {'a number' if number else 'an int'}, not {value!r}")
    if not 0 < value < math.inf:  # type: ignore[operator]
        raise ValueError(f"{name} must be positive and finite, not {value!r}")


def _label(request: Request) -> str:
    if isinstance(request, Imagine):
        return request.prompt
    if isinstance(request, Shorten):
        return f"shorten: {request.prompt}"
    if isinstance(request, Describe):
        shown = request.image if not request.image.startswith("data:") else "an image"
        return f"describe {shown}"
    if isinstance(request, Blend):
        return f"blend of {len(request.images)} images"
    if isinstance(request, Action):
        return f"{request.custom_id} on task {request.task_id}"
    if isinstance(request, Modal | Change):
        return f"modal step of task {request.task_id}"
    if isinstance(request, Video):
        if request.task_id is not None:
            return f"extend video {request.index} of task {request.task_id}: {request.prompt}"
        return f"video: {request.prompt}"
    if isinstance(request, Edit | Retexture):
        return f"{request.kind}: {request.prompt}"
    return request.kind.replace("_", " ")


def _item_buttons(item: BatchItem, default: tuple[str, ...]) -> tuple[str, ...]:
    if item.upscale is None:
        return default
    if item.upscale == "none":
        return ()
    return _buttons(item.upscale)


def _as_request(index: int, item: object) -> Request:
    if isinstance(item, BatchItem):
        return _as_request(index, item.request)
    if isinstance(item, str):
        try:
            return Imagine(item)
        except ValueError as exc:
            raise ValueError(f"prompt {index + 1}: {exc}") from None
    if isinstance(item, _REQUEST_TYPES):
        return item
    raise TypeError(
        f"batch item {index + 1} must be a prompt str, a request (mjasync.Imagine, ...) or "
        f"a BatchItem, not {type(item).__name__}"
    )


def plan_prompts(
    client: Client, requests: Iterable[Request | str | BatchItem], buttons: tuple[str, ...]
) -> list[PromptSpec]:
    """Turn the input into prompt specs with their journal keys (validating every request).

    The key of a request comes from its route and body without ``state``/``notifyHook``,
    plus its occurrence number, so the same prompt listed twice is two requests. An
    upscale's key comes from its grid's key and the button. A :class:`BatchItem` brings its
    own mode, upscales and file name.
    """
    specs = []
    seen: Counter[str] = Counter()
    for index, item in enumerate(requests):
        request = _as_request(index, item)
        options = item if isinstance(item, BatchItem) else BatchItem(request)
        client.request_body(request)  # the client's own checks (image size) before any run
        body = request.to_body()
        first = request_key(request.route, body)
        occurrence = seen[first]
        seen[first] += 1
        key = first if occurrence == 0 else request_key(request.route, body, occurrence)
        label = _label(request)
        wanted = _item_buttons(options, buttons)
        ups = wanted if isinstance(request, Imagine | Blend) else ()
        specs.append(
            PromptSpec(
                index=index,
                label=label,
                request=request,
                main=UnitSpec(key=key, label=label),
                upscales=tuple(
                    UnitSpec(
                        key=request_key(Action.route, {"parentKey": key, "button": button}),
                        label=f"{label} [{button}]",
                        button=button,
                    )
                    for button in ups
                ),
                mode=options.mode,
                name=options.name,
            )
        )
    return specs


def plan_counts(prompts: Iterable[PromptSpec], plan: ResumePlan) -> BatchPlan:
    """How many requests of ``prompts`` a run with ``plan`` submits, watches, ... Pure."""
    counts = dict.fromkeys(("new", "retried", "watch", "download", "finished", "uncertain"), 0)
    buckets = {
        key: bucket
        for bucket in ("submit", "watch", "download", "finished", "uncertain")
        for key in getattr(plan, bucket)
    }
    for spec in prompts:
        for unit in (spec.main, *spec.upscales):
            bucket = buckets.get(unit.key, "submit")
            if bucket == "submit":
                entry = plan.entries.get(unit.key)
                failed = entry is not None and entry.state is JournalState.FAILED
                counts["retried" if failed else "new"] += 1
            else:
                counts[bucket] += 1
    return BatchPlan(**counts)


class Batch:
    """Many requests through one client, journaled so a rerun finishes what a crash left.

    Args:
        client: an open :class:`Client` (``async with client``); its concurrency bounds the
            jobs in flight and its mode is used for new submissions.
        requests: prompt strings and/or requests (``Imagine``, ``Blend``, ...).
        out_dir: where images, ``manifest.jsonl`` and ``index.html`` go (created).
        journal: a path, a :class:`JournalStore`, or ``None`` for ``out_dir/journal.sqlite``.
            A store passed in is not closed.
        download: download the images (else only the journal and reports are written).
        split: also cut each grid into four files (needs ``mjasync[images]``).
        upscale: press U1-U4 (a number, or ``"all"``) on every grid that succeeds and
            download those images too.
        resubmit_uncertain: resend requests whose earlier submit may have reached the server
            (they may be paid twice). By default they are reported, not resent.
        retry_failed: submit again the requests that failed in an earlier run, or whose task
            the server lost (they are paid again; :meth:`preview` says how many).
        download_limit: images downloaded at once.
        session: an aiohttp session for the downloads (default: a private one, without the
            API key, so no CDN ever sees it, that checks every address it connects to).
            With a session of your own, image hosts are resolved and checked before each
            request instead (see :func:`mjasync._batch.download.image_session`).
        allow_private_image_hosts: also download from loopback, private, link-local and
            other non-public addresses. By default only public hosts and the API server's
            own address (same IP and port) are contacted, and every redirect is checked.
        image_read_timeout: seconds an image download may go without receiving a byte.
        max_images_per_task: a task listing more image URLs than this is not downloaded.
        max_image_bytes_per_task: the bytes all images of one task may add up to.

    The batch holds a lock on its journal (``<journal>.lock``) and its output directory
    (``.mjasync.lock``) for the whole run: a second batch on either fails at once with
    :class:`~mjasync.JournalError` (``JournalLockedError``), before it sends anything. The
    lock ends with the process that holds it, even when that process is killed.

    Raises:
        ValueError, TypeError: a bad option or request (before anything is sent).
        ImportError: ``split=True`` without Pillow.

    Example::

        async with mjasync.Client() as client:
            batch = mjasync.Batch(client, ["a red fox", "a blue whale"], out_dir="out")
            async with contextlib.aclosing(batch.events()) as events:
                async for event in events:
                    print(event.index, event.kind, event.progress)
            print(batch.summary)
    """

    def __init__(
        self,
        client: Client,
        requests: Iterable[Request | str | BatchItem],
        *,
        out_dir: str | os.PathLike[str],
        journal: str | os.PathLike[str] | JournalStore | None = None,
        download: bool = True,
        split: bool = False,
        upscale: UpscaleChoice = None,
        resubmit_uncertain: bool = False,
        retry_failed: bool = False,
        download_limit: int = 4,
        session: aiohttp.ClientSession | None = None,
        allow_private_image_hosts: bool = False,
        image_read_timeout: float = DEFAULT_READ_TIMEOUT,
        max_images_per_task: int = DEFAULT_MAX_IMAGES_PER_TASK,
        max_image_bytes_per_task: int = DEFAULT_MAX_BYTES_PER_TASK,
    ) -> None:
        if not isinstance(client, Client):
            raise TypeError(f"client must be a mjasync.Client, not {type(client).__name__}")
        if isinstance(requests, str | bytes):
            raise TypeError("requests must be an iterable of prompts, not a single str")
        if split and not download:
            raise ValueError("split=True needs download=True (there is nothing to split)")
        if split and importlib.util.find_spec("PIL") is None:
            raise ImportError("split=True needs Pillow: pip install 'mjasync[images]'")
        if isinstance(download_limit, bool) or not isinstance(download_limit, int):
            raise TypeError("download_limit must be an int")
        if download_limit < 1:
            raise ValueError(f"download_limit must be at least 1, not {download_limit}")
        _check_positive("image_read_timeout", image_read_timeout, number=True)
        _check_positive("max_images_per_task", max_images_per_task)
        _check_positive("max_image_bytes_per_task", max_image_bytes_per_task)
        self._client = client
        self._prompts = plan_prompts(client, requests, _buttons(upscale))
        self.out_dir = Path(out_dir)
        self._journal_arg = journal
        self._download = bool(download)
        self._split = bool(split)
        self._resubmit_uncertain = bool(resubmit_uncertain)
        self._retry_failed = bool(retry_failed)
        self._download_limit = download_limit
        self._session = session
        self._allow_private_image_hosts = bool(allow_private_image_hosts)
        self._image_read_timeout = float(image_read_timeout)
        self._max_images_per_task = max_images_per_task
        self._max_image_bytes_per_task = max_image_bytes_per_task
        self._summary: BatchSummary | None = None
        self._started = False
        self._runner: Runner | None = None

    def __repr__(self) -> str:
        state = "done" if self._summary else "running" if self._started else "new"
        return f"<Batch {len(self._prompts)} prompts -> {str(self.out_dir)!r} {state}>"

    @property
    def total(self) -> int:
        """How many prompts the batch has."""
        return len(self._prompts)

    @property
    def prompts(self) -> tuple[str, ...]:
        """The prompt texts (or request descriptions), in order."""
        return tuple(spec.label for spec in self._prompts)

    @property
    def journal_path(self) -> str | None:
        """The journal file, when the batch opens it from a path."""
        if isinstance(self._journal_arg, str | os.PathLike):
            return os.fspath(self._journal_arg)
        if self._journal_arg is None:
            return os.fspath(self.out_dir / "journal.sqlite")
        return getattr(self._journal_arg, "path", None)

    @property
    def summary(self) -> BatchSummary | None:
        """The summary once the batch has finished, else ``None``."""
        return self._summary

    async def preview(self) -> BatchPlan:
        """What :meth:`run` would do with the journal as it is now; sends nothing.

        Use it to say what a run will pay before it pays: ``plan.submits`` jobs at most,
        ``plan.retried`` of them failed before (``retry_failed=True``).

        Raises:
            JournalError: the journal cannot be read.
        """
        keys = [u.key for spec in self._prompts for u in (spec.main, *spec.upscales)]
        arg = self._journal_arg
        if arg is not None and not isinstance(arg, str | os.PathLike):
            store = arg
            if not isinstance(store, JournalStore):
                raise TypeError(
                    f"journal must be a path or a JournalStore, not {type(store).__name__}"
                )
            plan = await store.plan(
                keys,
                resubmit_uncertain=self._resubmit_uncertain,
                retry_failed=self._retry_failed,
            )
            return plan_counts(self._prompts, plan)
        path = self.out_dir / "journal.sqlite" if arg is None else Path(arg)
        if not await anyio.Path(path).exists():
            return plan_counts(self._prompts, ResumePlan())
        async with await Journal.open(path) as journal:
            plan = await journal.plan(
                keys,
                resubmit_uncertain=self._resubmit_uncertain,
                retry_failed=self._retry_failed,
            )
        return plan_counts(self._prompts, plan)

    async def events(self) -> AsyncGenerator[BatchEvent, None]:
        """Run the batch and yield its events as they happen; ``summary`` is set at the end.

        Close the generator (``contextlib.aclosing``) to stop early: the journal is flushed
        and the reports are written; tasks already paid for keep running upstream and a
        rerun collects them.

        Raises:
            AuthenticationError: the server refused the key (the batch stops at once).
            JournalError: the journal cannot be used.
        """
        send, receive = anyio.create_memory_object_stream[BatchEvent](math.inf)

        async def emit(event: BatchEvent) -> None:
            send.send_nowait(event)

        async def produce() -> None:
            async with send:
                await self._execute(emit)

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(produce)
                async with receive:
                    async for event in receive:
                        yield event
        except BaseExceptionGroup as group:
            # The task group is ours, not the caller's: raise what went wrong as itself.
            if len(group.exceptions) != 1:
                raise
            raise group.exceptions[0] from None

    async def run(self, on_event: EventHook | None = None) -> BatchSummary:
        """Run the batch to the end and return its summary.

        Args:
            on_event: called with every :class:`BatchEvent` (a plain function or a
                coroutine function).
        """

        async def emit(event: BatchEvent) -> None:
            if on_event is not None:
                outcome = on_event(event)
                if inspect.isawaitable(outcome):
                    await outcome

        return await self._execute(emit)

    async def _execute(self, emit: Callable[[BatchEvent], Awaitable[None]]) -> BatchSummary:
        if self._started:
            raise RuntimeError("a Batch runs once; create a new one to run again")
        self._client.engine.check_open()  # before anything touches the disk
        self._started = True
        started = time.monotonic()
        before = self._client.statistics()
        await anyio.to_thread.run_sync(lambda: self.out_dir.mkdir(parents=True, exist_ok=True))
        async with AsyncExitStack() as stack:
            # Locked before the journal is read and before anything is sent; released last.
            await self._lock(stack)
            journal = await self._open_journal(stack)
            downloader = None
            if self._download:
                policy = ImageHostPolicy(self._allow_private_image_hosts, self._client.base_url)
                session = self._session
                if session is None:
                    session = await stack.enter_async_context(image_session(policy))
                downloader = CountingDownloader(
                    session,
                    self.out_dir,
                    limit=self._download_limit,
                    read_timeout=self._image_read_timeout,
                    allow_private_image_hosts=policy.allow_private,
                    api_server=policy.api_server,
                    max_images_per_task=self._max_images_per_task,
                    max_bytes_per_task=self._max_image_bytes_per_task,
                )
            runner = self._runner = Runner(
                self._client,
                self._prompts,
                journal=journal,
                out_dir=self.out_dir,
                downloader=downloader,
                split=self._split,
                resubmit_uncertain=self._resubmit_uncertain,
                retry_failed=self._retry_failed,
                emit=emit,
            )
            try:
                await runner.run()
            finally:
                # Written on success, on errors and on cancellation alike: what is known.
                with anyio.CancelScope(shield=True):
                    await runner.write_reports(index=True)
        after = self._client.statistics()
        self._summary = BatchSummary(
            results=tuple(runner.results()),
            submitted=runner.submitted,
            resumed=runner.resumed,
            skipped=runner.skipped,
            downloaded=runner.fetched,
            wall_time=time.monotonic() - started,
            requests=after.requests - before.requests,
            submits=after.submits - before.submits,
            polls=after.polls + after.fetches - before.polls - before.fetches,
            refused=runner.refused,
            retried=runner.retried,
            split_skipped=runner.split_skipped,
            out_dir=os.fspath(self.out_dir),
            manifest=os.fspath(self.out_dir / "manifest.jsonl"),
            index=os.fspath(self.out_dir / "index.html"),
            journal=self.journal_path or "",
        )
        return self._summary

    async def _lock(self, stack: AsyncExitStack) -> None:
        """Hold the journal's and the output directory's locks until ``stack`` closes."""
        locks = [BatchLock(self.out_dir / DIR_LOCK_NAME, f"output directory {str(self.out_dir)!r}")]
        journal = self.journal_path
        if journal and journal != ":memory:":
            locks.insert(0, BatchLock(journal_lock_path(journal), f"journal {journal!r}"))
        for lock in locks:
            # Registered first: a cancellation delivered once the (uncancellable) thread has
            # taken the lock must still release it, or it stays held until the process exits.
            stack.callback(lock.release)
            await anyio.to_thread.run_sync(self._make_parent, lock.path)
            await anyio.to_thread.run_sync(lock.acquire)

    @staticmethod
    def _make_parent(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)

    async def _open_journal(self, stack: AsyncExitStack) -> JournalStore:
        arg = self._journal_arg
        if arg is not None and not isinstance(arg, str | os.PathLike):
            if not isinstance(arg, JournalStore):
                raise TypeError(
                    f"journal must be a path or a JournalStore, not {type(arg).__name__}"
                )
            return arg
        path = self.out_dir / "journal.sqlite" if arg is None else Path(arg)
        journal = await Journal.open(path)
        # Closing flushes buffered progress; shielded inside, so it also runs on Ctrl-C.
        stack.push_async_callback(journal.close)
        return journal


async def run_batch(
    client: Client,
    requests: Iterable[Request | str | BatchItem],
    *,
    out_dir: str | os.PathLike[str],
    journal: str | os.PathLike[str] | JournalStore | None = None,
    download: bool = True,
    split: bool = False,
    upscale: UpscaleChoice = None,
    resubmit_uncertain: bool = False,
    retry_failed: bool = False,
    on_event: EventHook | None = None,
    download_limit: int = 4,
    allow_private_image_hosts: bool = False,
    image_read_timeout: float = DEFAULT_READ_TIMEOUT,
    max_images_per_task: int = DEFAULT_MAX_IMAGES_PER_TASK,
    max_image_bytes_per_task: int = DEFAULT_MAX_BYTES_PER_TASK,
) -> BatchSummary:
    """Run many requests, journaled and downloaded; return the :class:`BatchSummary`.

    The same call with the same journal resumes a batch that was interrupted or killed:
    finished prompts are skipped, known task ids are watched again, missing images are
    downloaded, and only requests never sent are submitted. Requests whose submit may have
    reached the server without an answer are reported as uncertain, not resent, unless
    ``resubmit_uncertain=True``. See :class:`Batch` for the arguments.

    Only one batch at a time may use a journal or an output directory: a second one
    raises :class:`~mjasync.JournalError` (``JournalLockedError``) before sending anything.

    Raises:
        AuthenticationError: the server refused the key.
        JournalLockedError: another batch is using the journal or the output directory.
        JournalError: the journal cannot be used.
        ValueError, TypeError: a bad option or request, before anything is sent.

    Example::

        async with mjasync.Client() as client:
            summary = await mjasync.run_batch(client, prompts, out_dir="out", upscale="all")
        print(f"{summary.succeeded}/{summary.total} in {summary.wall_time:.0f}s")
    """
    batch = Batch(
        client,
        requests,
        out_dir=out_dir,
        journal=journal,
        download=download,
        split=split,
        upscale=upscale,
        resubmit_uncertain=resubmit_uncertain,
        retry_failed=retry_failed,
        download_limit=download_limit,
        allow_private_image_hosts=allow_private_image_hosts,
        image_read_timeout=image_read_timeout,
        max_images_per_task=max_images_per_task,
        max_image_bytes_per_task=max_image_bytes_per_task,
    )
    return await batch.run(on_event)
