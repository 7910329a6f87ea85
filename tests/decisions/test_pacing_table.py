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
from mjasync._jobs.pacing import PollSettings, estimated_time_left, next_poll_interval

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
    # A running task with an estimated end: halfway there, within [interval, max_interval].
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
    # Waiting in a queue (NOT_START, SUBMITTED, or N's "" until its 15 s upstream poll,
    # Calcium-Ion/new-api controller/midjourney.go): twice the base interval, whatever
    # changed, and an estimate does not apply.
    ("queued", BASE, S.NOT_START, False, 3, False, None, 2.0),
    ("queued-changed", BASE, S.NOT_START, True, 0, False, None, 2.0),
    ("submitted", BASE, S.SUBMITTED, False, 0, False, None, 2.0),
    ("submitted-with-estimate", BASE, S.SUBMITTED, False, 0, False, 5.0, 2.0),
    ("queued-with-estimate", BASE, S.NOT_START, False, 0, False, 5.0, 2.0),
    ("N-blank-status", BASE, S.UNKNOWN, False, 6, False, None, 2.0),
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


def test_next_poll_interval_without_an_estimate_argument() -> None:
    # time_left defaults to "no estimate": quiet back-off, not an instant poll.
    got = next_poll_interval(BASE, S.IN_PROGRESS, changed=False, quiet_rounds=2, push_healthy=False)
    assert got == 2.25
