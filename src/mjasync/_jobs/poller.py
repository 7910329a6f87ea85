"""The polling loop: one per mode, asking ``list-by-condition`` for every task that is due.

N tasks cost about N / batch requests a round, not N. The loop only sleeps and sends: when a
task is due comes from :mod:`mjasync._jobs.pacing`, what an answer means from the engine's
:meth:`~mjasync._jobs.engine.JobEngine.apply`. Nothing a server sends can end the loop: a bad
payload fails its own task, a failed round is retried later.
"""

from __future__ import annotations

import logging
from asyncio import get_running_loop
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import anyio

from .._converter import parse_task_id
from .._errors import (
    AuthenticationError,
    MjError,
    NotFoundError,
    TaskLostError,
    TaskStalledError,
    UnsupportedEndpointError,
)
from .._models import TaskStatus
from .._wire.modes import mode_key
from .background import BackgroundTasks
from .pacing import estimated_time_left, next_poll_interval
from .watch import Watch

if TYPE_CHECKING:
    from .engine import JobEngine

__all__ = ["Poller"]

log = logging.getLogger("mjasync")


def _now() -> float:
    return get_running_loop().time()


class Poller:
    """Runs one polling loop per mode key over the engine's watches."""

    def __init__(self, engine: JobEngine, background: BackgroundTasks) -> None:
        self._engine = engine
        self._background = background
        self._settings = engine.settings
        self._running: set[str] = set()
        self._wakeups: dict[str, anyio.Event] = {}

    def tracking(self, key: str, mode: str | None, *, was_idle: bool) -> None:
        """A watch was added to ``key``: start its loop, or wake it if it was idle."""
        if key not in self._running:
            self._running.add(key)
            self._background.start_soon(self._run_mode, key, mode, name=f"mjasync poller {key}")
        elif was_idle:
            # Only an idle loop waits for this; a busy one picks new watches up within an
            # interval, and waking it on every submit would split polling into tiny rounds.
            self._wake(key)

    def hurry(self, watch: Watch) -> None:
        """Poll ``watch`` in the next round, and start that round now."""
        watch.due = _now()
        self._wake(mode_key(watch.mode))

    def _wake(self, key: str) -> None:
        wake = self._wakeups.get(key)
        if wake is not None:
            wake.set()

    async def _run_mode(self, key: str, mode: str | None) -> None:
        settings = self._settings
        next_stall_check = 0.0
        while True:
            group = self._engine.group(key)
            wake = self._wakeups[key] = anyio.Event()
            if not group:
                await wake.wait()
                continue
            try:
                now = _now()
                if now >= next_stall_check:  # a scan of every watch: once an interval is plenty
                    self._check_stalls(group.values(), now)
                    next_stall_check = now + settings.interval
                # Batch generously: a task due within half an interval rides along now.
                horizon = now + settings.interval / 2
                due = [w for w in group.values() if w.due <= horizon]
                if due:
                    await self._poll(due, mode)
            except Exception:  # a bug must not stop every job of the mode: log, go on
                log.exception("mjasync: a poll round failed; polling goes on")
            group = self._engine.group(key)
            if not group:
                continue
            next_due = min(w.due for w in group.values())
            delay = max(0.0, min(next_due - _now(), settings.interval))
            if delay > 0 and not wake.is_set():
                with anyio.move_on_after(delay):
                    await wake.wait()

    def _check_stalls(self, watches: Iterable[Watch], now: float) -> None:
        limit = self._settings.stall_timeout
        for watch in list(watches):
            if watch.status is not TaskStatus.MODAL and now - watch.last_change > limit:
                self._engine.fail(
                    watch,
                    TaskStalledError(
                        f"no change for {limit:g}s (last status {watch.status})",
                        task_id=watch.task_id,
                        task=watch.task,
                    ),
                )

    async def _poll(self, due: list[Watch], mode: str | None) -> None:
        engine = self._engine
        engine.counters.poll_rounds += 1
        ids = [w.task_id for w in due]
        seen: set[str] = set()
        group = engine.group(mode_key(mode))

        def take(payloads: list[Any]) -> None:
            # Applied chunk by chunk as answers arrive, so a big round never holds every
            # decoded payload at once.
            now = _now()
            for payload in payloads:
                if type(payload) is not dict and not isinstance(payload, Mapping):  # dict: fast
                    continue
                try:
                    task_id = parse_task_id(payload.get("id"))
                except Exception:
                    continue
                if task_id is None:
                    continue
                seen.add(task_id)
                found = group.get(task_id) or engine.find(task_id)
                if found is None or found.retired:
                    continue
                if not engine.apply(found, payload, "poll", now):
                    found.quiet_rounds += 1

        try:
            await engine.api.fetch_payloads(ids, mode=mode, on_chunk=take)
        except (AuthenticationError, UnsupportedEndpointError) as exc:
            # These will not heal by waiting: end the jobs now rather than at the stall limit.
            for watch in due:
                engine.fail(watch, exc)
            return
        except MjError as exc:
            log.warning("poll of %d task(s) failed after retries: %s", len(ids), exc)
            later = _now() + self._settings.max_interval
            for watch in due:
                watch.due = later
            return
        self._pace(due, seen)

    def _pace(self, due: list[Watch], seen: set[str]) -> None:
        settings = self._settings
        now = _now()
        for watch in due:
            if watch.retired:
                continue
            if watch.task_id not in seen:
                watch.misses += 1
                if watch.misses >= settings.missing_rounds:
                    watch.misses = 0  # one confirmation at a time
                    self._background.start_soon(self._confirm_lost, watch)
            healthy = now - watch.pushed_at <= settings.push_health
            first = watch.first_running
            watch.due = now + next_poll_interval(
                settings,
                watch.status or TaskStatus.UNKNOWN,
                changed=watch.quiet_rounds == 0,
                quiet_rounds=watch.quiet_rounds,
                push_healthy=healthy and not watch.confirm_end,
                time_left=None
                if first is None
                else estimated_time_left(first, (watch.last_change, watch.progress or 0), now),
            )

    async def _confirm_lost(self, watch: Watch) -> None:
        engine = self._engine
        try:
            task = await engine.api.fetch(watch.task_id, mode=watch.mode)
        except NotFoundError:
            engine.fail(
                watch,
                TaskLostError(
                    "the server no longer knows this task (it restarted, or expired the task)",
                    task_id=watch.task_id,
                    task=watch.task,
                ),
            )
            return
        except MjError as exc:
            log.info("task %s: could not confirm whether it is lost: %s", watch.task_id, exc)
            return
        engine.apply(watch, task.raw, "poll")
