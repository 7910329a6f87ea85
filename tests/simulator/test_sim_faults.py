"""Fault injection per route kind, switchable at runtime, plus a restart that loses tasks."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp
import pytest

from mjasync.testing import FaultRates, Faults

pytestmark = pytest.mark.anyio

IMAGINE = {"prompt": "a cat"}


def on_submit(**rates):
    return Faults(submit=FaultRates(**rates))


def on_poll(**rates):
    return Faults(poll=FaultRates(**rates))


async def test_html_502_stops_the_request(make_sim):
    fake, api = await make_sim(faults=on_submit(html_502=1.0))
    status, body, headers = await api.request("POST", "/mj/submit/imagine", IMAGINE)
    assert status == 502 and headers["Content-Type"].startswith("text/html")
    assert "502 Bad Gateway" in body
    stats = fake.stats()
    assert stats.tasks == 0 and stats.accepted == 0
    assert stats.faults["html_502"] == 1 and stats.faults_by_route["submit"]["html_502"] == 1
    # Polls are a different route kind: untouched.
    status, _, _ = await api.request("GET", "/mj/task/1/fetch")
    assert status == 204  # C: an unknown id


async def test_rate_limit_with_retry_after_seconds(make_sim):
    fake, api = await make_sim(faults=on_submit(rate_limit=1.0, retry_after=2))
    status, body, headers = await api.request("POST", "/mj/submit/imagine", IMAGINE)
    assert (status, body, headers["Retry-After"]) == (429, "", "2")
    assert fake.stats().tasks == 0


async def test_rate_limit_with_retry_after_http_date(make_sim):
    fake, api = await make_sim(
        faults=on_poll(rate_limit=1.0, retry_after=3, retry_after_http_date=1.0)
    )
    before = datetime.now(UTC)
    status, _, headers = await api.request("GET", "/mj/task/1/fetch")
    assert status == 429
    when = parsedate_to_datetime(headers["Retry-After"])
    assert 2.0 <= (when - before).total_seconds() <= 5.0
    assert fake.stats().faults_by_route["poll"]["rate_limit"] == 1


async def test_connection_reset_before_handling(make_sim):
    fake, api = await make_sim(faults=on_submit(connection_reset=1.0))
    with pytest.raises(aiohttp.ClientError):
        await api.request("POST", "/mj/submit/imagine", IMAGINE)
    stats = fake.stats()
    assert stats.tasks == 0 and stats.faults["connection_reset"] == 1


async def test_response_lost_creates_the_task(make_sim):
    fake, api = await make_sim(faults=on_submit(response_lost=1.0))
    with pytest.raises(aiohttp.ClientError):
        await api.request("POST", "/mj/submit/imagine", {"prompt": "a cat", "state": "n1"})
    stats = fake.stats()
    assert stats.tasks == 1 and stats.accepted == 1 and stats.faults["response_lost"] == 1
    # A resend of the same request is then a duplicate submission.
    fake.set_faults(None)
    assert (await api.submit("imagine", {"prompt": "a cat", "state": "n1"}))["code"] == 1
    assert fake.stats().duplicates == 1


async def test_response_lost_does_not_apply_to_polls(make_sim):
    fake, api = await make_sim(faults=Faults.everywhere(response_lost=1.0))
    status, _, _ = await api.request("GET", "/mj/task/1/fetch")
    assert status == 204  # C: an unknown id
    assert "response_lost" not in fake.stats().faults


async def test_truncated_json_on_submit_and_poll(make_sim):
    fake, api = await make_sim(faults=Faults.everywhere(truncated_json=1.0))
    status, body, _ = await api.request("POST", "/mj/submit/imagine", IMAGINE)
    assert status == 200 and isinstance(body, str)  # helper could not decode it
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)
    assert body.startswith('{"code":1')
    assert fake.stats().tasks == 1  # the server did the work; the body was cut afterwards
    (task_id,) = fake.task_ids()
    status, body, _ = await api.request("POST", "/mj/task/list-by-condition", {"ids": [task_id]})
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)
    assert fake.stats().faults_by_route["poll"]["truncated_json"] == 1


async def test_latency_is_added(make_sim):
    fake, api = await make_sim(faults=on_poll(latency=(0.15, 0.2)))
    started = time.perf_counter()
    await api.request("GET", "/mj/task/1/fetch")
    assert time.perf_counter() - started >= 0.15
    started = time.perf_counter()
    await api.request("POST", "/mj/submit/imagine", IMAGINE)
    assert time.perf_counter() - started < 0.15  # submits unaffected
    assert fake.stats().faults["latency"] == 1


async def test_faults_switch_at_runtime(sim):
    fake, api = sim
    fake.faults = Faults.everywhere(html_502=1.0)
    assert (await api.request("GET", "/mj/task/1/fetch"))[0] == 502
    fake.set_faults(None)
    assert (await api.request("GET", "/mj/task/1/fetch"))[0] == 204
    assert fake.faults == Faults()


async def test_seeded_faults_are_reproducible(make_sim):
    outcomes = []
    for _ in range(2):
        _, api = await make_sim(faults=on_poll(html_502=0.3, rate_limit=0.3), seed=3)
        outcomes.append([(await api.request("GET", "/mj/task/1/fetch"))[0] for _ in range(30)])
    assert outcomes[0] == outcomes[1]
    assert set(outcomes[0]) == {204, 429, 502}


async def test_fault_rates_are_validated():
    with pytest.raises(ValueError, match="more than 1"):
        FaultRates(html_502=0.6, rate_limit=0.6)
    with pytest.raises(ValueError, match="probability"):
        FaultRates(connection_reset=1.5)
    with pytest.raises(ValueError, match="reversed"):
        FaultRates(latency=(0.5, 0.1))


async def test_forget_all_tasks_is_a_restart(make_sim):
    fake, api = await make_sim(core_size=1, queue_size=0, job_duration=5)
    task_id = await api.imagine()
    assert (await api.submit("imagine", IMAGINE))["code"] == 9  # account full
    fake.forget_all_tasks()
    status, body, _ = await api.request("GET", f"/mj/task/{task_id}/fetch")
    assert (status, body) == (204, "")  # C: no such task (any more)
    assert fake.stats().active["fast"] == 0
    assert (await api.submit("imagine", IMAGINE))["code"] == 1  # the account is free again
