"""``FakeMidjourney``: the simulator's public face (start, stop, inspect, steer)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from aiohttp import web

from ._sim_app import SimApp
from ._sim_config import NO_FAULTS, Accent, AuthScheme, Faults, SimOptions, key_tuple
from ._sim_faults import FaultInjector
from ._sim_persist import StateFile
from ._sim_render import Renderer
from ._sim_state import Engine, SimTask
from ._sim_stats import Counters, SimStats
from ._sim_webhooks import WebhookSender

__all__ = ["FakeMidjourney"]


class FakeMidjourney:
    """A fake midjourney-proxy server on loopback, for tests, demos and benchmarks.

    ``async with FakeMidjourney() as fake:`` serves on a free port of 127.0.0.1; point a client
    at ``fake.base_url``. Jobs take ``job_duration`` seconds of event-loop time, so a test runs
    hundreds of them per second. Prompt markers steer single jobs: ``--fail`` ends in FAILURE,
    ``--stall`` freezes IN_PROGRESS, ``--slow`` takes ten times as long.

    Args:
        host: the interface to listen on.
        port: the port (0: a free one).
        accent: ``"java"`` (J), ``"csharp"`` (C) or ``"relay"`` (new-api style gateway): which
            endpoints exist, mode prefixes, codes, zero values and error shapes.
        api_keys: accepted keys; empty or ``None`` turns auth off.
        auth: ``"any"`` (``Authorization: Bearer K`` or ``mj-api-secret: K``), ``"bearer"``,
            ``"mj-api-secret"`` (raw value, like C), or ``"accent"`` (the accent's own rule).
        modes: the mode prefixes served (``/mj-{mode}/mj/...``; relay also ``/{mode}/mj/...``);
            each mode is its own account, and unprefixed routes use the ``fast`` account.
        core_size: per account: jobs running at once.
        queue_size: per account: jobs waiting.
        job_duration: seconds from IN_PROGRESS to the end.
        start_delay: seconds from getting a core slot (SUBMITTED) to IN_PROGRESS.
        progress_steps: updates between 0% and 100%.
        seed: seeds every random choice (ids, fates, faults, list order).
        failure_rate: probability that a job ends in FAILURE.
        banned_words: whole words refused with code 24.
        remix: reroll/variation/pan actions wait in MODAL too.
        list_by_condition: ``False`` makes that route 404, like an old server.
        task_timeout: seconds after which a running job fails with "任务超时" (``None``: never).
        image_seed_delay: seconds ``image-seed`` takes to answer.
        relay_blank_status: seconds a relay reports status ``""`` after a submit.
        relay_refresh: seconds between a relay's refreshes from upstream (``0``: it answers
            live). New-api refreshes every unfinished task in one background loop (15 s plus
            the pass); with this set, every phase of a task (queued, started, each progress
            step, the end) shows only from the first refresh after it happened, refreshes
            come at whole periods from the simulator's start (the same instants for every
            task), a task submitted since the last refresh shows status ``""`` and progress
            ``"0%"``, and an unfinished task's ``imageUrl`` gets a new ``?rand=`` query on
            every answer, as new-api's does. Relay accent only.
        relay_notify_hook: let the relay accent keep ``notifyHook`` (relays strip it).
        numeric_ids: send ``result`` task ids as JSON numbers.
        faults: a :class:`Faults`; change it later with :meth:`set_faults`.
        webhook_timeout: seconds one notifyHook POST may take.
        admin_keys: C: the keys of admin users, the only ones allowed to cancel (``None``:
            every key is an admin).
        disabled: features the operator turned off (C) or sells no channel for (relay):
            ``"video"``, ``"upload"`` (C: also edits and retexture), ``"face_swap"``,
            ``"video_swap"`` (C: the user is not whitelisted).
        relay_legacy: the relay is a new-api build from before 2025-06-30: no video or
            edits routes, no ``X-New-Api-Version`` header.
        server_version: the version C's ``/mj/home`` and the relay's ``/api/status`` report.
        user_core_size: C's per-user limit on running jobs: more are refused with
            "并发数已达上限", as code -1 (code 4 on imagine). ``None``: no limit.
        user_queue_size: the same for queued jobs ("队列数已达上限").
        state_file: keep every task in this file (JSON lines) and take them back at the next
            start, so a restarted server still knows them; its clock stops while it is not
            running. One process at a time may use a file. ``None``: tasks live in memory.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        accent: Accent = "csharp",
        api_keys: str | Iterable[str] | None = ("sk-test",),
        auth: AuthScheme = "any",
        modes: Iterable[str] = ("fast", "relax", "turbo"),
        core_size: int = 3,
        queue_size: int = 10,
        job_duration: float = 0.05,
        start_delay: float = 0.0,
        progress_steps: int = 3,
        seed: int = 0,
        failure_rate: float = 0.0,
        banned_words: Iterable[str] = ("nude", "gore"),
        remix: bool = False,
        list_by_condition: bool = True,
        task_timeout: float | None = None,
        image_seed_delay: float = 0.0,
        relay_blank_status: float = 0.0,
        relay_refresh: float = 0.0,
        relay_notify_hook: bool = False,
        numeric_ids: bool = False,
        faults: Faults | None = None,
        webhook_timeout: float = 5.0,
        admin_keys: Iterable[str] | None = None,
        disabled: Iterable[str] = (),
        relay_legacy: bool = False,
        server_version: str | None = None,
        user_core_size: int | None = None,
        user_queue_size: int | None = None,
        state_file: str | os.PathLike[str] | None = None,
    ) -> None:
        self.options = SimOptions(
            accent=accent,
            api_keys=key_tuple(api_keys),
            auth=auth,
            modes=tuple(modes),
            core_size=core_size,
            queue_size=queue_size,
            job_duration=job_duration,
            start_delay=start_delay,
            progress_steps=progress_steps,
            seed=seed,
            failure_rate=failure_rate,
            banned_words=tuple(banned_words),
            remix=remix,
            list_by_condition=list_by_condition,
            task_timeout=task_timeout,
            image_seed_delay=image_seed_delay,
            relay_blank_status=relay_blank_status,
            relay_refresh=relay_refresh,
            relay_notify_hook=relay_notify_hook,
            numeric_ids=numeric_ids,
            faults=faults or NO_FAULTS,
            admin_keys=None if admin_keys is None else key_tuple(admin_keys),
            disabled=tuple(disabled),
            relay_legacy=relay_legacy,
            server_version=server_version,
            user_core_size=user_core_size,
            user_queue_size=user_queue_size,
        )
        self.host = host
        self.port = port
        self._counters = Counters()
        self._engine = Engine(self.options, self._counters, self._on_change)
        self._renderer = Renderer(
            accent,
            numeric_ids=numeric_ids,
            relay_blank_status=relay_blank_status,
            relay_rand=bool(relay_refresh),
        )
        self._faults = FaultInjector(self.options.faults, seed, self._counters, accent)
        self._webhooks = WebhookSender(self._counters, seed, timeout=webhook_timeout)
        self._webhooks.faults = self.options.faults
        self._app = SimApp(
            self.options, self._engine, self._renderer, self._counters, self._faults, self.stats
        )
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self._state = StateFile(state_file) if state_file is not None else None

    def __repr__(self) -> str:
        where = self._base_url or "not started"
        return f"<FakeMidjourney accent={self.options.accent} {where}>"

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://host:port`` (no trailing slash). Raises ``RuntimeError`` before start."""
        if self._base_url is None:
            raise RuntimeError("FakeMidjourney is not started: use `async with` or start()")
        return self._base_url

    async def start(self) -> None:
        """Bind the port and serve. Idempotent."""
        if self._runner is not None:
            return
        self._engine.bind(asyncio.get_running_loop())
        runner = web.AppRunner(
            self._app.build(), access_log=None, handle_signals=False, shutdown_timeout=0.25
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port, backlog=1024).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in host else host
        self.port = port
        self._base_url = f"http://{shown}:{port}"
        self._renderer.base_url = self._base_url
        if self._state is not None:  # no await since the site started: no request sees less
            try:
                restored = self._state.load()
                self._state.open()
            except BaseException:
                await self.close()
                raise
            for task in restored:
                self._engine.restore(task)
        self._webhooks.start()

    async def close(self) -> None:
        """Stop serving, stop the timeline and the webhook workers. Idempotent."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self._engine.close()
        await self._webhooks.close()
        if self._state is not None:
            self._state.close()

    async def __aenter__(self) -> FakeMidjourney:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- steering ----------------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        """The faults in force; assign (or call :meth:`set_faults`) to change them at once."""
        return self._faults.faults

    @faults.setter
    def faults(self, faults: Faults | None) -> None:
        self.set_faults(faults)

    def set_faults(self, faults: Faults | None) -> None:
        """Replace the injected faults (``None``: none) for every following request."""
        faults = faults or NO_FAULTS
        if not isinstance(faults, Faults):
            raise TypeError("set_faults() takes a mjasync.testing.Faults or None")
        self._faults.faults = faults
        self._webhooks.faults = faults

    def forget_all_tasks(self) -> None:
        """Lose every task and free every account, like a server restart without storage."""
        self._engine.forget_all()
        if self._state is not None:
            self._state.forget_all()

    def finish_task(
        self, task_id: str, *, status: str = "SUCCESS", fail_reason: str | None = None
    ) -> bool:
        """End a task now, as the server would (``SUCCESS``, ``FAILURE`` or ``CANCEL``).

        Steers a test: a ``--stall`` job can be finished when the test is ready. Pushes go
        out as for any change. Returns ``False`` if the task had already ended.

        Raises:
            KeyError: the server does not know the task.
            ValueError: ``status`` is not a terminal status.
        """
        if status not in ("SUCCESS", "FAILURE", "CANCEL"):
            raise ValueError(f"status must be SUCCESS, FAILURE or CANCEL, not {status!r}")
        task = self._engine.tasks[str(task_id)]
        if status == "SUCCESS":
            fail_reason = None
        elif status == "FAILURE" and fail_reason is None:
            fail_reason = "failed (finished by the test)"
        return self._engine.finish_now(task, status, fail_reason)

    # -- inspection --------------------------------------------------------------------------

    def task(self, task_id: str) -> dict[str, Any] | None:
        """The task as ``fetch`` would show it now, or ``None`` if the server does not know it."""
        task = self._engine.tasks.get(str(task_id))
        if task is None:
            return None
        now = self._engine.now()
        return self._renderer.task(self._engine.visible(task, now), now)

    def shown_at(self, epoch_ms: int) -> int:
        """When a task change made at ``epoch_ms`` (a ``finishTime``, say) shows to clients.

        With ``relay_refresh``, at the relay's next refresh; otherwise at once. Epoch
        milliseconds, on the same clock as the task times.
        """
        return self._engine.shown_from_ms(int(epoch_ms))

    def task_ids(self) -> list[str]:
        """Every task id the server knows, oldest first."""
        return list(self._engine.tasks)

    def stats(self) -> SimStats:
        """A frozen snapshot of every counter (also served at ``GET /_sim/stats``)."""
        accounts = self._engine.accounts
        core_time = {mode: a.core_time() for mode, a in accounts.items()}
        return self._counters.snapshot(
            active={mode: a.active for mode, a in accounts.items()},
            running={mode: a.running for mode, a in accounts.items()},
            queued={mode: a.queued for mode, a in accounts.items()},
            peak_active={mode: a.peak_active for mode, a in accounts.items()},
            peak_running={mode: a.peak_running for mode, a in accounts.items()},
            peak_queued={mode: a.peak_queued for mode, a in accounts.items()},
            core_busy={mode: busy for mode, (busy, _) in core_time.items()},
            core_idle={mode: idle for mode, (_, idle) in core_time.items()},
            tasks=len(self._engine.tasks),
        )

    def reset_stats(self) -> None:
        """Zero the counters; peaks restart from what is active and running now."""
        self._counters.reset()
        now = self._engine.now_or_zero()
        for account in self._engine.accounts.values():
            account.peak_active = account.peak_running = account.peak_queued = 0
            account.note_peaks()
            account.mark(now)
            account.reset_core_time(now)

    @property
    def webhooks_pending(self) -> int:
        """notifyHook posts queued and not yet attempted."""
        return self._webhooks.pending

    # -- internals ---------------------------------------------------------------------------

    def _on_change(self, task: SimTask) -> None:
        if self._state is not None:
            self._state.save(task)
        if task.notify_hook is None or self._runner is None:
            return
        payload = self._renderer.task(task, self._engine.now())
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        self._webhooks.send(task.notify_hook, body)
