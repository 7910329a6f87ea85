"""What a batch reports: one event per step, one result per prompt, one summary per run.

All of these are frozen value objects, so a notebook can keep them, compare them and print
them without surprises. The runner that produces them lives in :mod:`mjasync._batch.batch`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import attrs

from .._models import TaskStatus
from .._wire.modes import MODES

if TYPE_CHECKING:
    from .._requests import Request

__all__ = [
    "BatchEvent",
    "BatchEventKind",
    "BatchItem",
    "BatchOutcome",
    "BatchPlan",
    "BatchSummary",
    "PromptResult",
    "RequestResult",
]

#: Upscales of one prompt: a button number 1-4, ``"all"``, or ``"none"``.
ItemUpscale = int | Literal["all", "none"]


def _item_mode(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip().lower() if isinstance(value, str) else value
    if text not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {value!r}")
    return str(text)


def _item_upscale(value: object) -> ItemUpscale | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("all", "none"):
            return "all" if text == "all" else "none"
        if text in ("1", "2", "3", "4"):
            return int(text)
    elif isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 4:
        return value
    raise ValueError(f"upscale must be 1, 2, 3, 4, 'all' or 'none', not {value!r}")


def _item_name(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"name must be a str, not {type(value).__name__}")
    text = value.strip()
    if not text:
        return None
    if len(text) > 200:
        raise ValueError("name must be at most 200 characters")
    return text


@attrs.frozen(slots=True)
class BatchItem:
    """One prompt of a batch with its own settings (what a JSONL or CSV row gives).

    Attributes:
        request: the prompt (a str) or request (``Imagine``, ``Blend``, ...).
        mode: the mode to submit it in (``fast``, ``relax``, ``turbo``); ``None``: the
            client's.
        upscale: the buttons to press on its grid (1-4, ``"all"``, ``"none"``); ``None``:
            the batch's ``upscale=``.
        name: the words its files are named with instead of the prompt's
            (``<name>_<task id>.png``); ``None``: the prompt's.

    Raises:
        ValueError, TypeError: a mode, upscale or name that is not one of the above.

    Example::

        Batch(client, [BatchItem("a red fox", upscale=2, name="fox"), "a blue whale"], ...)
    """

    request: Request | str
    mode: str | None = attrs.field(default=None, converter=_item_mode)
    upscale: ItemUpscale | None = attrs.field(default=None, converter=_item_upscale)
    name: str | None = attrs.field(default=None, converter=_item_name)


@attrs.frozen(slots=True)
class BatchPlan:
    """What a run of a batch would do, before it does it (:meth:`Batch.preview`).

    Attributes:
        new: requests never accepted before that this run would submit (upscales of the
            grids included: those are only sent if their grid succeeds).
        retried: requests that failed (or whose task was lost) earlier and that this run
            would submit again (only with ``retry_failed=True``); paid again.
        watch: tasks of an earlier run that this run would watch again (not paid again).
        download: succeeded tasks whose images are still to be downloaded.
        finished: requests already done (or failed, without ``retry_failed``).
        uncertain: requests whose earlier submit may have reached the server.
    """

    new: int = 0
    retried: int = 0
    watch: int = 0
    download: int = 0
    finished: int = 0
    uncertain: int = 0

    @property
    def submits(self) -> int:
        """At most this many jobs are submitted (and paid for) by the run."""
        return self.new + self.retried


class BatchOutcome(StrEnum):
    """How one request, or one prompt with all its upscales, ended."""

    #: the task succeeded and its files are on disk (or downloads were off)
    SUCCEEDED = "succeeded"
    #: refused by the server (banned, invalid), failed upstream, or its images could not be saved
    FAILED = "failed"
    #: the submit may have reached the server but no task id came back: not resent by default
    UNCERTAIN = "uncertain"
    #: not finished when the batch stopped (interrupted); a rerun with the journal picks it up
    PENDING = "pending"


class BatchEventKind(StrEnum):
    """What a :class:`BatchEvent` reports."""

    #: the server accepted the request; ``task_id`` is set (and journaled)
    SUBMITTED = "submitted"
    #: a task accepted in an earlier run is being watched again
    RESUMED = "resumed"
    #: status or progress moved
    PROGRESS = "progress"
    #: the task succeeded; downloads follow
    SUCCEEDED = "succeeded"
    #: the task's images are on disk (``files``)
    DOWNLOADED = "downloaded"
    #: this request failed (``error`` says why); the batch goes on
    FAILED = "failed"
    #: the submit's answer was lost (``error`` says why); not resent by default
    UNCERTAIN = "uncertain"
    #: the prompt is complete, upscales included: the last event of a prompt (``result``)
    FINISHED = "finished"


@attrs.frozen(slots=True)
class RequestResult:
    """One journaled request: a prompt's own job, or one of its upscales.

    Attributes:
        key: the journal key of the request.
        outcome: see :class:`BatchOutcome`.
        task_id: the server's task id, when one is known.
        status: the task's last status text (``"SUCCESS"``, ``"FAILURE"``, ...), if known.
        files: files written for it, relative to the output directory (POSIX separators).
        error: why it failed or is uncertain, in English.
        button: ``"U1"``..``"U4"`` for an upscale, ``None`` for the prompt's own job.
        earlier: ``True`` when the outcome was already in the journal (nothing was done now).
        server_message: the server's own words (often Chinese) when ``error`` is their
            English reading, else ``None``.
    """

    key: str
    outcome: BatchOutcome
    task_id: str | None = None
    status: str | None = None
    files: tuple[str, ...] = ()
    error: str | None = None
    button: str | None = None
    earlier: bool = False
    server_message: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the shape used inside ``manifest.jsonl``)."""
        return {
            "button": self.button,
            "key": self.key,
            "task_id": self.task_id,
            "status": self.status,
            "outcome": self.outcome.value,
            "files": list(self.files),
            "error": self.error,
            "server_message": self.server_message,
        }


@attrs.frozen(slots=True)
class PromptResult:
    """One prompt of the batch with everything that came of it (one manifest line).

    Attributes:
        index: the prompt's position in the batch (0-based).
        prompt: the prompt text (or a short description of a non-imagine request).
        main: the prompt's own request.
        upscales: its upscale requests, in button order (empty without ``upscale=``).
        outcome: FAILED if anything failed, else UNCERTAIN if anything is uncertain, else
            PENDING if anything is unfinished, else SUCCEEDED.
    """

    index: int
    prompt: str
    main: RequestResult
    upscales: tuple[RequestResult, ...] = ()

    @property
    def key(self) -> str:
        """The journal key of the prompt's own request."""
        return self.main.key

    @property
    def task_id(self) -> str | None:
        """The task id of the prompt's own job."""
        return self.main.task_id

    @property
    def files(self) -> tuple[str, ...]:
        """Every file of the prompt: its own images first, then the upscales'."""
        return self.main.files + tuple(f for up in self.upscales for f in up.files)

    @property
    def outcome(self) -> BatchOutcome:
        """The prompt's overall outcome (see the class docstring)."""
        outcomes = {self.main.outcome, *(up.outcome for up in self.upscales)}
        for candidate in (BatchOutcome.FAILED, BatchOutcome.UNCERTAIN, BatchOutcome.PENDING):
            if candidate in outcomes:
                return candidate
        return BatchOutcome.SUCCEEDED

    @property
    def error(self) -> str | None:
        """The first error among the prompt's requests, if any (in English)."""
        for request in (self.main, *self.upscales):
            if request.error:
                prefix = f"{request.button}: " if request.button else ""
                return prefix + request.error
        return None

    @property
    def server_message(self) -> str | None:
        """The server's own words behind :attr:`error`, when it was a server text."""
        for request in (self.main, *self.upscales):
            if request.error:
                return request.server_message
        return None

    def to_json(self) -> dict[str, Any]:
        """The manifest line: prompt, key, task id, status, outcome, files, error (in English,
        and the server's own words in ``server_message``), upscales."""
        return {
            "index": self.index,
            "prompt": self.prompt,
            "key": self.key,
            "task_id": self.task_id,
            "status": self.main.status,
            "outcome": self.outcome.value,
            "files": list(self.files),
            "error": self.error,
            "server_message": self.server_message,
            "upscales": [up.to_json() for up in self.upscales],
        }


@attrs.frozen(slots=True)
class BatchEvent:
    """One step of one request of a batch, for live displays and logs.

    Attributes:
        kind: what happened (see :class:`BatchEventKind`).
        index: the prompt's position in the batch (0-based).
        prompt: the prompt text.
        key: the journal key of the request the event is about.
        task_id: the task id, once known.
        status: the task status, when the event carries one.
        progress: 0-100, when the server reported a number.
        button: ``"U1"``..``"U4"`` for events of an upscale, else ``None``.
        files: for DOWNLOADED, the files written (relative to the output directory).
        error: for FAILED and UNCERTAIN, why.
        result: for FINISHED, the prompt's :class:`PromptResult`.
    """

    kind: BatchEventKind
    index: int
    prompt: str
    key: str
    task_id: str | None = None
    status: TaskStatus | None = None
    progress: int | None = None
    button: str | None = None
    files: tuple[str, ...] = ()
    error: str | None = None
    result: PromptResult | None = attrs.field(default=None, repr=False)


_EMPTY: Mapping[str, int] = MappingProxyType({})


@attrs.frozen(slots=True)
class BatchSummary:
    """What a finished batch did, and what it cost.

    Attributes:
        results: one :class:`PromptResult` per prompt, in input order.
        submitted: requests the server accepted in this run (upscales included).
        resumed: tasks from an earlier run that were watched again.
        skipped: requests already finished in an earlier run.
        downloaded: image files fetched in this run (files already on disk are not counted).
        wall_time: seconds the run took.
        requests: HTTP requests the client sent to the API during the run (retries
            included; image downloads are counted in ``downloaded``).
        submits, polls: of those, submit POSTs and list-by-condition polls. ``submits`` is
            more than ``submitted`` when the server refused some (``refused``) or some were
            sent again after a queue-full answer.
        refused: requests the server refused in this run (banned, invalid, ...).
        retried: failed requests submitted again (``retry_failed=True``); in ``submitted``.
        split_skipped: grids not cut by ``split=True`` because the server sent their four
            images itself (see :func:`mjasync._batch.download.server_sent_parts`).
        out_dir, manifest, index, journal: where things were written.

    Example::

        summary = await mjasync.run_batch(client, prompts, out_dir="out")
        print(summary.ok, summary.counts, summary.files[:3])
    """

    results: tuple[PromptResult, ...]
    submitted: int = 0
    resumed: int = 0
    skipped: int = 0
    downloaded: int = 0
    wall_time: float = 0.0
    requests: int = 0
    submits: int = 0
    polls: int = 0
    refused: int = 0
    retried: int = 0
    split_skipped: int = 0
    out_dir: str = ""
    manifest: str = ""
    index: str = ""
    journal: str = ""

    @property
    def total(self) -> int:
        """How many prompts the batch had."""
        return len(self.results)

    @property
    def counts(self) -> Mapping[str, int]:
        """Prompts per outcome: ``{"succeeded": 11, "failed": 1, ...}`` (every outcome listed)."""
        tally = dict.fromkeys((o.value for o in BatchOutcome), 0)
        for result in self.results:
            tally[result.outcome.value] += 1
        return MappingProxyType(tally)

    @property
    def succeeded(self) -> int:
        """Prompts that succeeded completely."""
        return self.counts[BatchOutcome.SUCCEEDED.value]

    @property
    def failed(self) -> int:
        """Prompts with a failed request."""
        return self.counts[BatchOutcome.FAILED.value]

    @property
    def uncertain(self) -> int:
        """Prompts with an uncertain submission (and nothing failed)."""
        return self.counts[BatchOutcome.UNCERTAIN.value]

    @property
    def ok(self) -> bool:
        """``True`` when every prompt succeeded."""
        return self.succeeded == self.total

    @property
    def task_ids(self) -> tuple[str, ...]:
        """Every task id of the batch: each prompt's own, followed by its upscales'."""
        ids: list[str] = []
        for result in self.results:
            for request in (result.main, *result.upscales):
                if request.task_id is not None:
                    ids.append(request.task_id)
        return tuple(ids)

    @property
    def files(self) -> tuple[str, ...]:
        """Every file of the batch, relative to ``out_dir``, in prompt order."""
        return tuple(f for result in self.results for f in result.files)

    @property
    def uncertain_keys(self) -> tuple[str, ...]:
        """Journal keys of the uncertain requests (upscales included)."""
        return tuple(
            request.key
            for result in self.results
            for request in (result.main, *result.upscales)
            if request.outcome is BatchOutcome.UNCERTAIN
        )
