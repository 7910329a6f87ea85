"""What a server's answer means: a payload, or the most specific :class:`MjError` (pure).

:func:`interpret` is the single place where an HTTP answer becomes a payload or an exception,
and :func:`maybe_taken` decides whether a failed submit may still have created a (paid) job.
Both are pure, so every server family's answer shapes are tested without a server.

The family-specific answers decided here, as the servers' source has them (J novicezk
fd045f9, C trueai-org ed32197, N QuantumNous/new-api 65b1654; see ``tests/conformance``):

- an HTML page with a 2xx status on an API route is new-api's web UI, which it serves for
  every route it lacks (``router/web-router.go``): the endpoint is unsupported;
- C answers a successful cancel with HTTP 200 and an empty body, and a non-admin with HTTP
  400 plain text (``Controllers/TaskController.cs:86-125``);
- C's ``{success: false, code: -1}`` with "并发数已达上限" / "队列数已达上限" (and imagine's code 4
  with the same text) is per-user back-pressure, waited out like queue-full
  (``Controllers/SubmitController.cs:1195-1241``);
- C's rate limiter answers HTTP 403 (blocked) or 429 with an empty body
  (``RateLimitingMiddleware.cs:100-145``): a rate limit, not an auth failure;
- N's code 5 (upstream unreachable or unreadable) comes with HTTP 400 (``controller/relay.go``);
- C's image-seed of an unfinished task is HTTP 400 code 4 (``TaskController.cs:132-160``);
- N's 503 ``model_not_found`` means no channel of the relay sells that endpoint.
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
from .endpoints import FAMILIES, endpoint_for_path, served_by
from .messages import explain
from .retry import parse_retry_after
from .transport import Response

__all__ = ["RouteKind", "error_for_code", "interpret", "maybe_taken"]

RouteKind = Literal["submit", "fetch", "list", "seed", "cancel", "upload"]
_SUCCESS_CODES = frozenset({1, 21, 22})
_QUEUE_FULL_TEXT = "队列已满"  # C's code 9 "queue full": the one text the protocol makes us read
# C's per-user limits ("concurrency / queue limit reached"): the job was refused before it was
# created, like queue-full. Imagine reports them as code 4, the other submits as code -1.
_BACK_PRESSURE_TEXTS = ("并发数已达上限", "队列数已达上限")
_C_UNAVAILABLE_TEXT = "服务暂不可用"  # C without Redis refuses every submit with this (-1 shape)
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# new-api's own "no such task" words (relay/mjproxy_handler.go), with or without its trailing
# space: on image-seed they mean "unknown id"; C's code 4 there means "not finished yet".
_NOT_FOUND_TOKENS = frozenset({"task_no_found", "task_not_found"})
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
    relay_own: bool = False,
) -> APIError:
    """Map a proxy body ``code`` (and the HTTP status) to the most specific error (pure).

    ``relay_own``: the body is new-api's own error (``type: upstream_error``), not an
    upstream answer it passed through.
    """
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
    if code in (4, -1) and any(text in description for text in _BACK_PRESSURE_TEXTS):
        return QueueFullError(description, retry_after=retry_after, **ctx)
    if code == 24:
        return BannedPromptError(description, **ctx)
    if code == 3:
        return NotFoundError(description, **ctx)
    if code == 4:
        not_found = relay_own or description.strip() in _NOT_FOUND_TOKENS
        if kind == "seed" and not not_found:
            # C: the task has no Discord message hash yet, i.e. it has not finished.
            ctx["message"] = "the task has no seed yet: it has not finished"
            return InvalidRequestError(description, **ctx)
        # Relays answer an unknown task id with code 4 "task_no_found": on reads it means that.
        if kind in ("fetch", "seed", "cancel"):
            return NotFoundError(description, **ctx)
        return InvalidRequestError(description, **ctx)
    if code == 30 or resp.status == 429:
        return RateLimitError(description, retry_after=retry_after, **ctx)
    if code == 5 and resp.status == 400:
        # new-api's MjErrorUnknown (upstream unreachable, unreadable answer), sent as HTTP 400
        # (QuantumNous/new-api controller/relay.go:424-434): the server failed, not the request.
        return ServerError(description, **ctx)
    if code == 9 or resp.status >= 500:
        return ServerError(description, **ctx)
    if code == -1 and _C_UNAVAILABLE_TEXT in description:
        return ServerError(description, **ctx)  # C without Redis: the server is not set up
    if 400 <= resp.status < 500:
        return InvalidRequestError(description, **ctx)
    return APIError(description, **ctx)


def _route_missing(resp: Response, *, html: bool = False) -> UnsupportedEndpointError:
    endpoint = endpoint_for_path(resp.path)
    # Naming the families helps only for endpoints some lack; a 404 on imagine or fetch means
    # a wrong base URL or mode prefix, which the hint below is about.
    partial = endpoint is not None and len(endpoint.families) < len(FAMILIES)
    where = f"; {endpoint.name} is served by {served_by(endpoint)}" if partial and endpoint else ""
    hint = (
        "; servers of the original Java proxy serve no mode prefixes: try Client(mode=None), "
        "or set mode_path= to the relay's pattern (e.g. '/{mode}')"
        if resp.mode_prefixed and not html
        else ""
    )
    how = " (it answered with an HTML page, as new-api relays do for routes they lack)"
    return UnsupportedEndpointError(
        f"the server has no route {resp.path}{how if html else ''}{where}{hint}",
        http_status=resp.status,
        method=resp.method,
        path=resp.path,
    )


def _relay_error_code(payload: object) -> str | None:
    """new-api's gatekeeper errors: ``{"error": {"message", "type", "code"}}``."""
    if isinstance(payload, Mapping):
        error = payload.get("error")
        if isinstance(error, Mapping):
            code = error.get("code")
            return code if isinstance(code, str) else None
    return None


def _is_relay_own(payload: object) -> bool:
    return isinstance(payload, Mapping) and payload.get("type") == "upstream_error"


def interpret(resp: Response, kind: RouteKind) -> object:
    """Turn one answer into its payload, or raise the most specific :class:`MjError`.

    Returns the decoded JSON: a task object for ``fetch``, a list for ``list``, a submit-style
    object with a success code for ``submit``/``seed``/``upload``/``cancel``; ``None`` for
    C's empty-bodied cancel success. A redirect (3xx) is an :class:`APIError` naming its
    ``Location``: API calls never follow one. Whatever the answer, nothing but an
    :class:`MjError` is raised.
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
    if 200 <= status < 300 and resp.content_type in _HTML_TYPES:
        raise _route_missing(resp, html=True)
    if kind == "cancel":
        if 200 <= status < 300 and not resp.body.strip():
            return None  # C: Ok() with no body, for any id (it proves nothing more)
        if status == 400 and _try_decode(resp) is None and resp.body.strip():
            # C: plain text "演示模式，禁止操作" to every caller who is not an admin user.
            raise UnsupportedEndpointError(
                _description(None, resp, "refused"),
                message="this server lets only admin users cancel tasks",
                http_status=status,
                method=resp.method,
                path=resp.path,
            )
    if status == 403 and not resp.body.strip():
        # C's rate limiter: a blacklisted or too-fast client is blocked for a while. Auth
        # failures on C are 401 with a text body; J and N never send an empty 403.
        raise RateLimitError(
            "the server's rate limiter blocked this client for a while (HTTP 403, empty body)",
            retry_after=parse_retry_after(resp.headers.get("Retry-After")),
            http_status=status,
            method=resp.method,
            path=resp.path,
        )
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
                relay_own=_is_relay_own(payload),
            )
        raise _route_missing(resp)
    if status >= 300 or status < 200:
        payload = _try_decode(resp)
        code = _code_of(payload)
        description = _description(payload, resp, f"HTTP {status}")
        if status == 503 and _relay_error_code(payload) == "model_not_found":
            endpoint = endpoint_for_path(resp.path)
            raise UnsupportedEndpointError(
                description,
                message=f"this relay sells no channel for "
                f"{endpoint.name if endpoint else resp.path} (model_not_found)",
                http_status=status,
                method=resp.method,
                path=resp.path,
            )
        if code is not None and code not in _SUCCESS_CODES:
            raise error_for_code(
                code,
                description,
                kind=kind,
                resp=resp,
                properties=_properties(payload),
                relay_own=_is_relay_own(payload),
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
        if error.code == 5:
            # new-api's code 5: the upstream could not be reached, or answered something it
            # could not read; the upstream may have taken the job.
            return True
        return error.http_status in (500, 502, 504) and error.code is None
    return False
