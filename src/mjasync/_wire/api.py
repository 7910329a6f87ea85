"""The wire API: one method per endpoint, server answers mapped to models or typed errors.

:func:`interpret` is the single place where an HTTP answer becomes a payload or an exception;
it is pure so every server family's error shape is tested without a server. :class:`WireAPI`
wraps it in the retry loop (reads retry freely, submits only when provably refused).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote

import anyio
import attrs

from .._converter import parse_submission, parse_task, parse_task_id
from .._errors import (
    MjError,
    NotFoundError,
    ProtocolError,
    QueueFullError,
    RateLimitError,
    SubmissionUncertainError,
    UnsupportedEndpointError,
)
from .._models import Submission, Task
from .._validation import check_task_id, is_task_id
from .interpret import RouteKind, interpret, maybe_taken
from .modes import mode_key
from .retry import RetryPolicy, is_retryable, retry_delay
from .transport import Transport

__all__ = ["FORM_ROUTES", "UPLOAD_ROUTE", "WireAPI", "WireCounters"]

log = logging.getLogger("mjasync")

_LIST_CONCURRENCY = 4  # list-by-condition requests in flight at once within one poll round
#: What a list-by-condition answer may hold per id asked, on top of the client's answer limit.
#: A task payload is 2-8 KB; a long prompt in three versions and many buttons stay below this.
LIST_BYTES_PER_ID: Final = 32 * 1024


def task_route(task_id: str, action: str) -> str:
    """``/mj/task/{id}/{action}`` for an id checked like a user's, quoted as a path segment.

    Ids a server sent (a submit answer, a list answer) are checked when they are read; this is
    the last line: nothing but a task id goes into the path, and it cannot leave its segment.

    >>> task_route("1320098173412546", "fetch")
    '/mj/task/1320098173412546/fetch'
    """
    return f"/mj/task/{quote(check_task_id(task_id), safe='')}/{action}"


#: Submit routes whose body goes as multipart/form-data, not JSON: C binds video-swap
#: ``[FromForm]`` (trueai-org/midjourney-proxy ed32197,
#: src/Midjourney.API/Controllers/InsightFaceController.cs:141) and answers JSON with 415.
FORM_ROUTES = frozenset({"/mj/insight-face/video-swap"})
UPLOAD_ROUTE = "/mj/submit/upload-discord-images"


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
        # mode key -> route template -> the error the server gave: asked once per mode.
        self._unsupported: dict[str, dict[str, UnsupportedEndpointError]] = {}
        # (mode key, route template) that answered once: the route exists, so a later
        # "no such route" answer is about that one request (a hostile or odd server's 404 for
        # one task id must not end every job that polls through the route).
        self._served: set[tuple[str, str]] = set()

    # -- endpoints the server lacks --------------------------------------------------------

    def unsupported(self, route: str, mode: str | None) -> UnsupportedEndpointError | None:
        """The error a route got in ``mode`` if the server showed it lacks it, else ``None``.

        ``route`` is the template (``/mj/task/{id}/cancel``) for routes with a task id.
        """
        known = self._unsupported.get(mode_key(mode), {}).get(route)
        if known is None:
            return None
        return UnsupportedEndpointError(
            known.description,
            message=f"{known.message} (remembered from an earlier answer; not sent again)",
            http_status=known.http_status,
            code=known.code,
            method=known.method,
            path=known.path,
        )

    def check_supported(self, route: str, mode: str | None) -> None:
        """Raise the remembered :class:`UnsupportedEndpointError` of ``route`` in ``mode``."""
        error = self.unsupported(route, mode)
        if error is not None:
            raise error

    def _remember_unsupported(
        self, route: str, mode: str | None, error: UnsupportedEndpointError
    ) -> None:
        self._unsupported.setdefault(mode_key(mode), {})[route] = error

    def _route_served(self, route: str, mode: str | None) -> None:
        key = mode_key(mode)
        self._served.add((key, route))
        self._unsupported.get(key, {}).pop(route, None)  # an answer proved it exists

    def _not_the_route(
        self, route: str, mode: str | None, error: UnsupportedEndpointError
    ) -> MjError:
        """What a "no such route" answer is: the route's absence, or (once it served) one miss."""
        if (mode_key(mode), route) not in self._served:
            self._remember_unsupported(route, mode, error)
            return error
        return NotFoundError(
            f"{error.description} (the route served other requests: taken as this one's miss)",
            http_status=error.http_status,
            method=error.method,
            path=error.path,
        )

    async def _send(
        self,
        method: str,
        route: str,
        kind: RouteKind,
        *,
        mode: str | None,
        body: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        max_bytes: int | None = None,
        template: str | None = None,
        ask_anyway: bool = False,
    ) -> object:
        """One read request with retries; returns the interpreted payload.

        ``template`` is the route with ``{id}`` for the task id: the key under which a
        missing route is remembered for this mode (and not asked again, unless
        ``ask_anyway``: the poller's fetches, whose answer may prove the route exists).
        """
        template = template or route
        if not ask_anyway:
            self.check_supported(template, mode)
        attempt = 0
        while True:
            self.counters.requests += 1
            try:
                resp = await self.transport.request(
                    method, route, mode=mode, json_body=body, timeout=timeout, max_bytes=max_bytes
                )
                payload = interpret(resp, kind)
            except UnsupportedEndpointError as exc:
                error = self._not_the_route(template, mode, exc)
                if error is exc:
                    raise
                raise error from exc
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
            else:
                self._route_served(template, mode)
                return payload

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
        self.check_supported(route, mode)
        attempt = 0
        state = body.get("state")
        form = route in FORM_ROUTES
        while True:
            self.counters.requests += 1
            self.counters.submit_requests += 1
            try:
                resp = await self.transport.request(
                    "POST",
                    route,
                    mode=mode,
                    json_body=None if form else body,
                    form_body=body if form else None,
                )
                payload = interpret(resp, "submit")
            except MjError as exc:
                if isinstance(exc, UnsupportedEndpointError):
                    self._remember_unsupported(route, mode, exc)
                if isinstance(exc, QueueFullError):
                    self.counters.queue_full += 1
                elif isinstance(exc, RateLimitError):
                    self.counters.rate_limited += 1
                if not is_retryable(exc, "submit"):
                    if maybe_taken(exc):
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
            return self._accepted(payload, route, body, mode)

    def _accepted(
        self, payload: object, route: str, body: Mapping[str, Any], mode: str | None
    ) -> Submission:
        """The :class:`Submission` of a success answer, or SubmissionUncertainError.

        The server said yes, so a paid job may exist: an answer we cannot use (no task id, an
        id that is not one, an unreadable shape) is uncertain, never a plain failure.
        """
        state = body.get("state")

        def uncertain(message: str) -> SubmissionUncertainError:
            return SubmissionUncertainError(
                message,
                endpoint=route,
                body=body,
                state=state if isinstance(state, str) else None,
                mode=mode,
            )

        try:
            assert isinstance(payload, Mapping)
            submission = parse_submission(payload)
        except Exception as exc:
            raise uncertain(
                f"the server accepted the job but its answer is unreadable ({exc})"
            ) from exc
        if submission.task_id is None:
            raise uncertain(
                f"the server accepted the job (code {submission.code}) but sent no task id"
            )
        if not is_task_id(submission.task_id):
            # It would go into URL paths (fetch, cancel): ../ or ?query would leave the API.
            shown = self.transport.scrub_text(submission.task_id[:80])
            raise uncertain(
                f"the server accepted the job (code {submission.code}) but its task id "
                f"{shown!r} is not a task id (letters, digits, '-', '_')"
            )
        return submission

    async def fetch(self, task_id: str, *, mode: str | None) -> Task:
        """GET one task. Raises :class:`NotFoundError` for an unknown id (all three accents)."""
        self.counters.fetch_requests += 1
        route = task_route(task_id, "fetch")
        payload = await self._send("GET", route, "fetch", mode=mode, template=_FETCH)
        try:
            return parse_task(payload)
        except ProtocolError as exc:
            raise ProtocolError(
                exc.message, method="GET", path=self.transport.path_for(route, mode), body=exc.body
            ) from exc

    def lists(self, mode: str | None) -> bool:
        """``False`` once ``list-by-condition`` proved missing for ``mode`` (polls go per id)."""
        return mode_key(mode) not in self._no_list

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
            "POST",
            "/mj/task/list-by-condition",
            "list",
            mode=mode,
            body={"ids": chunk},
            max_bytes=self.transport.max_response_bytes + len(chunk) * LIST_BYTES_PER_ID,
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
                        "GET",
                        task_route(task_id, "fetch"),
                        "fetch",
                        mode=mode,
                        template=_FETCH,
                        ask_anyway=True,
                    )
                except NotFoundError:
                    return
                except UnsupportedEndpointError as exc:
                    # Let the round finish: another id's answer may prove the route exists
                    # (then this was one task's miss, not the route's absence).
                    missing.append(exc)
                    return
                except MjError as exc:
                    # Stop the others and raise this error itself after the group, not
                    # wrapped in an ExceptionGroup the caller would have to unpack.
                    failures.append(exc)
                    tg.cancel_scope.cancel()
                    return
            on_chunk([payload])

        missing: list[UnsupportedEndpointError] = []
        async with anyio.create_task_group() as tg:
            for task_id in task_ids:
                tg.start_soon(one, task_id)
        if failures:
            raise failures[0]
        if missing and (mode_key(mode), _FETCH) not in self._served:
            raise missing[0]

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
        route = task_route(task_id, "image-seed")
        payload = await self._send(
            "GET", route, "seed", mode=mode, timeout=timeout, template="/mj/task/{id}/image-seed"
        )
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
        """Ask the server to cancel a task (C only; others raise UnsupportedEndpointError).

        C answers HTTP 200 with an empty body for any id, so success says only that the
        request was allowed; the task shows FAILURE "取消任务" once it is cancelled. A caller
        who is not an admin user is refused, as :class:`UnsupportedEndpointError`.
        """
        await self._send(
            "POST",
            task_route(task_id, "cancel"),
            "cancel",
            mode=mode,
            body={},
            template="/mj/task/{id}/cancel",
        )

    async def upload(self, body: Mapping[str, Any], *, mode: str | None) -> list[str]:
        """POST ``upload-discord-images``; the answer's ``result`` is a list of URLs.

        No task is created and nothing is paid, so a failed upload is retried like a read.
        """
        payload = await self._send("POST", UPLOAD_ROUTE, "upload", mode=mode, body=body)
        assert isinstance(payload, Mapping)
        result = payload.get("result")
        if not isinstance(result, list) or not all(isinstance(u, str) and u for u in result):
            raise ProtocolError(
                "upload answer's result is not a list of URLs",
                method="POST",
                path=self.transport.path_for(UPLOAD_ROUTE, mode),
                body=repr(dict(payload))[:200],
            )
        return list(result)


_FETCH = "/mj/task/{id}/fetch"
