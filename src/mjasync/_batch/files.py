"""The batch's files on disk: counting downloads, leftovers of a crash, names in reports."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from .download import Downloader, DownloadResult, Media, _TaskBudget

__all__ = [
    "CountingDownloader",
    "missing_files",
    "present_files",
    "relative_names",
    "sweep_parts",
]


class CountingDownloader(Downloader):
    """A :class:`Downloader` that counts files actually fetched (not found on disk)."""

    fetched: int = 0

    async def _download_counted(
        self, url: str, name: str, budget: _TaskBudget | None, media: Media = "image"
    ) -> DownloadResult:
        # Every download, single or of a task, goes through here.
        result = await super()._download_counted(url, name, budget, media)
        if not result.skipped:
            self.fetched += 1
        return result


_REPORT_TEMP = re.compile(r"^\.(?:manifest\.jsonl|index\.html)\.[0-9a-f]+\.tmp$")


def sweep_parts(out_dir: Path) -> None:
    """Remove leftover ``*.part`` and report temp files directly in ``out_dir`` (blocking)."""
    # A previous run killed mid-download leaves NAME.<random>.part files (mid-report:
    # .manifest.jsonl.<random>.tmp). They are never read as output, but every attempt uses a
    # fresh name, so nothing else would ever remove them. Only the batch holding the
    # directory's lock calls this: no other writer's file can be swept away.
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(out_dir):
            leftover = entry.name.endswith(".part") or _REPORT_TEMP.match(entry.name)
            if leftover and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def missing_files(out_dir: Path, files: Sequence[str]) -> bool:
    """Whether any of ``files`` (relative to ``out_dir``) is not a file there (blocking)."""
    return any(not (out_dir / name).is_file() for name in files)


def present_files(out_dir: Path, files: Sequence[str]) -> tuple[str, ...]:
    """Those of ``files`` (relative to ``out_dir``) that are files there, in order (blocking)."""
    return tuple(name for name in files if (out_dir / name).is_file())


def relative_names(out_dir: Path, paths: Iterable[Path]) -> tuple[str, ...]:
    """``paths`` as POSIX names relative to ``out_dir``, duplicates dropped (blocking)."""
    base = out_dir.resolve()
    # dict.fromkeys: split parts of a grid and its imageUrls can be the very same files.
    return tuple(dict.fromkeys(Path(p).resolve().relative_to(base).as_posix() for p in paths))
