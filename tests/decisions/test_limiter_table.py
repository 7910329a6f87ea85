"""In-flight budgets (``_jobs/limiter.py``): how many paid jobs may be on the account at once.

Per upstream account 3 jobs run and 10 wait; the next submit is refused (J code 23, C code 9
"队列已满") — so the limit that matters is jobs in flight, and ``concurrency="auto"`` finds it
with AIMD: one more after a whole window of accepted submits, half on a refusal. Too high and
every extra submit is refused (and retried, and refused); too low and a batch crawls.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from mjasync._jobs.limiter import (
    ROOM_WINDOW,
    AimdState,
    LimiterStatistics,
    LocalLimiter,
    Outcome,
    QueueState,
    Slot,
    ahead_allowance,
    grows_running,
    learned_job_time,
    next_limit,
    queue_feedback,
    saw_running,
    saw_waiting,
)

pytestmark = pytest.mark.anyio

ACC: Outcome = "accepted"
REF: Outcome = "refused"

# -- next_limit: additive increase per full window, multiplicative decrease per refusal ---------

#: (id, state, outcome, floor, ceiling (None: the default 16), next state)
AIMD: list[tuple[str, AimdState, Outcome, int, int | None, AimdState]] = [
    ("first-accept-of-window", AimdState(4, 0), ACC, 1, None, AimdState(4, 1)),
    ("mid-window", AimdState(4, 2), ACC, 1, None, AimdState(4, 3)),
    ("window-complete-grows", AimdState(4, 3), ACC, 1, None, AimdState(5, 0)),
    ("limit-1-every-accept-is-a-window", AimdState(1, 0), ACC, 1, None, AimdState(2, 0)),
    ("window-overfull-grows", AimdState(3, 7), ACC, 1, None, AimdState(4, 0)),
    # The ceiling holds even when a whole window completes at it (issue 18: a test that never
    # completed a window could not see the clamp missing).
    ("at-ceiling-window-complete", AimdState(16, 15), ACC, 1, 16, AimdState(16, 0)),
    ("at-default-ceiling", AimdState(16, 15), ACC, 1, None, AimdState(16, 0)),
    ("below-default-ceiling", AimdState(15, 14), ACC, 1, None, AimdState(16, 0)),
    ("at-low-ceiling", AimdState(3, 2), ACC, 1, 3, AimdState(3, 0)),
    ("above-ceiling-comes-down", AimdState(20, 19), ACC, 1, 16, AimdState(16, 0)),
    ("one-below-ceiling", AimdState(7, 6), ACC, 1, 8, AimdState(8, 0)),
    ("floor-lifts-growth", AimdState(1, 0), ACC, 4, None, AimdState(4, 0)),
    # A refusal (J code 23, C code 9 "queue full", a 429) halves, rounding up, and restarts
    # the window (novicezk/midjourney-proxy src/main/java/com/github/novicezk/midjourney/
    # ReturnCode.java @ 0be95a9: QUEUE_REJECTED = 23; trueai-org/midjourney-proxy
    # src/Midjourney.Services/DiscordService.cs @ ed32197: FAILURE 9 "提交失败，队列已满").
    ("refused-halves-odd", AimdState(5, 2), REF, 1, None, AimdState(3, 0)),
    ("refused-halves-even", AimdState(4, 3), REF, 1, None, AimdState(2, 0)),
    ("refused-3", AimdState(3, 0), REF, 1, None, AimdState(2, 0)),
    ("refused-2", AimdState(2, 1), REF, 1, None, AimdState(1, 0)),
    ("refused-at-floor", AimdState(1, 0), REF, 1, None, AimdState(1, 0)),
    ("refused-default-floor-is-1", AimdState(2, 0), REF, 1, None, AimdState(1, 0)),
    ("refused-floor-3", AimdState(4, 0), REF, 3, None, AimdState(3, 0)),
    ("refused-above-ceiling", AimdState(40, 5), REF, 1, 16, AimdState(16, 0)),
    ("refused-16", AimdState(16, 9), REF, 1, None, AimdState(8, 0)),
]


@pytest.mark.parametrize(
    ("state", "outcome", "floor", "ceiling", "after"),
    [row[1:] for row in AIMD],
    ids=[row[0] for row in AIMD],
)
def test_next_limit(
    state: AimdState, outcome: Outcome, floor: int, ceiling: int | None, after: AimdState
) -> None:
    kwargs: dict[str, int] = {} if ceiling is None else {"ceiling": ceiling}
    if floor != 1:
        kwargs["floor"] = floor
    assert next_limit(state, outcome, **kwargs) == after


# -- LocalLimiter: what it accepts, and its starting limit -------------------------------------

#: (id, constructor arguments, adaptive, starting limit) for the accepted settings
ACCEPTED: list[tuple[str, dict[str, Any], bool, int]] = [
    ("default-fixed-3", {}, False, 3),
    ("fixed-1", {"concurrency": 1}, False, 1),
    ("fixed-20-above-auto-ceiling", {"concurrency": 20}, False, 20),
    ("auto-starts-at-3", {"concurrency": "auto"}, True, 3),
    ("auto-initial-1", {"concurrency": "auto", "initial": 1}, True, 1),
    (
        "auto-initial-equals-ceiling",
        {"concurrency": "auto", "initial": 16, "ceiling": 16},
        True,
        16,
    ),
    ("auto-1-1", {"concurrency": "auto", "initial": 1, "ceiling": 1}, True, 1),
]


@pytest.mark.parametrize(
    ("kwargs", "adaptive", "limit"), [row[1:] for row in ACCEPTED], ids=[row[0] for row in ACCEPTED]
)
async def test_local_limiter_settings(kwargs: dict[str, Any], adaptive: bool, limit: int) -> None:
    limiter = LocalLimiter(**kwargs)
    assert limiter.adaptive is adaptive
    assert limiter.limit("fast") == limit  # before the mode is used
    slot = await limiter.acquire("fast")
    assert limiter.limit("fast") == limit  # and once it is
    assert limiter.statistics() == (LimiterStatistics("fast", limit, 1, 0),)
    await limiter.release(slot)


#: (id, constructor arguments, a fragment of the ValueError's message)
REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("zero", {"concurrency": 0}, "concurrency must be a positive int or 'auto', not 0"),
    ("negative", {"concurrency": -1}, "not -1"),
    ("float", {"concurrency": 2.5}, "not 2.5"),
    ("bool", {"concurrency": True}, "not True"),
    ("other-word", {"concurrency": "many"}, "not 'many'"),
    ("none", {"concurrency": None}, "not None"),
    ("auto-initial-0", {"concurrency": "auto", "initial": 0}, "need 1 <= initial (0) <= ceiling"),
    ("auto-initial-above-ceiling", {"concurrency": "auto", "initial": 5, "ceiling": 4}, "(5)"),
    ("auto-ceiling-0", {"concurrency": "auto", "initial": 1, "ceiling": 0}, "ceiling (0)"),
    ("fixed-with-initial-0", {"concurrency": 2, "initial": 0}, "initial (0)"),
]


@pytest.mark.parametrize(
    ("kwargs", "words"), [row[1:] for row in REFUSED], ids=[row[0] for row in REFUSED]
)
def test_local_limiter_refuses(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError) as info:
        LocalLimiter(**kwargs)
    assert words in str(info.value)


# -- LocalLimiter.feedback: the limit after each submit's outcome ------------------------------

#: (id, constructor arguments, outcomes in order, the limit after each)
FEEDBACK: list[tuple[str, dict[str, Any], list[Outcome], list[int]]] = [
    ("auto-grows-per-window", {"concurrency": "auto", "initial": 2}, [ACC] * 5, [2, 3, 3, 3, 4]),
    (
        "auto-stops-at-its-ceiling",
        {"concurrency": "auto", "initial": 2, "ceiling": 3},
        [ACC] * 8,
        [2, 3, 3, 3, 3, 3, 3, 3],
    ),
    (
        "auto-default-ceiling-16",
        {"concurrency": "auto", "initial": 15},
        [ACC] * 31,
        [15] * 14 + [16] * 17,
    ),
    (
        "auto-halves-to-1",
        {"concurrency": "auto", "initial": 8},
        [REF] * 5,
        [4, 2, 1, 1, 1],
    ),
    (
        "refusal-restarts-the-window",
        {"concurrency": "auto", "initial": 3},
        [ACC, ACC, REF, ACC, ACC],
        [3, 3, 2, 2, 3],
    ),
    ("fixed-ignores-feedback", {"concurrency": 3}, [REF, REF, ACC, ACC, ACC, ACC], [3] * 6),
]


@pytest.mark.parametrize(
    ("kwargs", "outcomes", "limits"),
    [row[1:] for row in FEEDBACK],
    ids=[row[0] for row in FEEDBACK],
)
async def test_local_limiter_feedback(
    kwargs: dict[str, Any], outcomes: list[Outcome], limits: list[int]
) -> None:
    limiter = LocalLimiter(**kwargs)
    seen = []
    for outcome in outcomes:
        await limiter.feedback("fast", outcome)
        seen.append(limiter.limit("fast"))
    assert seen == limits
    used = (LimiterStatistics("fast", limits[-1], 0, 0),) if limiter.adaptive else ()
    assert limiter.statistics() == used
    assert limiter.limit("relax") == LocalLimiter(**kwargs).limit("relax")  # per mode


async def test_feedback_moves_the_budget_a_waiting_submit_needs() -> None:
    limiter = LocalLimiter("auto", initial=1)
    first = await limiter.acquire("fast")
    got: list[Slot] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: _acquire_into(limiter, "fast", got))
        await anyio.wait_all_tasks_blocked()
        assert got == []  # limit 1, one in flight
        await limiter.feedback("fast", ACC)  # a full window at limit 1: now 2
    assert len(got) == 1
    assert limiter.statistics() == (LimiterStatistics("fast", 2, 2, 0),)
    await limiter.release(first)
    await limiter.release(got[0])


async def _acquire_into(limiter: LocalLimiter, mode: str | None, into: list[Slot]) -> None:
    into.append(await limiter.acquire(mode))


# -- LocalLimiter: taking and giving back slots ------------------------------------------------


async def test_acquire_waits_for_a_release_at_the_limit() -> None:
    limiter = LocalLimiter(2)
    a = await limiter.acquire("fast")
    b = await limiter.acquire("fast")
    assert (a.mode, b.mode) == ("fast", "fast")
    got: list[Slot] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: _acquire_into(limiter, "fast", got))
        await anyio.wait_all_tasks_blocked()
        assert got == []
        assert limiter.statistics() == (LimiterStatistics("fast", 2, 2, 1),)
        await limiter.release(a)
    assert len(got) == 1
    assert limiter.statistics() == (LimiterStatistics("fast", 2, 2, 0),)
    await limiter.release(b)
    await limiter.release(got[0])
    assert limiter.statistics() == (LimiterStatistics("fast", 2, 0, 0),)


async def test_release_is_idempotent_and_ignores_foreign_slots() -> None:
    limiter = LocalLimiter(2)
    a = await limiter.acquire("fast")
    b = await limiter.acquire("fast")
    await limiter.release(a)
    await limiter.release(a)  # twice: still one slot back, not two
    limiter.release_nowait(a)
    assert limiter.statistics() == (LimiterStatistics("fast", 2, 1, 0),)
    await limiter.release(Slot(mode="fast"))  # never acquired here
    await limiter.release(Slot(mode="relax"))  # a mode never used
    assert limiter.statistics() == (LimiterStatistics("fast", 2, 1, 0),)
    limiter.release_nowait(b)  # synchronous: free before the caller yields
    assert limiter.statistics() == (LimiterStatistics("fast", 2, 0, 0),)


async def test_each_mode_has_its_own_budget() -> None:
    limiter = LocalLimiter(1)
    fast = await limiter.acquire("fast")
    relax = await limiter.acquire("relax")  # does not wait for fast's slot
    default = await limiter.acquire(None)
    assert (fast.mode, relax.mode, default.mode) == ("fast", "relax", "default")
    assert await _nowait_blocked(limiter, "") is True  # "" shares None's "default" budget
    assert limiter.statistics() == (
        LimiterStatistics("fast", 1, 1, 0),
        LimiterStatistics("relax", 1, 1, 0),
        LimiterStatistics("default", 1, 1, 0),
    )
    for slot in (fast, relax, default):
        await limiter.release(slot)


async def _nowait_blocked(limiter: LocalLimiter, mode: str | None) -> bool:
    """Whether acquiring ``mode`` would wait (the attempt is cancelled either way)."""
    got: list[Slot] = []
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: _acquire_into(limiter, mode, got))
            await anyio.wait_all_tasks_blocked()
            scope.cancel()
    for slot in got:
        await limiter.release(slot)
    return not got


async def test_a_cancelled_acquire_takes_nothing() -> None:
    limiter = LocalLimiter(1)
    held = await limiter.acquire("fast")
    assert await _nowait_blocked(limiter, "fast") is True
    assert limiter.statistics() == (LimiterStatistics("fast", 1, 1, 0),)
    await limiter.release(held)
    assert await _nowait_blocked(limiter, "fast") is False
    assert limiter.statistics() == (LimiterStatistics("fast", 1, 0, 0),)


async def test_a_free_slot_is_taken_without_waiting_for_the_event_loop() -> None:
    # A batch starts its first `concurrency` jobs at once: the acquire of a free slot does not
    # yield, so it completes even inside an already-cancelled scope.
    limiter = LocalLimiter(2)
    with anyio.CancelScope() as scope:
        scope.cancel()
        slot = await limiter.acquire("fast")
    assert limiter.statistics() == (LimiterStatistics("fast", 2, 1, 0),)
    await limiter.release(slot)


async def test_a_halved_limit_holds_back_new_submits_until_enough_return() -> None:
    limiter = LocalLimiter("auto", initial=4)
    slots = [await limiter.acquire("fast") for _ in range(4)]
    await limiter.feedback("fast", REF)  # 4 in flight, limit now 2
    assert limiter.statistics() == (LimiterStatistics("fast", 2, 4, 0),)
    await limiter.release(slots.pop())
    await limiter.release(slots.pop())
    assert await _nowait_blocked(limiter, "fast") is True  # 2 in flight = the new limit
    await limiter.release(slots.pop())
    assert await _nowait_blocked(limiter, "fast") is False


async def test_aclose_gives_every_held_slot_back() -> None:
    limiter = LocalLimiter(2)
    await limiter.start()
    fast = [await limiter.acquire("fast"), await limiter.acquire("fast")]
    relax = await limiter.acquire("relax")
    await limiter.aclose()
    assert limiter.statistics() == (
        LimiterStatistics("fast", 2, 0, 0),
        LimiterStatistics("relax", 2, 0, 0),
    )
    for slot in [*fast, relax]:
        await limiter.release(slot)  # after close: harmless
    assert [s.in_use for s in limiter.statistics()] == [0, 0]
    again = await limiter.acquire("fast")
    assert limiter.statistics()[0] == LimiterStatistics("fast", 2, 1, 0)
    await limiter.release(again)


# -- queueing ahead: jobs let wait in the account's own queue (issue 15) ------------------------
# An account runs `core` jobs and queues more (C defaults core 3, queue 10:
# trueai-org/midjourney-proxy src/Midjourney.Base/Models/DiscordAccount.cs @ ed32197). Jobs
# let wait there start the moment a core frees; letting one wait on an account with more cores
# than `concurrency` would simply run it, so nothing waits before one of ours was seen waiting.

SEEN3 = QueueState(seen=True, cores=3)


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
        (QueueState(seen=True, cores=3), 2, 3, QueueState(seen=True, cores=3)),  # fewer now
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
        (None, 0.5, 0.5),  # jobs under a second (a test clock) count too
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
        (1, SEEN3, 3, 120.0, 1),
        (8, SEEN3, 3, 120.0, 8),
        (None, QueueState(seen=True, cores=2), 3, 120.0, 1),  # the third slot already waits
        (2, QueueState(seen=True, cores=2), 3, 120.0, 1),
        (1, QueueState(seen=True, cores=1), 3, 120.0, 0),  # two slots wait already: enough
        (None, QueueState(seen=True, cores=5), 3, 120.0, 3),  # cores above the limit: limit
        (None, QueueState(seen=True, cores=0), 3, 120.0, 0),  # (at least one core)
        (None, QueueState(seen=True, cores=3, job_time=45.0), 3, 120.0, 3),  # waits ~2 jobs
        (9, QueueState(seen=True, cores=3, job_time=45.0), 3, 120.0, 6),  # at most 2 waves
        (None, QueueState(seen=True, cores=3, job_time=70.0), 3, 120.0, 3),  # one wave fits
        (9, QueueState(seen=True, cores=3, job_time=40.0), 3, 120.0, 9),  # three waves, exactly
        (9, QueueState(seen=True, cores=3, job_time=41.0), 3, 120.0, 6),
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


async def test_an_in_process_budget_gives_a_slot_back_without_io() -> None:
    # The engine hands an ended job's slot back on the spot when release_nowait says it could
    # (True); a shared budget (Redis) says False and is released in the background.
    limiter = LocalLimiter(1)
    slot = await limiter.acquire("fast")
    assert limiter.release_nowait(slot) is True
    assert limiter.release_nowait(slot) is True  # again: nothing to give back, still no I/O
    assert limiter.statistics() == (LimiterStatistics("fast", 1, 0, 0),)
