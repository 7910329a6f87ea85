"""Per-account admission: core slots, the wait queue, refusals, peaks and cancel."""

from __future__ import annotations

import pytest

from ._helpers import wait_until

pytestmark = pytest.mark.anyio


async def _fill(api, n):
    return [await api.request("POST", "/mj/submit/imagine", {"prompt": f"p{i}"}) for i in range(n)]


async def test_java_queue_full_is_code_23(make_sim):
    fake, api = await make_sim(accent="java", core_size=1, queue_size=2, job_duration=5)
    answers = await _fill(api, 4)
    assert [a[1]["code"] for a in answers] == [1, 22, 22, 23]
    assert [a[1].get("properties", {}).get("numberOfQueues") for a in answers[1:3]] == [0, 1]
    assert answers[3][0] == 200 and "result" not in answers[3][1]
    stats = fake.stats()
    assert stats.refused["queue_full"] == 1 and stats.accepted == 3
    assert (stats.active["fast"], stats.running["fast"], stats.queued["fast"]) == (3, 1, 2)
    assert (stats.peak_active["fast"], stats.peak_running["fast"]) == (3, 1)


async def test_csharp_queue_full_is_code_9_with_the_queue_full_text(make_sim):
    _, api = await make_sim(accent="csharp", core_size=2, queue_size=1, job_duration=5)
    answers = await _fill(api, 4)
    assert [a[1]["code"] for a in answers] == [1, 1, 22, 9]
    assert answers[3][1]["description"] == "提交失败，队列已满，请稍后重试"


async def test_relay_queue_full_is_http_429_code_30(make_sim):
    _, api = await make_sim(accent="relay", core_size=1, queue_size=1, job_duration=5)
    answers = await _fill(api, 3)
    assert [a[1]["code"] for a in answers[:2]] == [1, 1]  # 22 rewritten to 1
    status, body, _ = answers[2]
    assert status == 429
    assert body["type"] == "upstream_error" and body["code"] == 30 and body["description"]


async def test_running_never_exceeds_core_size_and_everything_finishes(make_sim):
    fake, api = await make_sim(core_size=3, queue_size=10, job_duration=0.03)
    answers = await _fill(api, 13)
    assert [a[1]["code"] for a in answers].count(22) == 10
    await wait_until(lambda: fake.stats().finished.get("SUCCESS") == 13)
    stats = fake.stats()
    assert stats.peak_running["fast"] == 3 and stats.peak_active["fast"] == 13
    assert stats.active["fast"] == 0
    # A freed queue accepts again.
    assert (await api.submit("imagine", {"prompt": "again"}))["code"] == 1


async def test_start_delay_holds_the_slot_while_submitted(make_sim):
    fake, api = await make_sim(core_size=1, queue_size=1, start_delay=5, job_duration=0.01)
    first = await api.submit("imagine", {"prompt": "one"})
    second = await api.submit("imagine", {"prompt": "two"})
    assert (first["code"], second["code"]) == (1, 22)
    assert (await api.fetch(first["result"]))["status"] == "SUBMITTED"
    stats = fake.stats()
    assert stats.running["fast"] == 0 and stats.active["fast"] == 2


async def test_cancel_frees_the_slot_for_the_queue(make_sim):
    # C: Ok() with no body; the task fails with "取消任务", never CANCEL
    # (trueai-org/midjourney-proxy ed32197, Controllers/TaskController.cs:86-125).
    fake, api = await make_sim(accent="csharp", core_size=1, queue_size=2, job_duration=5)
    answers = await _fill(api, 3)
    running, queued, last = (a[1]["result"] for a in answers)
    status, body, _ = await api.request("POST", f"/mj/task/{queued}/cancel")
    assert (status, body) == (200, "")
    cancelled = await api.fetch(queued)
    assert (cancelled["status"], cancelled["failReason"]) == ("FAILURE", "取消任务")
    status, body, _ = await api.request("POST", f"/mj/task/{running}/cancel")
    assert (status, body) == (200, "")
    cancelled = await api.fetch(running)
    assert cancelled["status"] == "FAILURE" and cancelled["finishTime"]
    # The cancelled queue entry is skipped: the last task gets the slot.
    await wait_until(lambda: fake.task(last)["status"] == "IN_PROGRESS")
    stats = fake.stats()
    assert stats.finished["FAILURE"] == 2 and stats.active["fast"] == 1
    assert stats.requests["cancel"] == 2


async def test_cancel_answers_the_same_for_any_id_and_only_admins_may(make_sim):
    _, api = await make_sim(accent="csharp", job_duration=0.01)
    done = (await api.run())["id"]
    for task_id in (done, "nope"):
        status, body, _ = await api.request("POST", f"/mj/task/{task_id}/cancel")
        assert (status, body) == (200, "")
    assert (await api.fetch(done))["status"] == "SUCCESS"
    _, user = await make_sim(accent="csharp", api_keys=["admin", "user"], admin_keys=["admin"])
    status, body, headers = await user.request(
        "POST", "/mj/task/nope/cancel", headers={"mj-api-secret": "user"}
    )
    assert (status, body) == (400, "演示模式，禁止操作")
    assert headers["Content-Type"].startswith("text/plain")
