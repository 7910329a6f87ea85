"""``gather`` gives every request exactly one outcome, even when one request object is listed
several times (four grids of the same prompt): each accepted, paid job is reported."""

from __future__ import annotations

import anyio
import pytest

import mjasync

from .conftest import client_for, sim

pytestmark = pytest.mark.anyio


async def test_a_request_listed_several_times_gets_one_task_per_listing() -> None:
    same = mjasync.Imagine("four grids of one cat")
    other = mjasync.Imagine("another cat --fail")
    async with sim() as fake, client_for(fake) as client:
        with anyio.fail_after(30):
            results = await client.gather([same, other, same, same, same])
    assert fake.stats().accepted == 5
    assert isinstance(results[1], mjasync.TaskFailedError)
    tasks = [results[i] for i in (0, 2, 3, 4)]
    assert all(isinstance(t, mjasync.Task) for t in tasks), tasks
    assert len({t.id for t in tasks}) == 4  # type: ignore[union-attr]
    assert {t.prompt for t in tasks} == {same.prompt}  # type: ignore[union-attr]
