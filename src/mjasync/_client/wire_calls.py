"""The wire API of the client: one request each (plus safe retries), no slots, no watching.

These methods work on an unopened client too. Each ``submit_*`` is the typed signature of one
endpoint over :meth:`WireCalls.submit_request`; the request classes do the validation.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .._errors import UnsupportedEndpointError
from .._models import Submission, Task
from .._requests import (
    Action,
    Blend,
    Change,
    Describe,
    Edit,
    Imagine,
    Modal,
    Request,
    Retexture,
    Shorten,
    SwapFace,
    SwapVideoFace,
    Video,
    upload_body,
)
from .._validation import ImageInput, check_task_id, data_url_size
from .._wire.api import WireAPI
from .._wire.modes import check_mode
from .config import DEFAULT, Default, PushSource

__all__ = ["REQUEST_TYPES", "ModeArg", "WireCalls"]

ModeArg = str | None | Default
REQUEST_TYPES = (
    Imagine,
    Blend,
    Describe,
    Shorten,
    Action,
    Modal,
    Change,
    Video,
    Edit,
    Retexture,
    SwapFace,
    SwapVideoFace,
)


class WireCalls:
    """The wire methods of :class:`mjasync.Client` (a mixin: see ``Client``)."""

    mode: str | None
    max_image_bytes: int
    image_seed_timeout: float
    _api: WireAPI
    _webhook: PushSource | None

    def _mode(self, mode: ModeArg) -> str | None:
        return self.mode if isinstance(mode, Default) else check_mode(mode)

    def _check_request(self, request: object, caller: str) -> None:
        """Refuse what is not a request, or carries an image over this client's cap."""
        if not isinstance(request, REQUEST_TYPES):
            raise TypeError(
                f"{caller} takes a request (mjasync.Imagine, Blend, Describe, Shorten, Action, "
                f"Modal, Change, Video, Edit, Retexture, SwapFace or SwapVideoFace), not "
                f"{type(request).__name__}"
            )
        self._check_images(request.sent_images())

    def _check_images(self, images: Iterable[str]) -> None:
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

    async def upload_images(
        self, images: Sequence[ImageInput], *, mode: ModeArg = DEFAULT
    ) -> list[str]:
        """Upload images to the server's Discord channel; returns their URLs, in order.

        ``POST /mj/submit/upload-discord-images`` (C and new-api relays). No task is created
        and nothing is paid: use the URLs in prompts (``Imagine(f"{url} a cat")``) or as
        images of the other requests.

        Raises:
            ValueError, TypeError: no images, or an unusable one (nothing was sent).
            UnsupportedEndpointError: the server has no upload route (J).
        """
        body = upload_body(images)
        self._check_images(body["base64Array"])
        return await self._api.upload(body, mode=self._mode(mode))

    def unsupported(self, request: Request, *, mode: ModeArg = DEFAULT) -> bool:
        """Whether this client already learned that the server lacks ``request``'s endpoint.

        Such requests fail at once with :class:`UnsupportedEndpointError`, before any slot
        is taken.
        """
        return self._api.unsupported(request.route, self._mode(mode)) is not None

    def _known_unsupported(
        self, request: Request, mode: str | None
    ) -> UnsupportedEndpointError | None:
        return self._api.unsupported(request.route, mode)

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
        """Ask the server to cancel a task (C# servers only, and there admin users only).

        C answers the same way whatever the task's state, and marks a cancelled task FAILURE
        with failReason "取消任务", which mjasync reads as status CANCEL: fetch or await the
        job to see the outcome.

        Raises:
            UnsupportedEndpointError: the server has no cancel route, or lets only admin
                users cancel (remembered per mode: a second call is not sent).
        """
        await self._api.cancel(check_task_id(task_id), mode=self._mode(mode))
