"""One batch per journal and per output directory: an OS lock that dies with its process.

Two runs on one journal would each see the same requests as "not sent yet" and pay for them
twice, and each would lose the task ids the other recorded. So a batch takes an exclusive
lock on a file beside its journal (``journal.sqlite.lock``) and one in its output directory
(``.mjasync.lock``) before it sends anything, and holds both to the end.

The lock is ``flock`` (``msvcrt.locking`` on Windows) on an open file, not the file's
existence: the kernel drops it when the process ends, however it ends (SIGKILL, power cut),
so a dead run never leaves a stale lock behind and no one ever has to delete a lock file.
The holder writes its process id into the file, only to name it in the error message.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys
from pathlib import Path
from types import TracebackType
from typing import Self

from .._errors import JournalError, JournalLockedError

__all__ = ["DIR_LOCK_NAME", "BatchLock", "journal_lock_path"]

log = logging.getLogger("mjasync")

#: The lock file a batch holds in its output directory.
DIR_LOCK_NAME = ".mjasync.lock"

# Filesystems that cannot lock (some network mounts): the batch runs, unprotected, with a
# warning, rather than not at all.
_NO_LOCKS = frozenset(
    {errno.ENOLCK, getattr(errno, "ENOTSUP", -1), getattr(errno, "EOPNOTSUPP", -1)}
)


def journal_lock_path(journal: str | os.PathLike[str]) -> Path:
    """The lock file that guards ``journal``: ``<journal>.lock`` beside it."""
    path = Path(journal)
    return path.with_name(path.name + ".lock")


def _try_lock(fd: int) -> bool:
    """Take the exclusive lock without waiting; ``False`` when another holder has it."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EDEADLK):
                return False
            raise
        return True
    import fcntl

    try:
        # flock, not lockf: flock locks belong to the open file, so a second open in the
        # same process (two batches in one program) conflicts too.
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    return None


def _write_pid(fd: int) -> None:
    with contextlib.suppress(OSError):  # the pid is only for messages
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))


class BatchLock:
    """An exclusive lock on one file, held from :meth:`acquire` to :meth:`release`.

    Args:
        path: the lock file (created if missing; never deleted).
        what: what the lock guards, for the error message (``"journal out/journal.sqlite"``).
        holder_kind: who else may hold it, for the error message.

    Example:
        >>> with BatchLock(Path("out/journal.sqlite.lock"), "journal out/journal.sqlite"):
        ...     ...  # run the batch
    """

    def __init__(self, path: Path, what: str, holder_kind: str = "another batch") -> None:
        self.path = path
        self.what = what
        self.holder_kind = holder_kind
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock at once, or fail. Blocking I/O, but it never waits for the holder.

        Raises:
            JournalLockedError: another batch (in this process or another) holds it.
            JournalError: the lock file cannot be created or opened.
        """
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already locked by this BatchLock")
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise JournalError(
                f"cannot open the lock file {str(self.path)!r} of {self.what}: "
                f"{exc.strerror or exc}"
            ) from exc
        try:
            locked = _try_lock(fd)
        except OSError as exc:
            if exc.errno in _NO_LOCKS:
                log.warning(
                    "mjasync batch: %s cannot be locked (%s); make sure no other batch uses it",
                    self.what,
                    exc.strerror or exc,
                )
                self._fd = fd
                return
            os.close(fd)
            raise JournalError(f"cannot lock {self.what}: {exc.strerror or exc}") from exc
        if not locked:
            holder = _holder(fd)
            os.close(fd)
            by = f"{self.holder_kind} (pid {holder})" if holder else self.holder_kind
            raise JournalLockedError(
                f"{self.what} is in use by {by}; wait for it to finish or stop it, then run again",
                path=str(self.path),
                holder=holder,
            )
        self._fd = fd
        _write_pid(fd)

    def release(self) -> None:
        """Let go of the lock (closing the file releases it). Safe to call twice."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
