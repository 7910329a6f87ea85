"""No answer crashes the client (issue 12, item 3): the cases found by hand.

JSON nested ~980 deep decodes (orjson reads up to 1024 levels), but every later ``repr``,
comparison or re-encoding of it recursed: ``CompactPayload`` raised a raw ``RecursionError``
from a poll, which killed the client's task group, every in-flight job died with
``CancelledError`` and ``async with Client`` raised an ``ExceptionGroup``. Now whatever a
fetch, list, submit or push answer holds becomes an :class:`MjError` at the boundary and fails
at most the task it concerns. ``test_wire_fuzz.py`` throws random answers at the whole client.
"""

from __future__ import annotations

import json

import aiohttp
import anyio
import pytest
from aiohttp import web

import mjasync

from .conftest import KEY
from .wire_server import (
    HostileServer,
    answer,
    deep_json,
    rounds,
    submit_ids,
    task_json,
)

pytestmark = pytest.mark.anyio

A, B = "1320098173412546", "1320098173412547"
FAST = {"poll_interval": 0.02, "retry": mjasync.RetryPolicy(max_retries=1, base_delay=0.01)}


def deep_in(where: str, depth: int, kind: str) -> bytes:
    """A SUCCESS task of id A with ``depth`` levels of nesting at ``where``."""
    nested = deep_json(depth, kind=kind).decode()
    if where == "properties" and kind == "list":
        nested = '{"x": ' + nested + "}"
    return task_json(A).replace(b'"id"', f'"{where}": {nested}, "id"'.encode(), 1)


@pytest.mark.parametrize("kind", ["list", "dict"])
@pytest.mark.parametrize("where", ["properties", "buttons", "extra"])
@pytest.mark.parametrize("depth", [980, 1020, 100_000])
async def test_fetching_a_deeply_nested_task_is_a_protocol_error(
    server: HostileServer, where: str, depth: int, kind: str
) -> None:
    task = deep_in(where, depth, kind)
    server.on("GET", "/.*", answer(raw=task))
    server.on("POST", "/mj-fast/mj/task/list-by-condition", answer(raw=b"[" + task + b"]"))
    async with mjasync.Client(server.url, KEY, **FAST) as client:  # type: ignore[arg-type]
        with pytest.raises(mjasync.ProtocolError):
            await client.fetch(A)
        if depth > 1024:  # beyond any decoder: the whole list answer is unreadable
            with pytest.raises(mjasync.ProtocolError):
                await client.fetch_many([A])
        else:  # decoded: the one task is unreadable, skipped (and logged)
            assert await client.fetch_many([A]) == {}


async def test_a_deep_terminal_payload_fails_its_own_job_and_no_other(
    server: HostileServer,
) -> None:
    server.on("POST", "/mj-fast/mj/submit/imagine", submit_ids(A, B))
    deep = deep_in("properties", 980, "dict")
    server.on(
        "POST",
        "/mj-fast/mj/task/list-by-condition",
        rounds(lambda n, ids: b"[" + deep + b"," + task_json(B) + b"]"),
    )

    async with mjasync.Client(server.url, KEY, **FAST) as client:  # type: ignore[arg-type]
        job_a = await client.submit(mjasync.Imagine("a"))
        job_b = await client.submit(mjasync.Imagine("b"))
        with anyio.fail_after(10):
            task_b = await job_b.result()
            with pytest.raises(mjasync.ProtocolError, match="unreadable SUCCESS payload"):
                await job_a.result()
        # The client goes on serving: another job on the same client, same loop.
        server.on("POST", "/mj-fast/mj/submit/imagine", submit_ids(B))
        with anyio.fail_after(10):
            again = await client.run(mjasync.Imagine("b again"))
    # ... and leaving `async with` raised nothing (no ExceptionGroup).
    assert task_b.status is mjasync.TaskStatus.SUCCESS and again.id == B


@pytest.mark.parametrize("field", ["status", "progress"])
async def test_deeply_nested_status_or_progress_does_not_stop_the_poller(
    server: HostileServer, field: str
) -> None:
    server.on("POST", "/mj-fast/mj/submit/imagine", submit_ids(A, B))
    garbage = deep_json(980).decode()

    def build(round_number: int, ids: list[str]) -> bytes:
        if round_number <= 3:  # the same garbage, twice and more: compared with itself
            hostile = task_json(A, "IN_PROGRESS").replace(
                f'"{field}": '.encode(), f'"{field}": {garbage}, "was": '.encode(), 1
            )
            return b"[" + hostile + b"," + task_json(B, "IN_PROGRESS") + b"]"
        return b"[" + task_json(A) + b"," + task_json(B) + b"]"

    server.on("POST", "/mj-fast/mj/task/list-by-condition", rounds(build))
    async with mjasync.Client(server.url, KEY, **FAST) as client:  # type: ignore[arg-type]
        jobs = [await client.submit(mjasync.Imagine(p)) for p in "ab"]
        with anyio.fail_after(10):
            tasks = [await job.result() for job in jobs]
    assert [t.id for t in tasks] == [A, B]


async def test_a_deep_submit_answer_keeps_its_job(server: HostileServer) -> None:
    accepted = json.dumps({"code": 1, "result": A, "description": "ok"}).encode()
    hostile = accepted.replace(
        b'"code"', b'"properties": ' + deep_json(980, kind="dict") + b', "code"'
    )
    server.on("POST", "/mj-fast/mj/submit/imagine", answer(raw=hostile))
    server.on(
        "POST",
        "/mj-fast/mj/task/list-by-condition",
        rounds(lambda n, ids: b"[" + task_json(A) + b"]"),
    )
    async with mjasync.Client(server.url, KEY, **FAST) as client:  # type: ignore[arg-type]
        submission = await client.submit_request(mjasync.Imagine("a"))
        assert submission.task_id == A and dict(submission.properties) == {}
        with anyio.fail_after(10):
            task = await client.run(mjasync.Imagine("a"))  # the job API: watched to the end
    assert task.id == A


@pytest.mark.parametrize(
    "body",
    [deep_json(100_000), b'{"code": 1, "result": ' + deep_json(2000) + b"}"],
    ids=["undecodable", "deep-result"],
)
async def test_an_unreadable_submit_answer_is_uncertain(server: HostileServer, body: bytes) -> None:
    server.on("POST", "/mj-fast/mj/submit/imagine", answer(raw=body))
    async with mjasync.Client(server.url, KEY, **FAST) as client:  # type: ignore[arg-type]
        with pytest.raises(mjasync.SubmissionUncertainError):
            await client.submit_request(mjasync.Imagine("a"))
        with pytest.raises(mjasync.SubmissionUncertainError):
            await client.run(mjasync.Imagine("a"))
    assert len(server.requests) == 2  # each sent once, never resent


async def test_a_deep_push_is_refused_and_the_job_goes_on(server: HostileServer) -> None:
    server.on("POST", "/mj-fast/mj/submit/imagine", submit_ids(A))

    def build(round_number: int, ids: list[str]) -> bytes:
        return b"[" + task_json(A, "IN_PROGRESS" if round_number == 1 else "SUCCESS") + b"]"

    server.on("POST", "/mj-fast/mj/task/list-by-condition", rounds(build))
    receiver = mjasync.WebhookReceiver()
    async with (
        mjasync.Client(server.url, KEY, webhook=receiver, **FAST) as client,  # type: ignore[arg-type]
        aiohttp.ClientSession() as session,
    ):
        job = await client.submit(mjasync.Imagine("a"))
        # 100 levels: decodable anywhere, but no task is that deep. 980: decodable or not,
        # depending on the stack the handler runs on. 100,000: undecodable.
        for depth in (100, 980, 100_000):
            push = deep_in("properties", depth, "dict")
            async with session.post(receiver.notify_url, data=push) as resp:
                assert resp.status == 400  # refused as JSON no task has, not a 500
        with anyio.fail_after(10):
            task = await job.result()
    assert task.status is mjasync.TaskStatus.SUCCESS
    assert receiver.statistics().rejected_by_reason == {"bad_json": 3}


async def test_one_ids_bare_404_does_not_close_a_route_that_serves_others(
    server: HostileServer,
) -> None:
    """A bodyless 404 for one task id is that task's miss once the route has served others.

    Found by ``test_wire_fuzz``: a server without list-by-condition (polls fall back to one
    fetch per task) that answered 404 with no body for one id made the client remember the
    whole fetch route as missing, and every other job polled through it failed with
    ``UnsupportedEndpointError``. B's 404 is let out first, so it arrives before A's answer
    has proved the route.
    """
    server.on("POST", "/mj-fast/mj/submit/imagine", submit_ids(A, B))
    b_answered = anyio.Event()

    async def fetch(request: web.Request, seen: object) -> web.StreamResponse:
        if request.path.split("/")[-2] == B:
            b_answered.set()
            return web.Response(status=404)
        with anyio.fail_after(5):
            await b_answered.wait()
        return web.Response(body=task_json(A), content_type="application/json")

    server.on("GET", r"/mj-fast/mj/task/\d+/fetch", fetch)
    async with mjasync.Client(server.url, KEY, **FAST) as client:  # type: ignore[arg-type]
        job_a = await client.submit(mjasync.Imagine("a"))
        job_b = await client.submit(mjasync.Imagine("b"))
        with anyio.fail_after(10):
            task_a = await job_a.result()
        with pytest.raises(mjasync.NotFoundError):
            await client.fetch(B)  # the route served A: this 404 is B's, not the route's
        assert not job_b.done or not isinstance(job_b.outcome(), mjasync.UnsupportedEndpointError)
        await job_b.cancel()
    assert task_a.status is mjasync.TaskStatus.SUCCESS
