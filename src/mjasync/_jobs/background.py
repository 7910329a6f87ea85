"""Background work owned by a client, cancellable without cancelling the client's owner.

The client enters an anyio task group in ``__aenter__``; the user's code then runs inside that
group's cancel scope, so cancelling the group would cancel the user too. Each background task
therefore runs in a cancel scope of its own, and closing cancels just those scopes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc

log = logging.getLogger("mjasync")

__all__ = ["BackgroundTasks"]


class BackgroundTasks:
    """Starts tasks in a task group and can cancel and await all of them."""

    def __init__(self, task_group: anyio.abc.TaskGroup) -> None:
        self._task_group = task_group
        self._scopes: set[anyio.CancelScope] = set()
        self._idle = anyio.Event()
        self._idle.set()
        self._closed = False

    @property
    def running(self) -> int:
        """How many background tasks are alive."""
        return len(self._scopes)

    def start_soon(
        self, func: Callable[..., Awaitable[Any]], *args: Any, name: str | None = None
    ) -> None:
        """Run ``func(*args)`` in the background (ignored once closing)."""
        if self._closed:
            return
        scope = anyio.CancelScope()
        self._scopes.add(scope)
        if self._idle.is_set():
            self._idle = anyio.Event()
        self._task_group.start_soon(self._run, scope, func, args, name=name)

    async def _run(
        self, scope: anyio.CancelScope, func: Callable[..., Awaitable[Any]], args: tuple[Any, ...]
    ) -> None:
        try:
            with scope:
                await func(*args)
        except Exception:
            # A bug in one background job must not tear down the client's task group (and
            # with it every job in flight): log it, loudly.
            log.exception("mjasync: background task %s failed", getattr(func, "__name__", func))
        finally:
            self._scopes.discard(scope)
            if not self._scopes:
                self._idle.set()

    async def aclose(self) -> None:
        """Cancel every background task and wait until all have exited."""
        self._closed = True
        for scope in list(self._scopes):
            scope.cancel()
        with anyio.CancelScope(shield=True):
            await self._idle.wait()
