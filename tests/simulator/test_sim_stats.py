"""Counters: per route kind, accepted, refused, duplicates, peaks; /_sim/stats; reset."""

from __future__ import annotations

import pytest

from mjasync.testing import SimStats

pytestmark = pytest.mark.anyio


async def test_counters_and_the_json_endpoint(make_sim):
    fake, api = await make_sim(core_size=1, queue_size=1, job_duration=5)
    body = {"prompt": "a cat", "state": "nonce-1", "notifyHook": "http://127.0.0.1:9/a"}
    await api.submit("imagine", body)
    # A resend differing only in notifyHook is the same logical request.
    await api.submit("imagine", {**body, "notifyHook": "http://127.0.0.1:9/b"})
    await api.submit("imagine", {"prompt": "a cat", "state": "nonce-2"})  # queue full
    await api.submit("imagine", {"prompt": "nude"})  # banned
    await api.submit("imagine", {"prompt": ""})  # invalid
    await api.request("GET", "/mj/task/1/fetch", headers={"mj-api-secret": "wrong"})  # auth
    await api.request("GET", "/mj/task/1/fetch")
    await api.request("POST", "/mj/task/list-by-condition", {"ids": ["1"]})
    await api.request("GET", "/mj/task/1/image-seed")
    await api.request("GET", "/no/such/route")

    stats = fake.stats()
    assert isinstance(stats, SimStats)
    assert dict(stats.requests) == {
        "submit": 5,
        "fetch": 2,
        "list": 1,
        "image_seed": 1,
        "other": 1,
    }
    assert stats.accepted == 2 and dict(stats.accepted_by_endpoint) == {"imagine": 2}
    assert dict(stats.refused) == {"queue_full": 1, "banned": 1, "invalid": 1, "auth": 1}
    assert stats.refused_total == 4
    assert stats.duplicates == 1
    assert (stats.active["fast"], stats.running["fast"], stats.queued["fast"]) == (2, 1, 1)
    assert stats.peak_active == {"fast": 2, "relax": 0, "turbo": 0}
    assert stats.tasks == 2

    status, served, _ = await api.request("GET", "/_sim/stats", headers={})
    assert status == 200
    expected = stats.to_dict()
    expected["requests"]["stats"] = 1  # the stats request counts itself
    assert served == expected


async def test_different_state_is_not_a_duplicate(sim):
    fake, api = sim
    await api.submit("imagine", {"prompt": "a cat", "state": "1"})
    await api.submit("imagine", {"prompt": "a cat", "state": "2"})
    await api.submit("shorten", {"prompt": "a cat", "state": "1"})  # other endpoint
    assert fake.stats().duplicates == 0


async def test_reset_stats(make_sim):
    fake, api = await make_sim(job_duration=5)
    await api.imagine()
    await api.imagine("a dog")
    fake.reset_stats()
    stats = fake.stats()
    assert stats.accepted == 0 and dict(stats.requests) == {}
    # Peaks restart from what is live now, not from zero.
    assert stats.peak_active["fast"] == 2 and stats.active["fast"] == 2
    await api.imagine("a cat")  # same body as before the reset: not remembered
    assert fake.stats().duplicates == 0
