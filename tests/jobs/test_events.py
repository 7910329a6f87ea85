"""Progress events: monotonic, one terminal event, every consumer gets the whole story."""

from __future__ import annotations

import itertools
from contextlib import aclosing

import anyio
import pytest

import mjasync
from mjasync import TaskStatus
from mjasync._jobs.events import status_rank

pytestmark = pytest.mark.anyio


def assert_well_formed(events: list[mjasync.ProgressEvent]) -> None:
    assert events, "no events"
    terminal = [e for e in events if e.is_terminal]
    assert len(terminal) == 1 and events[-1] is terminal[0]  # exactly one, and last
    for before, after in itertools.pairwise(events):
        assert status_rank(after.status) >= status_rank(before.status)
        if after.status is before.status:
            assert (after.progress or 0) > (before.progress or 0)  # a change, never a repeat


async def test_events_are_monotonic_with_one_terminal_event(make_client):
    async with make_client() as client:
        job = await client.submit(mjasync.Imagine("a heron"))
        events = [event async for event in job.events()]
        task = await job.result()
    assert_well_formed(events)
    assert events[0].source == "submit" and events[0].status is TaskStatus.SUBMITTED
    assert any(e.status is TaskStatus.IN_PROGRESS for e in events)
    assert events[-1].status is TaskStatus.SUCCESS and events[-1].task == task
    assert task.progress == 100 and task.image_url and task.button("U1")


async def test_every_consumer_gets_the_whole_stream(make_client):
    async with make_client() as client:
        job = await client.submit(mjasync.Imagine("two listeners"))
        first: list[mjasync.ProgressEvent] = []
        second: list[mjasync.ProgressEvent] = []

        async def consume(into: list[mjasync.ProgressEvent]) -> None:
            async for event in job.events():
                into.append(event)

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume, first)
            tg.start_soon(consume, second)
        late = [event async for event in job.events()]  # after the end: the final state
    assert_well_formed(first)
    assert [(e.status, e.progress) for e in first] == [(e.status, e.progress) for e in second]
    assert len(late) == 1 and late[0].status is TaskStatus.SUCCESS


async def test_a_late_consumer_starts_from_the_current_state(make_client):
    async with make_client() as client:
        job = await client.submit(mjasync.Imagine("late"))
        async with aclosing(job.events()) as events:
            async for event in events:
                if event.status is TaskStatus.IN_PROGRESS:
                    break
        late = [event async for event in job.events()]
    assert late[0].status is TaskStatus.IN_PROGRESS  # caught up first, no replay from zero
    assert_well_formed(late)


async def test_queue_position_is_reported(fake, make_client):
    # concurrency above core size: the 4th job is queued by the server (code 22).
    async with make_client(concurrency=5) as client:
        jobs = [await client.submit(mjasync.Imagine(f"queued {i}")) for i in range(5)]
        firsts = [await anext(aiter(job.events())) for job in jobs]
        for job in jobs:
            await job.result()
    queued = [e for e in firsts if e.queue_position is not None]
    assert queued and all(e.status is TaskStatus.NOT_START for e in queued)
    assert sorted(e.queue_position for e in queued) == list(range(len(queued)))


async def test_stream_yields_events_of_all_requests_with_their_request(make_client):
    requests = [mjasync.Imagine(f"bird {i}") for i in range(5)] + [
        mjasync.Imagine("a nude bird"),  # refused at submit
        mjasync.Imagine("bird --fail"),  # fails while running
    ]
    async with make_client(concurrency=3) as client:
        by_request: dict[int, list[mjasync.ProgressEvent]] = {}
        async for event in client.stream(requests):
            by_request.setdefault(id(event.request), []).append(event)
    assert set(by_request) == {id(r) for r in requests}
    for request in requests[:5]:
        assert_well_formed(by_request[id(request)])
        assert by_request[id(request)][-1].status is TaskStatus.SUCCESS
    (banned,) = by_request[id(requests[5])]
    assert banned.task_id is None and isinstance(banned.error, mjasync.BannedPromptError)
    failed = by_request[id(requests[6])][-1]
    assert isinstance(failed.error, mjasync.TaskFailedError) and failed.error.fail_reason


async def test_gather_keeps_input_order(make_client):
    prompts = ["b --slow", "a", "c --fail", "d"]
    async with make_client(concurrency=4) as client:
        results = await client.gather(mjasync.Imagine(p) for p in prompts)
    assert [r.prompt if isinstance(r, mjasync.Task) else None for r in results] == [
        "b --slow",
        "a",
        None,
        "d",
    ]
    assert isinstance(results[2], mjasync.TaskFailedError)


async def test_watch_reattaches_from_another_client(fake, make_client):
    async with make_client() as first:
        ids = [(await first.submit_imagine(f"moth {i}")).task_id for i in range(3)]
    async with make_client() as second:
        finals = {}
        async for event in second.watch(ids):
            if event.is_terminal:
                finals[event.task_id] = event.status
    assert finals == dict.fromkeys(ids, TaskStatus.SUCCESS)
