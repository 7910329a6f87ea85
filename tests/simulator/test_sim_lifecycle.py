"""Task lifecycle: states, progress, previews, timing, prompt markers, seeded fates."""

from __future__ import annotations

import time

import pytest

from ._helpers import wait_until

pytestmark = pytest.mark.anyio


async def test_imagine_goes_submitted_in_progress_success(make_sim):
    fake, api = await make_sim(start_delay=0.05, job_duration=0.2, progress_steps=3)
    answer = await api.submit("imagine", {"prompt": "a red fox", "state": "nonce-1"})
    assert answer["code"] == 1
    task_id = answer["result"]

    first = await api.fetch(task_id)
    assert first["status"] == "SUBMITTED"
    assert first["progress"] is None and first["startTime"] is None
    assert first["imageUrl"] is None and first["buttons"] == []

    seen: list[tuple[str, str | None, str | None]] = []

    def record():
        task = fake.task(task_id)
        entry = (task["status"], task["progress"], task["imageUrl"])
        if not seen or seen[-1] != entry:
            seen.append(entry)
        return task["status"] == "SUCCESS"

    await wait_until(record)
    statuses = [status for status, _, _ in seen]
    assert statuses[0] == "SUBMITTED" and statuses[-1] == "SUCCESS"
    assert "IN_PROGRESS" in statuses
    running = [(p, url) for status, p, url in seen if status == "IN_PROGRESS"]
    numbers = [int(p.rstrip("%")) for p, _ in running]
    assert numbers == sorted(numbers) and numbers[0] == 0 and 0 < numbers[-1] < 100
    assert any(url and "preview" in url for _, url in running), "no preview image while running"

    final = await api.fetch(task_id)
    assert final["progress"] == "100%"
    assert final["state"] == "nonce-1"
    assert final["imageUrl"].endswith("-grid.png")
    assert final["submitTime"] <= final["startTime"] <= final["finishTime"]
    assert final["finishTime"] - final["startTime"] >= 150  # job_duration 0.2 s, in ms
    assert final["failReason"] is None
    assert len(final["buttons"]) == 9
    assert final["properties"]["finalPrompt"] == "a red fox"


async def test_queued_task_is_not_start_until_a_slot_frees(make_sim):
    fake, api = await make_sim(core_size=1, queue_size=5, job_duration=0.1)
    first = await api.submit("imagine", {"prompt": "one"})
    second = await api.submit("imagine", {"prompt": "two"})
    third = await api.submit("imagine", {"prompt": "three"})
    assert first["code"] == 1
    assert (second["code"], second["properties"]["numberOfQueues"]) == (22, 0)
    assert (third["code"], third["properties"]["numberOfQueues"]) == (22, 1)
    assert "前面还有1个任务" in third["description"]
    waiting = await api.fetch(third["result"])
    assert waiting["status"] == "NOT_START" and waiting["progress"] is None
    done = await api.wait_status(third["result"], "SUCCESS")
    earlier = await api.fetch(second["result"])
    assert earlier["finishTime"] <= done["startTime"], "queue must run in order"
    assert fake.stats().peak_running["fast"] == 1


async def test_fail_marker_ends_in_failure(sim):
    _, api = sim
    task = await api.run("a cat --fail")
    assert task["status"] == "FAILURE"
    assert "--fail" in task["failReason"]
    assert task["finishTime"] and task["buttons"] == []


async def test_stall_marker_freezes_in_progress(make_sim):
    fake, api = await make_sim(job_duration=0.05)
    stalled = await api.imagine("a cat --stall")
    await api.wait_status(stalled, "IN_PROGRESS")
    await wait_until(lambda: fake.task(stalled)["progress"] not in (None, "0%"))
    frozen = fake.task(stalled)["progress"]
    # Jobs submitted after it finish, several job durations pass: the stalled one never moves.
    for _ in range(3):
        await api.run("a dog")
    task = await api.fetch(stalled)
    assert task["status"] == "IN_PROGRESS"
    assert task["progress"] == frozen and task["finishTime"] is None


async def test_stall_fails_with_timeout_when_task_timeout_is_set(make_sim):
    _, api = await make_sim(job_duration=0.05, task_timeout=0.15)
    task = await api.run("a cat --stall")
    assert task["status"] == "FAILURE"
    assert task["failReason"] == "任务超时"
    assert task["finishTime"] - task["startTime"] >= 100


async def test_slow_marker_takes_ten_times_longer(make_sim):
    _, api = await make_sim(job_duration=0.02)
    normal = await api.run("a cat")
    slow = await api.run("a cat --slow", timeout=3)
    assert slow["status"] == "SUCCESS"
    normal_ms = normal["finishTime"] - normal["startTime"]
    slow_ms = slow["finishTime"] - slow["startTime"]
    assert slow_ms >= 180 > normal_ms


async def test_failure_rate_one_fails_everything_with_a_reason(make_sim):
    fake, api = await make_sim(job_duration=0.01, failure_rate=1.0)
    tasks = [await api.run(f"prompt {n}") for n in range(5)]
    assert {t["status"] for t in tasks} == {"FAILURE"}
    assert all(t["failReason"] for t in tasks)
    assert fake.stats().finished["FAILURE"] == 5


async def test_same_seed_same_ids_and_fates(make_sim):
    runs = []
    for seed in (7, 7, 8):
        _, api = await make_sim(job_duration=0.01, failure_rate=0.5, seed=seed, core_size=10)
        ids = [await api.imagine(f"p{n}") for n in range(8)]
        tasks = [await api.wait_status(i) for i in ids]
        runs.append([(t["id"], t["status"], t["properties"]["messageHash"]) for t in tasks])
    assert runs[0] == runs[1]
    assert {status for _, status, _ in runs[0]} == {"SUCCESS", "FAILURE"}
    assert [i for i, _, _ in runs[0]] != [i for i, _, _ in runs[2]]


async def test_times_are_epoch_milliseconds(sim):
    fake, api = sim
    task = await api.run("a cat", state="s")
    # Epoch milliseconds, close to the wall clock the client would compare against.
    assert abs(task["submitTime"] / 1000 - time.time()) < 60
    assert fake.stats().finished["SUCCESS"] == 1
