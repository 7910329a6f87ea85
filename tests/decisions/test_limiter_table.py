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
    AimdState,
    LimiterStatistics,
    LocalLimiter,
    Outcome,
    Slot,
    next_limit,
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
