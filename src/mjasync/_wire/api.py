"""The wire API: one method per endpoint, server answers mapped to models or typed errors.

:func:`interpret` is the single place where an HTTP answer becomes a payload or an exception;
it is pure so every server family's error shape is tested without a server. :class:`WireAPI`
wraps it in the retry loop (reads retry freely, submits only when provably refused).
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import anyio
import attrs

from .._converter import parse_submission, parse_task, parse_task_id
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
    SubmissionUncertainError,
    TransportError,
    UnsupportedEndpointError,
)
from .._jobs.limiter import mode_key
from .._json import loads
from .._models import Submission, Task
from .retry import RetryPolicy, is_retryable, parse_retry_after, retry_delay
from .transport import Response, Transport

__all__ = ["RouteKind", "WireAPI", "WireCounters", "interpret"]

log = logging.getLogger("mjasync")

RouteKind = Literal["submit", "fetch", "list", "seed", "cancel"]
_SUCCESS_CODES = frozenset({1, 21, 22})
_LIST_CONCURRENCY = 4  # list-by-condition requests in flight at once within one poll round
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
            body=resp.body[:200].decode("utf-8", "replace"),
        ) from exc


def _try_decode(resp: Response) -> object:
    try:
        return _decode(resp)
    except ProtocolError:
        return None


def _description(payload: object, resp: Response, default: str) -> str:
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
        if isinstance(code, str) and _CODE_TEXT.match(code):
            return int(code)
    return None


def _properties(payload: object) -> Mapping[str, Any] | None:
    if isinstance(payload, Mapping):
        props = payload.get("properties")
        if isinstance(props, Mapping):
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
    object with a success code for ``submit``/``seed``/``cancel``.
    """
    status = resp.status
    if status in (401, 403):
        payload = _try_decode(resp)
        raise AuthenticationError(
            _description(payload, resp, "the server refused the API key"),
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
        body=resp.body[:200].decode("utf-8", "replace"),
    )


@attrs.define
class WireCounters:
    """Running totals of what the wire layer did (read by ``client.statistics()``)."""

    requests: int = 0
    retries: int = 0
    queue_full: int = 0
    rate_limited: int = 0
    list_requests: int = 0
    fetch_requests: int = 0
    submit_requests: int = 0


Sleep = Callable[[float], Awaitable[None]]


class WireAPI:
    """One method per endpoint, with the retry rules of :mod:`mjasync._wire.retry`.

    Args:
        transport: where requests go.
        policy: how hard to retry.
        list_batch_size: ids per ``list-by-condition`` request.
        sleep, random: injectable for tests (no real sleeping, no real randomness).
    """

    def __init__(
        self,
        transport: Transport,
        policy: RetryPolicy,
        *,
        list_batch_size: int = 200,
        fetch_concurrency: int = 8,
        sleep: Sleep = anyio.sleep,
        random: Callable[[], float] = random.random,
    ) -> None:
        self.transport = transport
        self.policy = policy
        self.list_batch_size = list_batch_size
        self.counters = WireCounters()
        self._sleep = sleep
        self._random = random
        self._fetch_limiter = anyio.CapacityLimiter(fetch_concurrency)
        self._no_list: set[str] = set()  # modes whose server lacks list-by-condition

    async def _send(
        self,
        method: str,
        route: str,
        kind: RouteKind,
        *,
        mode: str | None,
        body: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> object:
        """One read request with retries; returns the interpreted payload."""
        attempt = 0
        while True:
            self.counters.requests += 1
            try:
                resp = await self.transport.request(
                    method, route, mode=mode, json_body=body, timeout=timeout
                )
                return interpret(resp, kind)
            except MjError as exc:
                attempt += 1
                delay = retry_delay(attempt, self.policy, exc, self._random)
                if isinstance(exc, RateLimitError):
                    self.counters.rate_limited += 1
                if delay is None or not is_retryable(exc, "read"):
                    raise
                self.counters.retries += 1
                log.info(
                    "mjasync: retry %d of %s %s in %.2fs: %s", attempt, method, route, delay, exc
                )
                await self._sleep(delay)

    async def submit(
        self,
        route: str,
        body: Mapping[str, Any],
        *,
        mode: str | None,
        retry_refusals: bool = True,
    ) -> Submission:
        """POST a job. Retries only refusals (queue full, 429) and connections never opened.

        Raises:
            SubmissionUncertainError: the request may have reached the server and no answer
                was read; it is not sent again.
            QueueFullError, RateLimitError: refused and out of retries (or
                ``retry_refusals=False``).
            APIError: any other refusal (banned prompt, invalid request, ...).
        """
        attempt = 0
        state = body.get("state")
        while True:
            self.counters.requests += 1
            self.counters.submit_requests += 1
            try:
                resp = await self.transport.request("POST", route, mode=mode, json_body=body)
                payload = interpret(resp, "submit")
            except MjError as exc:
                if isinstance(exc, QueueFullError):
                    self.counters.queue_full += 1
                elif isinstance(exc, RateLimitError):
                    self.counters.rate_limited += 1
                if not is_retryable(exc, "submit"):
                    if _maybe_taken(exc):
                        raise SubmissionUncertainError(
                            f"the submit may have reached the server but no answer was read "
                            f"({exc}); it was not resent",
                            endpoint=route,
                            body=body,
                            state=state if isinstance(state, str) else None,
                            mode=mode,
                        ) from exc
                    raise
                attempt += 1
                refused = isinstance(exc, QueueFullError | RateLimitError)
                delay = retry_delay(attempt, self.policy, exc, self._random)
                if delay is None or (refused and not retry_refusals):
                    raise
                self.counters.retries += 1
                log.info(
                    "mjasync: submit %s refused (%s); retry %d in %.2fs", route, exc, attempt, delay
                )
                await self._sleep(delay)
                continue
            assert isinstance(payload, Mapping)
            submission = parse_submission(payload)
            if submission.task_id is None:
                raise SubmissionUncertainError(
                    f"the server accepted the job (code {submission.code}) but sent no task id",
                    endpoint=route,
                    body=body,
                    state=state if isinstance(state, str) else None,
                    mode=mode,
                )
            return submission

    async def fetch(self, task_id: str, *, mode: str | None) -> Task:
        """GET one task. Raises :class:`NotFoundError` for an unknown id (all three accents)."""
        self.counters.fetch_requests += 1
        route = f"/mj/task/{task_id}/fetch"
        payload = await self._send("GET", route, "fetch", mode=mode)
        try:
            return parse_task(payload)
        except ProtocolError as exc:
            raise ProtocolError(
                exc.message, method="GET", path=self.transport.path_for(route, mode), body=exc.body
            ) from exc

    async def fetch_payloads(
        self,
        task_ids: Sequence[str],
        *,
        mode: str | None,
        on_chunk: Callable[[list[Any]], None] | None = None,
    ) -> list[Any]:
        """Raw task objects for ids, via ``list-by-condition`` in chunks (or per-id fetch).

        Missing ids are simply absent. Order is whatever the server chose. With ``on_chunk``,
        each answer is handed over as it arrives and nothing is collected (the result is
        empty): a round over 10,000 tasks then holds a few chunks in memory, not all of them.
        """
        if not task_ids:
            return []
        if on_chunk is None:
            collected: list[Any] = []
            await self.fetch_payloads(task_ids, mode=mode, on_chunk=collected.extend)
            return collected
        key = mode_key(mode)
        if key not in self._no_list:
            chunks = [
                list(task_ids[start : start + self.list_batch_size])
                for start in range(0, len(task_ids), self.list_batch_size)
            ]
            try:
                # The first chunk alone tells whether the route exists at all.
                first = await self._list_chunk(chunks[0], mode)
            except UnsupportedEndpointError:
                # Old servers lack the route; if the mode prefix itself is wrong, the per-id
                # fetch below raises the same error with the hint to use mode=None.
                log.info("mjasync: no list-by-condition on this server; fetching one by one")
                self._no_list.add(key)
            else:
                on_chunk(first)
                del first
                if len(chunks) > 1:
                    # A big round goes out a few chunks at a time, not one after another.
                    limiter = anyio.CapacityLimiter(_LIST_CONCURRENCY)
                    failures: list[MjError] = []

                    async def one(chunk: list[str]) -> None:
                        async with limiter:
                            try:
                                payloads = await self._list_chunk(chunk, mode)
                            except MjError as exc:  # raised as itself below, not in a group
                                failures.append(exc)
                                tg.cancel_scope.cancel()
                                return
                        on_chunk(payloads)

                    async with anyio.create_task_group() as tg:
                        for chunk in chunks[1:]:
                            tg.start_soon(one, chunk)
                    if failures:
                        raise failures[0]
                return []
        await self._fetch_each(task_ids, mode=mode, on_chunk=on_chunk)
        return []

    async def _list_chunk(self, chunk: list[str], mode: str | None) -> list[Any]:
        self.counters.list_requests += 1
        payload = await self._send(
            "POST", "/mj/task/list-by-condition", "list", mode=mode, body={"ids": chunk}
        )
        assert isinstance(payload, list)
        return payload

    async def _fetch_each(
        self, task_ids: Iterable[str], *, mode: str | None, on_chunk: Callable[[list[Any]], None]
    ) -> None:
        failures: list[MjError] = []

        async def one(task_id: str) -> None:
            async with self._fetch_limiter:
                self.counters.fetch_requests += 1
                try:
                    payload = await self._send(
                        "GET", f"/mj/task/{task_id}/fetch", "fetch", mode=mode
                    )
                except NotFoundError:
                    return
                except MjError as exc:
                    # Stop the others and raise this error itself after the group, not
                    # wrapped in an ExceptionGroup the caller would have to unpack.
                    failures.append(exc)
                    tg.cancel_scope.cancel()
                    return
            on_chunk([payload])

        async with anyio.create_task_group() as tg:
            for task_id in task_ids:
                tg.start_soon(one, task_id)
        if failures:
            raise failures[0]

    async def fetch_many(self, task_ids: Iterable[str], *, mode: str | None) -> dict[str, Task]:
        """Tasks by id; ids the server does not know are left out of the result."""
        ids = list(dict.fromkeys(task_ids))
        result: dict[str, Task] = {}
        for payload in await self.fetch_payloads(ids, mode=mode):
            try:
                task = parse_task(payload)
            except ProtocolError as exc:
                log.warning("mjasync: skipped an unreadable task in a list answer: %s", exc)
                continue
            result[task.id] = task
        return result

    async def image_seed(self, task_id: str, *, mode: str | None, timeout: float) -> str:
        """The seed of a finished task (the server may take many seconds)."""
        route = f"/mj/task/{task_id}/image-seed"
        payload = await self._send("GET", route, "seed", mode=mode, timeout=timeout)
        assert isinstance(payload, Mapping)
        seed = parse_task_id(payload.get("result"))
        if seed is None:
            raise ProtocolError(
                "image-seed answer has no result",
                method="GET",
                path=self.transport.path_for(route, mode),
                body=repr(dict(payload))[:200],
            )
        return seed

    async def cancel(self, task_id: str, *, mode: str | None) -> None:
        """Ask the server to cancel a task (C only; others raise UnsupportedEndpointError)."""
        await self._send("POST", f"/mj/task/{task_id}/cancel", "cancel", mode=mode, body={})


def _maybe_taken(error: MjError) -> bool:
    """Whether a failed submit may still have created a job on the server."""
    if isinstance(error, TransportError):
        return error.request_sent
    if isinstance(error, ProtocolError):
        return True  # a 2xx we could not read: the server most likely took it
    if isinstance(error, ServerError):
        return error.http_status in (500, 502, 504) and error.code is None
    return False
