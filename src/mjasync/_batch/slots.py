"""The batch's seam into the client: slots held across the journal write, re-attach with a slot.

The public job API (``client.submit``) waits for a slot *and* submits in one call. The journal
protocol needs a step in between: the intent must be on disk before the POST, but not while
the request still waits for a slot — a request killed while waiting was never sent, and an
intent without an outcome reads as "uncertain" on the rerun (never resent by default). So the
batch takes the slot itself, writes the intent, then submits with that slot.

Re-attached tasks (a rerun's ``watch`` bucket) take a slot too, so a rerun does not put more
jobs on the account than ``concurrency`` allows while it also submits new ones.

This module is the only place the batch touches client internals; everything else goes
through public API.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio

from .._client import Client
from .._jobs.job import Job
from .._jobs.limiter import Slot
from .._requests import Request
from .._validation import check_task_id

__all__ = ["SlotGate"]


class SlotGate:
    """Slots, submits and re-attachment for one client, as the batch runner needs them.

    Args:
        client: an open :class:`Client` (``async with client``).
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    def check_open(self) -> None:
        """Raise ``RuntimeError`` (with the fix) unless the client is open."""
        self._client._open_tracker()

    async def acquire(self, mode: str | None) -> Slot:
        """Wait for a free slot in ``mode``'s budget (cancellable; takes nothing if cancelled)."""
        return await self._client._scheduler.acquire(mode)

    async def release(self, slot: Slot) -> None:
        """Give back a slot that was not handed to a job (idempotent)."""
        with anyio.CancelScope(shield=True):
            await self._client._limiter.release(slot)

    async def submit(
        self, request: Request, body: Mapping[str, Any], mode: str | None, slot: Slot
    ) -> Job:
        """Submit ``body`` while holding ``slot``; the job owns the slot from then on.

        The slot goes back to the budget if the submit fails. Raises what
        :meth:`Client.submit` raises.
        """
        return await self._client._submit_with_slot(request, body, mode, slot)

    async def attach(self, task_id: str, mode: str | None, slot: Slot) -> Job:
        """Watch an existing task while holding ``slot`` (released when the task ends).

        If the client already watches that task (a second batch on the same client), the
        existing watch keeps its own slot and ``slot`` is given back.

        Raises:
            ValueError: ``task_id`` is not a task id (``slot`` is given back).
        """
        try:
            tracker = self._client._open_tracker()
            checked = check_task_id(task_id)
        except BaseException:
            await self.release(slot)
            raise
        watch = tracker.add(checked, mode, slot=slot)
        if watch.slot is not slot:
            await self.release(slot)
        return self._client._job(watch)
