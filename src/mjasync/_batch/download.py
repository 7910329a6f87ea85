"""Safe image downloads: names we choose, bytes we check, files that appear whole or not at all.

Three rules hold for every file written here:

* **The name is ours.** It is built from the prompt (an ASCII slug) and the task id; nothing
  from the server — URL path, ``Content-Disposition`` — ever becomes part of a path, and the
  final path is checked with :meth:`Path.resolve` to lie directly in the output directory.
* **The bytes are an image** (or, for a video task's videos, an MP4). ``Content-Type`` must
  be ``image/*`` (``video/*``), the first bytes must be a PNG, JPEG, WebP or GIF signature
  (an MP4 ``ftyp`` box), the size is capped while streaming, and a PNG must end with its
  ``IEND`` chunk, an MP4 with the end of its last box (a body cut short without a
  ``Content-Length`` is caught too).
* **The file is atomic.** Bytes stream into a ``.part`` file of a unique name next to the
  target (``NAME.<random>.part``: two writers of one name never share it), are fsynced, and
  only then renamed onto ``NAME``. A crash leaves at most a ``.part`` file, which is never
  taken for an image (a batch sweeps them when it starts). Any failure removes it.

And the server does not choose where we connect or how much we take:

* **Public hosts only**, unless the image lives on the API server itself or the caller opted
  in: every address, of every redirect hop, is checked (see :mod:`mjasync._batch.hosts`).
  Redirects are followed by hand, at most ``max_redirects`` of them.
* **Bounded work per task**: at most ``max_images_per_task`` URLs and ``max_bytes_per_task``
  bytes; a body that goes quiet for ``read_timeout`` seconds fails the download.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import secrets
import stat
import unicodedata
from io import BytesIO
from pathlib import Path, PurePosixPath
from typing import Literal

import aiohttp
import anyio
import anyio.to_thread
import attrs
from yarl import URL

from .._errors import DownloadError, DownloadRefusedError
from .._models import Task, TaskAction
from .._validation import sniff_image_type
from .crashpoints import crash_point
from .hosts import (
    OPT_IN_HINT,
    AddressGate,
    AddressRefused,
    GuardedConnector,
    ImageHostPolicy,
    image_session,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_BYTES_PER_TASK",
    "DEFAULT_MAX_IMAGES_PER_TASK",
    "DEFAULT_MAX_REDIRECTS",
    "DEFAULT_MAX_VIDEO_BYTES",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "DownloadError",
    "DownloadRefusedError",
    "DownloadResult",
    "Downloader",
    "ImageHostPolicy",
    "contained_path",
    "download_image",
    "expects_image",
    "expects_media",
    "expects_video",
    "image_kind",
    "image_session",
    "image_suffix",
    "safe_filename",
    "server_sent_parts",
    "split_grid",
    "task_image_filename",
    "task_image_urls",
    "task_media_urls",
    "task_video_filename",
    "task_video_urls",
]

Media = Literal["image", "video"]

#: Largest image accepted by default (Midjourney's biggest upscales are well under this).
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
#: Largest video accepted by default (an extended 720p Midjourney video is tens of MB).
DEFAULT_MAX_VIDEO_BYTES = 200 * 1024 * 1024
#: Seconds one download may take from request to last byte, by default.
DEFAULT_TIMEOUT = 300.0
#: Seconds a download may go without receiving a byte, by default (a stalled CDN, a tarpit).
DEFAULT_READ_TIMEOUT = 30.0
#: Redirects followed per image, by default (CDNs use one or two).
DEFAULT_MAX_REDIRECTS = 5
#: Image URLs one task may list, by default: a grid and its four parts is 5; no real server
#: lists dozens. A task listing more fails without downloading any.
DEFAULT_MAX_IMAGES_PER_TASK = 16
#: Bytes all images of one task may add up to, by default (its files already on disk count).
DEFAULT_MAX_BYTES_PER_TASK = 256 * 1024 * 1024

PART_SUFFIX = ".part"
_CHUNK = 64 * 1024
_WRITE_BATCH = 512 * 1024  # bytes collected before one hop to the writer thread
_STEM_MAX = 100
_PROMPT_SLUG_MAX = 48
_ID_SLUG_MAX = 40
_LABEL_MAX = 24
_LABEL_RE = re.compile(r"^[A-Za-z0-9]{1,8}$")

_CONTENT_TYPE_SUFFIX = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/pjpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "video/mp4": ".mp4",
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
    {
        TaskAction.UPSCALE,
        TaskAction.UPSCALE_HD,
        TaskAction.DESCRIBE,
        TaskAction.SHORTEN,
        TaskAction.SWAP_FACE,
        TaskAction.VIDEO,
        TaskAction.VIDEO_EXTEND,
        TaskAction.SWAP_VIDEO_FACE,
    }
)
# Actions whose result is one or more videos (their image, if any, is a poster).
_VIDEO_ACTIONS = frozenset({TaskAction.VIDEO, TaskAction.VIDEO_EXTEND, TaskAction.SWAP_VIDEO_FACE})
# Actions whose result is text (describe, shorten), a video, or not known to us: a SUCCESS
# without an image URL is complete for them.
_NO_IMAGE_EXPECTED = frozenset(
    {TaskAction.DESCRIBE, TaskAction.SHORTEN, TaskAction.UNKNOWN, *_VIDEO_ACTIONS}
)
_PNG_END = b"IEND\xaeB`\x82"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


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


def _check_index(index: object) -> None:
    if isinstance(index, bool) or not isinstance(index, int):
        raise TypeError(f"index must be an int or None, not {type(index).__name__}")
    if index < 0:
        raise ValueError(f"index must be >= 0, not {index}")


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
        _check_index(index)
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


def _label_part(label: str) -> str:
    # "U2", "V1" keep their case (they are what the user pressed); anything else is slugged.
    return label if _LABEL_RE.match(label) else _slug(label, _LABEL_MAX)


def task_image_filename(
    task_id: str,
    prompt: str | None,
    url: str | None,
    content_type: str | None = None,
    *,
    index: int | None = None,
    name: str | None = None,
    label: str | None = None,
) -> str:
    """The file name for one image of a task: ``<words>_<task-id>[_<label>][_<index>].<ext>``.

    Built only from the prompt's words (or ``name``, when given; slugged, at most 48
    characters), the task id (slugged; a short digest is added when the id needed rewriting,
    so hostile ids cannot collide) and ``label`` (the button that made the image, e.g.
    ``"U2"``: letters and digits kept as they are, anything else slugged); the URL and media
    type only choose the extension from a fixed list.

    Example:
        >>> task_image_filename("1712345", "a black cat --ar 3:2", "https://cdn/x/grid.webp")
        'a-black-cat_1712345.webp'
        >>> task_image_filename("1712399", "a black cat", None, label="U2")
        'a-black-cat_1712399_U2.png'
    """
    source = name if name and name.strip() else _prompt_words(prompt or "")
    words = _slug(source, _PROMPT_SLUG_MAX) or "image"
    ext = image_suffix(url, content_type)
    stem = safe_filename(f"{words}_{_task_id_part(str(task_id))}", None, ext)[: -len(ext)]
    tail = _label_part(label) if label else ""
    if tail:
        stem += f"_{tail}"
    if index is not None:
        _check_index(index)
        stem += f"_{index}"
    return stem + ext


def task_video_filename(
    task_id: str,
    prompt: str | None,
    *,
    index: int | None = None,
    name: str | None = None,
    label: str | None = None,
) -> str:
    """The file name for one video of a task: ``<words>_<task-id>[_<label>][_<index>].mp4``.

    Built like :func:`task_image_filename`; the extension is always ``.mp4`` (the servers
    make MP4 only, and the bytes are checked to be one).
    """
    return task_image_filename(
        task_id, prompt, None, "video/mp4", index=index, name=name, label=label
    )


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


def video_kind(head: bytes) -> str | None:
    """Recognise an MP4 (any ISO base media file) by its first box: ``"mp4"`` or ``None``."""
    return "mp4" if len(head) >= 12 and head[4:8] == b"ftyp" else None


class _Mp4Boxes:
    """Follows the top-level boxes of an MP4 as its bytes stream past.

    Every box starts with its size (4 bytes; 1 means a 64-bit size follows the type, 0 means
    "to the end of the file"). A complete file ends exactly where its last box ends; a body
    cut short ends inside one.
    """

    def __init__(self) -> None:
        self.received = 0
        self.box_start = 0  # where the next top-level box header begins
        self.header = b""  # the bytes of that header collected so far
        self.to_end = False
        self.error: str | None = None

    def feed(self, chunk: bytes) -> None:
        start = self.received
        self.received += len(chunk)
        while not self.to_end and self.error is None and self.box_start < self.received:
            begin = self.box_start + len(self.header) - start
            self.header += chunk[begin : begin + 16 - len(self.header)]
            if len(self.header) < 8:
                return
            size, minimum = int.from_bytes(self.header[:4], "big"), 8
            if size == 1:
                if len(self.header) < 16:
                    return
                size, minimum = int.from_bytes(self.header[8:16], "big"), 16
            elif size == 0:
                self.to_end = True
                return
            if size < minimum:
                self.error = f"MP4 box at byte {self.box_start} has an impossible size {size}"
                return
            self.box_start += size
            self.header = b""

    def problem(self) -> str | None:
        """Why the file is visibly incomplete or malformed, or ``None``."""
        if self.error is not None:
            return self.error
        if self.to_end or (self.box_start == self.received and not self.header):
            return None
        return "MP4 ends inside a box (body cut short)"


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
    """A ``.part`` file of a fresh, unique name beside ``dest``. Every method runs in a thread."""

    def __init__(self, dest: Path) -> None:
        # Created exclusively and without following symlinks: whatever sits at a .part name,
        # we never write through it. The random name means two writers of the same image (two
        # processes, two downloaders) each get their own file and cannot rename the other's
        # half-written bytes into place.
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        flags |= getattr(os, "O_BINARY", 0)
        while True:
            part = dest.with_name(f"{dest.name}.{secrets.token_hex(6)}{PART_SUFFIX}")
            try:
                fd = os.open(part, flags, 0o644)
            except FileExistsError:  # 48 random bits taken: astronomically rare, try again
                continue
            break
        self.part = part
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


class _TaskBudget:
    """Bytes the images of one task may still add up to (shared by its concurrent downloads)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    @property
    def left(self) -> int:
        return self.limit - self.used

    def take(self, size: int) -> bool:
        """Count ``size`` more bytes; ``False`` once the total is over the limit."""
        self.used += size
        return self.used <= self.limit


def _parse_http_url(url: str) -> URL:
    try:
        parsed = URL(url)
    except (TypeError, ValueError) as exc:
        raise DownloadError("malformed URL", url=str(url)) from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise DownloadError(f"unsupported URL scheme {parsed.scheme!r}", url=url)
    return parsed


async def download_image(
    session: aiohttp.ClientSession,
    url: str,
    dest: str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = DEFAULT_TIMEOUT,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    allow_untyped: bool = False,
    allow_private_image_hosts: bool = False,
    api_server: str | None = None,
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
) -> DownloadResult:
    """Stream the image at ``url`` into ``dest`` atomically.

    Skips the request when ``dest`` already exists as a non-empty regular file. Otherwise
    streams into a unique ``.part`` file beside it, checks media type, signature, size and
    completeness, fsyncs, and renames onto ``dest``. The caller chooses ``dest`` (see
    :func:`task_image_filename`, :func:`contained_path`); its directory must exist.

    Only public addresses are contacted, plus the API server's own IP and port
    (``api_server``), unless ``allow_private_image_hosts`` (see :mod:`mjasync._batch.hosts`).
    With a session from :func:`image_session` every connection is checked on the addresses
    it actually uses; with another session, hosts are resolved and checked before each
    request (a name that changes its answer in between is not caught).

    Args:
        session: the aiohttp session to use (its auth headers are not needed for CDNs, but
            relays serving ``/mj/image/{id}`` may want them).
        url: an ``http``/``https`` URL.
        dest: the final file path.
        max_bytes: refuse bodies larger than this (checked on ``Content-Length`` and while
            streaming).
        timeout: seconds for the whole download, redirects included.
        read_timeout: seconds the body may go without a byte arriving.
        allow_untyped: also accept a missing or ``application/octet-stream`` media type when
            the bytes prove to be an image (some storage buckets serve images that way).
        allow_private_image_hosts: also contact loopback, private, link-local, ... addresses.
        api_server: the API's base URL; its own IP and port are allowed even when private.
        max_redirects: redirects followed before giving up.

    Raises:
        DownloadRefusedError: the URL or a redirect leads to a refused address, or there
            are more than ``max_redirects`` redirects. Nothing was sent there.
        DownloadError: HTTP error, wrong media type, not an image, too large, cut short,
            timeout, connection or disk error. No ``.part`` file remains.
    """
    gate = _gate_for(session, ImageHostPolicy(allow_private_image_hosts, api_server))
    return await _download(
        session,
        url,
        Path(dest),
        _Limits(
            max_bytes=max_bytes,
            timeout=timeout,
            read_timeout=read_timeout,
            max_redirects=max_redirects,
            allow_untyped=allow_untyped,
        ),
        gate,
        None,
    )


def _gate_for(session: aiohttp.ClientSession, policy: ImageHostPolicy) -> _Gate:
    """The checks a download through ``session`` needs before each request."""
    connector = session.connector
    if isinstance(connector, GuardedConnector) and connector.gate.policy == policy:
        # The connector checks every resolved address itself: only IP literals (which
        # aiohttp never resolves) are left to check before the request.
        return _Gate(connector.gate, resolve_names=False)
    return _Gate(AddressGate(policy), resolve_names=True)


@attrs.frozen(slots=True)
class _Gate:
    gate: AddressGate
    resolve_names: bool


@attrs.frozen(slots=True)
class _Limits:
    max_bytes: int = DEFAULT_MAX_BYTES
    timeout: float = DEFAULT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    max_redirects: int = DEFAULT_MAX_REDIRECTS
    allow_untyped: bool = False
    max_video_bytes: int = DEFAULT_MAX_VIDEO_BYTES


async def _download(
    session: aiohttp.ClientSession,
    url: str,
    dest: Path,
    limits: _Limits,
    gate: _Gate,
    budget: _TaskBudget | None,
    media: Media = "image",
) -> DownloadResult:
    current = first = _parse_http_url(url)
    existing = await anyio.to_thread.run_sync(_existing_size, dest)
    if existing:
        if budget is not None and not budget.take(existing):
            raise DownloadError(f"the task's images exceed {budget.limit} bytes in all", url=url)
        return DownloadResult(url=url, path=dest, skipped=True, size=existing)

    transfer = _Transfer(url, dest, limits=limits, budget=budget, media=media)
    deadline = anyio.current_time() + limits.timeout
    try:
        for _hop in range(limits.max_redirects + 1):
            await gate.gate.check_url(current, resolve_names=gate.resolve_names)
            # One deadline for all hops; aiohttp raises TimeoutError once it has passed.
            remaining = max(deadline - anyio.current_time(), 0.001)
            client_timeout = aiohttp.ClientTimeout(total=remaining, sock_read=limits.read_timeout)
            async with session.get(current, timeout=client_timeout, allow_redirects=False) as resp:
                if resp.status in _REDIRECTS:
                    current = transfer.next_hop(resp)
                    continue
                return await transfer.receive(resp)
        raise DownloadRefusedError(f"more than {limits.max_redirects} redirects", url=url)
    except DownloadError:
        raise
    except AddressRefused as exc:
        raise _refused(exc, url, current if current is not first else None) from exc
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, AddressRefused):  # refused by the guarded resolver
            raise _refused(exc.os_error, url, current if current is not first else None) from exc
        raise DownloadError(f"connection failed: {exc}", url=url) from exc
    except aiohttp.SocketTimeoutError as exc:
        raise DownloadError(
            f"no data for {limits.read_timeout:g}s (read timeout)", url=url
        ) from exc
    except TimeoutError as exc:
        raise DownloadError(f"timed out after {limits.timeout:g}s", url=url) from exc
    except aiohttp.ClientPayloadError as exc:
        raise DownloadError(f"body cut short ({exc})", url=url) from exc
    except aiohttp.ClientResponseError as exc:
        raise DownloadError(
            f"bad response: {exc.message}", url=url, http_status=exc.status
        ) from exc
    except aiohttp.ClientError as exc:
        raise DownloadError(f"connection failed: {exc}", url=url) from exc
    except OSError as exc:
        raise DownloadError(f"cannot write {dest.name}: {exc}", url=url) from exc
    finally:
        # Runs on errors and on cancellation alike: no partial file outlives the call.
        with anyio.CancelScope(shield=True):
            await transfer.discard()


def _refused(error: AddressRefused, url: str, hop: URL | None) -> DownloadRefusedError:
    # A redirect is named by its origin only: its path and query may hold tokens.
    where = f"redirect to {hop.origin()} refused" if hop is not None else "refused"
    return DownloadRefusedError(f"{where}: {error.reason}; {OPT_IN_HINT}", url=url)


class _Transfer:
    """One response being checked and streamed into its ``.part`` file."""

    def __init__(
        self,
        url: str,
        dest: Path,
        *,
        limits: _Limits,
        budget: _TaskBudget | None,
        media: Media = "image",
    ) -> None:
        self.url = url
        self.dest = dest
        self.media = media
        self.max_bytes = limits.max_video_bytes if media == "video" else limits.max_bytes
        self.allow_untyped = limits.allow_untyped
        self.budget = budget
        self.status: int | None = None
        self.part: _PartFile | None = None

    def fail(self, reason: str) -> DownloadError:
        return DownloadError(reason, url=self.url, http_status=self.status)

    def next_hop(self, resp: aiohttp.ClientResponse) -> URL:
        """Where a redirect leads (checked like the first URL before it is requested)."""
        self.status = resp.status
        location = resp.headers.get(aiohttp.hdrs.LOCATION)
        if not location:
            raise self.fail(f"HTTP {resp.status} redirect without a Location")
        try:
            target = resp.url.join(URL(location))
        except (TypeError, ValueError) as exc:
            raise self.fail(f"HTTP {resp.status} redirect to a malformed URL") from exc
        if target.scheme not in ("http", "https") or not target.host:
            raise DownloadRefusedError(
                f"redirect to unsupported URL scheme {target.scheme!r}", url=self.url
            )
        return target

    def check_headers(self, resp: aiohttp.ClientResponse) -> str:
        """Refuse a response by its status and headers alone; returns the media type."""
        self.status = resp.status
        if resp.status != 200:
            raise self.fail(f"HTTP {resp.status}")
        raw_type = resp.headers.get(aiohttp.hdrs.CONTENT_TYPE)
        media = raw_type.split(";", 1)[0].strip().lower() if raw_type else ""
        untyped = media in ("", "application/octet-stream", "binary/octet-stream")
        if not media.startswith(f"{self.media}/") and not (self.allow_untyped and untyped):
            raise self.fail(f"content type {media or 'missing'!r} is not an {self.media}")
        declared = resp.content_length
        if declared is not None and declared > self.max_bytes:
            raise self.fail(
                f"{self.media} is {declared} bytes, over the {self.max_bytes}-byte limit"
            )
        if declared is not None and self.budget is not None and declared > self.budget.left:
            raise self.fail(f"the task's images exceed {self.budget.limit} bytes in all")
        return media

    def require_image(self, head: bytes) -> str:
        if self.media == "video":
            if video_kind(head) is None:
                raise self.fail(f"body is not an MP4 video (starts with {head[:8]!r})")
            return "mp4"
        kind = image_kind(head)
        if kind is None:
            raise self.fail(f"body is not a PNG/JPEG/WebP/GIF image (starts with {head[:8]!r})")
        return kind

    async def receive(self, resp: aiohttp.ClientResponse) -> DownloadResult:
        media = self.check_headers(resp)
        self.part = part = await anyio.to_thread.run_sync(_PartFile, self.dest)
        digest = hashlib.sha256()
        head = tail = b""
        kind: str | None = None
        size = batched = 0
        batch: list[bytes] = []
        boxes = _Mp4Boxes() if self.media == "video" else None
        async for chunk in resp.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > self.max_bytes:
                raise self.fail(f"{self.media} exceeds the {self.max_bytes}-byte limit")
            if boxes is not None:
                boxes.feed(chunk)
            if self.budget is not None and not self.budget.take(len(chunk)):
                raise self.fail(f"the task's images exceed {self.budget.limit} bytes in all")
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
        problem = boxes.problem() if boxes is not None else _truncation(kind, head, tail, size)
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
    part = _PartFile(dest)
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


def expects_image(task: Task) -> bool:
    """Whether a succeeded ``task`` should have at least one image. Pure.

    Text results (describe, shorten), videos and actions unknown to mjasync need none.
    """
    return task.action not in _NO_IMAGE_EXPECTED


def expects_video(task: Task) -> bool:
    """Whether a succeeded ``task`` should have at least one video (video, video face swap)."""
    return task.action in _VIDEO_ACTIONS


def expects_media(task: Task) -> bool:
    """Whether a succeeded ``task`` should have an image or a video to download. Pure."""
    return expects_image(task) or expects_video(task)


def task_video_urls(
    task: Task, *, name: str | None = None, label: str | None = None
) -> list[tuple[str, str]]:
    """``(url, file name)`` of every distinct video of ``task`` (``task.videos``). Pure."""
    jobs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for number, ref in enumerate(task.videos, start=1):
        if ref.url and ref.url not in seen:
            seen.add(ref.url)
            filename = task_video_filename(
                task.id, task.prompt, index=number, name=name, label=label
            )
            jobs.append((ref.url, filename))
    return jobs


def task_media_urls(
    task: Task, *, name: str | None = None, label: str | None = None
) -> list[tuple[str, str, Media]]:
    """``(url, file name, "image" | "video")``: the images, then the videos. Pure."""
    jobs: list[tuple[str, str, Media]] = [
        (url, file, "image") for url, file in task_image_urls(task, name=name, label=label)
    ]
    jobs += [(url, file, "video") for url, file in task_video_urls(task, name=name, label=label)]
    return jobs


def task_image_urls(
    task: Task, *, name: str | None = None, label: str | None = None
) -> list[tuple[str, str]]:
    """``(url, file name)`` of every distinct image of ``task``: ``image_url`` first. Pure.

    ``name`` and ``label`` go into the file names (see :func:`task_image_filename`). A
    video's URL is never taken for an image: C lists its videos in ``imageUrls`` too.
    """
    jobs: list[tuple[str, str]] = []
    seen: set[str] = {ref.url for ref in task.videos}

    def filename(url: str, index: int | None) -> str:
        return task_image_filename(task.id, task.prompt, url, index=index, name=name, label=label)

    if task.image_url and task.image_url not in seen:
        seen.add(task.image_url)
        jobs.append((task.image_url, filename(task.image_url, None)))
    for number, ref in enumerate(task.image_urls, start=1):
        if ref.url and ref.url not in seen:
            seen.add(ref.url)
            jobs.append((ref.url, filename(ref.url, number)))
    return jobs


def is_grid(task: Task) -> bool:
    """Whether ``task``'s main image is a 2x2 grid (imagine, variation, blend, ...). Pure."""
    return task.action not in _NOT_GRIDS


def server_sent_parts(task: Task) -> bool:
    """Whether the server sent a grid's four images itself (``imageUrls``). Pure.

    The C proxy lists the four images of a finished grid beside the grid; they are the
    real, full-size images, so cutting the grid (``split=True``) would only add four
    smaller copies of them. A grid counts once four URLs other than the grid's own are there.
    """
    if not is_grid(task):
        return False
    return len({ref.url for ref in task.image_urls if ref.url} - {task.image_url}) >= 4


def _main_is_image(task: Task, jobs: list[tuple[str, str, Media]]) -> bool:
    """Whether the first job is the task's main image, fetched as an image."""
    return bool(jobs) and jobs[0][0] == task.image_url and jobs[0][2] == "image"


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, not {value!r}")


def _positive_seconds(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")


class Downloader:
    """Downloads task images into one directory, a bounded number at a time.

    Args:
        session: the aiohttp session to download with. One from :func:`image_session` with
            the same policy checks every address it connects to; with any other session,
            hosts are resolved and checked before each request.
        out_dir: where images go (created on first use). Nothing is written anywhere else.
        limit: downloads in flight at once.
        max_bytes: per image, as for :func:`download_image`.
        timeout: per image, as for :func:`download_image`.
        read_timeout: per image, as for :func:`download_image`.
        allow_untyped: per image, as for :func:`download_image`.
        max_redirects: per image, as for :func:`download_image`.
        allow_private_image_hosts: which hosts may be contacted, as for
            :func:`download_image`.
        api_server: which hosts may be contacted, as for :func:`download_image`.
        max_images_per_task: a task listing more image (and video) URLs fails without any
            download.
        max_bytes_per_task: the bytes all images and videos of one task may add up to.
        max_video_bytes: the largest video accepted.

    Raises:
        ValueError: a limit is not positive.
        TypeError: ``session`` is not an aiohttp session.

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
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        allow_untyped: bool = False,
        allow_private_image_hosts: bool = False,
        api_server: str | None = None,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
        max_images_per_task: int = DEFAULT_MAX_IMAGES_PER_TASK,
        max_bytes_per_task: int = DEFAULT_MAX_BYTES_PER_TASK,
        max_video_bytes: int = DEFAULT_MAX_VIDEO_BYTES,
    ) -> None:
        for name, value in (
            ("limit", limit),
            ("max_bytes", max_bytes),
            ("max_video_bytes", max_video_bytes),
            ("max_images_per_task", max_images_per_task),
            ("max_bytes_per_task", max_bytes_per_task),
        ):
            _positive_int(name, value)
        if isinstance(max_redirects, bool) or not isinstance(max_redirects, int):
            raise TypeError(f"max_redirects must be an int, not {type(max_redirects).__name__}")
        if max_redirects < 0:
            raise ValueError(f"max_redirects must be an int >= 0, not {max_redirects!r}")
        _positive_seconds("timeout", timeout)
        _positive_seconds("read_timeout", read_timeout)
        if not isinstance(session, aiohttp.ClientSession):
            raise TypeError(
                f"session must be an aiohttp.ClientSession, not {type(session).__name__}"
            )
        self._session = session
        self._out_dir = Path(out_dir)
        self._limiter = anyio.CapacityLimiter(limit)
        self._limits = _Limits(
            max_bytes=max_bytes,
            timeout=timeout,
            read_timeout=read_timeout,
            max_redirects=max_redirects,
            allow_untyped=allow_untyped,
            max_video_bytes=max_video_bytes,
        )
        policy = ImageHostPolicy(bool(allow_private_image_hosts), api_server)
        self._gate = _gate_for(session, policy)
        self._max_images_per_task = max_images_per_task
        self._max_bytes_per_task = max_bytes_per_task
        self._dir_ready = False
        # Two requests for the same file (a task listed twice) must not race on one name.
        self._file_locks: dict[Path, anyio.Lock] = {}

    @property
    def out_dir(self) -> Path:
        """The output directory."""
        return self._out_dir

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        """The limiter bounding downloads in flight (share it to bound several downloaders)."""
        return self._limiter

    async def download(self, url: str, name: str, *, media: Media = "image") -> DownloadResult:
        """Download ``url`` to ``out_dir/name`` (``name`` must be a plain, safe file name).

        ``media="video"`` takes an MP4 instead of an image (``video/*``, checked the same way).

        Raises:
            ValueError: ``name`` would leave the output directory.
            DownloadError: see :func:`download_image`.
        """
        return await self._download_counted(url, name, None, media)

    async def _download_counted(
        self, url: str, name: str, budget: _TaskBudget | None, media: Media = "image"
    ) -> DownloadResult:
        if not self._dir_ready:
            await anyio.to_thread.run_sync(self._make_dir)
        dest = await anyio.to_thread.run_sync(contained_path, self._out_dir, name)
        lock = self._file_locks.setdefault(dest, anyio.Lock())
        async with lock, self._limiter:
            return await _download(
                self._session, url, dest, self._limits, self._gate, budget, media
            )

    def _make_dir(self) -> None:
        self._out_dir.mkdir(parents=True, exist_ok=True)
        self._dir_ready = True

    async def fetch_task_images(
        self,
        task: Task,
        *,
        split: bool = False,
        name: str | None = None,
        label: str | None = None,
    ) -> list[Path]:
        """Download a task's images (``image_url``, ``image_urls``) and videos (``.mp4``).

        Names come from :func:`task_image_filename` (``image_url`` without an index, the
        entries of ``image_urls`` numbered from 1; ``name`` replaces the prompt's words,
        ``label`` names the button that made the image) and :func:`task_video_filename`
        (numbered from 1). With ``split=True`` the main image is also cut into four parts
        (:func:`split_grid`) unless the task is an upscale (or otherwise not a grid), or the
        server sent the four images itself (:func:`server_sent_parts`). Files already present
        are not fetched again (their bytes still count towards ``max_bytes_per_task``). A
        video task's image is its poster.

        Returns:
            The paths, main image first, then its split parts, then the other images, then
            the videos.

        Raises:
            DownloadError: the task lists more than ``max_images_per_task`` files, or none
                although its action makes some (:func:`expects_media`), or the first
                download that failed (the others still complete).
            ImportError: ``split=True`` without Pillow.
        """
        jobs = task_media_urls(task, name=name, label=label)
        if not jobs and expects_media(task):
            what = "a video" if expects_video(task) else "an image"
            raise DownloadError(
                f"task {task.id} succeeded without {what} URL", url=task.image_url or ""
            )
        if len(jobs) > self._max_images_per_task:
            raise DownloadError(
                f"task {task.id} lists {len(jobs)} images, over the limit of "
                f"{self._max_images_per_task} per task (nothing was downloaded)",
                url=jobs[0][0],
            )
        budget = _TaskBudget(self._max_bytes_per_task)
        results: list[DownloadResult | None] = [None] * len(jobs)
        errors: list[DownloadError] = []

        async def one(i: int, url: str, name: str, media: Media) -> None:
            try:
                results[i] = await self._download_counted(url, name, budget, media)
            except DownloadError as exc:
                errors.append(exc)
            except ValueError as exc:
                # The destination is unsafe (e.g. a symlink planted there points outside the
                # directory). Report it like any failed download, not as an ExceptionGroup.
                errors.append(DownloadError(f"unsafe destination: {exc}", url=url))

        async with anyio.create_task_group() as tg:
            for i, (url, file, media) in enumerate(jobs):
                tg.start_soon(one, i, url, file, media)
        if errors:
            raise errors[0]
        paths = [r.path for r in results if r is not None]
        if split and _main_is_image(task, jobs) and is_grid(task) and not server_sent_parts(task):
            parts = await anyio.to_thread.run_sync(split_grid, paths[0])
            paths[1:1] = parts
        return paths

    def expected_files(
        self,
        task: Task,
        *,
        split: bool = False,
        name: str | None = None,
        label: str | None = None,
    ) -> list[Path]:
        """The paths :meth:`fetch_task_images` returns for ``task``, without fetching. Pure."""
        jobs = task_media_urls(task, name=name, label=label)
        paths = [self._out_dir / file for _, file, _ in jobs]
        if split and _main_is_image(task, jobs) and is_grid(task) and not server_sent_parts(task):
            grid = paths[0]
            paths[1:1] = [grid.with_name(safe_filename(grid.stem, i, ".png")) for i in range(1, 5)]
        return paths

    def files_on_disk(
        self,
        task: Task,
        *,
        split: bool = False,
        name: str | None = None,
        label: str | None = None,
    ) -> list[Path]:
        """Those of :meth:`expected_files` that are already there (blocking).

        After a download failed part way, these are what the task still has on disk.
        """
        paths = self.expected_files(task, split=split, name=name, label=label)
        return [path for path in paths if _existing_size(path)]
