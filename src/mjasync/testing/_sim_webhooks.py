"""``notifyHook`` delivery: fire-and-forget POSTs from background workers.

The request path only appends to a queue; a few worker tasks do the HTTP. Like the real
servers there are no retries and no ordering promise; unlike them, every outcome is counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import random

import aiohttp

from ._sim_config import Faults
from ._sim_stats import Counters

__all__ = ["WebhookSender"]

_WORKERS = 8  # enough to keep up with thousands of tasks; concurrency lets posts reorder


class WebhookSender:
    """Posts task JSON to hooks in the background; :meth:`send` never blocks."""

    def __init__(self, counters: Counters, seed: int, *, timeout: float) -> None:
        self.counters = counters
        self.faults = Faults()
        self.rng = random.Random(f"{seed}:webhooks")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    def start(self) -> None:
        """Start the workers (on the running loop)."""
        if self._workers:
            return
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        self._workers = [
            asyncio.get_running_loop().create_task(self._work(), name=f"sim-webhook-{n}")
            for n in range(_WORKERS)
        ]

    def send(self, url: str, body: bytes) -> None:
        """Queue one POST of ``body`` to ``url`` (maybe dropped or doubled by the faults)."""
        if not self._workers:
            return
        if self.faults.webhook_drop and self.rng.random() < self.faults.webhook_drop:
            self.counters.webhooks_dropped += 1
            return
        self._queue.put_nowait((url, body))
        if self.faults.webhook_duplicate and self.rng.random() < self.faults.webhook_duplicate:
            self.counters.webhooks_duplicated += 1
            self._queue.put_nowait((url, body))

    @property
    def pending(self) -> int:
        """Posts queued and not yet attempted."""
        return self._queue.qsize()

    async def _work(self) -> None:
        assert self._session is not None
        session = self._session
        while True:
            url, body = await self._queue.get()
            try:
                async with session.post(
                    url, data=body, headers={"Content-Type": "application/json"}
                ) as response:
                    await response.read()
                    ok = response.status < 300
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
                ok = False  # a receiver that is down or rude is the receiver's problem
            if ok:
                self.counters.webhooks_sent += 1
            else:
                self.counters.webhooks_failed += 1

    async def close(self) -> None:
        """Stop the workers, dropping whatever is still queued, and close the session."""
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._workers = []
        if self._session is not None:
            await self._session.close()
            self._session = None
