"""The client facade: configuration, lifecycle, and the job calls over one job engine.

``Client`` only wires layers together. Its methods come in three groups:

- **wire calls** (:mod:`.wire_calls`): one request each — ``submit_*``, ``fetch``,
  ``upload_images``, ...; and ``probe`` (:mod:`.probe`): which server this is;
- **job calls** (here, the buttons in :mod:`.buttons`, the newer endpoints in :mod:`.media`):
  ``submit`` → :class:`Job`, ``run``, ``imagine``, ``action``, ``video``, ``edit``, ``job``;
- **many-job calls** (here, over :mod:`mjasync._jobs.many`): ``gather``, ``stream``, ``watch``.

Every job, whichever call started it, runs through the one :class:`JobEngine` (slots,
submits, tracking, abandonment, outcome counts), whose background work lives in the
client's own task group and so cannot outlive ``async with client``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Literal, Self

import aiohttp
import anyio
import anyio.abc

from .._errors import MjError
from .._jobs.engine import JobEngine
from .._jobs.events import ProgressEvent
from .._jobs.job import Job
from .._jobs.limiter import Limiter
from .._jobs.many import follow_ids, gather_jobs, stream_jobs
from .._jobs.pacing import PollSettings
from .._models import Task, TaskStatus
from .._requests import Imagine, Request
from .._validation import DEFAULT_MAX_IMAGE_BYTES, ImageInput, check_task_id, check_timeout
from .._wire.api import WireAPI
from .._wire.retry import RetryPolicy
from .._wire.transport import DEFAULT_MAX_RESPONSE_BYTES, AuthScheme, Transport
from .buttons import ButtonCalls
from .config import DEFAULT, ClientConfig, Default, PushSource
from .media import MediaCalls
from .probe import ProbeCalls
from .statistics import ClientStatistics, snapshot
from .wire_calls import REQUEST_TYPES, ModeArg

__all__ = ["Client"]


class Client(ButtonCalls, MediaCalls, ProbeCalls):
    """An async client for one midjourney-proxy server or relay (one aiohttp session).

    Args:
        base_url: the server root, e.g. ``"https://relay.example.com"``; default ``$MJ_BASE_URL``.
        api_key: the key; default ``$MJ_API_KEY``. Shown as ``sk-…abcd`` at most, anywhere.
        mode: ``"fast"``, ``"relax"``, ``"turbo"`` or ``None`` (no mode segment: the original
            Java proxy has none); default ``$MJ_MODE`` or ``"fast"``.
        mode_path: where the mode goes in the URL; ``"/mj-{mode}"`` or e.g. ``"/{mode}"``.
        auth: ``"bearer"`` (``Authorization: Bearer KEY``, relays) or ``"mj-api-secret"``
            (self-hosted Java/C# proxies).
        concurrency: jobs *running* on the upstream account per mode (default 3), or
            ``"auto"`` (learn it: grow while the account runs more, stop where it queues).
            Not with ``limiter`` (give the limiter its concurrency).
        queue_ahead: jobs let *wait* in the account's own queue beyond the running ones, so
            that a freed core starts the next job at once instead of after the client noticed
            (default ``None``: one per core; ``0``: never, each job is sent only when one of
            ours ended). Only once the account is seen to queue — a submit answered "queued"
            (code 22) or a job of ours ``NOT_START`` while another runs — so an account with
            more cores than ``concurrency`` never runs more than ``concurrency`` of ours;
            never more than a queued job can wait well inside the servers' timeouts (about
            two minutes); halved by a queue-full refusal.
        poll_interval: the poller's base interval in seconds (default 2); it adapts around it.
            Not with ``poll_settings``.
        timeout: seconds for one HTTP request.
        max_retries: retries of one request (default 3). Not with ``retry``.
        session: your own ``aiohttp.ClientSession`` (not closed by the client).
        retry: a full :class:`RetryPolicy` (retries of one request, and how long a job the
            server refused as busy keeps being resent: ``refusal_wait``, 15 minutes).
        limiter: a shared in-flight budget (e.g. ``RedisLimiter``); default in-process.
        max_image_bytes: the cap on one input image.
        max_response_bytes: the cap on one answer from the server (default 4 MiB; a
            list-by-condition answer may add 32 KiB per id asked). A larger answer is not
            read further: :class:`ProtocolError`, or :class:`SubmissionUncertainError` for a
            submit (the server may have taken the job).
        list_batch_size: task ids per ``list-by-condition`` request.
        image_seed_timeout: seconds to wait for ``image_seed`` (the server may be slow).
        stall_timeout: seconds without any change before a job fails with
            :class:`TaskStalledError` (default 900). Not with ``poll_settings``.
        poll_settings: full pacing control (:class:`PollSettings`).
        webhook: a :class:`WebhookReceiver`: every submit then carries its ``notifyHook`` and
            pushed task changes feed the same events as polling (which stays on as fallback).

    Raises:
        ValueError: no base URL, or a bad option (the message says which and how to fix it).
        TypeError: a wrong type, or two arguments that would override each other.

    Example::

        async with mjasync.Client("https://relay.example.com", "sk-...") as client:
            task = await client.imagine("a black cat")
            print(task.image_url)
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        mode: str | Default | None = DEFAULT,
        mode_path: str = "/mj-{mode}",
        auth: AuthScheme = "bearer",
        concurrency: int | Literal["auto"] | None = None,
        poll_interval: float | None = None,
        timeout: float = 30.0,
        max_retries: int | None = None,
        session: aiohttp.ClientSession | None = None,
        retry: RetryPolicy | None = None,
        limiter: Limiter | None = None,
        max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
        list_batch_size: int = 200,
        image_seed_timeout: float = 120.0,
        stall_timeout: float | None = None,
        poll_settings: PollSettings | None = None,
        webhook: PushSource | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        queue_ahead: int | None = None,
    ) -> None:
        config = ClientConfig.build(
            base_url=base_url,
            api_key=api_key,
            mode=mode,
            concurrency=concurrency,
            limiter=limiter,
            poll_interval=poll_interval,
            stall_timeout=stall_timeout,
            poll_settings=poll_settings,
            max_retries=max_retries,
            retry=retry,
            timeout=timeout,
            image_seed_timeout=image_seed_timeout,
            max_image_bytes=max_image_bytes,
            list_batch_size=list_batch_size,
            session=session,
            webhook=webhook,
            queue_ahead=queue_ahead,
        )
        self.mode = config.mode
        self.max_image_bytes = config.max_image_bytes
        self.image_seed_timeout = config.image_seed_timeout
        self.poll_interval = config.poll.interval
        self._transport = Transport(
            config.base_url,
            config.api_key,
            auth=auth,
            mode_path=mode_path,
            timeout=config.timeout,
            session=session,
            max_response_bytes=max_response_bytes,
        )
        self._api = WireAPI(self._transport, config.retry, list_batch_size=list_batch_size)
        self._engine = JobEngine(
            self._api, config.limiter, config.poll, config.retry, queue_ahead=config.queue_ahead
        )
        self._webhook = webhook
        self._task_group: anyio.abc.TaskGroup | None = None
        self._legacy_change_modes = set()

    # -- lifecycle -------------------------------------------------------------------------

    def __repr__(self) -> str:
        return (
            f"Client(base_url={self._transport.base_url!r}, mode={self.mode!r}, "
            f"auth={self._transport.auth!r}, api_key={self._transport.redacted_key!r})"
        )

    @property
    def base_url(self) -> str:
        """The server root this client talks to."""
        return self._transport.base_url

    @property
    def engine(self) -> JobEngine:
        """The job engine under this client (for integrations such as the batch runner).

        Its contract is in :mod:`mjasync._jobs.engine`; application code wants the job calls.
        """
        return self._engine

    async def __aenter__(self) -> Self:
        if self._task_group is not None:
            raise RuntimeError("this Client is already open")
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        try:
            await self._engine.open(task_group)
            if self._webhook is not None:
                await self._webhook.attach(self._engine)
        except BaseException as exc:
            await self.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.aclose()
        finally:
            task_group, self._task_group = self._task_group, None
            if task_group is not None:
                # The body's own exception propagates by itself; handing it to the task group
                # would come back wrapped in an ExceptionGroup, and `except NotFoundError:`
                # around `async with Client(...)` would no longer match.
                task_group.cancel_scope.cancel()
                await task_group.__aexit__(None, None, None)

    async def aclose(self) -> None:
        """Stop polling, release every slot and close the HTTP session (idempotent).

        Jobs still in flight end with a :class:`TaskError` ("client closed") for anyone still
        awaiting them; the upstream tasks keep running and can be re-attached with
        :meth:`watch` from another client. Calls waiting for a slot raise
        :class:`ClientClosedError`.
        """
        with anyio.CancelScope(shield=True):
            try:
                if self._webhook is not None and self._engine.is_open:
                    await self._webhook.detach(self._engine)
                await self._engine.close()
            finally:
                await self._transport.aclose()

    # -- one job ---------------------------------------------------------------------------

    async def submit(self, request: Request, *, mode: ModeArg = DEFAULT) -> Job:
        """Wait for a free slot, submit, and return a :class:`Job` to watch or await.

        The slot is held until the job is terminal, so no more than ``concurrency`` jobs are
        ever on the upstream account per mode. Queue-full refusals are absorbed (waited out
        and resubmitted with the same body; the server had refused it, so nothing is paid
        twice). If the caller is cancelled while the POST is out, the POST still completes
        and the new job is abandoned (cancelled upstream where possible), never lost.

        Raises:
            ValueError, TypeError: bad request (nothing sent).
            BannedPromptError, InvalidRequestError, ...: the server refused the job.
            SubmissionUncertainError: the job may exist upstream; it was not resent.
            ClientClosedError: the client closed while the request waited for a slot.
        """
        self._engine.check_open()
        self._check_request(request, "submit()")
        mode_value = self._mode(mode)
        body = self.request_body(request)
        known = self._known_unsupported(request, mode_value)
        if known is not None:
            raise known  # the server showed it lacks the endpoint: no slot, no request
        slot = await self._engine.acquire(mode_value)
        return await self._engine.start(request, body, mode_value, slot)

    async def run(
        self, request: Request, *, mode: ModeArg = DEFAULT, timeout: float | None = None
    ) -> Task:
        """Submit a request and wait for its terminal task (``submit`` + ``result``).

        Raises:
            TaskFailedError, TaskTimeoutError, TaskStalledError: see :meth:`Job.result`.
            ValueError, TypeError: a bad request or ``timeout`` (nothing was sent).
        """
        timeout = check_timeout(timeout)  # before the submit: a typo must not waste a job
        job = await self.submit(request, mode=mode)
        return await job.result(timeout)

    async def imagine(
        self,
        prompt: str,
        *,
        images: Sequence[ImageInput] = (),
        bot_type: str | None = None,
        mode: ModeArg = DEFAULT,
        timeout: float | None = None,
    ) -> Task:
        """Generate a grid from a prompt and return the finished task (the shortest form).

        Example::

            task = await client.imagine("a black cat --ar 3:2")
            print(task.image_url, [b.name for b in task.buttons])
        """
        request = Imagine(prompt, images, bot_type=bot_type)
        return await self.run(request, mode=mode, timeout=timeout)

    def job(self, task_id: str, *, mode: ModeArg = DEFAULT) -> Job:
        """A :class:`Job` handle for an existing task id (re-attach; no slot is taken)."""
        self._engine.check_open()
        return self._engine.attach(check_task_id(task_id), self._mode(mode))

    # -- many jobs -------------------------------------------------------------------------

    async def gather(
        self, requests: Iterable[Request], *, mode: ModeArg = DEFAULT
    ) -> list[Task | MjError]:
        """Run many requests; return a :class:`Task` or the exception for each, in input order.

        Cancelling ``gather`` abandons the jobs nobody else owns.

        Example::

            results = await client.gather(mjasync.Imagine(p) for p in prompts)
            ok = [r for r in results if isinstance(r, mjasync.Task)]
        """
        ordered = list(requests)
        for request in ordered:  # all or nothing: no job is sent if any request is unusable
            self._check_request(request, "gather()")
        bodies = [self.request_body(request) for request in ordered]
        self._engine.check_open()
        mode_value = self._mode(mode)
        # Endpoints the server already showed it lacks fail here, without taking a slot.
        results: list[Task | MjError | None] = [
            self._known_unsupported(request, mode_value) for request in ordered
        ]
        sendable = [i for i, result in enumerate(results) if result is None]
        if len(sendable) < len(ordered):
            sent = await gather_jobs(
                self._engine,
                [ordered[i] for i in sendable],
                [bodies[i] for i in sendable],
                mode_value,
            )
            for position, result in zip(sendable, sent, strict=True):
                results[position] = result
            return [result for result in results if result is not None]
        return await gather_jobs(self._engine, ordered, bodies, mode_value)

    async def stream(
        self, requests: Iterable[Request], *, mode: ModeArg = DEFAULT
    ) -> AsyncIterator[ProgressEvent]:
        """Submit many requests (bounded by the slots) and yield all their events as they come.

        Each event carries its ``request``. A request whose submit fails yields one terminal
        event with ``task_id=None`` and ``error`` set; the others go on. Leaving the loop early
        abandons the jobs nobody else owns.
        """
        self._engine.check_open()
        mode_value = self._mode(mode)
        refused: deque[ProgressEvent] = deque()

        def sendable() -> Iterator[Request]:
            # Endpoints the server already showed it lacks end at once, without a slot.
            for request in requests:
                known = (
                    self._known_unsupported(request, mode_value)
                    if isinstance(request, REQUEST_TYPES)
                    else None
                )
                if known is None:
                    yield request
                else:
                    refused.append(_refused_event(request, known))

        async for event in stream_jobs(self._engine, sendable(), self.request_body, mode_value):
            while refused:
                yield refused.popleft()
            yield event
        while refused:
            yield refused.popleft()

    async def watch(
        self, task_ids: Iterable[str], *, mode: ModeArg = DEFAULT
    ) -> AsyncIterator[ProgressEvent]:
        """Re-attach to tasks submitted elsewhere and stream their events until all end.

        No slot is taken: those jobs were counted by whoever submitted them.
        """
        self._engine.check_open()
        if isinstance(task_ids, str):
            raise TypeError("task_ids must be an iterable of ids, not a single str")
        ids = list(dict.fromkeys(check_task_id(t) for t in task_ids))
        async for event in follow_ids(self._engine, ids, self._mode(mode)):
            yield event

    # -- observability ---------------------------------------------------------------------

    def statistics(self) -> ClientStatistics:
        """A frozen snapshot: in flight per mode, limits, requests, retries, refusals, jobs."""
        return snapshot(self._api, self._engine)


def _refused_event(request: Request, error: MjError) -> ProgressEvent:
    """The terminal event of a request that was never sent (as ``stream`` reports them)."""
    return ProgressEvent(
        task_id=None,
        status=TaskStatus.FAILURE,
        progress=None,
        task=None,
        request=request,
        error=error,
        source="submit",
    )
