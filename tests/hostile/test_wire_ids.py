"""Ids a server sends are checked like the user's before they go into a URL (issue 12, item 7).

A task id such as ``../../admin/x?y=`` in a submit answer used to go straight into
``/mj/task/{id}/fetch`` (and ``/cancel``): the URL library normalises the dots, so the client
sent authenticated requests outside the API's base path. Every id from a submit answer, a list
answer or a fetched task now meets the rule of :func:`mjasync._validation.check_task_id`; a
submit whose answer carries a bad id is uncertain (the server may have made the job), and
route segments are quoted besides. The hostile server records every raw path it receives.
"""

from __future__ import annotations

import json

import anyio
import pytest

import mjasync
from mjasync._wire.api import WireAPI, task_route
from mjasync._wire.retry import RetryPolicy
from mjasync._wire.transport import Transport

from .conftest import KEY
from .wire_server import HostileServer, answer, rounds, submit_ids, task_json

pytestmark = pytest.mark.anyio

A = "1320098173412546"
FAST = {"poll_interval": 0.02, "retry": mjasync.RetryPolicy(max_retries=1, base_delay=0.01)}
BAD_IDS = [
    "../../admin/x?y=",
    "1320098173412546/../../../admin",
    "..%2F..%2Fadmin",
    "%2e%2e",
    "a b",
    "1320098173412546#x",
    "x" * 65,
    "１３２０",  # fullwidth digits: isdigit() says yes
    "1320\n/admin",
]


def outside(server: HostileServer, base: str) -> list[str]:
    """Recorded request paths that left the API's base path (or carry a query)."""
    return [p for p in server.paths() if not p.startswith(base) or "?" in p or ".." in p]


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize("mode", ["fast", None])
async def test_a_submit_answer_with_a_bad_id_is_uncertain_and_goes_nowhere(
    server: HostileServer, bad: str, mode: str | None
) -> None:
    base = "/mj-fast/mj/" if mode else "/mj/"
    # mode=None: a Java-style server without list-by-condition, so the client would fetch
    # each id by URL (and cancel it by URL when abandoned).
    server.on("*", "/.*", answer({"code": 1, "result": "ok"}))  # whatever else is asked
    server.on("POST", f"{base}submit/imagine", answer({"code": 1, "result": bad}))

    async with mjasync.Client(server.url, KEY, mode=mode, **FAST) as client:  # type: ignore[arg-type]
        with pytest.raises(mjasync.SubmissionUncertainError, match="not a task id") as caught:
            await client.submit_request(mjasync.Imagine("a black cat"))
        assert caught.value.state is not None  # how to find the job the server may have made
        with anyio.fail_after(10), pytest.raises(mjasync.SubmissionUncertainError):
            await client.run(mjasync.Imagine("a black cat"))

    assert outside(server, base) == []
    assert server.paths() == [f"{base}submit/imagine"] * 2


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_list_answers_with_bad_ids_do_not_reach_a_url(
    server: HostileServer, bad: str
) -> None:
    hostile = json.dumps({"id": bad, "status": "SUCCESS", "progress": "100%"}).encode()
    server.on("POST", "/mj-fast/mj/submit/imagine", submit_ids(A))
    server.on(
        "POST",
        "/mj-fast/mj/task/list-by-condition",
        rounds(lambda n, ids: b"[" + hostile + b"," + task_json(A) + b"," + hostile + b"]"),
    )
    server.on("*", "/mj-fast/mj/task/.*/fetch", answer(raw=task_json(A)))

    async with mjasync.Client(server.url, KEY, **FAST) as client:  # type: ignore[arg-type]
        found = await client.fetch_many([A])
        assert list(found) == [A]  # the item with the bad id is skipped
        with anyio.fail_after(10):
            task = await client.run(mjasync.Imagine("a black cat"))
        assert task.id == A

    assert outside(server, "/mj-fast/mj/") == []


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_a_fetched_task_with_a_bad_id_is_a_protocol_error(
    server: HostileServer, bad: str
) -> None:
    server.on("GET", "/.*", answer({"id": bad, "status": "SUCCESS", "buttons": []}))
    async with mjasync.Client(server.url, KEY, **FAST) as client:  # type: ignore[arg-type]
        with pytest.raises(mjasync.ProtocolError, match="not a task id"):
            await client.fetch(A)
        # Pressing a button of it fetches it first: the same error, nothing else is sent.
        with pytest.raises(mjasync.ProtocolError):
            await client.action(A, "U1")
    assert outside(server, "/mj-fast/mj/") == []
    assert len(server.paths()) == 2


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_routes_take_only_task_ids(server: HostileServer, bad: str) -> None:
    transport = Transport(server.url, KEY)
    api = WireAPI(transport, RetryPolicy(max_retries=0))
    try:
        with pytest.raises(ValueError, match="not a task id"):
            await api.fetch(bad, mode="fast")
        with pytest.raises(ValueError, match="not a task id"):
            await api.cancel(bad, mode="fast")
    finally:
        await transport.aclose()
    assert server.requests == []  # refused before anything was sent


def test_route_segments_are_quoted() -> None:
    assert task_route("1320098173412546", "fetch") == "/mj/task/1320098173412546/fetch"
    assert task_route(" abc_DEF-1 ", "cancel") == "/mj/task/abc_DEF-1/cancel"
    with pytest.raises(ValueError):
        task_route("../x", "fetch")
