"""The client facade: configuration, the wire methods, and (above them) the job API."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, Literal, Self

import aiohttp

from ._api import WireAPI
from ._limiter import Limiter, LocalLimiter
from ._models import Submission, Task
from ._requests import Action, Blend, Describe, Imagine, Modal, Request, Shorten
from ._retry import RetryPolicy
from ._transport import AuthScheme, Transport, check_mode
from ._validation import DEFAULT_MAX_IMAGE_BYTES, ImageInput, check_task_id, data_url_size

__all__ = ["Client"]


class _Default:
    def __repr__(self) -> str:
        return "<client default>"


#: Marks "use the client's mode" where ``None`` already means "no mode segment".
DEFAULT: Final = _Default()
ModeArg = str | None | _Default


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
        max_image_bytes: the cap on one input image.

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
        list_batch_size: int = 100,
        image_seed_timeout: float = 120.0,
    ) -> None:
        base_url = base_url if base_url is not None else _env("MJ_BASE_URL")
        if base_url is None:
            raise ValueError("no base URL: pass Client(base_url='https://...') or set MJ_BASE_URL")
        api_key = api_key if api_key is not None else _env("MJ_API_KEY")
        if isinstance(mode, _Default):
            env_mode = _env("MJ_MODE")
            mode = env_mode if env_mode is not None else "fast"
        self.mode: str | None = check_mode(mode)
        if not isinstance(poll_interval, int | float) or poll_interval <= 0:
            raise ValueError(f"poll_interval must be a positive number, not {poll_interval!r}")
        if not isinstance(max_image_bytes, int) or max_image_bytes <= 0:
            raise ValueError(f"max_image_bytes must be a positive int, not {max_image_bytes!r}")
        if not isinstance(list_batch_size, int) or not 1 <= list_batch_size <= 1000:
            raise ValueError(f"list_batch_size must be within 1..1000, not {list_batch_size!r}")
        self._transport = Transport(
            base_url, api_key, auth=auth, mode_path=mode_path, timeout=timeout, session=session
        )
        self._policy = retry if retry is not None else RetryPolicy(max_retries=max_retries)
        self._api = WireAPI(self._transport, self._policy, list_batch_size=list_batch_size)
        self._limiter: Limiter = limiter if limiter is not None else LocalLimiter(concurrency)
        self.poll_interval = float(poll_interval)
        self.max_image_bytes = max_image_bytes
        self.image_seed_timeout = float(image_seed_timeout)

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
        await self._limiter.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop background work and close the HTTP session (idempotent)."""
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

    def request_body(self, request: Request) -> dict[str, Any]:
        """The JSON body this client sends for ``request``: a ``state`` nonce is added.

        The nonce (``mjasync-<hex>``) is echoed on the task by the server, so a submit whose
        answer was lost can still be recognised later.
        """
        self._check_image_sizes(request)
        body = request.to_body()
        body.setdefault("state", f"mjasync-{uuid.uuid4().hex}")
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
