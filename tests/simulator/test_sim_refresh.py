"""A relay that refreshes from upstream on a cadence; core time and peak waiting counters.

New-api (QuantumNous/new-api @ 65b16547329625f619cf797ae1eb9b748525056c) updates unfinished
tasks in one background loop (``controller/midjourney.go``); until a task's first refresh it
shows the record it made at submit time: status "", progress "0%", times 0 but submitTime
(``relay/mjproxy_handler.go``); while a task is not SUCCESS every answer appends a new
``?rand=`` to ``imageUrl``.
"""

from __future__ import annotations

import itertools
import time

import anyio
import pytest

from mjasync.testing import FakeMidjourney

pytestmark = pytest.mark.anyio

RELAY = {"accent": "relay", "headers": {"Authorization": "Bearer sk-test"}}


async def watch(api, task_id: str, seconds: float) -> list[tuple[int, dict]]:
    """Fetch the task every few milliseconds for ``seconds``: (epoch ms, task) pairs."""
    seen: list[tuple[int, dict]] = []
    with anyio.move_on_after(seconds):
        while True:
            before = int(time.time() * 1000)
            task = await api.fetch(task_id)
            seen.append((before, task))
            if task["status"] == "SUCCESS" and len(seen) > 3:
                break
            await anyio.sleep(0.003)
    return seen


async def test_a_refreshing_relay_changes_its_answers_only_at_its_refreshes(make_sim):
    fake, api = await make_sim(relay_refresh=0.15, job_duration=0.4, progress_steps=3, **RELAY)
    task_id = await api.imagine("a cat")
    seen = await watch(api, task_id, 3.0)
    first = seen[0][1]
    # Before its first refresh the relay shows its own blank record of the submit.
    assert (first["status"], first["progress"], first["startTime"], first["finishTime"]) == (
        "",
        "0%",
        0,
        0,
    )
    assert first["submitTime"] > 0
    states = [(task["status"], task["progress"]) for _, task in seen]
    assert states[-1] == ("SUCCESS", "100%")
    assert len(set(states)) >= 3  # blank, some progress, the end: each phase shows
    changes = 0
    for (before, old), (after, new) in itertools.pairwise(seen):
        if (old["status"], old["progress"]) != (new["status"], new["progress"]):
            changes += 1
            # A refresh fell between the two answers (the one before was sent at `before`).
            assert fake.shown_at(before) <= after + 5, (before, after, old, new)
    assert changes >= 2


async def test_without_refresh_the_relay_answers_live(make_sim):
    fake, api = await make_sim(job_duration=0.05, **RELAY)
    task_id = await api.imagine("a cat")
    task = await api.fetch(task_id)
    assert task["status"] in ("SUBMITTED", "IN_PROGRESS")  # no blank record
    assert fake.shown_at(1_700_000_000_123) == 1_700_000_000_123
    done = await api.wait_status(task_id, "SUCCESS")
    assert "?" not in done["imageUrl"]


async def test_an_unfinished_tasks_image_url_gets_a_new_rand_query_on_every_answer(make_sim):
    _, api = await make_sim(relay_refresh=0.05, job_duration=0.6, progress_steps=3, **RELAY)
    task_id = await api.imagine("a cat")
    with anyio.fail_after(3):
        while not (task := await api.fetch(task_id))["imageUrl"]:
            await anyio.sleep(0.005)
    again = await api.fetch(task_id)
    assert task["status"] == "IN_PROGRESS"
    path, _, query = task["imageUrl"].partition("?")
    assert path == f"{api.base}/mj/image/{task_id}" and query.startswith("rand=")
    assert again["imageUrl"] != task["imageUrl"]  # the same picture, a new query
    assert again["imageUrl"].partition("?")[0] == path
    done = await api.wait_status(task_id, "SUCCESS")
    assert done["imageUrl"] == path  # finished: a plain, stable URL


def test_relay_refresh_needs_the_relay_accent():
    with pytest.raises(ValueError, match="relay"):
        FakeMidjourney(accent="csharp", relay_refresh=1.0)
    with pytest.raises(ValueError, match="relay_refresh"):
        FakeMidjourney(accent="relay", relay_refresh=-1.0)


async def test_core_time_counts_idle_cores_only_while_jobs_are_still_to_come(make_sim):
    fake, api = await make_sim(core_size=2, job_duration=0.1, progress_steps=1)
    loop_time = anyio.current_time
    started = loop_time()
    first = await api.imagine("first")
    await api.wait_status(first, "SUCCESS")
    await anyio.sleep(0.1)  # both cores idle, with a job still to come
    gap = loop_time() - started
    second = await api.imagine("second")
    await api.wait_status(second, "SUCCESS")
    await anyio.sleep(0.1)  # idle again, but nothing is to come any more
    stats = fake.stats()
    # Two jobs held a core 0.1 s each.
    assert stats.core_busy["fast"] == pytest.approx(0.2, abs=0.03)
    # Until the second job arrived: one core idle beside the first job, then both.
    expected_idle = 2 * gap - 0.1
    assert stats.core_idle["fast"] == pytest.approx(expected_idle, abs=0.04)
    assert stats.core_idle["relax"] == 0.0 and stats.core_busy["relax"] == 0.0  # unused


async def test_peak_queued_is_the_most_jobs_waiting_for_a_core(make_sim):
    fake, api = await make_sim(core_size=1, queue_size=5, job_duration=0.05)
    ids = [await api.imagine(f"cat {i}") for i in range(4)]
    assert fake.stats().peak_queued["fast"] == 3
    for task_id in ids:
        await api.wait_status(task_id, "SUCCESS")
    stats = fake.stats()
    assert stats.peak_queued["fast"] == 3 and stats.queued["fast"] == 0
    fake.reset_stats()
    assert fake.stats().peak_queued["fast"] == 0
    assert fake.stats().core_idle["fast"] == 0.0
