"""The polling loop: one per mode, asking ``list-by-condition`` for every task that is due.

N tasks cost about N / batch requests a round, not N; when every task of the mode fits in one
request, a round asks for all of them (the request costs the same, and every task is then seen
at every round). The loop only sleeps and sends: when a task is due comes from
:mod:`mjasync._jobs.pacing`, what an answer means from the engine's
:meth:`~mjasync._jobs.engine.JobEngine.apply`. Nothing a server sends can end the loop: a bad
payload fails its own task, a failed round is retried later.

Each round that shows a change adds a :class:`~mjasync._jobs.pacing.ChangeWindow`; when the
windows agree on a refresh cadence (a relay that refreshes from upstream every ~15 s), polls
are timed to meet each refresh (:func:`~mjasync._jobs.pacing.refresh_due`) instead of
following progress extrapolations, and nothing rides along early.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import anyio
import attrs

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
from .pacing import (
    MAX_CADENCE,
    Cadence,
    CadenceTrust,
    ChangeWindow,
    expected_time_left,
    fit_cadence,
    judge_cadence,
    next_poll_interval,
    refresh_due,
)
from .watch import Watch

if TYPE_CHECKING:
    from .engine import JobEngine

__all__ = ["Poller"]

log = logging.getLogger("mjasync")


#: Change windows kept per mode for finding a refresh cadence.
_WINDOWS_KEPT = 12
#: A cadence shorter than this many base intervals is not worth following.
_CADENCE_INTERVALS = 4
#: Rounds polled every interval to learn a relay's cadence, once one showed a task without a
#: status (what new-api shows before its first refresh).
_PROBE_ROUNDS = 40


@attrs.define(eq=False)
class _Pace:
    """What one mode's loop has learned about when its server's answers change."""

    windows: deque[ChangeWindow] = attrs.field(factory=lambda: deque(maxlen=_WINDOWS_KEPT))
    trust: CadenceTrust = attrs.field(factory=CadenceTrust)
    missed: int = 0  # rounds in a row that showed no change while following the cadence
    probes: int | None = None  # rounds left to learn a relay's cadence (None: not started)

    @property
    def cadence(self) -> Cadence | None:
        """The cadence polls follow (trusted), if any."""
        return self.trust.trusted

    @property
    def on_trial(self) -> bool:
        """A cadence is on trial: every task is polled every interval."""
        return self.trust.candidate is not None


class Poller:
    """Runs one polling loop per mode key over the engine's watches."""

    def __init__(self, engine: JobEngine, background: BackgroundTasks) -> None:
        self._engine = engine
        self._background = background
        self._settings = engine.settings
        self._running: set[str] = set()
        self._wakeups: dict[str, anyio.Event] = {}
        self._paces: dict[str, _Pace] = {}

    def cadence(self, key: str) -> Cadence | None:
        """The refresh cadence followed for mode ``key``, if its server has one."""
        pace = self._paces.get(key)
        return pace.cadence if pace is not None else None

    def first_due(self, key: str, now: float) -> float:
        """When a just-submitted task of ``key`` is first worth a poll."""
        cadence = self.cadence(key)
        if cadence is not None:
            return refresh_due(self._settings, cadence, now, missed=0)
        return now + self._settings.interval

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
        watch.due = anyio.current_time()
        self._wake(mode_key(watch.mode))

    def _wake(self, key: str) -> None:
        wake = self._wakeups.get(key)
        if wake is not None:
            wake.set()

    async def _run_mode(self, key: str, mode: str | None) -> None:
        settings = self._settings
        next_stall_check = 0.0
        pace = self._paces.setdefault(key, _Pace())
        batch = self._engine.api.list_batch_size
        while True:
            group = self._engine.group(key)
            wake = self._wakeups[key] = anyio.Event()
            if not group:
                await wake.wait()
                continue
            try:
                now = anyio.current_time()
                if now >= next_stall_check:  # a scan of every watch: once an interval is plenty
                    self._check_stalls(group.values(), now)
                    next_stall_check = now + settings.interval
                # Batch generously: a task due within half an interval rides along now; but a
                # server with a cadence shows nothing new before its refresh.
                horizon = now if pace.cadence is not None else now + settings.interval / 2
                due = [w for w in group.values() if w.due <= horizon]
                if due and len(due) < len(group) <= batch and self._engine.api.lists(mode):
                    # One request either way: see them all, but those pushes keep up to date.
                    health = settings.push_health
                    due = [
                        w for w in group.values() if w.due <= horizon or now - w.pushed_at > health
                    ]
                if due:
                    await self._poll(due, mode, pace)
            except Exception:  # a bug must not stop every job of the mode: log, go on
                log.exception("mjasync: a poll round failed; polling goes on")
            group = self._engine.group(key)
            if not group:
                continue
            next_due = min(w.due for w in group.values())
            delay = max(0.0, min(next_due - anyio.current_time(), settings.interval))
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

    async def _poll(self, due: list[Watch], mode: str | None, pace: _Pace) -> None:
        engine = self._engine
        engine.counters.poll_rounds += 1
        ids = [w.task_id for w in due]
        seen: set[str] = set()
        group = engine.group(mode_key(mode))
        sent = anyio.current_time()
        changes: list[tuple[float, str]] = []  # (seen unchanged at, task id) of changed tasks
        sharp = 2 * self._settings.interval  # a change seen this soon is dated closely

        def take(payloads: list[Any]) -> None:
            # Applied chunk by chunk as answers arrive, so a big round never holds every
            # decoded payload at once.
            now = anyio.current_time()
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
                before, found.seen_at = found.seen_at, sent
                if engine.apply(found, payload, "poll", now):
                    found.changed_since = before
                    changes.append((before, task_id))
                    first = found.first_running
                    if first is not None and first[0] == now:
                        # It started between the two looks: if they were close, the middle
                        # errs least; if not, the estimate from it is not sure anyway.
                        found.first_sharp = now - before <= sharp
                        if found.first_sharp:
                            found.first_running = ((before + now) / 2, first[1])
                else:
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
            later = anyio.current_time() + self._settings.max_interval
            for watch in due:
                watch.due = later
            return
        engine.settle(mode)
        self._learn(pace, changes, anyio.current_time())
        self._pace(due, seen, pace, mode)

    def _learn(self, pace: _Pace, changes: list[tuple[float, str]], received: float) -> None:
        """Add this round's change window and look (again) for a refresh cadence."""
        if not changes:
            if pace.cadence is not None:
                pace.missed += 1
            return
        pace.missed = 0
        opened, task_id = max(changes)  # every change happened after the latest 'unchanged'
        window = ChangeWindow(opened=opened, closed=received, task_id=task_id)
        known = pace.cadence or pace.trust.candidate
        # A window a third of the period wide or more says nothing about the phase; worse,
        # it would seem to agree with a multiple of the period. Keep the informative ones.
        if window.width > (known.period if known is not None else MAX_CADENCE) / 3:
            return
        pace.windows.append(window)
        interval = self._settings.interval
        relay = pace.probes is not None  # it showed tasks without a status: it refreshes
        shortest = _CADENCE_INTERVALS * interval
        periods = 2 if relay else 3  # three neighbouring refreshes do for a relay
        fit = fit_cadence(
            tuple(pace.windows),
            min_period=shortest,
            near=known.period if known is not None else None,
            min_periods=periods,
        )
        if fit is None and len(pace.windows) > _WINDOWS_KEPT // 2:
            # The server may have changed its pace: the recent windows alone may agree.
            recent = tuple(pace.windows)[-(_WINDOWS_KEPT // 2) :]
            fit = fit_cadence(recent, min_period=shortest, min_periods=periods)
        before = pace.trust
        pace.trust = judge_cadence(before, fit, received, interval=interval, relay=relay)
        if pace.cadence is not None and before.trusted is None:
            log.info(
                "mjasync: the server's answers change every %.2fs; polls meet its refreshes",
                pace.cadence.period,
            )
        elif pace.cadence is None and before.trusted is not None:
            log.info("mjasync: the server's answers no longer follow a cadence")

    def _pace(self, due: list[Watch], seen: set[str], pace: _Pace, mode: str | None) -> None:
        settings = self._settings
        now = anyio.current_time()
        cadence = pace.cadence
        meet = None if cadence is None else refresh_due(settings, cadence, now, missed=pace.missed)
        if cadence is None and pace.probes is None and any(w.blank for w in due):
            # No status yet: a relay that refreshes from upstream on its own clock. Looking
            # every interval for a while shows when its refreshes come.
            pace.probes = _PROBE_ROUNDS
        if pace.on_trial:
            meet = now + settings.interval  # a change off the grid would refute it: look
        elif cadence is None and pace.probes:
            pace.probes -= 1
            meet = now + settings.interval
        job_time = self._engine.queue_state(mode).job_time if due else None
        for watch in due:
            if watch.retired:
                continue
            if watch.task_id not in seen:
                watch.misses += 1
                if watch.misses >= settings.missing_rounds:
                    watch.misses = 0  # one confirmation at a time
                    self._background.start_soon(self._confirm_lost, watch)
            healthy = now - watch.pushed_at <= settings.push_health
            if meet is not None and not (healthy and not watch.confirm_end):
                watch.due = meet
                continue
            first = watch.first_running
            time_left, sure = None, False
            if first is not None:
                time_left, sure = expected_time_left(
                    first,
                    watch.progress or 0,
                    (watch.changed_since, watch.last_change),
                    now,
                    job_time=job_time,
                    sharp=2 * settings.interval,
                    first_sharp=watch.first_sharp,
                )
            watch.due = now + next_poll_interval(
                settings,
                TaskStatus.UNKNOWN if watch.blank else watch.status or TaskStatus.UNKNOWN,
                changed=watch.quiet_rounds == 0,
                quiet_rounds=watch.quiet_rounds,
                push_healthy=healthy and not watch.confirm_end,
                time_left=time_left,
                sure=sure,
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
