"""Event ordering (``_jobs/events.py``): which observation of a task is news.

``is_advance`` decides whether a poll, push or submit answer produces a progress event. Too
eager and a consumer sees a task go backwards or the same state twice (a repeated MODAL
looks like a second action to finish); too strict and it misses a real step.
"""

from __future__ import annotations

import pytest

from mjasync import TaskStatus
from mjasync._jobs.events import is_advance, status_rank

S = TaskStatus
UNKNOWN, NOT_START, MODAL = S.UNKNOWN, S.NOT_START, S.MODAL
SUBMITTED, IN_PROGRESS = S.SUBMITTED, S.IN_PROGRESS
SUCCESS, FAILURE, CANCEL = S.SUCCESS, S.FAILURE, S.CANCEL

Seen = tuple[TaskStatus | None, int | None]

#: (id, (old status, old progress), (new status, new progress), is news)
ADVANCES: list[tuple[str, Seen, tuple[TaskStatus, int | None], bool]] = [
    # The first observation is always news, whatever it says.
    ("first-submitted", (None, None), (SUBMITTED, None), True),
    ("first-unknown", (None, None), (UNKNOWN, None), True),
    ("first-success", (None, None), (SUCCESS, 100), True),
    # Forward along the life: queued -> submitted -> running -> terminal.
    ("unknown-to-not-start", (UNKNOWN, None), (NOT_START, None), True),
    ("not-start-to-submitted", (NOT_START, None), (SUBMITTED, None), True),
    ("submitted-to-in-progress", (SUBMITTED, None), (IN_PROGRESS, 10), True),
    ("in-progress-to-success", (IN_PROGRESS, 90), (SUCCESS, 100), True),
    ("in-progress-to-failure", (IN_PROGRESS, 90), (FAILURE, None), True),
    ("submitted-to-cancel", (SUBMITTED, None), (CANCEL, None), True),
    ("unknown-to-success", (UNKNOWN, None), (SUCCESS, 100), True),
    # Progress within IN_PROGRESS: only a higher number is news (None counts as 0).
    ("progress-up", (IN_PROGRESS, 40), (IN_PROGRESS, 55), True),
    ("progress-0-to-1", (IN_PROGRESS, 0), (IN_PROGRESS, 1), True),
    ("progress-none-to-10", (IN_PROGRESS, None), (IN_PROGRESS, 10), True),
    ("progress-repeated", (IN_PROGRESS, 55), (IN_PROGRESS, 55), False),
    ("progress-down", (IN_PROGRESS, 55), (IN_PROGRESS, 40), False),
    ("progress-10-to-none", (IN_PROGRESS, 10), (IN_PROGRESS, None), False),
    ("progress-none-to-0", (IN_PROGRESS, None), (IN_PROGRESS, 0), False),
    ("progress-0-to-none", (IN_PROGRESS, 0), (IN_PROGRESS, None), False),
    ("progress-none-repeated", (IN_PROGRESS, None), (IN_PROGRESS, None), False),
    # Repeats and regressions are not news.
    ("submitted-repeated", (SUBMITTED, None), (SUBMITTED, None), False),
    ("not-start-repeated", (NOT_START, None), (NOT_START, None), False),
    ("unknown-repeated", (UNKNOWN, None), (UNKNOWN, None), False),
    ("in-progress-to-submitted", (IN_PROGRESS, 40), (SUBMITTED, None), False),
    ("submitted-to-not-start", (SUBMITTED, None), (NOT_START, None), False),
    # N: a relay stores a new task with status "" (Calcium-Ion/new-api relay/relay-mj.go
    # @ ef8ae4d, RelayMidjourneySubmit) and fills it from upstream every 15 s
    # (controller/midjourney.go, UpdateMidjourneyTaskBulk); "" parses as UNKNOWN.
    ("N-blank-after-in-progress", (IN_PROGRESS, 40), (UNKNOWN, None), False),
    ("N-blank-after-submitted", (SUBMITTED, None), (UNKNOWN, None), False),
    # Terminal states are final: nothing after them is news.
    ("success-repeated", (SUCCESS, 100), (SUCCESS, 100), False),
    ("success-then-in-progress", (SUCCESS, 100), (IN_PROGRESS, 50), False),
    ("failure-then-success", (FAILURE, None), (SUCCESS, 100), False),
    ("cancel-then-failure", (CANCEL, None), (FAILURE, None), False),
    ("success-then-modal", (SUCCESS, 100), (MODAL, None), False),
    # MODAL: an action on a remix account or a custom zoom waits for /submit/modal. C answers
    # such a submit with code 21 "Waiting for window confirm" (trueai-org/midjourney-proxy
    # src/Midjourney.Services/TaskService.cs @ ed32197); N rewrites 21 to 1, so a poll may be
    # where the client first sees MODAL (Calcium-Ion/new-api relay/relay-mj.go @ ef8ae4d).
    ("unknown-to-modal", (UNKNOWN, None), (MODAL, None), True),
    ("not-start-to-modal", (NOT_START, None), (MODAL, None), True),
    ("not-start-0-to-modal", (NOT_START, 0), (MODAL, None), True),
    ("N-submitted-to-modal", (SUBMITTED, None), (MODAL, None), True),
    ("submitted-0-to-modal", (SUBMITTED, 0), (MODAL, None), False),
    ("in-progress-without-number-to-modal", (IN_PROGRESS, None), (MODAL, None), True),
    ("in-progress-40-to-modal", (IN_PROGRESS, 40), (MODAL, None), False),
    ("modal-repeated", (MODAL, None), (MODAL, None), False),
    ("modal-repeated-with-progress", (MODAL, 0), (MODAL, 0), False),
    ("modal-sent-not-start", (MODAL, None), (NOT_START, None), True),
    ("modal-sent-submitted", (MODAL, None), (SUBMITTED, None), True),
    ("modal-sent-in-progress", (MODAL, None), (IN_PROGRESS, 5), True),
    ("modal-to-unknown", (MODAL, None), (UNKNOWN, None), False),
    ("not-start-after-modal-is-not-modal-again", (NOT_START, None), (NOT_START, None), False),
]


@pytest.mark.parametrize(
    ("old", "new", "advance"), [row[1:] for row in ADVANCES], ids=[row[0] for row in ADVANCES]
)
def test_is_advance(old: Seen, new: tuple[TaskStatus, int | None], advance: bool) -> None:
    assert is_advance(old[0], old[1], new[0], new[1]) is advance


#: (status, rank): where each status sits in a task's life.
RANKS = [
    (UNKNOWN, 0),
    (NOT_START, 1),
    (MODAL, 1),
    (SUBMITTED, 2),
    (IN_PROGRESS, 3),
    (SUCCESS, 4),
    (FAILURE, 4),
    (CANCEL, 4),
]


@pytest.mark.parametrize(("status", "rank"), RANKS, ids=[s.name for s, _ in RANKS])
def test_status_rank(status: TaskStatus, rank: int) -> None:
    assert status_rank(status) == rank


def test_every_status_has_a_rank() -> None:
    assert {status for status, _ in RANKS} == set(TaskStatus)
