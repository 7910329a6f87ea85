"""Decision tables for queueing ahead (limiter.py) and for pacing on a stale relay (pacing.py).

Pure functions, no I/O: each row is (inputs, expected decision).
"""

from __future__ import annotations

import pytest

from mjasync import TaskStatus
from mjasync._jobs.limiter import (
    ROOM_WINDOW,
    QueueState,
    ahead_allowance,
    grows_running,
    learned_job_time,
    queue_feedback,
    saw_running,
    saw_waiting,
)
from mjasync._jobs.pacing import (
    Cadence,
    CadenceTrust,
    ChangeWindow,
    PollSettings,
    expected_time_left,
    fit_cadence,
    judge_cadence,
    next_poll_interval,
    refresh_due,
)

S = TaskStatus
SEEN3 = QueueState(seen=True, cores=3)

# -- queueing ahead --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "running", "expected"),
    [
        (QueueState(), 3, QueueState(seen=True, cores=3)),  # waits while three of ours run
        (QueueState(), 0, QueueState()),  # waits behind other clients only: no evidence
        (QueueState(seen=True, cores=3), 2, QueueState(seen=True, cores=3)),  # cores stay
        (QueueState(seen=True, cores=2), 3, QueueState(seen=True, cores=3)),  # ... or grow
        (QueueState(room=1, job_time=9.0), 1, QueueState(True, 1, 1, 0, 9.0)),  # keeps the rest
    ],
)
def test_saw_waiting(state, running, expected):
    assert saw_waiting(state, running) == expected


@pytest.mark.parametrize(
    ("state", "running", "cap", "expected"),
    [
        (QueueState(seen=True, cores=2), 3, 3, QueueState(seen=True, cores=3)),  # more cores
        (QueueState(seen=True, cores=3), 3, 3, QueueState(seen=True, cores=3)),
        (QueueState(seen=True, cores=3), 4, 3, QueueState(seen=False, cores=0)),  # ran beyond
        (QueueState(seen=True, cores=3, room=2), 4, 3, QueueState(room=2)),  # room is kept
        (QueueState(), 5, 6, QueueState()),  # not seen to queue: running says nothing
        (QueueState(), 7, 6, QueueState()),
    ],
)
def test_saw_running(state, running, cap, expected):
    assert saw_running(state, running, cap) == expected


@pytest.mark.parametrize(
    ("state", "outcome", "waiting", "expected"),
    [
        (QueueState(), "refused", 4, QueueState()),  # not queueing ahead: not ours to learn
        (SEEN3, "refused", 4, QueueState(seen=True, cores=3, room=2)),  # half of those waiting
        (SEEN3, "refused", 1, QueueState(seen=True, cores=3, room=0)),
        (SEEN3, "accepted", 0, SEEN3),  # no room learned yet: nothing to grow
        (
            QueueState(seen=True, cores=3, room=1, accepted_in_window=3),
            "accepted",
            0,
            QueueState(seen=True, cores=3, room=1, accepted_in_window=4),
        ),
        (
            QueueState(seen=True, cores=3, room=1, accepted_in_window=ROOM_WINDOW - 1),
            "accepted",
            0,
            QueueState(seen=True, cores=3, room=2),  # a whole window: one more
        ),
        (
            QueueState(seen=True, cores=3, room=20, accepted_in_window=ROOM_WINDOW),
            "accepted",
            0,
            QueueState(seen=True, cores=3, room=20, accepted_in_window=ROOM_WINDOW + 1),
        ),  # a big room needs a window as long as itself
        (
            QueueState(seen=True, cores=3, room=3, accepted_in_window=5),
            "refused",
            2,
            QueueState(seen=True, cores=3, room=1),  # a refusal restarts the window
        ),
    ],
)
def test_queue_feedback(state, outcome, waiting, expected):
    assert queue_feedback(state, outcome, waiting=waiting) == expected


@pytest.mark.parametrize(
    ("before", "seconds", "after"),
    [
        (None, 40.0, 40.0),
        (40.0, 60.0, 46.0),
        (40.0, 40.0, 40.0),
        (40.0, 0.0, 40.0),  # no running time seen: ignored
        (None, -1.0, None),
    ],
)
def test_learned_job_time(before, seconds, after):
    assert learned_job_time(QueueState(job_time=before), seconds).job_time == after


@pytest.mark.parametrize(
    ("setting", "state", "limit", "budget", "allowed"),
    [
        (None, QueueState(), 3, 120.0, 0),  # never before the account is seen to queue
        (5, QueueState(), 3, 120.0, 0),
        (0, SEEN3, 3, 120.0, 0),  # off
        (None, SEEN3, 3, 120.0, 3),  # one per core
        (2, SEEN3, 3, 120.0, 2),
        (8, SEEN3, 3, 120.0, 8),
        (None, QueueState(seen=True, cores=2), 3, 120.0, 1),  # the third slot already waits
        (2, QueueState(seen=True, cores=2), 3, 120.0, 1),
        (1, QueueState(seen=True, cores=1), 3, 120.0, 0),  # two slots wait already: enough
        (None, QueueState(seen=True, cores=5), 3, 120.0, 3),  # cores above the limit: limit
        (None, QueueState(seen=True, cores=0), 3, 120.0, 0),  # (at least one core)
        (None, QueueState(seen=True, cores=3, job_time=45.0), 3, 120.0, 3),  # waits ~2 jobs
        (9, QueueState(seen=True, cores=3, job_time=45.0), 3, 120.0, 6),  # at most 2 waves
        (None, QueueState(seen=True, cores=3, job_time=70.0), 3, 120.0, 3),  # one wave fits
        (None, QueueState(seen=True, cores=3, job_time=130.0), 3, 120.0, 0),  # none fits
        (None, QueueState(seen=True, cores=3, job_time=45.0), 3, 30.0, 0),  # a short budget
        (None, QueueState(seen=True, cores=3, room=1), 3, 120.0, 1),  # learned room
        (None, QueueState(seen=True, cores=3, room=0), 3, 120.0, 0),
        (None, QueueState(seen=True, cores=3, room=9), 3, 120.0, 3),
    ],
)
def test_ahead_allowance(setting, state, limit, budget, allowed):
    assert ahead_allowance(setting, state, limit, wait_budget=budget) == allowed


@pytest.mark.parametrize(
    ("state", "limit", "grows"),
    [
        (QueueState(), 3, True),  # nothing seen: "auto" may grow
        (QueueState(), 16, True),
        (SEEN3, 3, False),  # the cores are known: more would only wait
        (SEEN3, 4, False),
        (SEEN3, 2, True),  # halved below the cores (a refusal): grow back to them
    ],
)
def test_grows_running(state, limit, grows):
    assert grows_running(state, limit) is grows


# -- pacing ----------------------------------------------------------------------------------

SETTINGS = PollSettings(interval=1.0, max_interval=4.0, push_interval=10.0)


@pytest.mark.parametrize(
    ("status", "changed", "quiet", "left", "expected"),
    [
        (S.IN_PROGRESS, True, 0, 30.0, 10.0),  # far: halfway, at most push_interval
        (S.IN_PROGRESS, True, 0, 12.0, 6.0),
        (S.IN_PROGRESS, True, 0, 8.0, 8.0),  # within two max_intervals: meet the end
        (S.IN_PROGRESS, False, 3, 3.0, 3.0),
        (S.IN_PROGRESS, True, 0, 0.1, 0.25),  # not in a flurry
        (S.IN_PROGRESS, False, 2, -1.0, 1.0),  # just overdue: every interval
        (S.IN_PROGRESS, False, 2, -4.0, 1.0),
        (S.IN_PROGRESS, False, 2, -4.5, 2.25),  # long overdue: the quiet back-off
        (S.IN_PROGRESS, True, 0, None, 1.0),  # moving, no estimate: the interval
        (S.UNKNOWN, False, 0, None, 1.0),  # no status yet (a relay): every interval
        (S.UNKNOWN, False, 15, None, 1.0),
        (S.UNKNOWN, False, 16, None, 4.0),  # ... for a while, then as if waiting
        (S.NOT_START, False, 0, None, 2.0),  # waiting: twice the interval
        (S.SUBMITTED, False, 1, None, 3.0),  # ... backing off while nothing changes
        (S.NOT_START, False, 9, None, 4.0),  # ... up to max_interval
        (S.NOT_START, False, 0, 5.0, 2.0),  # an estimate is for running tasks only
        (S.MODAL, False, 1, None, 1.5),
    ],
)
def test_next_poll_interval(status, changed, quiet, left, expected):
    decided = next_poll_interval(
        SETTINGS,
        status,
        changed=changed,
        quiet_rounds=quiet,
        push_healthy=False,
        time_left=left,
    )
    assert decided == pytest.approx(expected)


@pytest.mark.parametrize(
    ("first", "progress", "changed", "now", "job_time", "left"),
    [
        ((0.0, 0), 50, (4.9, 5.1), 5.0, None, 5.0),  # a sharp window: the progress rate
        ((0.0, 0), 50, (4.9, 5.1), 5.0, 30.0, 5.0),  # ... even when others took longer
        ((0.0, 0), 50, (1.0, 5.0), 5.0, 12.0, 7.0),  # a blurred one: as long as the others
        ((0.0, 0), 50, (1.0, 5.0), 5.0, None, 1.0),  # ... or, none finished, from its middle
        ((2.0, 0), 0, (0.0, 2.0), 3.0, 10.0, 9.0),  # no rate yet: as long as the others
        ((2.0, 0), 0, (0.0, 2.0), 3.0, None, None),  # nothing to go by
        ((0.0, 20), 20, (0.0, 0.0), 1.0, None, None),  # one reading only
    ],
)
def test_expected_time_left(first, progress, changed, now, job_time, left):
    got = expected_time_left(first, progress, changed, now, job_time=job_time, sharp=0.5)
    assert got == (None if left is None else pytest.approx(left))


def windows(times: list[float], width: float = 0.1, tasks: int = 2) -> list[ChangeWindow]:
    return [ChangeWindow(t - width, t, f"task {i % tasks}") for i, t in enumerate(times)]


@pytest.mark.parametrize(
    ("seen", "kwargs", "period"),
    [
        ([k * 15.0 + 4 for k in range(6)], {}, 15.0),  # a change at every refresh
        ([4, 19, 34, 64, 79], {}, 15.0),  # one refresh without news
        ([4.0, 19.0, 34.0], {}, None),  # too few windows
        ([4, 19, 34, 49, 64], {"min_windows": 6}, None),
        ([k * 45.0 + 4 for k in range(6)], {}, 45.0),  # only every third seen: that is all
        ([4, 19, 34, 49, 64], {"min_period": 20.0}, None),  # a cadence too quick to follow
        ([4, 19, 34, 49, 64], {"max_period": 10.0}, None),
        ([4, 11.5, 19, 26.5, 34, 41.5, 49], {}, 7.5),  # the longest period that fits wins
        ([4, 13, 19, 34, 49, 64], {}, None),  # a change off any grid: a live server
        ([3.2, 9.8, 17.1, 21.4, 29.9, 36.3, 40.2], {}, None),  # changes at random times
        ([4, 19, 34, 49, 64], {"near": 15.0}, 15.0),  # the fine search near a known period
        ([4, 19, 34, 49, 64], {"near": 22.0}, 15.0),  # a wrong hint costs the full search
    ],
)
def test_fit_cadence(seen, kwargs, period):
    kwargs.setdefault("min_period", 4.0)
    fit = fit_cadence(windows(seen), **kwargs)
    if period is None:
        assert fit is None
    else:
        assert fit is not None
        assert fit.period == pytest.approx(period, rel=0.03)
        # The next refresh is guessed early (never late), and not by much.
        after = seen[-1] + 1
        actual = seen[-1] + period
        assert actual - 0.05 * period <= fit.next_refresh(after) <= actual


def test_fit_cadence_needs_two_tasks_and_narrow_windows():
    times = [k * 15.0 + 4 for k in range(6)]
    assert fit_cadence(windows(times, tasks=1), min_period=4.0) is None  # one task's rhythm
    assert fit_cadence(windows(times, width=6.0), min_period=4.0) is None  # too blurred


@pytest.mark.parametrize(
    ("now", "missed", "due"),
    [
        (101.0, 0, 116.0),  # an interval after the next refresh may come
        (114.9, 0, 116.0),
        (115.0, 0, 131.0),  # a change seen from its earliest instant on: that was it
        (116.6, 0, 131.0),
        (116.5, 1, 117.5),  # it showed nothing: again after an interval ...
        (117.5, 2, 119.0),  # ... backing off ...
        (125.0, 6, 129.0),  # ... up to max_interval ...
        (130.0, 8, 131.0),  # ... never past the next refresh
        (131.5, 8, 135.5),  # (the one due at 131 is past: back-off)
    ],
)
def test_refresh_due(now, missed, due):
    cadence = Cadence(period=15.0, earliest=100.0, latest=100.5)
    settings = PollSettings(interval=1.0, max_interval=4.0)
    assert refresh_due(settings, cadence, now, missed=missed) == pytest.approx(due)


def test_refresh_due_margin_is_a_tenth_of_a_short_period():
    cadence = Cadence(period=2.0, earliest=10.0, latest=10.1)
    assert refresh_due(SETTINGS, cadence, 10.5, missed=0) == pytest.approx(12.2)


C15 = Cadence(period=15.0, earliest=100.0, latest=100.2)
C15b = Cadence(period=15.3, earliest=115.0, latest=115.1)
C7 = Cadence(period=7.5, earliest=100.0, latest=100.2)
TRIAL = CadenceTrust(candidate=C15, trial_until=118.0)


@pytest.mark.parametrize(
    ("trust", "fit", "now", "relay", "expected"),
    [
        (CadenceTrust(), None, 101.0, False, CadenceTrust()),
        (CadenceTrust(), C15, 101.0, False, CadenceTrust(candidate=C15, trial_until=117.0)),
        (CadenceTrust(), C15, 101.0, True, CadenceTrust(trusted=C15)),  # a relay: at once
        (TRIAL, C15b, 110.0, False, CadenceTrust(candidate=C15b, trial_until=118.0)),
        (TRIAL, C15b, 118.0, False, CadenceTrust(trusted=C15b)),  # survived a period
        (TRIAL, None, 110.0, False, CadenceTrust(refuted=((15.0, 560.0),))),
        (
            TRIAL,
            C7,
            110.0,
            False,  # a different period refutes the candidate and starts its own trial
            CadenceTrust(candidate=C7, trial_until=118.5, refuted=((15.0, 560.0),)),
        ),
        (  # refuted lately: not tried again yet
            CadenceTrust(refuted=((15.0, 560.0),)),
            C15b,
            200.0,
            False,
            CadenceTrust(refuted=((15.0, 560.0),)),
        ),
        (
            CadenceTrust(refuted=((15.0, 560.0),)),
            C15,
            561.0,  # the refutation has expired
            False,
            CadenceTrust(candidate=C15, trial_until=577.0),
        ),
        (CadenceTrust(trusted=C15), C15b, 130.0, False, CadenceTrust(trusted=C15b)),
        (CadenceTrust(trusted=C15), None, 130.0, False, CadenceTrust()),  # lost: not refuted
        (
            CadenceTrust(trusted=C15),
            C7,
            130.0,
            False,
            CadenceTrust(candidate=C7, trial_until=138.5),
        ),
    ],
)
def test_judge_cadence(trust, fit, now, relay, expected):
    assert judge_cadence(trust, fit, now, interval=1.0, relay=relay) == expected


@pytest.mark.parametrize(
    ("after", "expected"),
    [(100.0, 115.0), (99.9, 100.0), (114.9, 115.0), (131.0, 145.0), (85.0, 100.0)],
)
def test_next_refresh(after, expected):
    assert C15.next_refresh(after) == expected
