"""A simulator restart mid-batch: the forgotten jobs end as clear errors, never as hangs.

``forget_all_tasks()`` is a server restart without storage: every task id the client watches
is now unknown. The client must notice (the task is absent from list answers, then a direct
fetch says "not found") and end those jobs with :class:`TaskLostError`; jobs submitted after
the restart run normally, and nothing is resubmitted behind the user's back.
"""

from __future__ import annotations

import anyio
import pytest

import mjasync
from mjasync.testing import Faults

from .conftest import POLL_FAULTS, client_for, prompts, sim

pytestmark = pytest.mark.anyio


# Each server family says "unknown task" its own way: C# 404 {"code": 3}, the Java proxy an
# empty 200, relays 400 {"code": 4, "description": "task_no_found"}.
CASES = [
    pytest.param("csharp", None, id="csharp"),
    pytest.param("csharp", Faults(poll=POLL_FAULTS), id="csharp-poll-faults"),
    pytest.param("java", None, id="java"),
    pytest.param("relay", Faults(poll=POLL_FAULTS), id="relay-poll-faults"),
]


@pytest.mark.parametrize(("accent", "faults"), CASES)
async def test_restart_mid_batch_turns_in_flight_jobs_into_lost_errors(
    accent: str, faults: Faults | None
) -> None:
    # Five jobs that never end by themselves are surely in flight when the server restarts;
    # the others come and go around it.
    requests = [mjasync.Imagine(f"restart {i} --stall") for i in range(5)] + prompts(35, "restart")
    terminal: dict[int, mjasync.ProgressEvent] = {}
    lost_at_restart: set[str] = set()
    mode = None if accent == "java" else "fast"  # the Java proxy serves no mode prefixes
    async with (
        sim(accent=accent, faults=faults, seed=17, job_duration=0.1) as fake,
        client_for(fake, mode=mode) as client,
    ):
        with anyio.fail_after(60):  # a hang fails here instead of blocking the suite
            async for event in client.stream(requests):
                if not event.is_terminal:
                    continue
                terminal[id(event.request)] = event
                if len(terminal) == 10:
                    # Restart with the stalled jobs and others in flight, twenty not yet sent.
                    lost_at_restart = set(fake.task_ids())
                    fake.forget_all_tasks()
        stats = client.statistics()

    assert len(terminal) == len(requests)  # one terminal event per request, none missing
    lost = [e for e in terminal.values() if isinstance(e.error, mjasync.TaskLostError)]
    succeeded = [e for e in terminal.values() if e.error is None]
    assert len(lost) + len(succeeded) == len(requests), [
        e.error for e in terminal.values() if e.error is not None and e not in lost
    ]
    assert len(lost) >= 5  # the stalled ones at least
    assert {id(r) for r in requests[:5]} <= {id(e.request) for e in lost}
    for event in lost:
        error = event.error
        assert isinstance(error, mjasync.TaskLostError)
        assert error.task_id == event.task_id and event.task_id in lost_at_restart
        assert "no longer knows" in str(error)
    # Jobs sent after the restart are new tasks on the new server and finish normally.
    after = [e for e in succeeded if e.task_id not in lost_at_restart]
    assert after and all(e.status is mjasync.TaskStatus.SUCCESS for e in after)

    sim_stats = fake.stats()
    assert sim_stats.accepted == len(requests) and sim_stats.duplicates == 0  # nothing resent
    budget = stats.mode(mode)
    assert budget is not None and budget.in_flight == 0 and budget.watched == 0
