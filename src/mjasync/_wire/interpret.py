"""What a server's answer means: a payload, or the most specific :class:`MjError` (pure).

:func:`interpret` is the single place where an HTTP answer becomes a payload or an exception,
and :func:`maybe_taken` decides whether a failed submit may still have created a (paid) job.
Both are pure, so every server family's answer shapes are tested without a server.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from .._errors import (
    APIError,
    AuthenticationError,
    BannedPromptError,
    InvalidRequestError,
    MjError,
    NotFoundError,
    ProtocolError,
    QueueFullError,
    RateLimitError,
    ServerError,
    TransportError,
    UnsupportedEndpointError,
)
from .._json import loads, nested_deeper_than
from .messages import explain
from .retry import parse_retry_after
from .transport import Response

__all__ = ["RouteKind", "error_for_code", "interpret", "maybe_taken"]

RouteKind = Literal["submit", "fetch", "list", "seed", "cancel"]
_SUCCESS_CODES = frozenset({1, 21, 22})
_QUEUE_FULL_TEXT = "队列已满"  # C's code 9 "queue full": the one text the protocol makes us read
_TITLE = re.compile(rb"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)
# ASCII digits, bounded: str.isdigit() also accepts "²", and int() refuses 4300+ digits.
_CODE_TEXT = re.compile(r"^-?[0-9]{1,18}$")


def _decode(resp: Response) -> object:
    """The body as JSON, ``None`` when empty; :class:`ProtocolError` when unreadable."""
    if not resp.body.strip():
        return None
    try:
        return loads(resp.body)
    except (ValueError, RecursionError) as exc:  # RecursionError: "[[[[..." nested too deep
        raise ProtocolError(
            f"unreadable JSON body (HTTP {resp.status}, {resp.content_type or 'no type'})",
            method=resp.method,
            path=resp.path,
            body=_snippet(resp),
        ) from exc


def _snippet(resp: Response) -> str:
    """The start of the body for an error, as text without the key in any spelling."""
    return resp.redact(resp.body[:200].decode("utf-8", "replace"))


def _try_decode(resp: Response) -> object:
    try:
        return _decode(resp)
    except ProtocolError:
        return None


def _description(payload: object, resp: Response, default: str) -> str:
    # Server text goes into an exception message: scrubbed of the key in any spelling (the
    # body's bytes were, but a decoded string may spell it in a way bytes do not show).
    return resp.redact(_server_text(payload, resp, default))


def _server_text(payload: object, resp: Response, default: str) -> str:
    if isinstance(payload, Mapping):
        for key in ("description", "message", "msg"):
            value = payload.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
        error = payload.get("error")
        if isinstance(error, Mapping):
            message = error.get("message")
            if isinstance(message, str) and message.strip():
                return message.strip()
        if isinstance(error, str) and error.strip():
            return error.strip()
    if resp.body and resp.content_type == "text/html":
        title = _TITLE.search(resp.body[:4096])
        text = title.group(1).decode("utf-8", "replace").strip() if title else "HTML page"
        return f"{default} (an HTML error page: {text!r})"
    if resp.body and resp.content_type.startswith("text/"):
        return resp.body[:200].decode("utf-8", "replace").strip() or default
    return default


def _code_of(payload: object) -> int | None:
    if isinstance(payload, Mapping):
        code = payload.get("code")
        if isinstance(code, int) and not isinstance(code, bool):
            return code
        if isinstance(code, str) and _CODE_TEXT.fullmatch(code):
            return int(code)
    return None


def _properties(payload: object) -> Mapping[str, Any] | None:
    if isinstance(payload, Mapping):
        props = payload.get("properties")
        # A hostile nesting would make every repr of the error a RecursionError: dropped.
        if isinstance(props, Mapping) and not nested_deeper_than(props):
            return props
    return None


def error_for_code(
    code: int,
    description: str,
    *,
    kind: RouteKind,
    resp: Response,
    properties: Mapping[str, Any] | None,
) -> APIError:
    """Map a proxy body ``code`` (and the HTTP status) to the most specific error (pure)."""
    ctx: dict[str, Any] = {
        "http_status": resp.status,
        "code": code,
        "properties": properties,
        "method": resp.method,
        "path": resp.path,
        "message": explain(description, code=code, properties=properties),
    }
    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
    if code == 23 or (code == 9 and _QUEUE_FULL_TEXT in description):
        return QueueFullError(description, retry_after=retry_after, **ctx)
    if code == 24:
        return BannedPromptError(description, **ctx)
    if code == 3:
        return NotFoundError(description, **ctx)
    if code == 4:
        # Relays answer an unknown task id with code 4 "task_no_found": on reads it means that.
        if kind in ("fetch", "seed", "cancel"):
            return NotFoundError(description, **ctx)
        return InvalidRequestError(description, **ctx)
    if code == 30 or resp.status == 429:
        return RateLimitError(description, retry_after=retry_after, **ctx)
    if code == 9 or resp.status >= 500:
        return ServerError(description, **ctx)
    if 400 <= resp.status < 500:
        return InvalidRequestError(description, **ctx)
    return APIError(description, **ctx)


def _route_missing(resp: Response) -> UnsupportedEndpointError:
    hint = (
        "; servers of the original Java proxy serve no mode prefixes: try Client(mode=None), "
        "or set mode_path= to the relay's pattern (e.g. '/{mode}')"
        if resp.mode_prefixed
        else ""
    )
    return UnsupportedEndpointError(
        f"the server has no route {resp.path}{hint}",
        http_status=resp.status,
        method=resp.method,
        path=resp.path,
    )


def interpret(resp: Response, kind: RouteKind) -> object:
    """Turn one answer into its payload, or raise the most specific :class:`MjError`.

    Returns the decoded JSON: a task object for ``fetch``, a list for ``list``, a submit-style
    object with a success code for ``submit``/``seed``/``cancel``. A redirect (3xx) is an
    :class:`APIError` naming its ``Location``: API calls never follow one. Whatever the
    answer, nothing but an :class:`MjError` is raised.
    """
    try:
        return _interpret(resp, kind)
    except MjError:
        raise
    except Exception as exc:  # a safety net: no answer may crash the client
        raise ProtocolError(
            f"unreadable {kind} answer (HTTP {resp.status}; {type(exc).__name__})",
            method=resp.method,
            path=resp.path,
            body=_snippet(resp),
        ) from exc


def _redirect(resp: Response) -> APIError:
    location = resp.location if resp.location is not None else resp.headers.get("Location")
    where = repr(resp.redact(location)[:300]) if location else "no Location given"
    return APIError(
        f"the server answered with a redirect to {where}; API calls do not follow "
        "redirects (check base_url: scheme, host and path prefix)",
        http_status=resp.status,
        method=resp.method,
        path=resp.path,
    )


def _interpret(resp: Response, kind: RouteKind) -> object:
    status = resp.status
    if 300 <= status < 400:
        raise _redirect(resp)
    if status in (401, 403):
        payload = _try_decode(resp)
        description = _description(payload, resp, "the server refused the API key")
        raise AuthenticationError(
            description,
            message=explain(description),
            http_status=status,
            code=_code_of(payload),
            method=resp.method,
            path=resp.path,
        )
    if status == 404 or status == 405:
        payload = _try_decode(resp)
        code = _code_of(payload)
        # A body code means the route exists and answered (C: 404 {"code": 3} for an unknown
        # id); Spring's own 404 JSON has "status"/"error" but no "code".
        if code is not None and status == 404:
            raise error_for_code(
                code,
                _description(payload, resp, "not found"),
                kind=kind,
                resp=resp,
                properties=_properties(payload),
            )
        raise _route_missing(resp)
    if status >= 300 or status < 200:
        payload = _try_decode(resp)
        code = _code_of(payload)
        description = _description(payload, resp, f"HTTP {status}")
        if code is not None and code not in _SUCCESS_CODES:
            raise error_for_code(
                code, description, kind=kind, resp=resp, properties=_properties(payload)
            )
        ctx: dict[str, Any] = {
            "http_status": status,
            "code": code,
            "properties": _properties(payload),
            "method": resp.method,
            "path": resp.path,
            "message": explain(description, code=code),
        }
        if status == 429:
            raise RateLimitError(
                description, retry_after=parse_retry_after(resp.headers.get("Retry-After")), **ctx
            )
        if status >= 500:
            raise ServerError(description, **ctx)
        if status == 408:
            raise APIError(description, **ctx)
        raise InvalidRequestError(description, **ctx)

    payload = _decode(resp)
    if kind == "fetch":
        if payload is None:  # J answers an unknown id with an empty 200
            raise NotFoundError(
                "no such task", http_status=status, method=resp.method, path=resp.path
            )
        if isinstance(payload, Mapping) and "id" in payload:
            return payload
    elif kind == "list":
        if isinstance(payload, list):
            return payload
    elif isinstance(payload, Mapping):
        code = _code_of(payload)
        if code in _SUCCESS_CODES:
            return payload
        if code is not None or payload.get("success") is False:
            raise error_for_code(
                code if code is not None else -1,
                _description(payload, resp, "the server refused the request"),
                kind=kind,
                resp=resp,
                properties=_properties(payload),
            )
    code = _code_of(payload)
    if code is not None and code not in _SUCCESS_CODES:
        raise error_for_code(
            code,
            _description(payload, resp, "error"),
            kind=kind,
            resp=resp,
            properties=_properties(payload),
        )
    raise ProtocolError(
        f"unexpected {kind} answer shape: {type(payload).__name__}",
        method=resp.method,
        path=resp.path,
        body=_snippet(resp),
    )


def maybe_taken(error: MjError) -> bool:
    """Whether a failed submit may still have created a job on the server."""
    if isinstance(error, TransportError):
        return error.request_sent
    if isinstance(error, ProtocolError):
        return True  # a 2xx we could not read: the server most likely took it
    if isinstance(error, ServerError):
        return error.http_status in (500, 502, 504) and error.code is None
    return False
