"""The client facade: configuration, the wire methods, and (above them) the job API.

The facade only wires layers together: the scheduler bounds and submits, the tracker polls and
broadcasts, :class:`Job` is the handle users hold. Long-lived work (one poller per mode) runs in
the client's own task group, so it cannot outlive ``async with client``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import aclosing
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, Self

import aiohttp
import anyio
import anyio.abc
import attrs

from ._errors import MjError, TaskError, TaskTimeoutError, UnsupportedEndpointError
from ._jobs.background import BackgroundTasks
from ._jobs.events import ProgressEvent
from ._jobs.job import Job, result_of
from ._jobs.limiter import Limiter, LimiterStatistics, LocalLimiter, Slot
from ._jobs.pacing import PollSettings
from ._jobs.submitter import POSTS_AT_ONCE, RefusalPolicy, Scheduler
from ._jobs.tracker import Tracker, Watch
from ._models import Button, ButtonKind, Submission, Task, TaskAction, TaskStatus
from ._requests import (
    Action,
    Blend,
    Change,
    Describe,
    Imagine,
    Modal,
    Request,
    Shorten,
    legacy_change,
)
from ._validation import (
    DEFAULT_MAX_IMAGE_BYTES,
    ImageInput,
    check_custom_id,
    check_seconds,
    check_task_id,
    check_timeout,
    data_url_size,
)
from ._wire.api import WireAPI
from ._wire.modes import check_mode
from ._wire.retry import RetryPolicy
from ._wire.transport import DEFAULT_MAX_RESPONSE_BYTES, AuthScheme, Transport

__all__ = ["Client", "ClientStatistics", "ModeStatistics"]

if TYPE_CHECKING:  # anyio loads its memory streams on first use; so do we (~8 ms at import)
    from anyio.streams.memory import MemoryObjectSendStream

log = logging.getLogger("mjasync")


class _Default:
    def __repr__(self) -> str:
        return "<client default>"


#: Marks "use the client's mode" where ``None`` already means "no mode segment".
DEFAULT: Final = _Default()
ModeArg = str | None | _Default

#: How many jobs ``stream()`` may start before its consumer has taken their terminal events
#: (at least twice the mode's limit, so a consumer that keeps up never slows the batch).
_STREAM_AHEAD: Final = 64


@attrs.frozen(slots=True)
class ModeStatistics:
    """One mode's budget and watch list at the moment of the snapshot."""

    mode: str
    limit: int
    in_flight: int
    waiting_for_slot: int
    watched: int


@attrs.frozen(slots=True)
class ClientStatistics:
    """A snapshot of what the client is doing and has done (``client.statistics()``).

    Attributes:
        modes: per-mode budget and watch counts.
        requests: HTTP requests sent (retries included); ``retries`` of them were retries.
        submits, polls, fetches: requests by kind (``polls`` are list-by-condition calls).
        queue_full: queue-full refusals seen; ``rate_limited``: HTTP 429 answers.
        jobs_submitted, jobs_succeeded, jobs_failed: job outcomes so far.
        events: progress events emitted; ``parsed``: task payloads parsed (the rest were
            recognised as unchanged before parsing).
        completed_by_poll, completed_by_push: which source delivered each terminal state.
    """

    modes: tuple[ModeStatistics, ...]
    requests: int
    retries: int
    submits: int
    polls: int
    fetches: int
    queue_full: int
    rate_limited: int
    jobs_submitted: int
    jobs_succeeded: int
    jobs_failed: int
    watched: int
    events: int
    parsed: int
    poll_rounds: int
    completed_by_poll: int
    completed_by_push: int
    pushes_applied: int

    def mode(self, name: str | None) -> ModeStatistics | None:
        """The snapshot of one mode (``None``: the default budget), if it was used."""
        key = name or "default"
        return next((m for m in self.modes if m.mode == key), None)


class PushSource(Protocol):
    """What the client needs from a push receiver (``WebhookReceiver`` implements it)."""

    @property
    def notify_url(self) -> str:
        """The URL servers should POST task changes to (carries the receiver's secret)."""

    async def attach(self, tracker: Tracker) -> None:
        """Start delivering pushed task payloads to ``tracker.observe(payload, "push")``."""

    async def detach(self, tracker: Tracker) -> None:
        """Stop delivering to ``tracker``."""


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


class Client:
    """An async client for one midjourney-proxy server or relay (one aiohttp session).

    Args:
        base_url: the server root, e.g. ``"https://relay.example.com"``; default ``$MJ_BASE_URL``.
        api_key: the key; default ``$MJ_API_KEY``. Shown as ``sk-…abcd`` at most, anywhere.
        mode: ``"fast"``, ``"relax"``, ``"turbo"`` or ``None`` (no mode segment: the original
            Java proxy has none); default ``$MJ_MODE`` or ``"fast"``.
        mode_path: where the mode goes in the URL; ``"/mj-{mode}"`` or e.g. ``"/{mode}"``.
        auth: ``"bearer"`` (``Authorization: Bearer KEY``, relays) or ``"mj-api-secret"``
            (self-hosted Java/C# proxies).
        concurrency: jobs in flight on the upstream account per mode, or ``"auto"``.
        poll_interval: the poller's base interval in seconds; it adapts around it.
        timeout: seconds for one HTTP request.
        max_retries: retries for one request (see :class:`RetryPolicy`).
        session: your own ``aiohttp.ClientSession`` (not closed by the client).
        retry: a full :class:`RetryPolicy`, overriding ``max_retries``.
        limiter: a shared in-flight budget (e.g. ``RedisLimiter``); default in-process.
        webhook: a :class:`WebhookReceiver`: every submit then carries its ``notifyHook`` and
            pushed task changes feed the same events as polling (which stays on as fallback).
        max_image_bytes: the cap on one input image.
        max_response_bytes: the cap on one answer from the server (default 4 MiB; a
            list-by-condition answer may add 32 KiB per id asked). A larger answer is not
            read further: :class:`ProtocolError`, or :class:`SubmissionUncertainError` for a
            submit (the server may have taken the job).

    Raises:
        ValueError: no base URL, or a bad option (the message says which and how to fix it).

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
        mode: str | _Default | None = DEFAULT,
        mode_path: str = "/mj-{mode}",
        auth: AuthScheme = "bearer",
        concurrency: int | Literal["auto"] = 3,
        poll_interval: float = 2.0,
        timeout: float = 30.0,
        max_retries: int = 3,
        session: aiohttp.ClientSession | None = None,
        retry: RetryPolicy | None = None,
        limiter: Limiter | None = None,
        max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
        list_batch_size: int = 200,
        image_seed_timeout: float = 120.0,
        stall_timeout: float = 900.0,
        refusal_policy: RefusalPolicy | None = None,
        poll_settings: PollSettings | None = None,
        webhook: PushSource | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        base_url = base_url if base_url is not None else _env("MJ_BASE_URL")
        if base_url is None:
            raise ValueError("no base URL: pass Client(base_url='https://...') or set MJ_BASE_URL")
        api_key = api_key if api_key is not None else _env("MJ_API_KEY")
        if isinstance(mode, _Default):
            env_mode = _env("MJ_MODE")
            mode = env_mode if env_mode is not None else "fast"
        self.mode: str | None = check_mode(mode)
        poll_interval = check_seconds(poll_interval, "poll_interval")
        timeout = check_seconds(timeout, "timeout")
        image_seed_timeout = check_seconds(image_seed_timeout, "image_seed_timeout")
        stall_timeout = check_seconds(stall_timeout, "stall_timeout", allow_inf=True)
        if not _is_int(max_image_bytes) or max_image_bytes <= 0:
            raise ValueError(f"max_image_bytes must be a positive int, not {max_image_bytes!r}")
        if not _is_int(list_batch_size) or not 1 <= list_batch_size <= 1000:
            raise ValueError(f"list_batch_size must be within 1..1000, not {list_batch_size!r}")
        # Option objects are checked now, not when the first request trips over them.
        _check_option("session", session, aiohttp.ClientSession)
        _check_option("retry", retry, RetryPolicy)
        _check_option("limiter", limiter, Limiter)
        _check_option("refusal_policy", refusal_policy, RefusalPolicy)
        _check_option("poll_settings", poll_settings, PollSettings)
        if webhook is not None and not _is_push_source(webhook):
            raise TypeError(
                "webhook must be a push source such as mjasync.WebhookReceiver, not "
                f"{type(webhook).__name__}"
            )
        self._transport = Transport(
            base_url,
            api_key,
            auth=auth,
            mode_path=mode_path,
            timeout=timeout,
            session=session,
            max_response_bytes=max_response_bytes,
        )
        self._policy = retry if retry is not None else RetryPolicy(max_retries=max_retries)
        self._api = WireAPI(self._transport, self._policy, list_batch_size=list_batch_size)
        self._limiter: Limiter = limiter if limiter is not None else LocalLimiter(concurrency)
        self.poll_interval = float(poll_interval)
        self.max_image_bytes = max_image_bytes
        self.image_seed_timeout = float(image_seed_timeout)
        self._poll_settings = poll_settings or PollSettings.around(
            self.poll_interval, float(stall_timeout)
        )
        self._scheduler = Scheduler(self._api, self._limiter, refusal_policy or RefusalPolicy())
        self._task_group: anyio.abc.TaskGroup | None = None
        self._background: BackgroundTasks | None = None
        self._tracker: Tracker | None = None
        self._no_cancel_route: set[str | None] = set()
        self._legacy_change_modes: set[str | None] = set()
        self._webhook = webhook
        self._succeeded = 0
        self._failed = 0

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

    async def __aenter__(self) -> Self:
        if self._task_group is not None:
            raise RuntimeError("this Client is already open")
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        self._background = BackgroundTasks(task_group)
        self._tracker = Tracker(
            self._api,
            self._poll_settings,
            self._limiter.release,
            self._background,
            release_nowait=getattr(self._limiter, "release_nowait", None),
        )
        try:
            await self._limiter.start()
            if self._webhook is not None:
                await self._webhook.attach(self._tracker)
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
        """Stop the pollers, release every slot and close the HTTP session (idempotent).

        Jobs still in flight end with a :class:`TaskError` ("client closed") for anyone still
        awaiting them; the upstream tasks keep running and can be re-attached with
        :meth:`watch` from another client.
        """
        tracker, self._tracker = self._tracker, None
        background, self._background = self._background, None
        with anyio.CancelScope(shield=True):
            try:
                if tracker is not None:
                    if self._webhook is not None:
                        await self._webhook.detach(tracker)
                    tracker.close_all(
                        lambda w: TaskError("the client was closed", task_id=w.task_id)
                    )
                if background is not None:
                    await background.aclose()
            finally:
                await self._limiter.aclose()
                await self._transport.aclose()

    # -- helpers ---------------------------------------------------------------------------

    def _mode(self, mode: ModeArg) -> str | None:
        return self.mode if isinstance(mode, _Default) else check_mode(mode)

    def _check_image_sizes(self, request: Request) -> None:
        images: Sequence[str] = ()
        if isinstance(request, Imagine | Blend):
            images = request.images
        elif isinstance(request, Describe):
            images = (request.image,)
        elif isinstance(request, Modal) and request.mask is not None:
            images = (request.mask,)
        for image in images:
            size = data_url_size(image) if image.startswith("data:") else 0
            if size > self.max_image_bytes:
                raise ValueError(
                    f"an image of {size:,} bytes is over this client's limit of "
                    f"{self.max_image_bytes:,} (Client(max_image_bytes=...))"
                )

    def _check_request(self, request: object, caller: str) -> None:
        """Refuse what is not a request, or carries an image over this client's cap."""
        if not isinstance(request, Imagine | Blend | Describe | Shorten | Action | Modal | Change):
            raise TypeError(
                f"{caller} takes a request (mjasync.Imagine, Blend, Describe, Shorten, Action, "
                f"Modal or Change), not {type(request).__name__}"
            )
        self._check_image_sizes(request)

    def request_body(self, request: Request) -> dict[str, Any]:
        """The JSON body this client sends for ``request``: a ``state`` nonce is added.

        The nonce (``mjasync-<hex>``) is echoed on the task by the server, so a submit whose
        answer was lost can still be recognised later.
        """
        self._check_request(request, "request_body()")
        body = request.to_body()
        body.setdefault("state", f"mjasync-{os.urandom(16).hex()}")
        if self._webhook is not None and "notifyHook" not in body:
            body["notifyHook"] = self._webhook.notify_url
        return body

    async def submit_request(
        self, request: Request, *, mode: ModeArg = DEFAULT, body: Mapping[str, Any] | None = None
    ) -> Submission:
        """Send one job request as is (no slot, no watching): the wire-level submit."""
        if body is None:
            body = self.request_body(request)
        return await self._api.submit(request.route, body, mode=self._mode(mode))

    # -- the wire API: one request each (plus safe retries) --------------------------------

    async def submit_imagine(
        self,
        prompt: str,
        *,
        images: Sequence[ImageInput] = (),
        bot_type: str | None = None,
        state: str | None = None,
        notify_hook: str | None = None,
        mode: ModeArg = DEFAULT,
    ) -> Submission:
        """POST ``/mj/submit/imagine``; returns the :class:`Submission` (task id, code).

        Raises:
            ValueError, TypeError: bad arguments (nothing was sent).
            BannedPromptError, QueueFullError, InvalidRequestError, ...: the server said no.
            SubmissionUncertainError: the job may have been created; it was not resent.
        """
        request = Imagine(prompt, images, bot_type=bot_type, state=state, notify_hook=notify_hook)
        return await self.submit_request(request, mode=mode)

    async def submit_blend(
        self,
        images: Sequence[ImageInput],
        *,
        dimensions: str = "SQUARE",
        bot_type: str | None = None,
        state: str | None = None,
        notify_hook: str | None = None,
        mode: ModeArg = DEFAULT,
    ) -> Submission:
        """POST ``/mj/submit/blend`` with 2-5 images."""
        request = Blend(images, dimensions, bot_type=bot_type, state=state, notify_hook=notify_hook)
        return await self.submit_request(request, mode=mode)

    async def submit_describe(
        self,
        image: ImageInput,
        *,
        bot_type: str | None = None,
        state: str | None = None,
        notify_hook: str | None = None,
        mode: ModeArg = DEFAULT,
    ) -> Submission:
        """POST ``/mj/submit/describe`` for one image."""
        request = Describe(image, bot_type=bot_type, state=state, notify_hook=notify_hook)
        return await self.submit_request(request, mode=mode)

    async def submit_shorten(
        self,
        prompt: str,
        *,
        bot_type: str | None = None,
        state: str | None = None,
        notify_hook: str | None = None,
        mode: ModeArg = DEFAULT,
    ) -> Submission:
        """POST ``/mj/submit/shorten``."""
        request = Shorten(prompt, bot_type=bot_type, state=state, notify_hook=notify_hook)
        return await self.submit_request(request, mode=mode)

    async def submit_action(
        self,
        task_id: str,
        custom_id: str,
        *,
        state: str | None = None,
        notify_hook: str | None = None,
        mode: ModeArg = DEFAULT,
    ) -> Submission:
        """POST ``/mj/submit/action``: press a button (``custom_id``) of task ``task_id``."""
        request = Action(task_id, custom_id, state=state, notify_hook=notify_hook)
        return await self.submit_request(request, mode=mode)

    async def submit_modal(
        self,
        task_id: str,
        *,
        prompt: str | None = None,
        mask: ImageInput | None = None,
        state: str | None = None,
        notify_hook: str | None = None,
        mode: ModeArg = DEFAULT,
    ) -> Submission:
        """POST ``/mj/submit/modal``: finish a task waiting in MODAL."""
        request = Modal(task_id, prompt=prompt, mask=mask, state=state, notify_hook=notify_hook)
        return await self.submit_request(request, mode=mode)

    async def fetch(self, task_id: str, *, mode: ModeArg = DEFAULT) -> Task:
        """GET one task.

        Raises:
            NotFoundError: the server does not know the id (every server family's way of
                saying so is recognised).
        """
        return await self._api.fetch(check_task_id(task_id), mode=self._mode(mode))

    async def fetch_many(
        self, task_ids: Iterable[str], *, mode: ModeArg = DEFAULT
    ) -> dict[str, Task]:
        """Many tasks by id, via ``list-by-condition`` in chunks; unknown ids are left out.

        Falls back to one fetch per id (bounded) when the server lacks the route, and
        remembers that for the rest of the session.
        """
        if isinstance(task_ids, str):
            raise TypeError("task_ids must be an iterable of ids, not a single str")
        ids = [check_task_id(task_id) for task_id in task_ids]
        return await self._api.fetch_many(ids, mode=self._mode(mode))

    async def image_seed(self, task_id: str, *, mode: ModeArg = DEFAULT) -> str:
        """The seed of a finished task (``/mj/task/{id}/image-seed``; may take many seconds)."""
        return await self._api.image_seed(
            check_task_id(task_id), mode=self._mode(mode), timeout=self.image_seed_timeout
        )

    async def cancel(self, task_id: str, *, mode: ModeArg = DEFAULT) -> None:
        """Ask the server to cancel a task (C# servers only).

        Raises:
            UnsupportedEndpointError: the server has no cancel route.
        """
        await self._api.cancel(check_task_id(task_id), mode=self._mode(mode))

    # -- the job API: submit, watch, await -------------------------------------------------

    def _open_tracker(self) -> Tracker:
        if self._tracker is None:
            raise RuntimeError(
                "the job API needs an open client: use `async with mjasync.Client(...) as "
                "client:` (the wire methods submit_*/fetch work without it)"
            )
        return self._tracker

    def _job(self, watch: Watch) -> Job:
        assert self._tracker is not None
        return Job(watch, self._tracker, self._abandon)

    def _abandon(self, watch: Watch, error: MjError) -> None:
        """Give up on a job: release its slot now, cancel upstream where possible."""
        tracker, background = self._tracker, self._background
        if tracker is None or background is None or watch.finished:
            return
        log.info("task %s: abandoned (%s)", watch.task_id, error, extra={"task_id": watch.task_id})
        tracker.fail(watch, error)
        if watch.mode not in self._no_cancel_route:
            background.start_soon(self._cancel_upstream, watch.task_id, watch.mode)

    async def _cancel_upstream(self, task_id: str, mode: str | None) -> None:
        try:
            with anyio.fail_after(self._transport.timeout):
                await self._api.cancel(task_id, mode=mode)
        except UnsupportedEndpointError:
            self._no_cancel_route.add(mode)  # only C# servers have it; don't ask again
        except (MjError, TimeoutError) as exc:
            log.info("task %s: upstream cancel failed: %s", task_id, exc)

    @staticmethod
    def _initial_event(
        request: Request, submission: Submission, status: TaskStatus
    ) -> ProgressEvent:
        """The first event of a job: what its submit answer said (a stand-in task)."""
        assert submission.task_id is not None
        stand_in = Task(
            id=submission.task_id,
            status=status,
            action=TaskAction.__members__.get(request.kind.upper(), TaskAction.UNKNOWN),
            prompt=getattr(request, "prompt", None),
            properties=submission.properties,
        )
        return ProgressEvent(
            task_id=submission.task_id,
            status=status,
            progress=None,
            task=stand_in,
            request=request,
            queue_position=submission.queue_position,
            source="submit",
        )

    async def submit(self, request: Request, *, mode: ModeArg = DEFAULT) -> Job:
        """Wait for a free slot, submit, and return a :class:`Job` to watch or await.

        The slot is held until the job is terminal, so no more than ``concurrency`` jobs are
        ever on the upstream account per mode. Queue-full refusals are absorbed (waited out
        and resubmitted with the same body; the server had refused it, so nothing is paid
        twice).

        Raises:
            ValueError, TypeError: bad request (nothing sent).
            BannedPromptError, InvalidRequestError, ...: the server refused the job.
            SubmissionUncertainError: the job may exist upstream; it was not resent.
        """
        self._open_tracker()
        self._check_request(request, "submit()")
        mode_value = self._mode(mode)
        body = self.request_body(request)
        slot = await self._scheduler.acquire(mode_value)
        return await self._submit_with_slot(request, body, mode_value, slot)

    async def _submit_with_slot(
        self,
        request: Request,
        body: Mapping[str, Any],
        mode: str | None,
        slot: Slot,
        *,
        pooled: bool = False,
    ) -> Job:
        """Submit while holding ``slot``; the slot goes back if the submit fails."""
        tracker = self._open_tracker()
        try:
            submission = await self._scheduler.submit(request.route, body, mode, pooled=pooled)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._limiter.release(slot)
            raise
        assert submission.task_id is not None
        log.info(
            "task %s: submitted (%s, code %d)",
            submission.task_id,
            request.kind,
            submission.code,
            extra={"task_id": submission.task_id},
        )
        status = _submitted_status(submission)
        watch = tracker.add(
            submission.task_id,
            mode,
            request=request,
            slot=slot,
            status=status,
            initial=partial(self._initial_event, request, submission, status),
        )
        return self._job(watch)

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
        return await self._finish(job, timeout)

    async def _finish(self, job: Job, timeout: float | None) -> Task:
        try:
            task = await job.result(timeout)
        except MjError:
            self._failed += 1
            raise
        self._succeeded += 1
        return task

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

    # -- buttons and MODAL flows -----------------------------------------------------------

    async def _resolve(
        self, task: Task | str, button: Button | str, mode: ModeArg
    ) -> tuple[str, Button | str]:
        """The task id and the button (or raw custom id / legacy short name) to press."""
        if isinstance(button, Button):
            return (task.id if isinstance(task, Task) else check_task_id(task)), button
        if not isinstance(button, str):
            raise TypeError(f"button must be a Button or a str, not {type(button).__name__}")
        if button.startswith("MJ::"):
            return (task.id if isinstance(task, Task) else check_task_id(task)), check_custom_id(
                button
            )
        task_obj = task if isinstance(task, Task) else await self.fetch(task, mode=mode)
        if not task_obj.buttons and legacy_change(button) is not None:
            return task_obj.id, button  # the Java proxy sends no buttons: /submit/change
        return task_obj.id, task_obj.button(button)

    async def action(
        self,
        task: Task | str,
        button: Button | str,
        *,
        prompt: str | None = None,
        mask: ImageInput | None = None,
        mode: ModeArg = DEFAULT,
        timeout: float | None = None,
    ) -> Task:
        """Press a button of a finished task and return the resulting task.

        ``button`` is a short name (``"U1"``, ``"V2"``, ``"reroll"``, ``"zoom_2x"``,
        ``"pan_left"``, ...), a label, a :class:`Button` or a custom id. If the new task waits
        in MODAL (custom zoom, vary region, or any action on a remix account), the modal step
        is sent for you with ``prompt`` (default: the server's suggested prompt) and ``mask``.

        Raises:
            ValueError: the task has no such button (the message lists the ones it has).
            TaskFailedError, TaskTimeoutError, TaskStalledError: as for :meth:`run`.
        """
        # Arguments first: a bad prompt, mask or timeout must fail before the fetch/submit.
        timeout = check_timeout(timeout)
        modal = Modal("0", prompt=prompt, mask=mask) if (prompt or mask) else None
        task_id, resolved = await self._resolve(task, button, mode)
        parent_prompt = task.prompt if isinstance(task, Task) else None
        job = await self._submit_press(task_id, resolved, mode)
        return await self._drive_modal(job, modal, parent_prompt, timeout)

    async def _submit_press(self, task_id: str, button: Button | str, mode: ModeArg) -> Job:
        """Submit a button press; on servers without ``/submit/action`` use ``/submit/change``."""
        custom_id = button.custom_id if isinstance(button, Button) else button
        legacy = legacy_change(custom_id)
        mode_value = self._mode(mode)
        if not custom_id.startswith("MJ::") or mode_value in self._legacy_change_modes:
            if legacy is None:
                raise UnsupportedEndpointError(
                    f"this server has no /mj/submit/action, and {custom_id!r} has no legacy "
                    "/mj/submit/change form (only U1-4, V1-4 and reroll do)"
                )
            return await self.submit(Change(task_id, legacy[0], legacy[1]), mode=mode)
        try:
            return await self.submit(Action(task_id, custom_id), mode=mode)
        except UnsupportedEndpointError as exc:
            if exc.path is None or not exc.path.endswith(Action.route):
                raise  # e.g. a mode prefix the server lacks: not about /submit/action
            # The original Java proxy: 404 on /submit/action, so nothing was submitted.
            self._legacy_change_modes.add(mode_value)
            if legacy is None:
                raise UnsupportedEndpointError(
                    f"this server has no /mj/submit/action, and {custom_id!r} has no legacy "
                    "/mj/submit/change form (only U1-4, V1-4 and reroll do)",
                    http_status=exc.http_status,
                    method=exc.method,
                    path=exc.path,
                ) from exc
            return await self.submit(Change(task_id, legacy[0], legacy[1]), mode=mode)

    async def _drive_modal(
        self, job: Job, modal: Modal | None, fallback_prompt: str | None, timeout: float | None
    ) -> Task:
        """Wait for a job; if it stops in MODAL, send the modal step, then wait for the end."""
        deadline = None if timeout is None else anyio.current_time() + timeout
        with anyio.move_on_after(timeout) as scope:
            async with aclosing(job.events()) as events:
                async for event in events:
                    if event.status is TaskStatus.MODAL:
                        await self._submit_modal_step(job, event, modal, fallback_prompt)
                        break
        if scope.cancelled_caught:
            # Our events() consumer was cancelled by the deadline, which abandoned the job.
            self._failed += 1
            raise TaskTimeoutError(
                f"not finished after {timeout:g}s", task_id=job.id, task=job.task
            )
        remaining = None if deadline is None else max(0.0, deadline - anyio.current_time())
        return await self._finish(job, remaining)

    async def _submit_modal_step(
        self,
        job: Job,
        event: ProgressEvent,
        modal: Modal | None,
        fallback_prompt: str | None,
    ) -> None:
        suggested = event.task.final_prompt if event.task is not None else None
        if modal is None:
            text = suggested or fallback_prompt
            if not text:
                raise TaskError(
                    "the task waits in MODAL and no prompt is known; pass prompt=",
                    task_id=job.id,
                    task=event.task,
                )
            modal = Modal(job.id, prompt=text)
        else:
            modal = attrs.evolve(modal, task_id=job.id)
        body = self.request_body(modal)
        submission = await self._api.submit(modal.route, body, mode=job.mode)
        if submission.task_id not in (None, job.id):
            log.info("task %s: modal continued as task %s", job.id, submission.task_id)

    async def custom_zoom(
        self,
        task: Task | str,
        *,
        zoom: float = 2.0,
        prompt: str | None = None,
        mode: ModeArg = DEFAULT,
        timeout: float | None = None,
    ) -> Task:
        """Custom Zoom an upscaled image by ``zoom`` (1.0-2.0); the MODAL step is handled.

        ``prompt`` defaults to the task's own prompt; ``--zoom`` is appended for you.
        """
        if not isinstance(zoom, int | float) or isinstance(zoom, bool) or not 1.0 <= zoom <= 2.0:
            raise ValueError(f"zoom must be a number within 1.0..2.0, not {zoom!r}")
        if prompt is not None and not isinstance(prompt, str):
            raise TypeError(f"prompt must be a str or None, not {type(prompt).__name__}")
        check_timeout(timeout)
        task_obj = task if isinstance(task, Task) else await self.fetch(task, mode=mode)
        button = _button_of_kind(task_obj, ButtonKind.CUSTOM_ZOOM)
        base = prompt if prompt is not None else (task_obj.prompt or "")
        text = f"{base.strip()} --zoom {zoom:g}".strip()
        return await self.action(task_obj, button, prompt=text, mode=mode, timeout=timeout)

    async def vary_region(
        self,
        task: Task | str,
        *,
        mask: ImageInput,
        prompt: str | None = None,
        mode: ModeArg = DEFAULT,
        timeout: float | None = None,
    ) -> Task:
        """Vary (Region) of an upscaled image: ``mask`` is a PNG, white where to repaint."""
        Modal("0", prompt=prompt, mask=mask)  # validate prompt and mask before any request
        check_timeout(timeout)
        task_obj = task if isinstance(task, Task) else await self.fetch(task, mode=mode)
        button = _button_of_kind(task_obj, ButtonKind.INPAINT)
        return await self.action(
            task_obj,
            button,
            prompt=prompt or task_obj.prompt,
            mask=mask,
            mode=mode,
            timeout=timeout,
        )

    async def upscale(self, task: Task | str, index: int, **kw: Any) -> Task:
        """Press U1-U4 (``index`` 1-4)."""
        return await self.action(task, f"U{_index(index)}", **kw)

    async def variation(self, task: Task | str, index: int, **kw: Any) -> Task:
        """Press V1-V4 (``index`` 1-4)."""
        return await self.action(task, f"V{_index(index)}", **kw)

    async def reroll(self, task: Task | str, **kw: Any) -> Task:
        """Press 🔄 (re-run the prompt)."""
        return await self.action(task, "reroll", **kw)

    async def zoom(self, task: Task | str, factor: float = 2.0, **kw: Any) -> Task:
        """Zoom Out 2x or 1.5x (``factor``)."""
        if factor not in (2, 1.5):
            raise ValueError(f"zoom factor must be 2 or 1.5 (use custom_zoom otherwise): {factor}")
        return await self.action(task, f"zoom_{factor:g}x", **kw)

    async def pan(self, task: Task | str, direction: str, **kw: Any) -> Task:
        """Pan ``left``, ``right``, ``up`` or ``down``."""
        if direction not in ("left", "right", "up", "down"):
            raise ValueError(f"direction must be left, right, up or down, not {direction!r}")
        return await self.action(task, f"pan_{direction}", **kw)

    async def vary(self, task: Task | str, *, strong: bool = False, **kw: Any) -> Task:
        """Vary (Subtle) or, with ``strong=True``, Vary (Strong) an upscaled image."""
        return await self.action(task, "vary_strong" if strong else "vary_subtle", **kw)

    # -- many jobs -------------------------------------------------------------------------

    async def watch(
        self, task_ids: Iterable[str], *, mode: ModeArg = DEFAULT
    ) -> AsyncIterator[ProgressEvent]:
        """Re-attach to tasks submitted elsewhere and stream their events until all end.

        No slot is taken: those jobs were counted by whoever submitted them.
        """
        tracker = self._open_tracker()
        if isinstance(task_ids, str):
            raise TypeError("task_ids must be an iterable of ids, not a single str")
        mode_value = self._mode(mode)
        ids = list(dict.fromkeys(check_task_id(t) for t in task_ids))
        jobs = [self._job(tracker.add(task_id, mode_value)) for task_id in ids]
        async for event in _merge(jobs):
            yield event

    def job(self, task_id: str, *, mode: ModeArg = DEFAULT) -> Job:
        """A :class:`Job` handle for an existing task id (re-attach; no slot is taken)."""
        tracker = self._open_tracker()
        return self._job(tracker.add(check_task_id(task_id), self._mode(mode)))

    async def stream(
        self, requests: Iterable[Request], *, mode: ModeArg = DEFAULT
    ) -> AsyncIterator[ProgressEvent]:
        """Submit many requests (bounded by the slots) and yield all their events as they come.

        Each event carries its ``request``. A request whose submit fails yields one terminal
        event with ``task_id=None`` and ``error`` set; the others go on.
        """
        self._open_tracker()
        # No buffer here: an event the consumer has not taken yet waits in its job's own
        # bounded queue (newest wins, the terminal event is kept), and `ahead` caps how many
        # jobs may be started before the consumer has taken their terminal events. So a slow
        # consumer slows the batch down instead of piling up every event of it in memory.
        send, receive = anyio.create_memory_object_stream[ProgressEvent](0)
        mode_value = self._mode(mode)
        ahead = anyio.Semaphore(max(_STREAM_AHEAD, 2 * self._limiter.limit(mode_value)))
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._feed, requests, mode_value, send, ahead)
                async with receive:
                    async for event in receive:
                        yield event
        except BaseExceptionGroup as group:
            # One failure (an unusable request, an unreachable limiter) is raised as itself, so
            # `except TypeError:` around the loop works; a real crowd stays a group.
            error = _sole_error(group)
            if error is None:
                raise
            raise error from error.__cause__

    async def _feed(
        self,
        requests: Iterable[Request],
        mode_value: str | None,
        send: MemoryObjectSendStream[ProgressEvent],
        ahead: anyio.Semaphore,
    ) -> None:
        async with send, anyio.create_task_group() as tg:
            for request in requests:
                try:
                    body = self.request_body(request)
                except (TypeError, ValueError, AttributeError) as exc:
                    raise TypeError(f"stream() got an unusable request {request!r}: {exc}") from exc
                await ahead.acquire()
                # Waiting for the slot here, not in each task, keeps a 10,000-request batch
                # at `concurrency` tasks in memory rather than 10,000.
                try:
                    slot = await self._scheduler.acquire(mode_value)
                except BaseException:
                    ahead.release()
                    raise
                tg.start_soon(self._follow, request, body, mode_value, slot, send.clone(), ahead)

    async def _follow(
        self,
        request: Request,
        body: Mapping[str, Any],
        mode: str | None,
        slot: Slot,
        send: anyio.abc.ObjectSendStream[ProgressEvent],
        ahead: anyio.Semaphore,
    ) -> None:
        try:
            await self._follow_one(request, body, mode, slot, send)
        finally:
            ahead.release()  # the consumer has this job's terminal event (or gave up)

    async def _follow_one(
        self,
        request: Request,
        body: Mapping[str, Any],
        mode: str | None,
        slot: Slot,
        send: anyio.abc.ObjectSendStream[ProgressEvent],
    ) -> None:
        async with send:
            try:
                job = await self._submit_with_slot(request, body, mode, slot)
            except MjError as exc:
                self._failed += 1
                await send.send(
                    ProgressEvent(
                        task_id=None,
                        status=TaskStatus.FAILURE,
                        progress=None,
                        task=None,
                        request=request,
                        error=exc,
                        source="submit",
                    )
                )
                return
            async with aclosing(job.events()) as events:
                async for event in events:
                    if event.request is not request:
                        event = attrs.evolve(event, request=request)
                    if event.is_terminal:
                        if event.error is None:
                            self._succeeded += 1
                        else:
                            self._failed += 1
                    await send.send(event)

    async def gather(
        self, requests: Iterable[Request], *, mode: ModeArg = DEFAULT
    ) -> list[Task | MjError]:
        """Run many requests; return a :class:`Task` or the exception for each, in input order.

        Example::

            results = await client.gather(mjasync.Imagine(p) for p in prompts)
            ok = [r for r in results if isinstance(r, mjasync.Task)]
        """
        ordered = list(requests)
        for request in ordered:  # all or nothing: no job is sent if any request is unusable
            self._check_request(request, "gather()")
        mode_value = self._mode(mode)
        bodies = [self.request_body(request) for request in ordered]
        self._open_tracker()
        results: list[Task | MjError | None] = [None] * len(ordered)
        # Waiting jobs are followed by a callback, not a task each: a task per job would sit
        # suspended for the whole job (memory) and be woken once more at its end (CPU).
        following: set[Watch] = set()
        all_ended = anyio.Event()
        sending = True

        def ended(position: int, watch: Watch) -> None:
            outcome = result_of(watch)
            results[position] = outcome
            if isinstance(outcome, MjError):
                self._failed += 1
            else:
                self._succeeded += 1
            watch.consumers -= 1
            following.discard(watch)
            if not following and not sending:
                all_ended.set()

        positions = iter(range(len(ordered)))

        async def submitter() -> None:
            # A fixed pool of submitters walks the requests in order: as many submits in
            # flight as the connection pool takes, and no task per job.
            for position in positions:
                # The slot first: only `concurrency` jobs exist at a time.
                slot = await self._scheduler.acquire(mode_value)
                try:
                    job = await self._submit_with_slot(
                        ordered[position], bodies[position], mode_value, slot, pooled=True
                    )
                except MjError as exc:
                    self._failed += 1
                    results[position] = exc
                    continue
                watch = job._watch
                watch.consumers += 1  # so another consumer leaving cannot abandon it
                following.add(watch)
                watch.add_done_callback(partial(ended, position))

        try:
            async with anyio.create_task_group() as tg:
                for _ in range(min(POSTS_AT_ONCE, len(ordered))):
                    tg.start_soon(submitter)
            sending = False
            if following:
                await all_ended.wait()
        except BaseException:
            # Cancelled (or failing): the jobs nobody else follows are given up, their slots
            # released and, where the server can, cancelled upstream.
            for watch in list(following):
                watch.consumers -= 1
                if watch.consumers == 0:
                    error = TaskError("cancelled by its consumer", task_id=watch.task_id)
                    self._abandon(watch, error)
            raise
        return [r if r is not None else TaskError("no outcome", task_id="?") for r in results]

    # -- observability ---------------------------------------------------------------------

    def statistics(self) -> ClientStatistics:
        """A frozen snapshot: in flight per mode, limits, requests, retries, refusals, jobs."""
        tracker = self._tracker
        wire = self._api.counters
        modes = []
        for limiter_stats in self._limiter.statistics():
            modes.append(_mode_stats(limiter_stats, tracker))
        counters = tracker.counters if tracker is not None else None
        return ClientStatistics(
            modes=tuple(modes),
            requests=wire.requests,
            retries=wire.retries,
            submits=wire.submit_requests,
            polls=wire.list_requests,
            fetches=wire.fetch_requests,
            queue_full=wire.queue_full,
            rate_limited=wire.rate_limited,
            jobs_submitted=self._scheduler.counters.submitted,
            jobs_succeeded=self._succeeded,
            jobs_failed=self._failed,
            watched=tracker.watched() if tracker is not None else 0,
            events=counters.events if counters else 0,
            parsed=counters.parsed if counters else 0,
            poll_rounds=counters.poll_rounds if counters else 0,
            completed_by_poll=counters.completed_by_poll if counters else 0,
            completed_by_push=counters.completed_by_push if counters else 0,
            pushes_applied=counters.pushes_applied if counters else 0,
        )


def _mode_stats(stats: LimiterStatistics, tracker: Tracker | None) -> ModeStatistics:
    return ModeStatistics(
        mode=stats.mode,
        limit=stats.limit,
        in_flight=stats.in_use,
        waiting_for_slot=stats.waiting,
        watched=tracker.watched(stats.mode) if tracker is not None else 0,
    )


def _sole_error(group: BaseExceptionGroup[BaseException]) -> Exception | None:
    """The one exception inside (possibly nested) groups, if there is exactly one."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        item = pending.pop()
        if isinstance(item, BaseExceptionGroup):
            pending.extend(item.exceptions)
        else:
            leaves.append(item)
    if len(leaves) == 1 and isinstance(leaves[0], Exception):
        return leaves[0]
    return None


def _submitted_status(submission: Submission) -> TaskStatus:
    if submission.queued:
        return TaskStatus.NOT_START
    if submission.needs_modal:
        return TaskStatus.MODAL
    return TaskStatus.SUBMITTED


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_option(name: str, value: object, kind: type) -> None:
    if value is not None and not isinstance(value, kind):
        raise TypeError(f"{name} must be a {kind.__name__} or None, not {type(value).__name__}")


def _is_push_source(value: object) -> bool:
    # Looked up on the type: reading `notify_url` on an unstarted receiver would raise.
    kind = type(value)
    return (
        hasattr(kind, "notify_url")
        and callable(getattr(kind, "attach", None))
        and callable(getattr(kind, "detach", None))
    )


def _index(index: int) -> int:
    if isinstance(index, bool) or not isinstance(index, int) or not 1 <= index <= 4:
        raise ValueError(f"index must be 1, 2, 3 or 4, not {index!r}")
    return index


def _button_of_kind(task: Task, kind: ButtonKind) -> Button:
    for button in task.buttons:
        if button.kind is kind:
            return button
    names = ", ".join(b.name for b in task.buttons) or "none"
    raise ValueError(
        f"task {task.id} has no {kind.value} button (it needs an upscaled image); "
        f"available: {names}"
    )


async def _merge(jobs: Sequence[Job]) -> AsyncIterator[ProgressEvent]:
    """The events of several jobs, interleaved as they happen."""
    send, receive = anyio.create_memory_object_stream[ProgressEvent](math.inf)

    async def pump(job: Job, out: anyio.abc.ObjectSendStream[ProgressEvent]) -> None:
        async with out, aclosing(job.events()) as events:
            async for event in events:
                await out.send(event)

    async with anyio.create_task_group() as tg:
        async with send:
            for job in jobs:
                tg.start_soon(pump, job, send.clone())
        async with receive:
            async for event in receive:
                yield event
