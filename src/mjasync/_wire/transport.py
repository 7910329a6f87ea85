"""The HTTP seam: one aiohttp session, URL building, auth headers, and aiohttp errors mapped once.

Nothing above this module imports aiohttp for requests. A :class:`Response` carries the bytes
and the request it answers; deciding what those bytes mean is the job of :mod:`mjasync._wire.api`.

What the seam promises whatever the server does:

* redirects are never followed (the key would go wherever the server points);
* an answer is read incrementally and given up past a byte limit, or when the server goes
  silent mid-body for ``read_idle_timeout``: memory stays bounded;
* the API key is taken out of everything the server sent, also when spelled with JSON
  escapes (``\\u0073k-...``, ``\\/``), HTML character references or percent-encoding.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import aiohttp
import anyio
import attrs
from multidict import CIMultiDictProxy

from .._errors import ProtocolError, TransportError
from .._json import dumps
from .modes import check_mode_path, mode_prefix

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_READ_IDLE_TIMEOUT",
    "AuthOverride",
    "AuthScheme",
    "Response",
    "Transport",
    "redact_key",
]

log = logging.getLogger("mjasync")

AuthScheme = Literal["bearer", "mj-api-secret"]
#: What one request may send instead of the client's scheme (``"none"``: no key at all).
AuthOverride = Literal["bearer", "mj-api-secret", "authorization", "none"]
_SCRUB_MIN_KEY = 6  # shorter keys are no secret, and replacing them would mangle every text
_SCRUB_2XX_MIN_KEY = 12  # redact_key shows nothing of shorter keys either
#: The default cap on one answer. A list-by-condition answer gets more per id asked.
DEFAULT_MAX_RESPONSE_BYTES: Final = 4 * 1024 * 1024
#: The default limit on silence in the middle of an answer's body.
DEFAULT_READ_IDLE_TIMEOUT: Final = 15.0
_SNIPPET: Final = 200


def _hex(code: int, width: int) -> str:
    """A regex for ``code`` in hex, either case (``\\u002F`` and ``\\u002f`` alike)."""
    return "".join(f"[{c}{c.upper()}]" if c.isalpha() else c for c in f"{code:0{width}x}")


def key_spellings(key: str) -> str:
    """A regex matching ``key`` with any of its characters written as an escape.

    JSON (``\\u0073``, ``\\/``), HTML character references (``&#115;``, ``&#x73;``) and
    percent-encoding (``%73``) all decode back to the key, so a server echoing it in any of
    them must be scrubbed as if it had sent the key itself.
    """
    parts = []
    for char in key:
        code = ord(char)
        alternatives = [re.escape(char), f"&#0*{code};", f"&#[xX]0*{_hex(code, 1)};"]
        if code < 0x10000:
            alternatives.append(rf"\\u{_hex(code, 4)}")
        if code < 0x80:
            alternatives.append(f"%{_hex(code, 2)}")
        if char in '/"\\':
            alternatives.append(re.escape("\\" + char))
        parts.append(f"(?:{'|'.join(alternatives)})")
    return "".join(parts)


def _same_text(text: str) -> str:
    return text


def redact_key(key: str | None) -> str:
    """Show an API key as ``sk-…abcd`` at most; short keys show nothing of themselves.

    >>> redact_key("sk-1234567890abcdef")
    'sk-…cdef'
    >>> redact_key("hunter2")
    '…'
    """
    if not key:
        return "<none>"
    if len(key) < 12:
        return "…"
    prefix = key.split("-", 1)[0] + "-" if "-" in key[:6] else ""
    return f"{prefix}…{key[-4:]}"


def normalise_base_url(base_url: str) -> str:
    """Check a base URL and strip its trailing slash; raise ``ValueError`` with the fix."""
    if not isinstance(base_url, str):
        raise TypeError(f"base_url must be a str, not {type(base_url).__name__}")
    text = base_url.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"base_url must be an http(s) URL like 'https://relay.example.com', not {base_url!r}"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"base_url must not carry a query or fragment: {base_url!r}")
    if parts.username or parts.password:
        raise ValueError("base_url must not carry credentials; pass api_key= instead")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"base_url has a bad port ({exc}): {base_url!r}") from exc
    host = parts.hostname or ""
    if not host or any(c.isspace() for c in text) or port == 0:
        raise ValueError(
            f"base_url must be an http(s) URL like 'https://relay.example.com', not {base_url!r}"
        )
    return text


def is_loopback(host: str) -> bool:
    """``True`` for localhost and loopback addresses (plain http is fine there)."""
    if host in ("localhost", "localhost.") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@attrs.frozen(slots=True)
class Response:
    """What came back for one request: status, headers and the whole body.

    ``body`` and ``location`` (the ``Location`` header of a 3xx) are already scrubbed of the
    API key; ``redact`` scrubs any other server text (decoded JSON strings, for instance)
    before it goes into a message.
    """

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    method: str
    path: str
    mode_prefixed: bool
    location: str | None = None
    redact: Callable[[str], str] = attrs.field(default=_same_text, repr=False, eq=False)

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower case (``""`` when absent)."""
        value = self.headers.get("Content-Type", "")
        return value.split(";", 1)[0].strip().lower()


class Transport:
    """Owns the aiohttp session and turns (method, route, mode) into a :class:`Response`.

    Args:
        base_url: the server's root, e.g. ``https://relay.example.com``.
        api_key: sent as ``Authorization: Bearer KEY`` or ``mj-api-secret: KEY``.
        auth: which of the two headers to send.
        mode_path: the template for the mode segment.
        timeout: seconds for one request, connect included.
        session: an aiohttp session to use instead of our own (we will not close it).
            Redirects are not followed on it either: that is a per-request setting.
        max_response_bytes: the largest answer read; a larger one raises
            :class:`ProtocolError` (``request`` can raise the limit for one request).
        read_idle_timeout: seconds the server may go silent in the middle of an answer's
            body (waiting for the answer to start is bounded by ``timeout`` alone: a submit
            may take long before it answers).

    Raises:
        ValueError: a bad option.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        auth: AuthScheme = "bearer",
        mode_path: str = "/mj-{mode}",
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        session: aiohttp.ClientSession | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        read_idle_timeout: float = DEFAULT_READ_IDLE_TIMEOUT,
    ) -> None:
        self.base_url = normalise_base_url(base_url)
        if auth not in ("bearer", "mj-api-secret"):
            raise ValueError(f"auth must be 'bearer' or 'mj-api-secret', not {auth!r}")
        if api_key is not None and (not isinstance(api_key, str) or not api_key.strip()):
            raise ValueError("api_key must be a non-empty str (or None for no auth)")
        if not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        if (
            isinstance(max_response_bytes, bool)
            or not isinstance(max_response_bytes, int)
            or max_response_bytes < 1024
        ):
            raise ValueError(
                f"max_response_bytes must be an int of at least 1024, not {max_response_bytes!r}"
            )
        if (
            isinstance(read_idle_timeout, bool)
            or not isinstance(read_idle_timeout, int | float)
            or not read_idle_timeout > 0
        ):
            raise ValueError(
                f"read_idle_timeout must be a positive number of seconds, not {read_idle_timeout!r}"
            )
        self.mode_path = check_mode_path(mode_path)
        self.auth = auth
        self.timeout = float(timeout)
        self.connect_timeout = min(float(connect_timeout), self.timeout)
        self.max_response_bytes = max_response_bytes
        self.read_idle_timeout = float(read_idle_timeout)
        self._api_key = api_key.strip() if api_key else None
        self._key_bytes = self._api_key.encode() if self._api_key else b""
        self._redacted_bytes = self.redacted_key.encode()
        spelled = key_spellings(self._api_key) if self._api_key else None
        self._spelled = re.compile(spelled) if spelled else None
        self._spelled_bytes = re.compile(spelled.encode()) if spelled else None
        # What a JSON-escaped (or entity-encoded) spelling of the key needs in a body: only
        # then is the slower pattern run (C's bodies escape emoji, so a bare backslash is
        # common; an escaped ASCII character is not).
        self._escape_marks: tuple[bytes, ...] = (b"\\u00", b"&#")
        if self._api_key and not self._api_key.isascii():
            self._escape_marks += (b"\\u",)
        self._escape_marks += tuple(
            b"\\" + char.encode() for char in '/"\\' if self._api_key and char in self._api_key
        )
        self._session = session
        self._owns_session = session is None
        self._closed = False
        host = urlsplit(self.base_url).hostname or ""
        if self.base_url.startswith("http://") and not is_loopback(host) and self._api_key:
            log.warning(
                "mjasync: base_url %s is plain http to a non-loopback host; the API key "
                "travels unencrypted. Use https.",
                self.base_url,
            )

    @property
    def has_key(self) -> bool:
        """Whether requests carry an API key at all."""
        return self._api_key is not None

    @property
    def redacted_key(self) -> str:
        """The API key as it may be shown: ``sk-…abcd`` at most."""
        return redact_key(self._api_key)

    def scrub(self, data: bytes, status: int = 500) -> bytes:
        """``data`` with every copy of the API key replaced by its redacted form.

        Servers echo keys back ("Incorrect API key provided: sk-..."); what they send ends up
        in exception messages and logs, so the key is taken out as the bytes arrive, also
        when the server wrote some of its characters as JSON escapes (``\\u0073``,
        ``\\/``) or HTML character references. A short key (a self-hosted secret like
        ``1234``) could match real data by chance, so successful (2xx) answers are only
        scrubbed of keys long enough not to.
        """
        if not self._api_key or len(self._api_key) < _SCRUB_MIN_KEY:
            return data
        if 200 <= status < 300 and len(self._api_key) < _SCRUB_2XX_MIN_KEY:
            return data
        if self._key_bytes in data:
            data = data.replace(self._key_bytes, self._redacted_bytes)
        if self._spelled_bytes is not None and any(mark in data for mark in self._escape_marks):
            redacted = self._redacted_bytes
            data = self._spelled_bytes.sub(lambda _: redacted, data)
        return data

    def scrub_text(self, text: str) -> str:
        """``text`` (decoded server text, an error message) without the key in any spelling.

        Not for the hot path: every answer's bytes are scrubbed by :meth:`scrub` already; this
        covers text that reaches a message by another way (headers, decoded strings).
        """
        if self._spelled is None or len(self._key_bytes) < _SCRUB_MIN_KEY:
            return text
        redacted = self.redacted_key
        return self._spelled.sub(lambda _: redacted, text)

    def _headers(self, auth: AuthOverride | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        scheme = self.auth if auth is None else auth
        if self._api_key:
            if scheme == "bearer":
                headers["Authorization"] = f"Bearer {self._api_key}"
            elif scheme == "authorization":
                headers["Authorization"] = self._api_key  # C and N read the raw value too
            elif scheme == "mj-api-secret":
                headers["mj-api-secret"] = self._api_key
        return headers

    def path_for(self, route: str, mode: str | None) -> str:
        """The request path (mode segment included), without the base URL."""
        return mode_prefix(mode, self.mode_path) + route

    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session, created on first use (it must be made inside the loop)."""
        if self._closed:
            raise RuntimeError("this mjasync client is closed; create a new one")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": "mjasync"},
                connector=aiohttp.TCPConnector(limit=100, enable_cleanup_closed=True),
            )
        return self._session

    async def request(
        self,
        method: str,
        route: str,
        *,
        mode: str | None,
        json_body: Mapping[str, Any] | None = None,
        form_body: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        auth: AuthOverride | None = None,
        max_bytes: int | None = None,
    ) -> Response:
        """Send one request (redirects not followed) and read the whole answer, bounded.

        Args:
            json_body: sent as JSON.
            form_body: sent as ``multipart/form-data`` instead (C's video face swap binds a
                form): ``bytes`` values go as files, ``str`` values as fields.
            auth: this request's auth header instead of the client's scheme (the probe).
            max_bytes: the largest answer read for this request (default
                ``max_response_bytes``).

        Raises:
            TransportError: no answer was read. ``request_sent`` is ``False`` only when the
                connection could not be opened, so nothing reached the server.
            ProtocolError: the answer is larger than the limit (nothing more is read).
        """
        path = self.path_for(route, mode)
        total = timeout if timeout is not None else self.timeout
        client_timeout = aiohttp.ClientTimeout(
            total=total, sock_connect=min(self.connect_timeout, total)
        )
        headers = self._headers(auth)
        data: bytes | str | aiohttp.FormData | None = None
        if form_body is not None:
            data = _form(form_body)
        elif json_body is not None:
            data = dumps(json_body)
            if isinstance(data, str):
                data = data.encode()
            headers["Content-Type"] = "application/json"
        limit = self.max_response_bytes if max_bytes is None else max_bytes
        try:
            # allow_redirects=False: a redirect would carry the key (mj-api-secret is not
            # an auth header aiohttp strips) to wherever the server points, and turn a POST
            # into a GET whose answer would pass for the submit's.
            async with self.session().request(
                method,
                self.base_url + path,
                data=data,
                headers=headers,
                timeout=client_timeout,
                allow_redirects=False,
            ) as resp:
                body = self.scrub(await self._read(resp, limit, method, path), resp.status)
                location = resp.headers.get("Location") if 300 <= resp.status < 400 else None
                return Response(
                    status=resp.status,
                    headers=resp.headers,
                    body=body,
                    method=method,
                    path=path,
                    mode_prefixed=mode is not None,
                    location=None if location is None else self.scrub_text(location),
                    redact=self.scrub_text,
                )
        except aiohttp.ClientConnectorError as exc:
            raise TransportError(
                self.scrub_text(f"could not connect to {self.base_url}: {exc.os_error or exc}"),
                method=method,
                path=path,
                request_sent=False,
            ) from exc
        except aiohttp.InvalidURL as exc:
            raise TransportError(
                f"the request URL is invalid: {exc}",
                method=method,
                path=path,
                request_sent=False,
            ) from exc
        except aiohttp.ConnectionTimeoutError as exc:
            raise TransportError(
                f"connecting to {self.base_url} timed out after {self.connect_timeout:g}s",
                method=method,
                path=path,
                request_sent=False,
            ) from exc
        except TimeoutError as exc:
            raise TransportError(f"no answer within {total:g}s", method=method, path=path) from exc
        except aiohttp.ClientError as exc:
            raise TransportError(
                self.scrub_text(f"connection failed mid-request: {type(exc).__name__}: {exc}"),
                method=method,
                path=path,
            ) from exc

    async def _read(
        self, resp: aiohttp.ClientResponse, limit: int, method: str, path: str
    ) -> bytes:
        """The body, a buffer's worth at a time: it stops at most one buffer past ``limit``.

        What has already arrived is taken without waiting (a small answer usually has all
        arrived with its headers); only a wait for more runs under the idle timer.
        """
        declared = resp.content_length
        if declared is not None and declared > limit:
            raise self._too_large(limit, b"", method, path, declared=declared)
        content = resp.content
        parts: list[bytes] = []
        size = 0
        while True:
            chunk = content.read_nowait()
            if not chunk:
                if content.at_eof():
                    break
                idle = min(self.read_idle_timeout, self.timeout)
                with anyio.move_on_after(idle) as silence:
                    chunk = await content.readany()
                if silence.cancelled_caught:
                    raise TransportError(
                        f"the server went silent for {idle:g}s in the middle of its answer",
                        method=method,
                        path=path,
                    )
                if not chunk:
                    break
            parts.append(chunk)
            size += len(chunk)
            if size > limit:
                raise self._too_large(limit, parts[0], method, path)
        return b"".join(parts)

    def _too_large(
        self,
        limit: int,
        start: bytes | bytearray,
        method: str,
        path: str,
        *,
        declared: int | None = None,
    ) -> ProtocolError:
        size = f"declares {declared:,} bytes" if declared is not None else "goes on"
        snippet = self.scrub(bytes(start[: _SNIPPET * 4]), 500)[:_SNIPPET]
        return ProtocolError(
            f"the answer {size} past the limit of {limit:,} bytes "
            "(Client(max_response_bytes=...) sets it); not read further",
            method=method,
            path=path,
            body=self.scrub_text(snippet.decode("utf-8", "replace")),
        )

    async def aclose(self) -> None:
        """Close our session (a session the caller brought stays open)."""
        self._closed = True
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None


def _form(fields: Mapping[str, Any]) -> aiohttp.FormData:
    """A multipart form: a ``data:video/...`` URL as a file part, other values as text fields.

    Bodies stay JSON (a journal hashes them, an uncertain submit reports them), so a file
    travels inside them as a data URL and becomes a file part only here.
    """
    form = aiohttp.FormData()
    for name, value in fields.items():
        if value is None:
            continue
        if isinstance(value, str) and value.startswith("data:video/") and "," in value:
            header, payload = value.split(",", 1)
            mime = header[5:].split(";", 1)[0]
            data = base64.b64decode(payload)
            form.add_field(name, data, filename=f"{name}.mp4", content_type=mime)
        elif isinstance(value, bool):
            form.add_field(name, "true" if value else "false")
        else:
            form.add_field(name, str(value))
    return form
