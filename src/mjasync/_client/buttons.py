"""Buttons and MODAL flows: press U/V/zoom/pan/... on a finished task and await the result.

A press is a job like any other (a slot, a watch). Some presses stop in MODAL (custom zoom,
vary region, any press on a remix account): the modal step is sent for the caller. The
original Java proxy has no ``/submit/action``; its ``/submit/change`` is used instead.
"""

from __future__ import annotations

import logging
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from .._errors import TaskError, TaskTimeoutError, UnsupportedEndpointError
from .._jobs.events import ProgressEvent
from .._jobs.job import Job
from .._models import Button, ButtonKind, Task, TaskStatus
from .._requests import Action, Change, Modal, Request, legacy_change
from .._validation import ImageInput, check_custom_id, check_task_id, check_timeout
from .config import DEFAULT
from .wire_calls import ModeArg, WireCalls

__all__ = ["ButtonCalls"]

log = logging.getLogger("mjasync")


class ButtonCalls(WireCalls):
    """The button and MODAL methods of :class:`mjasync.Client` (a mixin: see ``Client``)."""

    _legacy_change_modes: set[str | None]

    if TYPE_CHECKING:

        async def submit(self, request: Request, *, mode: ModeArg = DEFAULT) -> Job: ...

    async def action(
        self,
        task: Task | str,
        button: Button | str,
        *,
        prompt: str | None = None,
        mask: ImageInput | None = None,
        enable_remix: bool | None = None,
        mode: ModeArg = DEFAULT,
        timeout: float | None = None,
    ) -> Task:
        """Press a button of a finished task and return the resulting task.

        ``button`` is a short name (``"U1"``, ``"V2"``, ``"reroll"``, ``"zoom_2x"``,
        ``"pan_left"``, ...), a label, a :class:`Button` or a custom id. If the new task waits
        in MODAL (custom zoom, vary region, or any action on a remix account), the modal step
        is sent for you with ``prompt`` (default: the server's suggested prompt) and ``mask``.
        ``enable_remix=True`` (C servers) parks a reroll, variation or pan in MODAL so that
        ``prompt`` replaces the prompt: ``client.action(grid, "V1", prompt="...",
        enable_remix=True)``.

        Raises:
            ValueError: the task has no such button (the message lists the ones it has).
            TaskFailedError, TaskTimeoutError, TaskStalledError: as for :meth:`run`.
        """
        # Arguments first: a bad prompt, mask or timeout must fail before the fetch/submit.
        timeout = check_timeout(timeout)
        modal = Modal("0", prompt=prompt, mask=mask) if (prompt or mask) else None
        if enable_remix is not None and not isinstance(enable_remix, bool):
            raise TypeError(f"enable_remix must be a bool, not {type(enable_remix).__name__}")
        task_id, resolved = await self._resolve(task, button, mode)
        parent_prompt = task.prompt if isinstance(task, Task) else None
        job = await self._submit_press(task_id, resolved, mode, enable_remix)
        return await self._drive_modal(job, modal, parent_prompt, timeout)

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

    # -- the steps -------------------------------------------------------------------------

    async def _resolve(
        self, task: Task | str, button: Button | str, mode: ModeArg
    ) -> tuple[str, Button | str]:
        """The task id and the button (or raw custom id / legacy short name) to press."""
        if isinstance(button, Button):
            return (task.id if isinstance(task, Task) else check_task_id(task)), button
        if not isinstance(button, str):
            raise TypeError(f"button must be a Button or a str, not {type(button).__name__}")
        if button.startswith("MJ::"):
            task_id = task.id if isinstance(task, Task) else check_task_id(task)
            return task_id, check_custom_id(button)
        task_obj = task if isinstance(task, Task) else await self.fetch(task, mode=mode)
        if not task_obj.buttons and legacy_change(button) is not None:
            return task_obj.id, button  # the Java proxy sends no buttons: /submit/change
        return task_obj.id, task_obj.button(button)

    async def _submit_press(
        self, task_id: str, button: Button | str, mode: ModeArg, enable_remix: bool | None = None
    ) -> Job:
        """Submit a button press; on servers without ``/submit/action`` use ``/submit/change``."""
        custom_id = button.custom_id if isinstance(button, Button) else button
        legacy = legacy_change(custom_id)
        mode_value = self._mode(mode)
        if not custom_id.startswith("MJ::") or mode_value in self._legacy_change_modes:
            if legacy is None or enable_remix:
                raise UnsupportedEndpointError(_NO_ACTION.format(custom_id))
            return await self.submit(Change(task_id, *legacy), mode=mode)
        try:
            return await self.submit(
                Action(task_id, custom_id, enable_remix=enable_remix), mode=mode
            )
        except UnsupportedEndpointError as exc:
            if exc.path is None or not exc.path.endswith(Action.route):
                raise  # e.g. a mode prefix the server lacks: not about /submit/action
            # The original Java proxy: 404 on /submit/action, so nothing was submitted.
            self._legacy_change_modes.add(mode_value)
            if legacy is None or enable_remix:
                raise UnsupportedEndpointError(
                    _NO_ACTION.format(custom_id),
                    http_status=exc.http_status,
                    method=exc.method,
                    path=exc.path,
                ) from exc
            return await self.submit(Change(task_id, *legacy), mode=mode)

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
            raise TaskTimeoutError(
                f"not finished after {timeout:g}s", task_id=job.id, task=job.task
            )
        remaining = None if deadline is None else max(0.0, deadline - anyio.current_time())
        return await job.result(remaining)

    async def _submit_modal_step(
        self, job: Job, event: ProgressEvent, modal: Modal | None, fallback_prompt: str | None
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
        submission = await self.submit_request(modal, mode=job.mode)
        if submission.task_id not in (None, job.id):
            log.info("task %s: modal continued as task %s", job.id, submission.task_id)


_NO_ACTION = (
    "this server has no /mj/submit/action, and {!r} has no legacy /mj/submit/change form "
    "(only U1-4, V1-4 and reroll do, and never with remix)"
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
