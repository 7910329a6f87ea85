"""Tasks, per-mode accounts and the timeline that moves tasks through their lifecycle.

Each task owns at most one pending ``loop.call_at`` handle for its next transition, so the cost
of time passing is proportional to the transitions that happen, never to the number of live
tasks. Accounts admit work like the real servers: ``core_size`` jobs hold a slot (SUBMITTED or
IN_PROGRESS), ``queue_size`` more wait (NOT_START), the next one is refused.

With ``relay_refresh`` the relay shows every phase of a task (queued, started, each progress
step, the end) only as of its latest refresh, like new-api's one background loop that copies
upstream's state every ~15 s (``controller/midjourney.go``): refreshes come at whole periods
from the simulator's start, the same instants for every task, and a task submitted since the
last refresh shows status ``""`` and progress ``"0%"``. :meth:`Engine.visible` picks the view;
only the snapshots still needed for it are kept.
"""

from __future__ import annotations

import asyncio
import copy
import math
import random
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._sim_buttons import (
    ButtonSpec,
    ResultKind,
    describe_buttons,
    grid_buttons,
    shorten_buttons,
    upscale_buttons,
)
from ._sim_config import SimOptions
from ._sim_stats import Counters
from ._sim_text import FAIL_REASONS, has_marker, numbered

__all__ = ["ACTIVE", "TERMINAL", "Account", "Engine", "SimTask"]

NOT_START, SUBMITTED, IN_PROGRESS, MODAL = "NOT_START", "SUBMITTED", "IN_PROGRESS", "MODAL"
SUCCESS, FAILURE, CANCEL = "SUCCESS", "FAILURE", "CANCEL"
ACTIVE = frozenset({NOT_START, SUBMITTED, IN_PROGRESS})
TERMINAL = frozenset({SUCCESS, FAILURE, CANCEL})
TIMEOUT_REASON = "任务超时"
CANCEL_REASON = "取消任务"
_STALL_PROGRESS = 37  # where a ``--stall`` job freezes: visibly started, far from done


@dataclass(slots=True, eq=False)
class SimTask:
    """One task as the simulator keeps it (rendered per accent by ``_sim_render``)."""

    id: str
    mode: str
    action: str
    prompt: str
    description: str
    final_prompt: str
    state: str | None
    notify_hook: str | None
    bot_type: str
    result: ResultKind
    message_hash: str
    seed: str
    submit_ms: int
    created_at: float
    final_image: str
    outcome: str = "success"  # success | fail | stall
    planned_reason: str | None = None  # the failReason to show once a planned failure happens
    fail_reason: str | None = None
    duration: float = 0.0
    status: str = NOT_START
    progress: int | None = None
    start_ms: int | None = None
    finish_ms: int | None = None
    image_key: str | None = None
    buttons: tuple[ButtonSpec, ...] = ()
    text_options: tuple[str, ...] = ()
    video_count: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    step: int = 0
    started_at: float = 0.0
    holds_slot: bool = False
    handle: asyncio.TimerHandle | None = None

    def final_buttons(self) -> tuple[ButtonSpec, ...]:
        """The buttons the task shows once it succeeds."""
        if self.result in ("image", "video"):
            return ()
        if self.result == "upscale":
            return upscale_buttons(self.message_hash)
        if self.result == "grid":
            return grid_buttons(self.message_hash)
        if self.action == "DESCRIBE":
            return describe_buttons(self.message_hash)
        return shorten_buttons(self.message_hash)


@dataclass(slots=True)
class Account:
    """One upstream account (one per mode): core slots, a wait queue, peaks and core time.

    Core time is integrated at every change of ``slots_used`` (so a snapshot does not move
    while nothing happens): ``busy`` sums the slots held over time, ``idle`` the free ones,
    from the first job admitted; ``idle_before_last_grant``
    is the idle time up to the latest moment a job got a slot (idle while jobs were still to
    come: after the last one, nothing could have used a core).
    """

    mode: str
    core_size: int
    queue_size: int
    slots_used: int = 0  # SUBMITTED + IN_PROGRESS
    running: int = 0  # IN_PROGRESS
    queued: int = 0  # NOT_START still waiting
    queue: deque[SimTask] = field(default_factory=deque)
    peak_active: int = 0
    peak_running: int = 0
    peak_queued: int = 0
    busy: float = 0.0
    idle: float = 0.0
    idle_before_last_grant: float = 0.0
    marked_at: float | None = None  # None until the first job is admitted

    @property
    def active(self) -> int:
        """NOT_START + SUBMITTED + IN_PROGRESS."""
        return self.slots_used + self.queued

    def note_peaks(self) -> None:
        """Raise the peaks to the current figures."""
        self.peak_active = max(self.peak_active, self.active)
        self.peak_running = max(self.peak_running, self.running)
        self.peak_queued = max(self.peak_queued, self.queued)

    def mark(self, now: float) -> None:
        """Integrate core time up to ``now`` (before ``slots_used`` changes)."""
        if self.marked_at is not None:
            elapsed = now - self.marked_at
            self.busy += self.slots_used * elapsed
            self.idle += max(0, self.core_size - self.slots_used) * elapsed
        self.marked_at = now

    def core_time(self) -> tuple[float, float]:
        """(busy, idle before the last grant) core-seconds, as of the latest slot change."""
        return self.busy, self.idle_before_last_grant

    def reset_core_time(self, now: float) -> None:
        """Start integrating afresh (``reset_stats``)."""
        self.busy = self.idle = self.idle_before_last_grant = 0.0
        self.marked_at = now if self.active else None


class Engine:
    """Owns every task and account and schedules each task's next transition."""

    def __init__(
        self,
        options: SimOptions,
        counters: Counters,
        on_change: Callable[[SimTask], None],
    ) -> None:
        self.options = options
        self.counters = counters
        self.on_change = on_change
        self.rng = random.Random(f"{options.seed}:tasks")
        self.tasks: dict[str, SimTask] = {}
        self.accounts = {
            mode: Account(mode, options.core_size, options.queue_size)
            for mode in options.account_modes
        }
        self._next_id = self.rng.randrange(1_700_000_000_000_000, 1_800_000_000_000_000)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wall_anchor = time.time()
        self._loop_anchor = 0.0
        # relay_refresh: per task, (time, snapshot) of the states a refresh may still show.
        self._history: dict[str, list[tuple[float, SimTask]]] = {}

    # -- clock -------------------------------------------------------------------------------

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach to the running loop; epoch times are derived from its clock from now on."""
        self._loop = loop
        self._wall_anchor = time.time()
        self._loop_anchor = loop.time()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the simulator runs on."""
        if self._loop is None:
            raise RuntimeError("the simulator is not started")
        return self._loop

    def now(self) -> float:
        """The loop clock, in seconds."""
        return self.loop.time()

    def now_or_zero(self) -> float:
        """The loop clock, or 0 before the simulator started (stats read before it)."""
        return 0.0 if self._loop is None else self._loop.time()

    def epoch_ms(self) -> int:
        """Wall-clock epoch milliseconds, advancing with the loop clock."""
        return int((self._wall_anchor + self.now() - self._loop_anchor) * 1000)

    # -- what a relay that refreshes on a cadence shows --------------------------------------

    def last_refresh(self, now: float) -> float | None:
        """The latest relay refresh at or before ``now`` (``None``: none yet, or no cadence)."""
        period = self.options.relay_refresh
        if not period:
            return None
        periods = math.floor((now - self._loop_anchor) / period + 1e-9)
        return None if periods < 1 else self._loop_anchor + periods * period

    def shown_from_ms(self, epoch_ms: int) -> int:
        """When a change made at ``epoch_ms`` shows (the next relay refresh; epoch ms)."""
        period = self.options.relay_refresh
        if not period:
            return epoch_ms
        since = epoch_ms / 1000 - self._wall_anchor
        periods = max(1, math.ceil(since / period - 1e-9))
        return math.ceil((self._wall_anchor + periods * period) * 1000)

    def visible(self, task: SimTask, now: float) -> SimTask:
        """The task as the server shows it at ``now`` (``relay_refresh``: as last refreshed)."""
        if not self.options.relay_refresh:
            return task
        refreshed = self.last_refresh(now)
        shown: SimTask | None = None
        if refreshed is not None:
            for when, snapshot in self._history.get(task.id, ()):
                if when > refreshed:
                    break
                shown = snapshot
        if shown is None:  # submitted since the last refresh: new-api's own blank record
            shown = copy.copy(task)
            shown.status, shown.progress = "", 0
            shown.start_ms = shown.finish_ms = shown.image_key = shown.fail_reason = None
            shown.buttons = ()
        return shown

    def _changed(self, task: SimTask) -> None:
        """A transition happened: keep what a relay refresh may show, tell the listener."""
        if self.options.relay_refresh and task.id in self.tasks:
            history = self._history.setdefault(task.id, [])
            now = self.now()
            refreshed = self.last_refresh(now)
            # Only the newest snapshot a past refresh shows, and the ones after it, matter.
            while refreshed is not None and len(history) > 1 and history[1][0] <= refreshed:
                del history[0]
            snapshot = copy.copy(task)
            snapshot.handle = None
            history.append((now, snapshot))
        self.on_change(task)

    # -- creating tasks ----------------------------------------------------------------------

    def new_task(
        self,
        *,
        mode: str,
        action: str,
        prompt: str,
        description: str,
        result: ResultKind,
        state: str | None,
        notify_hook: str | None,
        bot_type: str = "MID_JOURNEY",
        final_image: str | None = None,
        final_prompt: str | None = None,
    ) -> SimTask:
        """Build a task (not yet stored or admitted), with its fate decided from the prompt.

        ``final_image`` is an image key; ``{id}`` in it is replaced by the new task's id.
        """
        task_id = str(self._next_id)
        self._next_id += 1
        task = SimTask(
            id=task_id,
            mode=mode,
            action=action,
            prompt=prompt,
            description=description.replace("{id}", task_id),
            final_prompt=prompt if final_prompt is None else final_prompt,
            state=state,
            notify_hook=notify_hook,
            bot_type=bot_type,
            result=result,
            message_hash=str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            seed=str(self.rng.randrange(1_000_000_000, 4_294_967_295)),
            submit_ms=self.epoch_ms(),
            created_at=self.now(),
            final_image=(final_image or "{id}-grid").replace("{id}", task_id),
        )
        self.plan(task)
        return task

    def plan(self, task: SimTask) -> None:
        """Decide how the job will end and how long it runs (again after a modal prompt)."""
        duration = self.options.job_duration
        if has_marker(task.prompt, "--slow"):
            duration *= 10
        task.duration = duration
        # Draw even when a marker decides, so one marker does not shift every later fate.
        unlucky = self.rng.random() < self.options.failure_rate
        reason = self.rng.choice(FAIL_REASONS)
        if has_marker(task.prompt, "--fail"):
            task.outcome = "fail"
            task.planned_reason = "[Invalid parameter] Unrecognized parameter(s): `--fail`"
        elif has_marker(task.prompt, "--stall"):
            task.outcome = "stall"
        elif unlucky:
            task.outcome = "fail"
            task.planned_reason = reason
        else:
            task.outcome = "success"
            task.planned_reason = None

    # -- admission ---------------------------------------------------------------------------

    def admit(self, task: SimTask) -> int | None:
        """Store ``task`` and start or queue it; ``None`` (nothing stored) if the queue is full.

        Returns how many tasks wait ahead when it was queued (its status is then NOT_START),
        else 0.
        """
        account = self.accounts[task.mode]
        if account.marked_at is None:
            account.mark(self.now())  # core time counts from the first job on
        if account.slots_used < account.core_size:
            self.tasks[task.id] = task
            self._grant(task, account)
            return 0
        if account.queued >= account.queue_size:
            return None
        ahead = account.queued
        task.status = NOT_START
        self.tasks[task.id] = task
        account.queue.append(task)
        account.queued += 1
        account.note_peaks()
        self._changed(task)
        return ahead

    def restore(self, task: SimTask) -> None:
        """Take back a task from an earlier run, where it was; the clock stopped meanwhile.

        Running tasks get their slot back (even over ``core_size``: they were running) and go
        on from their last step; waiting ones are admitted again in the order given.
        """
        self.tasks[task.id] = task
        if task.id.isdigit():  # new ids never collide with restored ones
            self._next_id = max(self._next_id, int(task.id) + 1)
        account = self.accounts.get(task.mode)
        if account is None or task.status not in ACTIVE:
            return  # finished, MODAL, or on an account this server no longer has: kept as is
        if task.status == IN_PROGRESS:
            task.holds_slot = True
            account.slots_used += 1
            account.running += 1
            account.note_peaks()
            steps = self.options.progress_steps
            task.started_at = self.now() - task.duration * task.step / (steps + 1)
            self._schedule_next(task)
        elif account.slots_used < account.core_size:
            self._grant(task, account)
        else:
            task.status = NOT_START
            account.queue.append(task)
            account.queued += 1
            account.note_peaks()

    def hold_in_modal(self, task: SimTask) -> None:
        """Store ``task`` waiting in MODAL for ``/submit/modal`` (holds no slot)."""
        task.status = MODAL
        self.tasks[task.id] = task
        self._changed(task)

    def _grant(self, task: SimTask, account: Account) -> None:
        task.status = SUBMITTED
        task.holds_slot = True
        account.mark(self.now())
        account.idle_before_last_grant = account.idle
        account.slots_used += 1
        account.note_peaks()
        self._at(task, self.now() + self.options.start_delay, self._begin)
        self._changed(task)

    def _release(self, task: SimTask) -> None:
        account = self.accounts[task.mode]
        if task.holds_slot:
            task.holds_slot = False
            account.mark(self.now())
            account.slots_used -= 1
            if task.status == IN_PROGRESS:
                account.running -= 1
        while account.queue and account.slots_used < account.core_size:
            waiting = account.queue.popleft()
            if waiting.status != NOT_START:
                continue  # cancelled or forgotten while it waited
            account.queued -= 1
            self._grant(waiting, account)

    # -- the timeline ------------------------------------------------------------------------

    def _at(self, task: SimTask, when: float, callback: Callable[[SimTask], None]) -> None:
        if task.handle is not None:
            task.handle.cancel()
        task.handle = self.loop.call_at(when, callback, task)

    def _begin(self, task: SimTask) -> None:
        task.handle = None
        account = self.accounts[task.mode]
        task.status = IN_PROGRESS
        task.progress = 0
        task.start_ms = self.epoch_ms()
        task.started_at = self.now()
        task.step = 0
        account.running += 1
        account.note_peaks()
        if task.action == "DESCRIBE":
            task.image_key = task.final_image
        self._schedule_next(task)
        self._changed(task)

    def _schedule_next(self, task: SimTask) -> None:
        steps = self.options.progress_steps
        timeout = self.options.task_timeout
        if task.outcome == "stall":
            if task.step == 0:
                when = task.started_at + task.duration / (steps + 1)
            elif timeout is not None:
                when = task.started_at + timeout
            else:
                return  # frozen for good: a stall test's whole point
        else:
            when = task.started_at + task.duration * (task.step + 1) / (steps + 1)
        if timeout is not None and when > task.started_at + timeout:
            self._at(task, task.started_at + timeout, self._time_out)
        else:
            self._at(task, when, self._advance)

    def _advance(self, task: SimTask) -> None:
        task.handle = None
        task.step += 1
        steps = self.options.progress_steps
        if task.outcome == "stall":
            if task.step == 1:
                task.progress = _STALL_PROGRESS
                self._preview(task)
                self._schedule_next(task)
                self._changed(task)
            else:
                self._time_out(task)
            return
        if task.outcome == "fail" and task.step >= max(1, (steps + 1) // 2):
            self._end(task, FAILURE, task.planned_reason)
            return
        if task.step > steps:
            self._end(task, SUCCESS, None)
            return
        task.progress = round(100 * task.step / (steps + 1))
        self._preview(task)
        self._schedule_next(task)
        self._changed(task)

    def _preview(self, task: SimTask) -> None:
        if task.result == "grid":
            task.image_key = f"{task.id}-preview{task.progress}"
        elif task.result in ("upscale", "image"):
            task.image_key = task.final_image

    def _time_out(self, task: SimTask) -> None:
        self._end(task, FAILURE, TIMEOUT_REASON)

    def _end(self, task: SimTask, status: str, reason: str | None) -> None:
        task.handle = None
        self._release(task)
        task.status = status
        task.finish_ms = self.epoch_ms()
        if status == SUCCESS:
            task.progress = 100
            task.image_key = task.final_image
            task.buttons = task.final_buttons()
            if task.text_options:
                text = numbered(task.text_options)
                task.final_prompt = text
                if task.action == "DESCRIBE":
                    task.prompt = text
        else:
            task.fail_reason = reason
        self.counters.finished[status] += 1
        self._changed(task)

    # -- control -----------------------------------------------------------------------------

    def cancel(self, task: SimTask) -> bool:
        """Cancel a task that has not finished, as C does; ``False`` if it already had.

        C fails the task with failReason "取消任务" and never sets CANCEL
        (trueai-org/midjourney-proxy ed32197, Controllers/TaskController.cs:86-125).
        """
        return self.finish_now(task, FAILURE, CANCEL_REASON)

    def finish_now(self, task: SimTask, status: str, reason: str | None) -> bool:
        """End a task that has not finished (``status`` is terminal); ``False`` if it had."""
        if task.status in TERMINAL:
            return False
        if task.handle is not None:
            task.handle.cancel()
            task.handle = None
        if task.status == NOT_START:
            self.accounts[task.mode].queued -= 1  # its queue entry is skipped when reached
            task.status = CANCEL
        self._end(task, status, reason)
        return True

    def forget_all(self) -> None:
        """Drop every task and free every account, like a restart that lost its store."""
        self._cancel_timers()
        for task in self.tasks.values():
            task.status = CANCEL  # stale queue entries and late callbacks see it is gone
        self.tasks.clear()
        self._history.clear()
        for account in self.accounts.values():
            account.mark(self.now())
            account.slots_used = account.running = account.queued = 0
            account.queue.clear()

    def _cancel_timers(self) -> None:
        for task in self.tasks.values():
            if task.handle is not None:
                task.handle.cancel()
                task.handle = None

    def close(self) -> None:
        """Stop the timeline (pending transitions never fire)."""
        self._cancel_timers()
