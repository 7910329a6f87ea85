"""Submits whose answer is lost: each job ends as a task or as an honest "maybe", never twice.

With "accepted but response lost" the server creates the task and then resets the connection.
The client cannot know the task id, and a second POST could be a second paid job, so it must
raise :class:`SubmissionUncertainError` carrying the ``state`` nonce and the body it sent; the
nonce is echoed on the server's task, so the job can be found again.
"""

from __future__ import annotations

import anyio
import pytest

import mjasync
from mjasync.testing import FaultRates, Faults

from .conftest import POLL_FAULTS, client_for, prompts, sim, split

pytestmark = pytest.mark.anyio

SUBMIT_FAULTS = FaultRates(
    response_lost=0.2,  # the task is created, then the connection is reset
    truncated_json=0.03,  # the task is created, then the answer is cut in half
    rate_limit=0.1,  # refused before the server saw it: safe to send again
    retry_after=0,
    latency=(0.0, 0.005),
)


async def test_lost_submit_answers_end_as_uncertain_errors_and_are_never_resent() -> None:
    requests = prompts(100, "lost answer")
    async with (
        sim(faults=Faults(submit=SUBMIT_FAULTS, poll=POLL_FAULTS), seed=3) as fake,
        client_for(fake) as client,
    ):
        with anyio.fail_after(60):
            results = await client.gather(requests)
        stats = client.statistics()
        in_flight = stats.mode("fast")

    outcomes = split(results)
    assert set(outcomes) <= {"Task", "SubmissionUncertainError"}, {
        k: v[:3] for k, v in outcomes.items()
    }
    tasks: list[mjasync.Task] = outcomes.get("Task", [])
    uncertain: list[mjasync.SubmissionUncertainError] = outcomes.get("SubmissionUncertainError", [])
    assert uncertain, "the fault never hit: the test proved nothing"
    assert all(task.status is mjasync.TaskStatus.SUCCESS for task in tasks)

    sim_stats = fake.stats()
    injected = sim_stats.faults_by_route["submit"]
    # Every accepted job is either a task we hold or an error saying it may exist: none is
    # unaccounted for, and none was created twice.
    assert sim_stats.duplicates == 0
    assert sim_stats.accepted == len(tasks) + len(uncertain) == 100
    assert len(uncertain) == injected.get("response_lost", 0) + injected.get("truncated_json", 0)
    # Only refusals were sent again: the injected 429s, and the rare queue-full answer (the
    # uncertain jobs run on the server outside the client's budget, since their ids are
    # unknown, and can fill its queue). In neither case had the server taken the job.
    assert injected.get("rate_limit", 0) > 0
    resent = injected["rate_limit"] + sim_stats.refused.get("queue_full", 0)
    assert sim_stats.requests["submit"] == 100 + resent

    # Each uncertain error carries what is needed to find the job: the body it sent and the
    # state nonce, which the server echoes on exactly one task.
    states = [fake.task(task_id)["state"] for task_id in fake.task_ids()]  # type: ignore[index]
    for error, request in zip(results, requests, strict=True):
        if not isinstance(error, mjasync.SubmissionUncertainError):
            continue
        assert error.endpoint == "/mj/submit/imagine"
        assert error.body["prompt"] == request.prompt
        assert error.state is not None and error.state.startswith("mjasync-")
        assert error.body["state"] == error.state
        assert states.count(error.state) == 1
        assert error.state in str(error)
    assert all(states.count(t.state) == 1 for t in tasks)
    assert in_flight is not None and in_flight.in_flight == 0  # no slot leaked
    assert stats.submits_failed == len(uncertain) and stats.jobs_failed == 0
