"""Video, edits, retexture and face swaps: the newer endpoints as one-call helpers.

Each helper builds its request (validated before anything is sent) and runs it as a job like
``imagine``: a slot, a watch, the terminal task. The endpoints exist on C servers and, for
video, edits and face swap, on new-api relays built since mid 2025; elsewhere the call raises
:class:`~mjasync.UnsupportedEndpointError` naming the families that have it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._models import Task
from .._requests import Edit, Request, Retexture, SwapFace, SwapVideoFace, Video
from .._validation import ImageInput, check_timeout
from .config import DEFAULT
from .wire_calls import ModeArg, WireCalls

__all__ = ["MediaCalls"]


class MediaCalls(WireCalls):
    """The media methods of :class:`mjasync.Client` (a mixin: see ``Client``)."""

    if TYPE_CHECKING:

        async def run(
            self, request: Request, *, mode: ModeArg = DEFAULT, timeout: float | None = None
        ) -> Task: ...

    async def video(
        self,
        prompt: str | None = None,
        *,
        image: ImageInput | None = None,
        end_image: ImageInput | None = None,
        motion: str | None = None,
        loop: bool = False,
        batch_size: int | None = None,
        video_type: str | None = None,
        extend: Task | str | None = None,
        index: int = 1,
        mode: ModeArg = DEFAULT,
        timeout: float | None = None,
    ) -> Task:
        """Animate an image, or extend a finished video; returns the finished video task.

        The videos are in ``task.videos`` (each a :class:`VideoRef`: ``url`` of the
        ``.mp4``, ``thumbnail`` where the server gives one).

        Args:
            prompt: what happens; required, except when extending a :class:`Task` (its own
                prompt is used then).
            image: the start frame (bytes, a path, a data URL or an http(s) URL).
            end_image: an end frame, same forms (not with ``loop``).
            motion: ``"low"`` (the server's default) or ``"high"``.
            loop: end where it began.
            batch_size: 1, 2 or 4 videos.
            video_type: ``"vid_1.1_i2v_720"`` for HD (see :class:`Video`).
            extend: a finished video task (or its id) to extend instead of animating.
            index: which of its videos to extend, 1-4.

        Raises:
            ValueError, TypeError: bad arguments (nothing was sent).
            UnsupportedEndpointError: the server has no video endpoint (J, older relays).
            TaskFailedError, TaskTimeoutError, TaskStalledError: as for :meth:`run`.

        Example::

            task = await client.video("the cat turns its head", image=Path("cat.png"))
            longer = await client.video(extend=task, index=1)
        """
        timeout = check_timeout(timeout)
        if extend is not None:
            if image is not None or end_image is not None or loop:
                raise ValueError("extend= takes no image, end_image or loop: it continues a video")
            request = Video.extend(extend, index, prompt=prompt, motion=motion)
            if batch_size is not None or video_type is not None:
                raise ValueError("extend= takes no batch_size or video_type")
        else:
            if prompt is None:
                raise ValueError("video() needs a prompt (or extend= a finished video task)")
            request = Video(
                prompt,
                image=image,
                end_image=end_image,
                motion=motion,
                loop=loop,
                batch_size=batch_size,
                video_type=video_type,
            )
        return await self.run(request, mode=mode, timeout=timeout)

    async def edit(
        self,
        prompt: str,
        image: ImageInput,
        *,
        mode: ModeArg = DEFAULT,
        timeout: float | None = None,
    ) -> Task:
        """Edit an image by a prompt (``/mj/submit/edits``); returns the finished task."""
        return await self.run(Edit(prompt, image), mode=mode, timeout=check_timeout(timeout))

    async def retexture(
        self,
        prompt: str,
        image: ImageInput,
        *,
        mode: ModeArg = DEFAULT,
        timeout: float | None = None,
    ) -> Task:
        """Repaint an image's surfaces by a prompt (``/mj/submit/retexture``, C only)."""
        return await self.run(Retexture(prompt, image), mode=mode, timeout=check_timeout(timeout))

    async def swap_face(
        self,
        source: ImageInput,
        target: ImageInput,
        *,
        mode: ModeArg = DEFAULT,
        timeout: float | None = None,
    ) -> Task:
        """Put the face in ``source`` into the picture ``target``; returns the finished task."""
        request = SwapFace(source, target)
        return await self.run(request, mode=mode, timeout=check_timeout(timeout))

    async def swap_video_face(
        self,
        source: ImageInput,
        target: bytes | str | ImageInput,
        *,
        mode: ModeArg = DEFAULT,
        timeout: float | None = None,
    ) -> Task:
        """Put the face in ``source`` into the ``.mp4`` ``target`` (C, whitelisted users)."""
        request = SwapVideoFace(source, target)
        return await self.run(request, mode=mode, timeout=check_timeout(timeout))
