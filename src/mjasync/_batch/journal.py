"""The crash-safe batch journal: what was asked, what the server accepted, what is on disk.

A batch that dies (SIGKILL, power cut, Ctrl-C) must be resumable without paying twice. The
journal makes that possible by writing, for every request, in this order:

1. the *intent* (request key, endpoint, body) — committed **before** the submit is sent;
2. the *outcome* of the submit — the task id the moment the server accepts it, or "refused"
   (safe to send again), or "uncertain" (the POST may have reached the server, no id came back);
3. status and progress while the task runs (cheap, coalesced), the terminal task, the files.

On a rerun, :func:`plan_resume` sorts the requested keys into what to submit, what to re-watch,
what to download, what is finished and what is uncertain. An intent without an outcome means
the process died mid-submit: that counts as uncertain, never as "not sent".

:class:`JournalStore` is the interface the batch runner uses; :class:`Journal` implements it on
SQLite (standard library, WAL mode), with all database work in a worker thread so the event
loop never blocks on disk. Another store (e.g. Redis) only has to satisfy the protocol.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, Protocol, Self, TypeVar, runtime_checkable

import anyio
import anyio.to_thread
import attrs

from .._errors import JournalError, JournalStateError, JournalVersionError
from .._models import TaskStatus

__all__ = [
    "SCHEMA_VERSION",
    "Journal",
    "JournalEntry",
    "JournalError",
    "JournalState",
    "JournalStateError",
    "JournalStore",
    "JournalVersionError",
    "ResumePlan",
    "plan_resume",
    "request_key",
]

#: The schema this version of mjasync writes. A journal with a higher number is refused.
SCHEMA_VERSION = 1

#: Top-level body fields that do not identify the job: ``notifyHook`` carries the webhook's
#: secret URL and changes between runs, ``state`` is a per-run correlation tag.
VOLATILE_FIELDS = frozenset({"notifyHook", "state"})

#: Bodies whose canonical JSON is larger than this are stored with long strings elided.
BODY_STORE_LIMIT = 16 * 1024
#: Strings longer than this (base64 images, in practice) are what gets elided.
_ELIDE_OVER = 256

_KEY_DOMAIN = "mjasync/request-key/v1"
_APPLICATION_ID = 0x6D6A6173  # "mjas": lets `file`/sqlite tools tell a journal from other DBs
_EMPTY: Mapping[str, Any] = MappingProxyType({})

_T = TypeVar("_T")


# --------------------------------------------------------------------------- errors


# --------------------------------------------------------------------------- keys


def _canonical_json(value: object) -> str:
    # Sorted keys, no whitespace, non-ASCII kept as is: the same body always gives the same
    # text. NaN/Infinity are not JSON and would make keys unstable across serialisers.
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _identity_body(body: Mapping[str, Any]) -> dict[str, Any]:
    # None and an absent field mean the same to every server; dropping both keeps the key
    # stable whether a caller spells an optional field as null or leaves it out.
    return {k: v for k, v in body.items() if k not in VOLATILE_FIELDS and v is not None}


def request_key(endpoint: str, body: Mapping[str, Any], occurrence: int = 0) -> str:
    """A stable identity for one request of a batch: a sha256 hex digest.

    The digest covers the endpoint, the canonical JSON of the body without ``notifyHook`` and
    ``state`` (and without ``None`` values), and the occurrence number, so the same prompt
    listed twice in one batch gets two keys.

    Args:
        endpoint: the route without the mode prefix, e.g. ``"/mj/submit/imagine"``.
        body: the JSON body as it will be sent.
        occurrence: 0 for the first request with this endpoint and body, 1 for the second, ...

    Raises:
        TypeError: the body holds something that is not JSON, or occurrence is not an int.
        ValueError: a negative occurrence, a NaN/infinite number in the body.

    Example:
        >>> a = request_key("/mj/submit/imagine", {"prompt": "cat", "state": "run-1"})
        >>> a == request_key("/mj/submit/imagine", {"prompt": "cat", "state": "run-2"})
        True
        >>> a == request_key("/mj/submit/imagine", {"prompt": "cat"}, occurrence=1)
        False
    """
    if not isinstance(endpoint, str) or not endpoint:
        raise TypeError("endpoint must be a non-empty str")
    if isinstance(occurrence, bool) or not isinstance(occurrence, int):
        raise TypeError(f"occurrence must be an int, not {type(occurrence).__name__}")
    if occurrence < 0:
        raise ValueError(f"occurrence must be >= 0, not {occurrence}")
    if not isinstance(body, Mapping):
        raise TypeError(f"body must be a mapping (the JSON body), not {type(body).__name__}")
    text = _canonical_json([_KEY_DOMAIN, endpoint, _identity_body(body), occurrence])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _elide(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _ELIDE_OVER:
        digest = hashlib.sha256(value.encode("utf-8")).hexdigest()
        return f"<elided sha256:{digest} len:{len(value)}>"
    if isinstance(value, Mapping):
        return {k: _elide(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_elide(v) for v in value]
    return value


def _stored_body(body: Mapping[str, Any]) -> tuple[str | None, str, int]:
    """The body as stored: (json or None, sha256 of the full canonical json, its size)."""
    # notifyHook is a secret-bearing URL: it never reaches the disk. `state` stays, because
    # it is how an uncertain submission can be found on the server later.
    kept = {k: v for k, v in body.items() if k != "notifyHook"}
    full = _canonical_json(kept).encode("utf-8")
    digest = hashlib.sha256(full).hexdigest()
    if len(full) <= BODY_STORE_LIMIT:
        return full.decode("utf-8"), digest, len(full)
    elided = _canonical_json(_elide(kept))
    if len(elided.encode("utf-8")) <= BODY_STORE_LIMIT:
        return elided, digest, len(full)
    return None, digest, len(full)


# --------------------------------------------------------------------------- records


class JournalState(StrEnum):
    """Where a request stands, as far as the journal knows."""

    #: intent written, no outcome recorded: we may have died mid-submit (counts as uncertain)
    PENDING = "PENDING"
    #: the server accepted and gave a task id; the task is not known to be finished
    ACCEPTED = "ACCEPTED"
    #: the submit may have reached the server but no task id came back
    UNCERTAIN = "UNCERTAIN"
    #: the server refused the submit: nothing was paid, sending it again is safe
    REFUSED = "REFUSED"
    #: the task ended in SUCCESS; its files are not recorded yet
    SUCCEEDED = "SUCCEEDED"
    #: the task ended in SUCCESS and its files are recorded
    DONE = "DONE"
    #: the task ended in FAILURE or CANCEL
    FAILED = "FAILED"

    @property
    def has_task(self) -> bool:
        """``True`` when the server holds a (paid) task for this request."""
        return self in _WITH_TASK


_WITH_TASK = frozenset(
    {JournalState.ACCEPTED, JournalState.SUCCEEDED, JournalState.DONE, JournalState.FAILED}
)


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


@attrs.frozen(slots=True)
class JournalEntry:
    """One request as the journal recorded it. Immutable; ask the journal again for news.

    Attributes:
        key: the request key (:func:`request_key`).
        endpoint, mode, label: as given to ``record_intent``; ``label`` is free text for
            display (a prompt, say).
        state: see :class:`JournalState`.
        task_id: the server's task id once accepted, else ``None``.
        status, progress: the last status text and 0-100 progress seen.
        reason: why the request is UNCERTAIN or REFUSED.
        fail_reason: the server's ``failReason`` for a FAILED task.
        files: the paths recorded with ``record_files``.
        attempts: how many intents were written (1 unless resubmitted).
        body: the body as stored (no ``notifyHook``; long strings elided or ``None`` when the
            body was too large, see ``body_sha256``).
        body_sha256, body_size: digest and size of the full canonical body.
        task_json: the terminal task payload, if one was recorded.
    """

    key: str
    endpoint: str
    state: JournalState
    label: str | None = None
    mode: str | None = None
    task_id: str | None = None
    status: str | None = None
    progress: int | None = None
    reason: str | None = None
    fail_reason: str | None = None
    files: tuple[str, ...] = ()
    attempts: int = 0
    body: Mapping[str, Any] | None = attrs.field(default=None, repr=False)
    body_sha256: str = attrs.field(default="", repr=False)
    body_size: int = attrs.field(default=0, repr=False)
    task_json: Mapping[str, Any] | None = attrs.field(default=None, repr=False)
    created_at: datetime | None = attrs.field(default=None, repr=False)
    updated_at: datetime | None = None

    @property
    def is_finished(self) -> bool:
        """``True`` for DONE and FAILED: nothing left to do for this request."""
        return self.state in (JournalState.DONE, JournalState.FAILED)


@attrs.frozen(slots=True)
class ResumePlan:
    """What a rerun should do with each requested key. Every bucket keeps the input order.

    Attributes:
        submit: never seen, refused, and (when opted in) uncertain or failed requests.
        watch: accepted with a task id and not terminal: re-attach to the task.
        download: succeeded, files not recorded yet (``task_json`` holds the task).
        finished: DONE, and FAILED unless ``retry_failed``: skip.
        uncertain: an intent without a task id (the process died mid-submit, or the submit's
            answer was lost). Reported, not resent, unless ``resubmit_uncertain``.
        unrequested: keys in the journal that this run did not ask for (still listed, since
            their tasks may have been paid for).
        entries: key -> entry for every key the journal knows.
    """

    submit: tuple[str, ...] = ()
    watch: tuple[str, ...] = ()
    download: tuple[str, ...] = ()
    finished: tuple[str, ...] = ()
    uncertain: tuple[str, ...] = ()
    unrequested: tuple[str, ...] = ()
    entries: Mapping[str, JournalEntry] = attrs.field(default=_EMPTY, repr=False)

    def task_id(self, key: str) -> str | None:
        """The task id recorded for ``key``, or ``None``."""
        entry = self.entries.get(key)
        return entry.task_id if entry is not None else None


def plan_resume(
    entries: Iterable[JournalEntry],
    keys: Iterable[str],
    *,
    resubmit_uncertain: bool = False,
    retry_failed: bool = False,
) -> ResumePlan:
    """Sort the keys of a (re)run by what the journal knows about them. Pure.

    Args:
        entries: everything the journal holds.
        keys: the keys of this run's requests, in order.
        resubmit_uncertain: move PENDING and UNCERTAIN requests to ``submit``, accepting that
            some of them may be paid twice.
        retry_failed: move FAILED requests to ``submit``.

    Raises:
        ValueError: a key is listed twice (give repeats distinct ``occurrence`` numbers).
    """
    by_key = {entry.key: entry for entry in entries}
    buckets: dict[str, list[str]] = {
        name: [] for name in ("submit", "watch", "download", "finished", "uncertain")
    }
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise ValueError(f"request key {key} listed twice; repeats need distinct occurrences")
        seen.add(key)
        entry = by_key.get(key)
        state = entry.state if entry is not None else None
        if state is None or state is JournalState.REFUSED:
            bucket = "submit"
        elif state in (JournalState.PENDING, JournalState.UNCERTAIN):
            bucket = "submit" if resubmit_uncertain else "uncertain"
        elif state is JournalState.ACCEPTED:
            bucket = "watch"
        elif state is JournalState.SUCCEEDED:
            bucket = "download"
        elif state is JournalState.FAILED:
            bucket = "submit" if retry_failed else "finished"
        else:
            bucket = "finished"
        buckets[bucket].append(key)
    unrequested = tuple(key for key in by_key if key not in seen)
    return ResumePlan(
        submit=tuple(buckets["submit"]),
        watch=tuple(buckets["watch"]),
        download=tuple(buckets["download"]),
        finished=tuple(buckets["finished"]),
        uncertain=tuple(buckets["uncertain"]),
        unrequested=unrequested,
        entries=MappingProxyType(by_key),
    )


# --------------------------------------------------------------------------- protocol


@runtime_checkable
class JournalStore(Protocol):
    """What the batch runner needs from a journal. :class:`Journal` is the SQLite one.

    Every ``record_*`` call except ``record_progress`` must be durable when it returns.
    """

    async def record_intent(
        self,
        key: str,
        *,
        endpoint: str,
        body: Mapping[str, Any],
        mode: str | None = None,
        label: str | None = None,
    ) -> None:
        """Write the intent to submit; call before sending the request."""
        ...

    async def record_accepted(self, key: str, task_id: str) -> None:
        """The server accepted the submit as ``task_id``; call immediately."""
        ...

    async def record_uncertain(self, key: str, reason: str) -> None:
        """The submit may have reached the server, but no task id came back."""
        ...

    async def record_refused(self, key: str, reason: str) -> None:
        """The server refused the submit; nothing was paid."""
        ...

    async def record_progress(
        self, key: str, status: TaskStatus | str | None, progress: int | None
    ) -> None:
        """Latest status/progress of an accepted task; may be buffered."""
        ...

    async def record_terminal(
        self,
        key: str,
        status: TaskStatus | str,
        *,
        task_json: Mapping[str, Any] | None = None,
        fail_reason: str | None = None,
    ) -> None:
        """The task ended (SUCCESS, FAILURE or CANCEL)."""
        ...

    async def record_files(self, key: str, paths: Sequence[str | os.PathLike[str]]) -> None:
        """Files written for a succeeded task; an empty list marks a task without images."""
        ...

    async def get(self, key: str) -> JournalEntry | None:
        """The entry for ``key``, or ``None``."""
        ...

    async def entries(self) -> list[JournalEntry]:
        """Every entry, oldest first."""
        ...

    async def plan(
        self, keys: Iterable[str], *, resubmit_uncertain: bool = False, retry_failed: bool = False
    ) -> ResumePlan:
        """:func:`plan_resume` over this journal's entries."""
        ...

    async def close(self) -> None:
        """Flush buffered progress and release the store."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


# --------------------------------------------------------------------------- SQLite

_CREATE = (
    """CREATE TABLE schema_version (
        version INTEGER NOT NULL,
        written_by TEXT NOT NULL,
        created_at REAL NOT NULL
    )""",
    """CREATE TABLE entries (
        seq INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        endpoint TEXT NOT NULL,
        label TEXT,
        mode TEXT,
        body TEXT,
        body_sha256 TEXT NOT NULL,
        body_size INTEGER NOT NULL,
        state TEXT NOT NULL,
        task_id TEXT,
        status TEXT,
        progress INTEGER,
        reason TEXT,
        fail_reason TEXT,
        task_json TEXT,
        files TEXT NOT NULL DEFAULT '[]',
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    )""",
    "CREATE INDEX entries_task_id ON entries(task_id)",
)

_COLUMNS = (
    "key, endpoint, label, mode, body, body_sha256, body_size, state, task_id, status, "
    "progress, reason, fail_reason, task_json, files, attempts, created_at, updated_at"
)


def _mjasync_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mjasync")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


def _load_json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None  # a damaged optional column must not make the whole journal unreadable


def _row_to_entry(row: sqlite3.Row) -> JournalEntry:
    body = _load_json(row["body"])
    task_json = _load_json(row["task_json"])
    files = _load_json(row["files"])
    state = _parse_state(row["state"])
    return JournalEntry(
        key=row["key"],
        endpoint=row["endpoint"],
        state=state,
        label=row["label"],
        mode=row["mode"],
        task_id=row["task_id"],
        status=row["status"],
        progress=row["progress"],
        reason=row["reason"],
        fail_reason=row["fail_reason"],
        files=tuple(str(f) for f in files) if isinstance(files, list) else (),
        attempts=row["attempts"],
        body=MappingProxyType(body) if isinstance(body, dict) else None,
        body_sha256=row["body_sha256"],
        body_size=row["body_size"],
        task_json=MappingProxyType(task_json) if isinstance(task_json, dict) else None,
        created_at=_utc(row["created_at"]),
        updated_at=_utc(row["updated_at"]),
    )


def _status_text(status: TaskStatus | str | None) -> str | None:
    if status is None:
        return None
    return status.value if isinstance(status, TaskStatus) else str(status)


class _Rejected(Exception):
    """Carries a JournalStateError out of a transaction that must still commit its progress."""

    def __init__(self, error: JournalStateError) -> None:
        super().__init__(str(error))
        self.error = error


_Pending = dict[str, tuple[str | None, int | None, float]]


class Journal:
    """The SQLite journal. Open with ``await Journal.open(path)`` or ``async with Journal(path)``.

    One connection, used from worker threads one call at a time (an anyio capacity limiter of
    one plus a lock), so the event loop never waits on the disk. Records written after a submit
    (accepted, uncertain, refused, terminal, files) are shielded from cancellation: a Ctrl-C
    arriving just as a task id comes back still gets that id onto the disk.

    Args:
        path: the journal file; missing parent directories are created. ``":memory:"`` works
            for tests (and is, of course, not crash-safe).
        progress_interval: seconds between flushes of buffered progress updates.
        busy_timeout: seconds to wait when another process holds the write lock.

    Example:
        >>> async def demo(path):
        ...     async with Journal(path) as journal:
        ...         key = request_key("/mj/submit/imagine", {"prompt": "cat"})
        ...         await journal.record_intent(key, endpoint="/mj/submit/imagine",
        ...                                     body={"prompt": "cat"}, label="cat")
        ...         await journal.record_accepted(key, "1712345")
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        progress_interval: float = 1.0,
        busy_timeout: float = 10.0,
    ) -> None:
        self._path = os.fspath(path)
        for name, value in (
            ("progress_interval", progress_interval),
            ("busy_timeout", busy_timeout),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
            if not 0 <= value < math.inf:  # NaN fails this too
                raise ValueError(f"{name} must be a finite number of seconds >= 0, not {value!r}")
        self._progress_interval = progress_interval
        self._busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._limiter = anyio.CapacityLimiter(1)
        self._pending: _Pending = {}
        self._last_flush = time.monotonic()

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        progress_interval: float = 1.0,
        busy_timeout: float = 10.0,
    ) -> Journal:
        """Open (creating if needed) the journal at ``path``.

        Raises:
            JournalVersionError: the file was written by a newer mjasync.
            JournalError: the file is not an mjasync journal or cannot be opened.
        """
        journal = cls(path, progress_interval=progress_interval, busy_timeout=busy_timeout)
        await journal._connect()
        return journal

    @property
    def path(self) -> str:
        """The journal file."""
        return self._path

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._conn is not None else "new"
        return f"<Journal {self._path!r} {state}>"

    async def __aenter__(self) -> Self:
        if self._conn is None:
            await self._connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ----------------------------------------------------------------- connection

    async def _connect(self) -> None:
        if self._closed:
            raise RuntimeError(f"journal {self._path!r} is closed")
        conn = await anyio.to_thread.run_sync(self._open_sync, limiter=self._limiter)
        self._conn = conn

    def _open_sync(self) -> sqlite3.Connection:
        if self._path != ":memory:":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so each record is exactly
            # one transaction and nothing lingers uncommitted between calls.
            conn = sqlite3.connect(
                self._path,
                timeout=self._busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open journal {self._path!r}: {exc}") from exc
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            # Why FULL rather than NORMAL: in WAL mode NORMAL already survives a killed
            # process (committed frames sit in the OS page cache), but a power cut or kernel
            # crash may roll back the last commits — and the last commit is exactly the task
            # id of a job we just paid for, which a rerun would then submit again. FULL
            # fsyncs the WAL on every commit. Commits happen a few times per task (intent,
            # accepted, terminal, files, plus coalesced progress), bounded by how fast the
            # account accepts jobs, so one fsync each is invisible next to a job's minutes.
            conn.execute("PRAGMA synchronous=FULL")
            self._init_schema(conn)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise JournalError(f"{self._path!r} is not a usable mjasync journal: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        # Checked and created inside one write transaction, so two processes opening a fresh
        # file at once cannot both try to create the tables.
        conn.execute("BEGIN IMMEDIATE")
        try:
            tables = {
                row[0]
                for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            if not tables:
                for statement in _CREATE:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, written_by, created_at) VALUES (?, ?, ?)",
                    (SCHEMA_VERSION, _mjasync_version(), time.time()),
                )
                conn.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
            else:
                self._check_schema(conn, tables)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _check_schema(self, conn: sqlite3.Connection, tables: set[str]) -> None:
        if "schema_version" not in tables or "entries" not in tables:
            raise JournalError(
                f"{self._path!r} is an SQLite database but not an mjasync journal "
                f"(tables: {', '.join(sorted(tables))}); choose another journal path"
            )
        row = conn.execute(
            "SELECT version, written_by FROM schema_version ORDER BY version DESC LIMIT 1"
        ).fetchone()
        if row is None:
            raise JournalError(f"journal {self._path!r} has no schema version")
        found, written_by = int(row[0]), row[1]
        if found > SCHEMA_VERSION:
            raise JournalVersionError(
                f"journal {self._path!r} was written by mjasync {written_by} "
                f"(schema version {found}); this mjasync reads schema versions up to "
                f"{SCHEMA_VERSION}. Upgrade mjasync, or use a new journal path.",
                path=self._path,
                found=found,
                supported=SCHEMA_VERSION,
            )
        # Older schema versions would be migrated here; version 1 is the first.

    async def close(self) -> None:
        """Flush buffered progress and close the database. Safe to call twice."""
        if self._closed:
            return
        try:
            if self._conn is not None and self._pending:
                with anyio.CancelScope(shield=True):
                    await self._write(None)
        finally:
            self._closed = True
            conn, self._conn = self._conn, None
            if conn is not None:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self._close_sync, conn, limiter=self._limiter)

    def _close_sync(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            conn.close()

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            what = "closed" if self._closed else "not open (use `await Journal.open(path)`)"
            raise RuntimeError(f"journal {self._path!r} is {what}")
        return self._conn

    # ----------------------------------------------------------------- plumbing

    async def _call(self, fn: Callable[[sqlite3.Connection], _T], *, shield: bool = False) -> _T:
        conn = self._require()

        def run() -> _T:
            with self._lock:
                return fn(conn)

        if shield:
            with anyio.CancelScope(shield=True):
                return await anyio.to_thread.run_sync(run, limiter=self._limiter)
        return await anyio.to_thread.run_sync(run, limiter=self._limiter)

    async def _write(
        self, op: Callable[[sqlite3.Connection, float], None] | None, *, shield: bool = False
    ) -> None:
        """Run ``op`` in one committed transaction, preceded by any buffered progress."""
        pending, self._pending = self._pending, {}
        self._last_flush = time.monotonic()

        def transaction(conn: sqlite3.Connection) -> None:
            now = time.time()
            conn.execute("BEGIN IMMEDIATE")
            try:
                _apply_progress(conn, pending)
                if op is not None:
                    op(conn, now)
            except _Rejected as rejected:
                # Keep the progress that rode along; refuse only the contradictory record.
                conn.execute("COMMIT")
                raise rejected.error from None
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

        await self._call(transaction, shield=shield)

    # ----------------------------------------------------------------- records

    async def record_intent(
        self,
        key: str,
        *,
        endpoint: str,
        body: Mapping[str, Any],
        mode: str | None = None,
        label: str | None = None,
    ) -> None:
        """Write (and commit) the intent to submit ``key``. Call BEFORE sending the request.

        A request seen before may be intended again when it was refused or failed, or when
        the caller opted into resubmitting an uncertain one; ``attempts`` counts the intents.

        Raises:
            JournalStateError: the request already has a task on the server (accepted or
                succeeded): watch that task instead of paying again.
        """
        stored, digest, size = _stored_body(body)

        def op(conn: sqlite3.Connection, now: float) -> None:
            row = conn.execute(
                "SELECT state, task_id FROM entries WHERE key = ?", (key,)
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO entries (key, endpoint, label, mode, body, body_sha256, "
                    "body_size, state, attempts, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
                    (
                        key,
                        endpoint,
                        label,
                        mode,
                        stored,
                        digest,
                        size,
                        JournalState.PENDING.value,
                        now,
                        now,
                    ),
                )
                return
            state = _parse_state(row["state"])
            if state in (JournalState.ACCEPTED, JournalState.SUCCEEDED, JournalState.DONE):
                raise _Rejected(
                    JournalStateError(
                        f"request {key[:12]} is already task {row['task_id']} ({state}); "
                        "watch it instead of submitting again"
                    )
                )
            # A new attempt: forget the previous outcome (a failed task's id included — that
            # task is finished and paid for, nothing more can come of it).
            conn.execute(
                "UPDATE entries SET endpoint = ?, label = ?, mode = ?, body = ?, "
                "body_sha256 = ?, body_size = ?, state = ?, task_id = NULL, status = NULL, "
                "progress = NULL, reason = NULL, fail_reason = NULL, task_json = NULL, "
                "files = '[]', attempts = attempts + 1, updated_at = ? WHERE key = ?",
                (endpoint, label, mode, stored, digest, size, JournalState.PENDING.value, now, key),
            )

        await self._write(op)

    async def record_accepted(self, key: str, task_id: str) -> None:
        """Record the server's task id for ``key``. Call IMMEDIATELY after acceptance.

        Also valid for an UNCERTAIN request whose task was found later. Recording the same id
        again is a no-op.

        Raises:
            JournalStateError: unknown key, or the request already has a different task id.
        """
        if not isinstance(task_id, str) or not task_id:
            raise TypeError("task_id must be a non-empty str")

        def op(conn: sqlite3.Connection, now: float) -> None:
            state, known = _current(conn, key)
            if known is not None:
                if known == task_id:
                    return
                raise _Rejected(
                    JournalStateError(
                        f"request {key[:12]} is already task {known}; refusing to record a "
                        f"second task id {task_id}"
                    )
                )
            if state not in (JournalState.PENDING, JournalState.UNCERTAIN):
                raise _Rejected(
                    JournalStateError(
                        f"request {key[:12]} is {state}; record an intent before its task id"
                    )
                )
            conn.execute(
                "UPDATE entries SET state = ?, task_id = ?, reason = NULL, updated_at = ? "
                "WHERE key = ?",
                (JournalState.ACCEPTED.value, task_id, now, key),
            )

        await self._write(op, shield=True)

    async def record_uncertain(self, key: str, reason: str) -> None:
        """The submit may have reached the server, and no task id came back.

        Raises:
            JournalStateError: unknown key, or the request already has a task id.
        """
        await self._write(
            self._outcome(
                key,
                JournalState.UNCERTAIN,
                reason,
                allowed=(JournalState.PENDING, JournalState.UNCERTAIN),
            ),
            shield=True,
        )

    async def record_refused(self, key: str, reason: str) -> None:
        """The server refused the submit (nothing paid; a rerun may send it again).

        Raises:
            JournalStateError: unknown key, or the request already has a task id.
        """
        await self._write(
            self._outcome(
                key,
                JournalState.REFUSED,
                reason,
                allowed=(JournalState.PENDING, JournalState.UNCERTAIN, JournalState.REFUSED),
            ),
            shield=True,
        )

    @staticmethod
    def _outcome(
        key: str, new: JournalState, reason: str, *, allowed: tuple[JournalState, ...]
    ) -> Callable[[sqlite3.Connection, float], None]:
        def op(conn: sqlite3.Connection, now: float) -> None:
            state, task_id = _current(conn, key)
            if state not in allowed:
                detail = f"task {task_id}" if task_id else str(state)
                raise _Rejected(
                    JournalStateError(
                        f"request {key[:12]} is already {detail}; cannot mark it {new}"
                    )
                )
            conn.execute(
                "UPDATE entries SET state = ?, reason = ?, updated_at = ? WHERE key = ?",
                (new.value, str(reason), now, key),
            )

        return op

    async def record_progress(
        self, key: str, status: TaskStatus | str | None, progress: int | None
    ) -> None:
        """Remember the latest status/progress of an accepted task.

        Cheap: updates are buffered and written at most every ``progress_interval`` seconds,
        or together with the next other record, or on :meth:`close`. Losing them in a crash
        costs nothing (re-watching the task reports them again). Updates for keys that are
        unknown or not ACCEPTED are dropped.
        """
        self._require()
        self._pending[key] = (_status_text(status), progress, time.time())
        if time.monotonic() - self._last_flush >= self._progress_interval:
            await self._write(None)

    async def record_terminal(
        self,
        key: str,
        status: TaskStatus | str,
        *,
        task_json: Mapping[str, Any] | None = None,
        fail_reason: str | None = None,
    ) -> None:
        """The task ended: SUCCESS makes the entry SUCCEEDED, FAILURE/CANCEL makes it FAILED.

        Args:
            status: the terminal status.
            task_json: the task payload as received (``task.raw``); stored so a rerun can
                download without fetching again.
            fail_reason: the server's ``failReason``.

        Raises:
            ValueError: ``status`` is not terminal.
            JournalStateError: unknown key, or no task id was recorded for it.
        """
        text = _status_text(status) or ""
        normalised = text.strip().upper()
        parsed = (
            TaskStatus(normalised) if normalised in TaskStatus.__members__ else TaskStatus.UNKNOWN
        )
        if not parsed.is_terminal:
            raise ValueError(f"status {text!r} is not terminal (SUCCESS, FAILURE or CANCEL)")
        new = JournalState.SUCCEEDED if parsed is TaskStatus.SUCCESS else JournalState.FAILED
        payload = _canonical_json(dict(task_json)) if task_json is not None else None

        def op(conn: sqlite3.Connection, now: float) -> None:
            state, task_id = _current(conn, key)
            if task_id is None or not state.has_task:
                raise _Rejected(
                    JournalStateError(
                        f"request {key[:12]} has no task id ({state}); record_accepted comes first"
                    )
                )
            if state is JournalState.DONE and new is JournalState.SUCCEEDED:
                return  # files are already recorded; a late duplicate changes nothing
            progress = 100 if new is JournalState.SUCCEEDED else None
            conn.execute(
                "UPDATE entries SET state = ?, status = ?, progress = COALESCE(?, progress), "
                "task_json = COALESCE(?, task_json), fail_reason = ?, updated_at = ? "
                "WHERE key = ?",
                (new.value, text, progress, payload, fail_reason, now, key),
            )

        self._pending.pop(key, None)
        await self._write(op, shield=True)

    async def record_files(self, key: str, paths: Sequence[str | os.PathLike[str]]) -> None:
        """Record files written for a succeeded task and mark it DONE.

        Paths are added to those already recorded (in order, without duplicates), so grids
        and their split parts can be recorded as they appear. An empty list marks a task
        that has no images (describe, shorten) as done.

        Raises:
            JournalStateError: unknown key, or the task has not succeeded.
        """
        new_files = [os.fspath(p) for p in paths]

        def op(conn: sqlite3.Connection, now: float) -> None:
            state, _ = _current(conn, key)
            if state not in (JournalState.SUCCEEDED, JournalState.DONE):
                raise _Rejected(
                    JournalStateError(
                        f"request {key[:12]} is {state}; files belong to a succeeded task"
                    )
                )
            row = conn.execute("SELECT files FROM entries WHERE key = ?", (key,)).fetchone()
            old = _load_json(row["files"])
            merged = [str(f) for f in old] if isinstance(old, list) else []
            merged += [f for f in dict.fromkeys(new_files) if f not in merged]
            conn.execute(
                "UPDATE entries SET state = ?, files = ?, updated_at = ? WHERE key = ?",
                (JournalState.DONE.value, json.dumps(merged), now, key),
            )

        await self._write(op, shield=True)

    # ----------------------------------------------------------------- reading

    async def get(self, key: str) -> JournalEntry | None:
        """The entry for ``key`` (buffered progress included), or ``None``."""
        if self._pending:
            await self._write(None)

        def read(conn: sqlite3.Connection) -> JournalEntry | None:
            row = conn.execute(f"SELECT {_COLUMNS} FROM entries WHERE key = ?", (key,)).fetchone()
            return _row_to_entry(row) if row is not None else None

        return await self._call(read)

    async def entries(self) -> list[JournalEntry]:
        """Every entry in the order the intents were first written."""
        if self._pending:
            await self._write(None)

        def read(conn: sqlite3.Connection) -> list[JournalEntry]:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM entries ORDER BY seq").fetchall()
            return [_row_to_entry(row) for row in rows]

        return await self._call(read)

    async def plan(
        self, keys: Iterable[str], *, resubmit_uncertain: bool = False, retry_failed: bool = False
    ) -> ResumePlan:
        """Sort ``keys`` into submit / watch / download / finished / uncertain.

        See :func:`plan_resume`.
        """
        return plan_resume(
            await self.entries(),
            keys,
            resubmit_uncertain=resubmit_uncertain,
            retry_failed=retry_failed,
        )


def _current(conn: sqlite3.Connection, key: str) -> tuple[JournalState, str | None]:
    row = conn.execute("SELECT state, task_id FROM entries WHERE key = ?", (key,)).fetchone()
    if row is None:
        raise _Rejected(
            JournalStateError(f"unknown request key {key[:12]}; record_intent must come first")
        )
    return _parse_state(row["state"]), row["task_id"]


def _parse_state(text: str) -> JournalState:
    try:
        return JournalState(text)
    except ValueError:
        # Unreadable state: treat as uncertain, the one reading that never causes a resubmit.
        return JournalState.UNCERTAIN


def _apply_progress(conn: sqlite3.Connection, pending: _Pending) -> None:
    if not pending:
        return
    conn.executemany(
        "UPDATE entries SET status = ?, progress = COALESCE(?, progress), updated_at = ? "
        "WHERE key = ? AND state = ?",
        [
            (status, progress, at, key, JournalState.ACCEPTED.value)
            for key, (status, progress, at) in pending.items()
        ],
    )
