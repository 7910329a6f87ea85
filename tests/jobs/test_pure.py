"""The job layer's decisions, tested without I/O."""

from __future__ import annotations

import pytest

from mjasync import ProgressEvent, TaskStatus
from mjasync._jobs.events import EventQueue, is_advance
from mjasync._jobs.limiter import AimdState, LocalLimiter, next_limit
from mjasync._jobs.pacing import PollSettings, estimated_time_left, next_poll_interval

S = TaskStatus


@pytest.mark.parametrize(
    ("old", "new", "advance"),
    [
        ((None, None), (S.SUBMITTED, None), True),
        ((S.SUBMITTED, None), (S.IN_PROGRESS, 10), True),
        ((S.IN_PROGRESS, 10), (S.IN_PROGRESS, 10), False),  # duplicate
        ((S.IN_PROGRESS, 40), (S.IN_PROGRESS, 30), False),  # progress regression
        ((S.IN_PROGRESS, 40), (S.SUBMITTED, None), False),  # status regression
        ((S.IN_PROGRESS, 40), (S.UNKNOWN, None), False),  # relay "" after a real status
        ((S.SUBMITTED, None), (S.UNKNOWN, None), False),  # unknown status: keep watching quietly
        ((S.IN_PROGRESS, 90), (S.SUCCESS, 100), True),
        ((S.IN_PROGRESS, 90), (S.FAILURE, None), True),
        ((S.SUCCESS, 100), (S.SUCCESS, 100), False),  # terminal is final
        ((S.SUCCESS, 100), (S.IN_PROGRESS, 50), False),
        ((S.SUBMITTED, None), (S.MODAL, None), True),  # relay rewrote 21 -> 1: MODAL is news
        ((S.MODAL, None), (S.SUBMITTED, None), True),  # modal sent: the task runs on
        ((S.MODAL, None), (S.NOT_START, None), True),
        ((S.NOT_START, None), (S.SUBMITTED, None), True),
    ],
)
def test_is_advance(old, new, advance):
    assert is_advance(old[0], old[1], new[0], new[1]) is advance


def test_poll_interval_adapts():
    s = PollSettings(interval=1.0, max_interval=4.0, push_interval=10.0)
    moving = next_poll_interval(s, S.IN_PROGRESS, changed=True, quiet_rounds=0, push_healthy=False)
    queued = next_poll_interval(s, S.NOT_START, changed=False, quiet_rounds=3, push_healthy=False)
    quiet1 = next_poll_interval(s, S.IN_PROGRESS, changed=False, quiet_rounds=1, push_healthy=False)
    quiet9 = next_poll_interval(s, S.IN_PROGRESS, changed=False, quiet_rounds=9, push_healthy=False)
    pushed = next_poll_interval(s, S.IN_PROGRESS, changed=True, quiet_rounds=0, push_healthy=True)
    assert moving == 1.0
    assert queued == 2.0  # slower while waiting in a queue
    assert moving < quiet1 < quiet9 == 4.0  # backs off while quiet, capped
    assert pushed == 10.0  # pushes tell us first


@pytest.mark.parametrize(
    ("first", "latest", "now", "left"),
    [
        ((10.0, 0), (14.0, 20), 14.0, 16.0),  # 5%/s, 80% to go
        ((10.0, 0), (14.0, 20), 20.0, 10.0),  # the clock runs on between changes
        ((10.0, 40), (20.0, 90), 20.0, 2.0),  # first seen mid-way (re-attached)
        ((10.0, 0), (40.0, 50), 80.0, -10.0),  # overdue: slower than it had been
        ((10.0, 20), (10.0, 20), 11.0, None),  # one reading: no rate yet
        ((10.0, 50), (12.0, 40), 12.0, None),  # a regression is not a rate
    ],
)
def test_estimated_time_left(first, latest, now, left):
    assert estimated_time_left(first, latest, now) == left


def test_poll_interval_follows_the_estimate():
    s = PollSettings(interval=1.0, max_interval=4.0, push_interval=10.0)

    def running(left, *, changed=True, quiet=0):
        return next_poll_interval(
            s,
            S.IN_PROGRESS,
            changed=changed,
            quiet_rounds=quiet,
            push_healthy=False,
            time_left=left,
        )

    assert running(60.0) == 4.0  # far from the end: the slowest pace
    assert running(5.0) == 2.5  # halfway to the expected end
    assert running(1.2) == 1.0  # near the end: never faster than the base interval
    # Overdue (the estimate was wrong): the usual quiet back-off, not a poll storm.
    assert running(-3.0, changed=False, quiet=2) == 2.25
    pushed = next_poll_interval(
        s, S.IN_PROGRESS, changed=True, quiet_rounds=0, push_healthy=True, time_left=5.0
    )
    assert pushed == 10.0
    queued = next_poll_interval(
        s, S.NOT_START, changed=False, quiet_rounds=0, push_healthy=False, time_left=5.0
    )
    assert queued == 2.0  # an estimate only applies to a running task


def test_aimd_grows_by_windows_and_halves_on_refusal():
    state = AimdState(3)
    for _ in range(3):
        state = next_limit(state, "accepted")
    assert state.limit == 4
    for _ in range(3):
        state = next_limit(state, "accepted")
    assert state.limit == 4  # a window is now 4 accepts
    state = next_limit(state, "accepted")
    assert state.limit == 5
    state = next_limit(state, "refused")
    assert state == AimdState(3, 0)
    assert next_limit(AimdState(1), "refused").limit == 1  # never below the floor
    # nor above the ceiling, even when a whole window of accepts completes there
    assert next_limit(AimdState(16, 15), "accepted", ceiling=16) == AimdState(16, 0)


def test_local_limiter_rejects_bad_concurrency():
    for bad in (0, -1, 2.5, True, "many"):
        with pytest.raises(ValueError, match="concurrency"):
            LocalLimiter(bad)  # type: ignore[arg-type]


def _event(progress: int | None, status: TaskStatus = S.IN_PROGRESS) -> ProgressEvent:
    return ProgressEvent(task_id="1", status=status, progress=progress, task=None)


@pytest.mark.anyio
async def test_event_queue_is_bounded_and_keeps_the_terminal_event():
    queue = EventQueue(max_pending=4)
    for progress in range(100):
        queue.put(_event(progress))
    queue.put(_event(100, S.SUCCESS))
    queue.put(_event(5))  # nothing after the terminal event
    seen = []
    while (event := await queue.get()) is not None:
        seen.append(event)
    assert len(seen) == 4  # a slow consumer costs bounded memory
    assert seen[-1].status is S.SUCCESS
    assert [e.progress for e in seen] == [97, 98, 99, 100]  # the newest states win
