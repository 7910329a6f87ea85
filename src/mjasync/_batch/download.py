"""Safe image downloads: names we choose, bytes we check, files that appear whole or not at all.

Three rules hold for every file written here:

* **The name is ours.** It is built from the prompt (an ASCII slug) and the task id; nothing
  from the server — URL path, ``Content-Disposition`` — ever becomes part of a path, and the
  final path is checked with :meth:`Path.resolve` to lie directly in the output directory.
* **The bytes are an image.** ``Content-Type`` must be ``image/*``, the first bytes must be a
  PNG, JPEG, WebP or GIF signature, the size is capped while streaming, and a PNG must end
  with its ``IEND`` chunk (a body cut short without a ``Content-Length`` is caught too).
* **The file is atomic.** Bytes stream into ``NAME.part`` next to the target, are fsynced,
  and only then renamed onto ``NAME``. A crash leaves at most a ``.part`` file, which is never
  taken for an image and is replaced by the next attempt. Any failure removes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import unicodedata
from io import BytesIO
from pathlib import Path, PurePosixPath

import aiohttp
import anyio
import anyio.to_thread
import attrs
from yarl import URL

from .._errors import DownloadError
from .._models import Task, TaskAction
from .._validation import sniff_image_type
from .crashpoints import crash_point

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TIMEOUT",
    "DownloadError",
    "DownloadResult",
    "Downloader",
    "contained_path",
    "download_image",
    "image_kind",
    "image_suffix",
    "safe_filename",
    "split_grid",
    "task_image_filename",
]

#: Largest image accepted by default (Midjourney's biggest upscales are well under this).
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
#: Seconds one download may take from request to last byte, by default.
DEFAULT_TIMEOUT = 300.0

PART_SUFFIX = ".part"
_CHUNK = 64 * 1024
_WRITE_BATCH = 512 * 1024  # bytes collected before one hop to the writer thread
_STEM_MAX = 100
_PROMPT_SLUG_MAX = 48
_ID_SLUG_MAX = 40

_CONTENT_TYPE_SUFFIX = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/pjpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
}
_URL_SUFFIX = {".png": ".png", ".jpg": ".jpg", ".jpeg": ".jpg", ".webp": ".webp", ".gif": ".gif"}
_SUFFIX_RE = re.compile(r"^\.[a-z0-9]{1,10}$")
# Device names Windows reserves in every directory, with or without an extension.
_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"COM{i}" for i in range(10)}
    | {f"LPT{i}" for i in range(10)}
)
# Actions whose image is a single picture, not a 2x2 grid (or not an output at all).
_NOT_GRIDS = frozenset(
    {TaskAction.UPSCALE, TaskAction.DESCRIBE, TaskAction.SHORTEN, TaskAction.VIDEO}
)
_PNG_END = b"IEND\xaeB`\x82"


@attrs.frozen(slots=True)
class DownloadResult:
    """What :func:`download_image` did.

    Attributes:
        url: the URL requested.
        path: the final file.
        skipped: ``True`` when the file already existed and nothing was fetched.
        size: the file's size in bytes.
        content_type: the response's media type (``None`` when skipped).
        image_type: the format recognised from the bytes: png, jpeg, webp or gif (``None``
            when skipped).
        sha256: hex digest of the bytes written (``None`` when skipped).
    """

    url: str
    path: Path
    skipped: bool
    size: int
    content_type: str | None = None
    image_type: str | None = None
    sha256: str | None = None


# --------------------------------------------------------------------------- names


def _slug(text: str, max_len: int) -> str:
    # NFKD splits accented letters into letter + mark; the ASCII encode then drops the mark,
    # so "café" becomes "cafe" instead of vanishing. Dots are not kept, which rules out "..",
    # hidden files and a second extension in one go.
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9_]+", "-", ascii_text.lower()).strip("-_")
    if len(slug) > max_len:
        slug = slug[:max_len].rstrip("-_")
    return slug


def safe_filename(stem: str, index: int | None, suffix: str) -> str:
    """A file name that is safe on every common filesystem and cannot name a directory.

    The stem becomes an ASCII slug of ``[a-z0-9_-]`` (at most 100 characters; ``"image"``
    when nothing is left); Windows device names get a trailing ``_``; ``index`` is appended
    as ``_N``; ``suffix`` must be a short extension.

    Raises:
        ValueError: a negative index or a malformed suffix.
        TypeError: ``index`` is not an int or ``None``.

    Example:
        >>> safe_filename("../../etc/passwd", None, ".png")
        'etc-passwd.png'
        >>> safe_filename("CON", 2, "PNG")
        'con__2.png'
    """
    if index is not None:
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"index must be an int or None, not {type(index).__name__}")
        if index < 0:
            raise ValueError(f"index must be >= 0, not {index}")
    ext = suffix.strip().lower()
    if not ext.startswith("."):
        ext = "." + ext
    if not _SUFFIX_RE.match(ext):
        raise ValueError(f"invalid file suffix {suffix!r}")
    slug = _slug(str(stem), _STEM_MAX) or "image"
    if slug.upper() in _RESERVED:
        slug += "_"
    name = slug if index is None else f"{slug}_{index}"
    return name + ext


def _prompt_words(prompt: str) -> str:
    # Parameters (" --ar 16:9") and image-prompt URLs make poor names; keep the words.
    text = re.split(r"(?:^|\s)--\S", prompt, maxsplit=1)[0]
    return re.sub(r"<[^>]*>|\S+://\S*", " ", text)


def _task_id_part(task_id: str) -> str:
    slug = _slug(task_id, _ID_SLUG_MAX)
    if slug and slug == task_id:
        return slug
    # Rewritten (or empty): a short digest of the real id keeps distinct ids distinct.
    digest = hashlib.sha256(task_id.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{slug}-{digest}" if slug else digest


def image_suffix(url: str | None, content_type: str | None = None) -> str:
    """The file extension for an image: from its media type, else the URL's, else ``.png``.

    Only a fixed list of extensions is ever returned; the URL contributes at most that.
    """
    if content_type:
        media = content_type.split(";", 1)[0].strip().lower()
        if media in _CONTENT_TYPE_SUFFIX:
            return _CONTENT_TYPE_SUFFIX[media]
    if url:
        with contextlib.suppress(ValueError):
            ext = PurePosixPath(URL(url).path).suffix.lower()
            if ext in _URL_SUFFIX:
                return _URL_SUFFIX[ext]
    return ".png"


def task_image_filename(
    task_id: str,
    prompt: str | None,
    url: str | None,
    content_type: str | None = None,
    *,
    index: int | None = None,
) -> str:
    """The file name for one image of a task: ``<prompt-slug>_<task-id>[_<index>].<ext>``.

    Built only from the prompt's words (slugged, at most 48 characters) and the task id
    (slugged; a short digest is added when the id needed rewriting, so hostile ids cannot
    collide); the URL and media type only choose the extension from a fixed list.

    Example:
        >>> task_image_filename("1712345", "a black cat --ar 3:2", "https://cdn/x/grid.webp")
        'a-black-cat_1712345.webp'
    """
    words = _slug(_prompt_words(prompt or ""), _PROMPT_SLUG_MAX) or "image"
    stem = f"{words}_{_task_id_part(str(task_id))}"
    return safe_filename(stem, index, image_suffix(url, content_type))


def contained_path(out_dir: str | os.PathLike[str], name: str) -> Path:
    """``out_dir / name``, after proving it is a plain file name directly inside ``out_dir``.

    Raises:
        ValueError: ``name`` is empty, ``.``/``..``, absolute, has a drive, contains a
            separator or NUL, or resolves (through a symlink, say) outside ``out_dir``.
    """
    if (
        not name
        or name in (".", "..")
        or any(ch in name for ch in ("/", "\\", "\x00", ":"))
        or os.path.isabs(name)
    ):
        raise ValueError(f"unsafe file name {name!r}")
    base = Path(out_dir).resolve()
    candidate = (base / name).resolve()
    if candidate.parent != base:
        raise ValueError(f"file name {name!r} resolves outside {str(base)!r}")
    return base / name


# --------------------------------------------------------------------------- bytes


def image_kind(head: bytes) -> str | None:
    """Recognise an image by its first bytes: ``png``, ``jpeg``, ``webp``, ``gif`` or ``None``.

    Needs at least 12 bytes to recognise WebP. The same signatures guard input images.
    """
    mime = sniff_image_type(head)
    return mime.removeprefix("image/") if mime is not None else None


def _truncation(kind: str, head: bytes, tail: bytes, size: int) -> str | None:
    """Why a body of a recognised format is visibly incomplete, or ``None``."""
    if kind == "png" and not tail.endswith(_PNG_END):
        return "PNG has no IEND chunk (body cut short)"
    if kind == "webp":
        declared = int.from_bytes(head[4:8], "little") + 8
        if size < declared:
            return f"WebP declares {declared} bytes, got {size} (body cut short)"
    if kind == "gif" and not tail.endswith(b";"):
        return "GIF has no trailer (body cut short)"
    # JPEG files in the wild carry trailing bytes after EOI; no reliable check there.
    return None


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable on POSIX; directories cannot be opened on Windows.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _existing_size(path: Path) -> int:
    """Size of a regular, non-empty file at ``path`` (not following symlinks), else 0."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return 0
    return st.st_size if stat.S_ISREG(st.st_mode) else 0


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class _PartFile:
    """The ``.part`` file being written. Every method runs in a worker thread."""

    def __init__(self, part: Path) -> None:
        self.part = part
        # Remove a leftover first (a resume), then create exclusively without following
        # symlinks: whatever sits at the .part name, we never write through it.
        _unlink_quietly(part)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        flags |= getattr(os, "O_BINARY", 0)
        fd = os.open(part, flags, 0o644)
        self.file = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        self.file.write(data)

    def commit(self, dest: Path) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        crash_point("download.synced")
        self.file.close()
        os.replace(self.part, dest)
        _fsync_dir(dest.parent)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        with contextlib.suppress(OSError):
            _unlink_quietly(self.part)


def _part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + PART_SUFFIX)


def _check_skip(dest: Path) -> int:
    size = _existing_size(dest)
    if size:
        _unlink_quietly(_part_path(dest))  # a stale partial next to a complete file
    return size


async def download_image(
    session: aiohttp.ClientSession,
    url: str,
    dest: str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = DEFAULT_TIMEOUT,
    allow_untyped: bool = False,
) -> DownloadResult:
    """Stream the image at ``url`` into ``dest`` atomically.

    Skips the request when ``dest`` already exists as a non-empty regular file. Otherwise
    streams into ``dest + ".part"`` (replacing any leftover), checks media type, signature,
    size and completeness, fsyncs, and renames onto ``dest``. The caller chooses ``dest``
    (see :func:`task_image_filename`, :func:`contained_path`); its directory must exist.

    Args:
        session: the aiohttp session to use (its auth headers are not needed for CDNs, but
            relays serving ``/mj/image/{id}`` may want them).
        url: an ``http``/``https`` URL.
        dest: the final file path.
        max_bytes: refuse bodies larger than this (checked on ``Content-Length`` and while
            streaming).
        timeout: seconds for the whole download.
        allow_untyped: also accept a missing or ``application/octet-stream`` media type when
            the bytes prove to be an image (some storage buckets serve images that way).

    Raises:
        DownloadError: HTTP error, wrong media type, not an image, too large, cut short,
            timeout, connection or disk error. No ``.part`` file remains.
    """
    dest_path = Path(dest)
    try:
        parsed = URL(url)
    except (TypeError, ValueError) as exc:
        raise DownloadError("malformed URL", url=str(url)) from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise DownloadError(f"unsupported URL scheme {parsed.scheme!r}", url=url)

    existing = await anyio.to_thread.run_sync(_check_skip, dest_path)
    if existing:
        return DownloadResult(url=url, path=dest_path, skipped=True, size=existing)

    transfer = _Transfer(url, dest_path, max_bytes=max_bytes, allow_untyped=allow_untyped)
    try:
        async with session.get(
            url, timeout=aiohttp.ClientTimeout(total=timeout), allow_redirects=True
        ) as resp:
            return await transfer.receive(resp)
    except DownloadError:
        raise
    except TimeoutError as exc:
        raise DownloadError(f"timed out after {timeout:g}s", url=url) from exc
    except aiohttp.ClientPayloadError as exc:
        raise DownloadError(f"body cut short ({exc})", url=url) from exc
    except aiohttp.ClientResponseError as exc:
        raise DownloadError(
            f"bad response: {exc.message}", url=url, http_status=exc.status
        ) from exc
    except aiohttp.ClientError as exc:
        raise DownloadError(f"connection failed: {exc}", url=url) from exc
    except OSError as exc:
        raise DownloadError(f"cannot write {dest_path.name}: {exc}", url=url) from exc
    finally:
        # Runs on errors and on cancellation alike: no partial file outlives the call.
        with anyio.CancelScope(shield=True):
            await transfer.discard()


class _Transfer:
    """One response being checked and streamed into its ``.part`` file."""

    def __init__(self, url: str, dest: Path, *, max_bytes: int, allow_untyped: bool) -> None:
        self.url = url
        self.dest = dest
        self.max_bytes = max_bytes
        self.allow_untyped = allow_untyped
        self.status: int | None = None
        self.part: _PartFile | None = None

    def fail(self, reason: str) -> DownloadError:
        return DownloadError(reason, url=self.url, http_status=self.status)

    def check_headers(self, resp: aiohttp.ClientResponse) -> str:
        """Refuse a response by its status and headers alone; returns the media type."""
        self.status = resp.status
        if resp.status != 200:
            raise self.fail(f"HTTP {resp.status}")
        raw_type = resp.headers.get(aiohttp.hdrs.CONTENT_TYPE)
        media = raw_type.split(";", 1)[0].strip().lower() if raw_type else ""
        untyped = media in ("", "application/octet-stream", "binary/octet-stream")
        if not media.startswith("image/") and not (self.allow_untyped and untyped):
            raise self.fail(f"content type {media or 'missing'!r} is not an image")
        declared = resp.content_length
        if declared is not None and declared > self.max_bytes:
            raise self.fail(f"image is {declared} bytes, over the {self.max_bytes}-byte limit")
        return media

    def require_image(self, head: bytes) -> str:
        kind = image_kind(head)
        if kind is None:
            raise self.fail(f"body is not a PNG/JPEG/WebP/GIF image (starts with {head[:8]!r})")
        return kind

    async def receive(self, resp: aiohttp.ClientResponse) -> DownloadResult:
        media = self.check_headers(resp)
        self.part = part = await anyio.to_thread.run_sync(_PartFile, _part_path(self.dest))
        digest = hashlib.sha256()
        head = tail = b""
        kind: str | None = None
        size = batched = 0
        batch: list[bytes] = []
        async for chunk in resp.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > self.max_bytes:
                raise self.fail(f"image exceeds the {self.max_bytes}-byte limit")
            if kind is None:
                head = (head + chunk)[:16]
                if len(head) >= 12:
                    kind = self.require_image(head)
            digest.update(chunk)
            tail = (tail + chunk)[-len(_PNG_END) :]
            batch.append(chunk)
            batched += len(chunk)
            if batched >= _WRITE_BATCH:
                await anyio.to_thread.run_sync(part.write, b"".join(batch))
                batch, batched = [], 0
        if size == 0:
            raise self.fail("empty body")
        if kind is None:
            kind = self.require_image(head)
        problem = _truncation(kind, head, tail, size)
        if problem is not None:
            raise self.fail(problem)
        if batch:
            await anyio.to_thread.run_sync(part.write, b"".join(batch))
        await anyio.to_thread.run_sync(part.commit, self.dest)
        self.part = None
        return DownloadResult(
            url=self.url,
            path=self.dest,
            skipped=False,
            size=size,
            content_type=media or None,
            image_type=kind,
            sha256=digest.hexdigest(),
        )

    async def discard(self) -> None:
        part, self.part = self.part, None
        if part is not None:
            await anyio.to_thread.run_sync(part.discard)


# --------------------------------------------------------------------------- grids


def _write_atomic(dest: Path, data: bytes) -> None:
    part = _PartFile(_part_path(dest))
    try:
        part.write(data)
        part.commit(dest)
    except BaseException:
        part.discard()
        raise


def split_grid(path: str | os.PathLike[str]) -> list[Path]:
    """Cut a 2x2 grid image into four PNG files next to it: ``<stem>_1.png`` .. ``_4.png``.

    Numbered like Midjourney's U1-U4: top left, top right, bottom left, bottom right. Each
    part is written atomically; parts that already exist (non-empty) are kept. Blocking:
    call it through ``anyio.to_thread.run_sync`` from async code.

    Raises:
        ImportError: Pillow is not installed (``pip install 'mjasync[images]'``).
        ValueError: the image is too small to split.
        OSError: the file is missing or not a readable image.
    """
    grid = Path(path)
    targets = [grid.with_name(safe_filename(grid.stem, i, ".png")) for i in range(1, 5)]
    if all(_existing_size(t) for t in targets):
        return targets
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError("splitting grids needs Pillow: pip install 'mjasync[images]'") from exc

    with Image.open(grid) as image:
        image.load()
        width, height = image.size
        if width < 2 or height < 2:
            raise ValueError(f"{grid.name} is {width}x{height}, too small to split")
        half_w, half_h = width // 2, height // 2
        boxes = [
            (0, 0, half_w, half_h),
            (half_w, 0, width, half_h),
            (0, half_h, half_w, height),
            (half_w, half_h, width, height),
        ]
        for target, box in zip(targets, boxes, strict=True):
            if _existing_size(target):
                continue
            buffer = BytesIO()
            image.crop(box).save(buffer, format="PNG")
            _write_atomic(target, buffer.getvalue())
    return targets


# --------------------------------------------------------------------------- downloader


class Downloader:
    """Downloads task images into one directory, a bounded number at a time.

    Args:
        session: the aiohttp session to download with.
        out_dir: where images go (created on first use). Nothing is written anywhere else.
        limit: downloads in flight at once.
        max_bytes: passed to :func:`download_image`.
        timeout: passed to :func:`download_image`.
        allow_untyped: passed to :func:`download_image`.

    Example:
        >>> async def save(session, task):
        ...     downloader = Downloader(session, "out", limit=4)
        ...     return await downloader.fetch_task_images(task, split=True)
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        out_dir: str | os.PathLike[str],
        *,
        limit: int = 4,
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout: float = DEFAULT_TIMEOUT,
        allow_untyped: bool = False,
    ) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive int, not {limit!r}")
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError(f"max_bytes must be a positive int, not {max_bytes!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        if not isinstance(session, aiohttp.ClientSession):
            raise TypeError(
                f"session must be an aiohttp.ClientSession, not {type(session).__name__}"
            )
        self._session = session
        self._out_dir = Path(out_dir)
        self._limiter = anyio.CapacityLimiter(limit)
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._allow_untyped = allow_untyped
        self._dir_ready = False
        # Two requests for the same file (a task listed twice) must not race on one .part.
        self._file_locks: dict[Path, anyio.Lock] = {}

    @property
    def out_dir(self) -> Path:
        """The output directory."""
        return self._out_dir

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        """The limiter bounding downloads in flight (share it to bound several downloaders)."""
        return self._limiter

    async def download(self, url: str, name: str) -> DownloadResult:
        """Download ``url`` to ``out_dir/name`` (``name`` must be a plain, safe file name).

        Raises:
            ValueError: ``name`` would leave the output directory.
            DownloadError: see :func:`download_image`.
        """
        if not self._dir_ready:
            await anyio.to_thread.run_sync(self._make_dir)
        dest = await anyio.to_thread.run_sync(contained_path, self._out_dir, name)
        lock = self._file_locks.setdefault(dest, anyio.Lock())
        async with lock, self._limiter:
            return await download_image(
                self._session,
                url,
                dest,
                max_bytes=self._max_bytes,
                timeout=self._timeout,
                allow_untyped=self._allow_untyped,
            )

    def _make_dir(self) -> None:
        self._out_dir.mkdir(parents=True, exist_ok=True)
        self._dir_ready = True

    async def fetch_task_images(self, task: Task, *, split: bool = False) -> list[Path]:
        """Download a task's ``image_url`` and any ``image_urls`` into the output directory.

        Names come from :func:`task_image_filename` (``image_url`` without an index, the
        entries of ``image_urls`` numbered from 1). With ``split=True`` the main image is
        also cut into four parts (:func:`split_grid`) unless the task is an upscale (or
        otherwise not a grid). Files already present are not fetched again.

        Returns:
            The paths, main image first, then its split parts, then the other images.

        Raises:
            DownloadError: the first download that failed (the others still complete).
            ImportError: ``split=True`` without Pillow.
        """
        jobs: list[tuple[str, str]] = []
        seen: set[str] = set()
        if task.image_url:
            seen.add(task.image_url)
            jobs.append((task.image_url, task_image_filename(task.id, task.prompt, task.image_url)))
        for number, ref in enumerate(task.image_urls, start=1):
            if ref.url and ref.url not in seen:
                seen.add(ref.url)
                jobs.append(
                    (ref.url, task_image_filename(task.id, task.prompt, ref.url, index=number))
                )
        results: list[DownloadResult | None] = [None] * len(jobs)
        errors: list[DownloadError] = []

        async def one(i: int, url: str, name: str) -> None:
            try:
                results[i] = await self.download(url, name)
            except DownloadError as exc:
                errors.append(exc)
            except ValueError as exc:
                # The destination is unsafe (e.g. a symlink planted there points outside the
                # directory). Report it like any failed download, not as an ExceptionGroup.
                errors.append(DownloadError(f"unsafe destination: {exc}", url=url))

        async with anyio.create_task_group() as tg:
            for i, (url, name) in enumerate(jobs):
                tg.start_soon(one, i, url, name)
        if errors:
            raise errors[0]
        paths = [r.path for r in results if r is not None]
        if split and task.image_url and paths and task.action not in _NOT_GRIDS:
            parts = await anyio.to_thread.run_sync(split_grid, paths[0])
            paths[1:1] = parts
        return paths
