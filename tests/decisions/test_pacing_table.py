"""Poll pacing (``_jobs/pacing.py``): when a task is worth another request.

Too fast and a batch burns the relay's rate limit (and the account gets 429s); too slow and a
finished, paid job sits unseen. Each row is one state of a watched task and the interval the
poller must wait next.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from mjasync import TaskStatus
from mjasync._jobs.pacing import (
    Cadence,
    CadenceTrust,
    ChangeWindow,
    PollSettings,
    estimated_time_left,
    expected_time_left,
    fit_cadence,
    judge_cadence,
    next_poll_interval,
    refresh_due,
)
from mjasync._jobs.pacing import _fit_at as _fit_at  # the search's one step, tested alone

S = TaskStatus
NAN, INF = math.nan, math.inf

# -- PollSettings: defaults, around(), and what is refused -------------------------------------


def test_defaults() -> None:
    # Poll moving tasks every 2 s, quiet ones up to every 8 s, push-fed ones every 20 s once a
    # push came within 30 s; 15 minutes without a change is a stall; 3 list rounds missing.
    assert PollSettings() == PollSettings(
        interval=2.0,
        max_interval=8.0,
        push_interval=20.0,
        push_health=30.0,
        stall_timeout=900.0,
        missing_rounds=3,
    )


#: (id, around() arguments, the settings it must give)
AROUND: list[tuple[str, tuple[float, ...], PollSettings]] = [
    ("default-interval", (2.0,), PollSettings()),
    (
        "fast-test-clock",
        (0.05, 30.0),
        PollSettings(0.05, 0.2, 0.5, 0.75, 30.0),
    ),
    (
        "slow-relay",
        (4.0,),
        PollSettings(interval=4.0, max_interval=16.0, push_interval=40.0, push_health=60.0),
    ),
]


@pytest.mark.parametrize(
    ("args", "settings"), [row[1:] for row in AROUND], ids=[row[0] for row in AROUND]
)
def test_around_scales_every_interval_from_one(
    args: tuple[float, ...], settings: PollSettings
) -> None:
    made = PollSettings.around(*args)
    assert made == settings
    for name in ("interval", "max_interval", "push_interval", "push_health", "stall_timeout"):
        assert getattr(made, name) == pytest.approx(getattr(settings, name), rel=1e-12)


#: (id, keyword arguments, the error or None, a fragment the message must contain)
SETTINGS: list[tuple[str, dict[str, Any], type[Exception] | None, str]] = [
    ("equal-intervals", {"interval": 3.0, "max_interval": 3.0}, None, ""),
    ("int-seconds", {"interval": 1, "max_interval": 2, "push_interval": 5}, None, ""),
    ("never-slower-than-inf", {"max_interval": INF}, None, ""),
    ("never-stall", {"stall_timeout": INF}, None, ""),
    ("one-missing-round", {"missing_rounds": 1}, None, ""),
    ("tiny-interval", {"interval": 1e-9}, None, ""),
    ("str-interval", {"interval": "2"}, TypeError, "interval must be a number of seconds, not str"),
    ("bool-interval", {"interval": True}, TypeError, "interval must be a number of seconds"),
    ("none-max", {"max_interval": None}, TypeError, "max_interval must be a number"),
    ("str-push-interval", {"push_interval": "20"}, TypeError, "push_interval must be a number"),
    ("bool-push-health", {"push_health": False}, TypeError, "push_health must be a number"),
    ("str-stall", {"stall_timeout": "900"}, TypeError, "stall_timeout must be a number"),
    ("zero-interval", {"interval": 0}, ValueError, "interval must be a positive number"),
    ("negative-interval", {"interval": -1.0}, ValueError, "not -1.0"),
    ("nan-interval", {"interval": NAN}, ValueError, "interval must be a positive number"),
    ("zero-max", {"max_interval": 0}, ValueError, "max_interval must be a positive number"),
    ("zero-push-interval", {"push_interval": 0}, ValueError, "push_interval must be a positive"),
    ("nan-push-health", {"push_health": NAN}, ValueError, "push_health must be a positive"),
    ("zero-push-health", {"push_health": 0.0}, ValueError, "push_health must be a positive"),
    ("zero-stall", {"stall_timeout": 0}, ValueError, "stall_timeout must be a positive"),
    ("inf-interval", {"interval": INF, "max_interval": INF}, ValueError, "need a finite interval"),
    ("max-below-interval", {"interval": 5.0, "max_interval": 4.0}, ValueError, "5.0 and 4.0"),
    (
        "zero-missing-rounds",
        {"missing_rounds": 0},
        ValueError,
        "missing_rounds must be an int >= 1",
    ),
    ("float-missing-rounds", {"missing_rounds": 2.0}, ValueError, "not 2.0"),
    ("bool-missing-rounds", {"missing_rounds": True}, ValueError, "not True"),
]


@pytest.mark.parametrize(
    ("kwargs", "error", "words"), [row[1:] for row in SETTINGS], ids=[row[0] for row in SETTINGS]
)
def test_poll_settings(kwargs: dict[str, Any], error: type[Exception] | None, words: str) -> None:
    if error is None:
        settings = PollSettings(**kwargs)
        for name, value in kwargs.items():
            assert getattr(settings, name) == value
        return
    with pytest.raises(error) as info:
        PollSettings(**kwargs)
    assert words in str(info.value)


# -- estimated_time_left: from (time, progress) when first seen running and when last changed --

#: (id, first reading, latest reading, now, seconds left or None)
ESTIMATES: list[tuple[str, tuple[float, int], tuple[float, int], float, float | None]] = [
    ("5-percent-a-second", (10.0, 0), (14.0, 20), 14.0, 16.0),
    ("clock-runs-on", (10.0, 0), (14.0, 20), 20.0, 10.0),
    ("first-seen-midway", (10.0, 40), (20.0, 90), 20.0, 2.0),
    ("due-now", (0.0, 0), (10.0, 50), 20.0, 0.0),
    ("overdue", (10.0, 0), (40.0, 50), 80.0, -10.0),
    ("reached-100", (0.0, 0), (10.0, 100), 10.0, 0.0),
    ("one-reading-no-rate", (10.0, 20), (10.0, 20), 11.0, None),
    ("same-time-no-rate", (10.0, 0), (10.0, 20), 11.0, None),  # no division by zero
    ("clock-went-back", (10.0, 0), (9.0, 20), 11.0, None),
    ("progress-unchanged", (10.0, 20), (15.0, 20), 16.0, None),
    ("progress-regressed", (10.0, 50), (12.0, 40), 12.0, None),
]


@pytest.mark.parametrize(
    ("first", "latest", "now", "left"),
    [row[1:] for row in ESTIMATES],
    ids=[row[0] for row in ESTIMATES],
)
def test_estimated_time_left(
    first: tuple[float, int], latest: tuple[float, int], now: float, left: float | None
) -> None:
    assert estimated_time_left(first, latest, now) == left


# -- next_poll_interval: one row per state of a watched task -----------------------------------

BASE = PollSettings(interval=1.0, max_interval=4.0, push_interval=10.0)
WIDE = PollSettings(interval=1.0, max_interval=100.0, push_interval=10.0)
TIGHT = PollSettings(interval=1.0, max_interval=1.5, push_interval=10.0)


#: (id, settings, status, changed, quiet rounds, push-healthy, time left, seconds to wait)
INTERVALS: list[tuple[str, PollSettings, TaskStatus, bool, int, bool, float | None, float]] = [
    # Pushes arrive first: the poll is only a fallback.
    ("push-healthy-running", BASE, S.IN_PROGRESS, True, 0, True, None, 10.0),
    ("push-healthy-with-estimate", BASE, S.IN_PROGRESS, True, 0, True, 5.0, 10.0),
    ("push-healthy-queued", BASE, S.NOT_START, False, 3, True, None, 10.0),
    # A running task with an estimated end that is not sure (a reading seen after a long
    # gap): halfway there, within [interval, max_interval].
    ("estimate-far", BASE, S.IN_PROGRESS, True, 0, False, 60.0, 4.0),
    ("estimate-halfway", BASE, S.IN_PROGRESS, True, 0, False, 5.0, 2.5),
    ("estimate-near-end", BASE, S.IN_PROGRESS, True, 0, False, 1.2, 1.0),
    ("estimate-while-quiet", BASE, S.IN_PROGRESS, False, 5, False, 3.0, 1.5),
    ("estimate-under-a-second-quiet", BASE, S.IN_PROGRESS, False, 2, False, 0.5, 1.0),
    # Due now or overdue: the estimate was wrong; the usual back-off, not a poll storm.
    ("due-now-quiet", BASE, S.IN_PROGRESS, False, 2, False, 0.0, 2.25),
    ("overdue-quiet", BASE, S.IN_PROGRESS, False, 2, False, -3.0, 2.25),
    ("overdue-changed", BASE, S.IN_PROGRESS, True, 0, False, -3.0, 1.0),
    # Running, no estimate: the base interval while it moves, a gentle back-off while quiet.
    ("moving", BASE, S.IN_PROGRESS, True, 0, False, None, 1.0),
    ("moving-after-quiet-rounds", BASE, S.IN_PROGRESS, True, 3, False, None, 1.0),
    ("quiet-0", BASE, S.IN_PROGRESS, False, 0, False, None, 1.0),
    ("quiet-1", BASE, S.IN_PROGRESS, False, 1, False, None, 1.5),
    ("quiet-2", BASE, S.IN_PROGRESS, False, 2, False, None, 2.25),
    ("quiet-3", BASE, S.IN_PROGRESS, False, 3, False, None, 3.375),
    ("quiet-4-capped", BASE, S.IN_PROGRESS, False, 4, False, None, 4.0),
    ("quiet-8-uncapped", WIDE, S.IN_PROGRESS, False, 8, False, None, 1.5**8),
    ("quiet-9-grows-no-more", WIDE, S.IN_PROGRESS, False, 9, False, None, 1.5**8),
    ("quiet-50-grows-no-more", WIDE, S.IN_PROGRESS, False, 50, False, None, 1.5**8),
    # Waiting in a queue (NOT_START, SUBMITTED): twice the base interval, backing off while
    # nothing changes, and an estimate does not apply.
    ("queued", BASE, S.NOT_START, False, 0, False, None, 2.0),
    ("queued-quiet", BASE, S.NOT_START, False, 1, False, None, 3.0),
    ("queued-quiet-capped", BASE, S.NOT_START, False, 3, False, None, 4.0),
    ("queued-changed", BASE, S.NOT_START, True, 0, False, None, 2.0),
    ("submitted", BASE, S.SUBMITTED, False, 0, False, None, 2.0),
    ("submitted-with-estimate", BASE, S.SUBMITTED, False, 0, False, 5.0, 2.0),
    ("queued-with-estimate", BASE, S.NOT_START, False, 0, False, 5.0, 2.0),
    # N's "" until its first refresh from upstream (QuantumNous/new-api
    # controller/midjourney.go, relay/mjproxy_handler.go): every interval for a while, since
    # the refresh that shows it tells when the relay refreshes; then as if waiting.
    ("N-blank-status", BASE, S.UNKNOWN, False, 6, False, None, 1.0),
    ("N-blank-status-15-rounds", BASE, S.UNKNOWN, False, 15, False, None, 1.0),
    ("N-blank-status-long", BASE, S.UNKNOWN, False, 16, False, None, 4.0),
    ("queued-capped", TIGHT, S.NOT_START, False, 0, False, None, 1.5),
    # MODAL waits for the caller's /submit/modal: the quiet back-off, even when it just changed.
    ("modal-just-seen", BASE, S.MODAL, True, 1, False, None, 1.5),
    ("modal-quiet", BASE, S.MODAL, False, 2, False, None, 2.25),
    ("modal-with-estimate", BASE, S.MODAL, True, 0, False, 5.0, 1.0),
    # Terminal (the last poll before the watch ends).
    ("success", BASE, S.SUCCESS, True, 0, False, None, 1.0),
]


@pytest.mark.parametrize(
    ("settings", "status", "changed", "quiet", "pushed", "left", "wait"),
    [row[1:] for row in INTERVALS],
    ids=[row[0] for row in INTERVALS],
)
def test_next_poll_interval(
    settings: PollSettings,
    status: TaskStatus,
    changed: bool,
    quiet: int,
    pushed: bool,
    left: float | None,
    wait: float,
) -> None:
    got = next_poll_interval(
        settings, status, changed=changed, quiet_rounds=quiet, push_healthy=pushed, time_left=left
    )
    assert got == pytest.approx(wait, rel=1e-12)


#: (id, settings, status, changed, quiet rounds, sure time left, seconds to wait): an estimate
#: that is sure (both readings seen soon after the look before, or the time other jobs of the
#: mode took; see expected_time_left) is met rather than kept within [interval, max_interval].
SURE: list[tuple[str, PollSettings, TaskStatus, bool, int, float, float]] = [
    # Far (more than two max_intervals away): a look halfway, at most every push_interval.
    ("sure-far-capped-by-push-interval", BASE, S.IN_PROGRESS, True, 0, 60.0, 10.0),
    ("sure-halfway", BASE, S.IN_PROGRESS, True, 0, 12.0, 6.0),
    ("sure-just-over-two-max-intervals-is-far", BASE, S.IN_PROGRESS, False, 3, 8.5, 4.25),
    # Near: at the expected end, a quarter interval late.
    ("sure-exactly-two-max-intervals-is-near", BASE, S.IN_PROGRESS, True, 0, 8.0, 8.25),
    ("sure-near", BASE, S.IN_PROGRESS, True, 0, 5.0, 5.25),
    ("sure-near-while-quiet", BASE, S.IN_PROGRESS, False, 5, 3.0, 3.25),
    ("sure-under-a-second", BASE, S.IN_PROGRESS, False, 2, 0.5, 0.75),
    ("sure-a-hair-before", BASE, S.IN_PROGRESS, False, 2, 0.01, 0.26),
    # Due now or overdue by up to max_interval: every interval, however quiet it was ...
    ("sure-due-now", BASE, S.IN_PROGRESS, False, 2, 0.0, 1.0),
    ("sure-overdue", BASE, S.IN_PROGRESS, False, 2, -3.0, 1.0),
    ("sure-overdue-by-exactly-max-interval", BASE, S.IN_PROGRESS, False, 2, -4.0, 1.0),
    # ... longer overdue: the estimate was wrong; the usual back-off.
    ("sure-overdue-by-more-quiet", BASE, S.IN_PROGRESS, False, 2, -4.01, 2.25),
    ("sure-long-overdue-quiet", BASE, S.IN_PROGRESS, False, 3, -5.0, 3.375),
    ("sure-long-overdue-changed", BASE, S.IN_PROGRESS, True, 0, -5.0, 1.0),
    # Only a running task is met; a sure estimate does not apply to others.
    ("sure-queued", BASE, S.NOT_START, False, 0, 5.0, 2.0),
    ("sure-modal", BASE, S.MODAL, False, 2, 5.0, 2.25),
]


@pytest.mark.parametrize(
    ("settings", "status", "changed", "quiet", "left", "wait"),
    [row[1:] for row in SURE],
    ids=[row[0] for row in SURE],
)
def test_next_poll_interval_meets_a_sure_end(
    settings: PollSettings,
    status: TaskStatus,
    changed: bool,
    quiet: int,
    left: float,
    wait: float,
) -> None:
    got = next_poll_interval(
        settings,
        status,
        changed=changed,
        quiet_rounds=quiet,
        push_healthy=False,
        time_left=left,
        sure=True,
    )
    assert got == pytest.approx(wait, rel=1e-12)


def test_a_sure_estimate_is_not_met_while_pushes_arrive() -> None:
    got = next_poll_interval(
        BASE,
        S.IN_PROGRESS,
        changed=True,
        quiet_rounds=0,
        push_healthy=True,
        time_left=5.0,
        sure=True,
    )
    assert got == 10.0


#: (id, status, quiet rounds, seconds to wait): waiting tasks back off from twice the interval,
#: by 1.5 a quiet round for eight rounds (WIDE: max_interval 100 never caps it here).
WAITING_BACK_OFF: list[tuple[str, TaskStatus, int, float]] = [
    ("waiting-back-off-7", S.NOT_START, 7, 2 * 1.5**7),
    ("waiting-back-off-8", S.NOT_START, 8, 2 * 1.5**8),
    ("waiting-back-off-stops-at-8", S.NOT_START, 9, 2 * 1.5**8),
    ("submitted-back-off-stops-at-8", S.SUBMITTED, 30, 2 * 1.5**8),
    ("N-blank-status-back-off-stops-at-8", S.UNKNOWN, 30, 2 * 1.5**8),
]


@pytest.mark.parametrize(
    ("status", "quiet", "wait"),
    [row[1:] for row in WAITING_BACK_OFF],
    ids=[row[0] for row in WAITING_BACK_OFF],
)
def test_waiting_back_off_stops_growing(status: TaskStatus, quiet: int, wait: float) -> None:
    got = next_poll_interval(WIDE, status, changed=False, quiet_rounds=quiet, push_healthy=False)
    assert got == pytest.approx(wait, rel=1e-12)


def test_next_poll_interval_without_an_estimate_argument() -> None:
    # time_left defaults to "no estimate": quiet back-off, not an instant poll.
    got = next_poll_interval(BASE, S.IN_PROGRESS, changed=False, quiet_rounds=2, push_healthy=False)
    assert got == 2.25


# -- a relay that is slow to tell (issue 15) ----------------------------------------------------
# N refreshes every unfinished task in one loop, 15 s plus the pass, the same instants for
# all (QuantumNous/new-api controller/midjourney.go @ 65b16547): its answers change only then.


@pytest.mark.parametrize(
    ("first", "progress", "changed", "now", "job_time", "first_sharp", "expected"),
    [
        # Both readings dated closely: the progress rate, sure.
        ((0.0, 0), 50, (4.9, 5.1), 5.0, None, True, (5.0, True)),
        ((0.0, 0), 50, (4.9, 5.1), 5.0, 30.0, True, (5.0, True)),  # even if others took longer
        # The latest seen after a long gap: as long as the others took, sure ...
        ((0.0, 0), 50, (1.0, 5.0), 5.0, 12.0, True, (7.0, True)),
        # ... or, none finished, from when it was seen: not sure.
        ((0.0, 0), 50, (1.0, 5.0), 5.0, None, True, (5.0, False)),
        # The first reading seen after a long gap: the same.
        ((0.0, 0), 50, (4.9, 5.1), 5.0, 12.0, False, (7.0, True)),
        ((0.0, 0), 50, (4.9, 5.1), 5.0, None, False, (5.2, False)),
        ((2.0, 0), 0, (0.0, 2.0), 3.0, 10.0, True, (9.0, True)),  # no rate yet: others' time
        ((2.0, 0), 0, (0.0, 2.0), 3.0, None, True, (None, False)),  # nothing to go by
        ((0.0, 20), 20, (0.0, 0.0), 1.0, None, True, (None, False)),  # one reading only
    ],
)
def test_expected_time_left(first, progress, changed, now, job_time, first_sharp, expected):
    left, sure = expected_time_left(
        first, progress, changed, now, job_time=job_time, sharp=0.5, first_sharp=first_sharp
    )
    assert sure is expected[1]
    assert left == (None if expected[0] is None else pytest.approx(expected[0]))


def _windows(times: list[float], width: float = 0.1, tasks: int = 2) -> list[ChangeWindow]:
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
    fit = fit_cadence(_windows(seen), **kwargs)
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
    assert fit_cadence(_windows(times, tasks=1), min_period=4.0) is None  # one task's rhythm
    assert fit_cadence(_windows(times, width=6.0), min_period=4.0) is None  # too blurred


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
    assert refresh_due(BASE, cadence, 10.5, missed=0) == pytest.approx(12.2)


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


# -- _fit_at: one period, exact numbers (12.5 s: its 2% slack, 0.25 s, is exact in binary) -----


def _w(opened: float, closed: float, task: str) -> ChangeWindow:
    return ChangeWindow(opened, closed, task)


#: three windows at neighbouring refreshes; the oldest is the one that touches at a point
TOUCHING = [_w(1.0, 1.25, "a"), _w(13.75, 14.0, "b"), _w(25.5, 25.75, "a")]
#: four windows, one refresh each, 12.5 s apart
FOUR = [_w(t - 0.1, t, "ab"[i % 2]) for i, t in enumerate((0.5, 13.0, 25.5, 38.0))]

#: four more on a 12 s grid, and older windows a third of it wide (4 s, exact) and wider
FOUR12 = [_w(t - 0.1, t, "ab"[i % 2]) for i, t in enumerate((0.5, 12.5, 24.5, 36.5))]
THIRD, WIDER = _w(-13.5, -9.5, "b"), _w(-13.5, -9.49, "b")

#: (id, windows, period, min_windows, min_periods, the cadence or None)
FITS_AT: list[tuple[str, list[ChangeWindow], float, int, int, Cadence | None]] = [
    # The intersection of (13.5, 14.25] moved a period on and (25.25, 26.0] is one instant:
    # that still fits (a refresh at exactly 26.0).
    ("touching-at-an-instant", TOUCHING, 12.5, 3, 2, Cadence(12.5, 26.0, 26.0)),
    ("touching-needs-two-periods-here", TOUCHING, 12.5, 3, 3, None),
    ("touching-needs-three-windows-here", TOUCHING, 12.5, 4, 2, None),
    ("four-in-a-row", FOUR, 12.5, 4, 3, Cadence(12.5, 37.65, 38.25)),
    ("four-is-not-five", FOUR, 12.5, 5, 3, None),
    ("three-periods-is-not-four", FOUR, 12.5, 4, 4, None),
    ("one-task-alone", [_w(w.opened, w.closed, "a") for w in FOUR], 12.5, 4, 3, None),
    # Refreshes 0, 1 and 3 back: one neighbouring pair only.
    ("one-pair-of-neighbours", [FOUR[0], *FOUR[2:]], 12.5, 3, 2, None),
    # A window exactly a third of the period wide still says where the refresh was ...
    ("a-third-wide-counts", [THIRD, *FOUR12], 12.0, 5, 3, Cadence(12.0, 36.16, 36.74)),
    # ... a wider one does not (it would fit any phase).
    ("wider-is-ignored", [WIDER, *FOUR12], 12.0, 5, 3, None),
    ("a-window-off-the-grid", [*FOUR[:3], _w(31.0, 31.1, "b")], 12.5, 4, 3, None),
]


@pytest.mark.parametrize(
    ("windows", "period", "min_windows", "min_periods", "expected"),
    [row[1:] for row in FITS_AT],
    ids=[row[0] for row in FITS_AT],
)
def test_fit_at(
    windows: list[ChangeWindow],
    period: float,
    min_windows: int,
    min_periods: int,
    expected: Cadence | None,
) -> None:
    fit = _fit_at(windows, period, min_windows, min_periods)
    if expected is None:
        assert fit is None
    else:
        assert fit is not None
        assert (fit.period, fit.earliest, fit.latest) == pytest.approx(
            (expected.period, expected.earliest, expected.latest)
        )


def _steps_over() -> list[ChangeWindow]:
    """Windows on a 15 s grid so narrow that the coarse search steps over the period."""
    early = [ChangeWindow(10.0, 10.5, "a")]
    return early + [ChangeWindow(99.99 + 15 * k, 100.0 + 15 * k, "ab"[k % 2]) for k in range(1, 12)]


def test_a_known_period_is_found_where_the_coarse_search_steps_over_it() -> None:
    windows = _steps_over()
    assert fit_cadence(windows, min_period=4.0) is None  # 1% steps miss a 0.4%-wide group
    near = fit_cadence(windows, min_period=4.0, near=15.0)
    assert near is not None and near.period == pytest.approx(15.0, rel=0.005)
    # The fine search stays within 3% of the hint: far from it, only the coarse one looks.
    assert fit_cadence(windows, min_period=4.0, near=15.6) is None
    assert fit_cadence(windows, min_period=4.0, near=14.4) is None
    # A hint at the shortest period allowed is still tried.
    at_floor = fit_cadence(windows, min_period=15.0, near=15.0)
    assert at_floor is not None and at_floor.period == pytest.approx(15.0, rel=0.005)
    assert fit_cadence(windows, min_period=15.0) is None


def test_the_search_starts_at_the_longest_period_the_windows_span() -> None:
    windows = [_w(3.9, 4.0, "a"), _w(18.9, 19.0, "b"), _w(33.9, 34.0, "a"), _w(48.9, 49.0, "b")]
    longest = (49.0 - 3.9) / 3  # three periods at most
    exactly = fit_cadence(windows, min_period=longest)
    assert exactly is not None and exactly.period == longest
    assert fit_cadence(windows, min_period=longest + 0.01) is None
    # Four windows, three periods: the defaults (four windows, three periods) accept it.
    found = fit_cadence(windows, min_period=4.0)
    assert found is not None and found.period == pytest.approx(15.0, rel=0.02)
    assert found.earliest < 49.0 < found.latest + 0.5


#: (id, first, progress, (seen unchanged, seen changed), now, job time, sharp, (left, sure))
EXPECTED_EXTRA: list[
    tuple[
        str,
        tuple[float, int],
        int,
        tuple[float, float],
        float,
        float | None,
        float,
        tuple[float | None, bool],
    ]
] = [
    # No look between the first reading and the change: from when it was seen, not sure.
    ("no-look-between", (2.0, 10), 60, (0.0, 7.0), 7.0, None, 0.5, (4.0, False)),
    ("look-at-first-sight", (2.0, 10), 60, (2.0, 7.0), 7.0, None, 0.5, (4.0, False)),
    # Even a sharp window does not date the change when it opened at the first reading itself:
    # its middle would halve the time the progress took. From when it was seen, not sure.
    ("sharp-window-at-first-sight", (2.0, 10), 60, (2.0, 2.4), 3.0, None, 0.5, (-0.28, False)),
    ("look-just-after-first", (2.0, 10), 60, (2.1, 2.5), 3.0, None, 0.5, (-0.46, True)),
    # A window exactly `sharp` wide is sharp: its middle gives the rate.
    ("exactly-sharp", (0.0, 0), 50, (4.5, 5.0), 5.0, 30.0, 0.5, (4.5, True)),
    ("just-blurred", (0.0, 0), 50, (4.5, 5.0), 5.0, 30.0, 0.4, (25.0, True)),
    ("just-blurred-no-others", (0.0, 0), 50, (4.5, 5.0), 5.0, None, 0.4, (5.0, False)),
]


@pytest.mark.parametrize(
    ("first", "progress", "changed", "now", "job_time", "sharp", "expected"),
    [row[1:] for row in EXPECTED_EXTRA],
    ids=[row[0] for row in EXPECTED_EXTRA],
)
def test_expected_time_left_edges(
    first: tuple[float, int],
    progress: int,
    changed: tuple[float, float],
    now: float,
    job_time: float | None,
    sharp: float,
    expected: tuple[float | None, bool],
) -> None:
    left, sure = expected_time_left(first, progress, changed, now, job_time=job_time, sharp=sharp)
    assert sure is expected[1]
    assert left == (None if expected[0] is None else pytest.approx(expected[0], abs=0.01))


def test_refresh_due_back_off_stops_growing() -> None:
    cadence = Cadence(period=10_000.0, earliest=0.0, latest=1.0)
    wide = PollSettings(interval=1.0, max_interval=1e6)
    assert refresh_due(wide, cadence, 10.0, missed=9) == pytest.approx(10.0 + 1.5**8)
    assert refresh_due(wide, cadence, 10.0, missed=10) == pytest.approx(10.0 + 1.5**8)
    assert refresh_due(wide, cadence, 10.0, missed=8) == pytest.approx(10.0 + 1.5**7)


OLD = ((15.0, 560.0),)  # a cadence refuted lately, not tried again before t = 560


@pytest.mark.parametrize(
    ("trust", "fit", "now", "expected"),
    [
        # What was refuted lately is kept through every other change.
        (CadenceTrust(trusted=C15, refuted=((7.5, 300.0),)), C15b, 130.0,
         CadenceTrust(trusted=C15b, refuted=((7.5, 300.0),))),
        (CadenceTrust(candidate=C7, trial_until=118.0, refuted=OLD), C7, 110.0,
         CadenceTrust(candidate=C7, trial_until=118.0, refuted=OLD)),
        (CadenceTrust(candidate=C7, trial_until=118.0, refuted=OLD), C7, 118.0,
         CadenceTrust(trusted=C7, refuted=OLD)),
        (CadenceTrust(candidate=C7, trial_until=118.0, refuted=OLD), None, 110.0,
         CadenceTrust(refuted=(*OLD, (7.5, 335.0)))),
        (CadenceTrust(trusted=C7, refuted=OLD), None, 130.0, CadenceTrust(refuted=OLD)),
        # A refutation ends at its time: at 560 exactly it is over.
        (CadenceTrust(refuted=OLD), None, 560.0, CadenceTrust()),
        (CadenceTrust(refuted=OLD), None, 559.0, CadenceTrust(refuted=OLD)),
        # Periods 5% apart are the same cadence; more apart, another one.
        (CadenceTrust(trusted=Cadence(20.0, 0.0, 0.1)), Cadence(21.0, 0.0, 0.1), 50.0,
         CadenceTrust(trusted=Cadence(21.0, 0.0, 0.1))),
        (CadenceTrust(trusted=Cadence(20.0, 0.0, 0.1)), Cadence(21.1, 0.0, 0.1), 50.0,
         CadenceTrust(candidate=Cadence(21.1, 0.0, 0.1), trial_until=72.1)),
    ],
)  # fmt: skip
def test_judge_cadence_keeps_what_it_refuted(
    trust: CadenceTrust, fit: Cadence | None, now: float, expected: CadenceTrust
) -> None:
    assert judge_cadence(trust, fit, now, interval=1.0) == expected


def test_judge_cadence_trials_a_fit_unless_told_it_is_a_relay() -> None:
    assert judge_cadence(CadenceTrust(), C15, 101.0, interval=1.0).trusted is None
    relay = judge_cadence(
        CadenceTrust(refuted=((7.5, 300.0),)), C15, 101.0, interval=1.0, relay=True
    )
    assert relay == CadenceTrust(trusted=C15, refuted=((7.5, 300.0),))
