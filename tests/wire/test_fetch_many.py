"""fetch_many: list-by-condition in chunks, mapped by id, and the per-id fallback."""

from __future__ import annotations

import re
from collections.abc import Callable

import anyio
import pytest
from aiohttp import web

import mjasync
from mjasync import AuthenticationError, UnsupportedEndpointError

from .conftest import LoopbackServer, Recorded, Reply, SleepRecorder, make_wire, reply

pytestmark = pytest.mark.anyio

LIST = "/mj-fast/mj/task/list-by-condition"
FETCH = r"/mj-fast/mj/task/(\w+)/fetch"
KNOWN = {f"{n}": {"id": f"{n}", "status": "IN_PROGRESS", "progress": f"{n}%"} for n in range(1, 8)}


async def list_known_reversed(_: web.Request, recorded: Recorded) -> web.StreamResponse:
    """Answer like a real server: known ids only, in an order of its own."""
    ids = recorded.json["ids"]
    return web.json_response([KNOWN[i] for i in reversed(ids) if i in KNOWN])


def fetch_known(not_found: Reply) -> Callable[[web.Request, Recorded], object]:
    async def handler(request: web.Request, _: Recorded) -> web.StreamResponse:
        match = re.fullmatch(FETCH, request.path)
        assert match is not None
        task = KNOWN.get(match.group(1))
        return web.json_response(task) if task else not_found.build()

    return handler


async def test_chunks_map_by_id_and_omit_missing(
    server: LoopbackServer, make_client: Callable[..., mjasync.Client]
) -> None:
    server.script("POST", LIST, list_known_reversed)
    ids = ["1", "2", "404", "3", "4", "5", "2"]
    async with make_client(list_batch_size=2) as client:
        tasks = await client.fetch_many(ids)
    assert set(tasks) == {"1", "2", "3", "4", "5"}
    for task_id, task in tasks.items():
        assert task.id == task_id
        assert task.progress == int(task_id)
    sent = [r.json["ids"] for r in server.requests]
    assert sent == [["1", "2"], ["404", "3"], ["4", "5"]]  # chunks of 2, duplicates once
    assert all(r.method == "POST" for r in server.requests)


async def test_no_ids_no_request(server: LoopbackServer, client: mjasync.Client) -> None:
    assert await client.fetch_many([]) == {}
    assert server.requests == []


async def test_fetch_many_refuses_a_single_string(client: mjasync.Client) -> None:
    with pytest.raises(TypeError):
        await client.fetch_many("1320098173412546")


async def test_unreadable_list_entries_are_skipped(
    server: LoopbackServer, client: mjasync.Client
) -> None:
    server.script("POST", LIST, reply(200, [{"status": "SUCCESS"}, "junk", KNOWN["1"]]))
    tasks = await client.fetch_many(["1", "2"])
    assert list(tasks) == ["1"]


async def test_list_is_retried_like_any_read(server: LoopbackServer) -> None:
    server.script("POST", LIST, Reply(503), list_known_reversed)
    sleep = SleepRecorder()
    wire = make_wire(server.url, sleep=sleep, max_retries=2, base_delay=1.0, jitter=0.5)
    try:
        tasks = await wire.fetch_many(["1", "2"], mode="fast")
    finally:
        await wire.transport.aclose()
    assert set(tasks) == {"1", "2"}
    assert sleep.delays == [0.75]


@pytest.mark.parametrize(
    "not_found",
    [
        Reply(200),  # J: empty 200
        reply(404, {"code": 3}),  # C
        reply(400, {"description": "task_no_found ", "type": "upstream_error", "code": 4}),  # N
    ],
    ids=["J-empty-200", "C-404-code3", "relay-400-code4"],
)
async def test_fallback_to_per_id_fetch_and_remember_it(
    server: LoopbackServer, client: mjasync.Client, not_found: Reply
) -> None:
    # No list route is scripted: the server answers Spring's 404 for it.
    server.script("GET", FETCH, fetch_known(not_found))  # type: ignore[arg-type]
    first = await client.fetch_many(["1", "2", "999"])
    assert set(first) == {"1", "2"}
    assert first["2"].progress == 2
    assert len(server.requests_to(LIST)) == 1
    assert len(server.requests_to(FETCH, "GET")) == 3

    second = await client.fetch_many(["3", "998"])
    assert set(second) == {"3"}
    assert len(server.requests_to(LIST)) == 1  # remembered: no second list request
    assert len(server.requests_to(FETCH, "GET")) == 5


async def test_fallback_is_remembered_per_mode(
    server: LoopbackServer, client: mjasync.Client
) -> None:
    server.script("GET", r"/mj-\w+/mj/task/(\w+)/fetch", reply(200, KNOWN["1"]))
    server.script("POST", "/mj-relax/mj/task/list-by-condition", reply(200, [KNOWN["1"]]))
    await client.fetch_many(["1"])  # fast: no list route -> fallback
    await client.fetch_many(["1"], mode="relax")  # relax has the route
    await client.fetch_many(["1"], mode="relax")
    assert len(server.requests_to(LIST)) == 1
    assert len(server.requests_to("/mj-relax/mj/task/list-by-condition")) == 2


async def test_fallback_concurrency_is_bounded(server: LoopbackServer) -> None:
    in_flight = 0
    peak = 0
    crowded = anyio.Event()

    async def slow_fetch(request: web.Request, _: Recorded) -> web.StreamResponse:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        if in_flight >= 3:
            crowded.set()
        with anyio.move_on_after(2):  # only reached if the client never sends 3 at once
            await crowded.wait()
        in_flight -= 1
        match = re.fullmatch(FETCH, request.path)
        assert match is not None
        return web.json_response({"id": match.group(1)})

    server.script("GET", FETCH, slow_fetch)
    transport_wire = make_wire(server.url, sleep=SleepRecorder(), max_retries=0)
    wire = type(transport_wire)(
        transport_wire.transport, transport_wire.policy, fetch_concurrency=3
    )
    ids = [str(n) for n in range(1, 13)]
    try:
        tasks = await wire.fetch_many(ids, mode="fast")
    finally:
        await wire.transport.aclose()
    assert set(tasks) == set(ids)
    assert peak == 3


async def test_fallback_errors_other_than_not_found_are_raised_as_themselves(
    server: LoopbackServer, client: mjasync.Client
) -> None:
    server.script("GET", FETCH, reply(200, KNOWN["1"]), Reply(401))
    with pytest.raises(AuthenticationError) as info:
        await client.fetch_many(["1", "2", "3"])
    assert info.value.http_status == 401


async def test_wrong_mode_prefix_ends_in_the_mode_none_hint(
    server: LoopbackServer, client: mjasync.Client
) -> None:
    # A Java proxy: no mode prefixes at all, so every prefixed route is Spring's 404.
    with pytest.raises(UnsupportedEndpointError) as info:
        await client.fetch_many(["1", "2"])
    assert "mode=None" in str(info.value)


async def test_chunks_are_handed_over_as_they_arrive(server: LoopbackServer) -> None:
    """With on_chunk, each answer goes to the caller at once and nothing is collected."""
    server.script("POST", LIST, list_known_reversed)
    wire = make_wire(server.url, sleep=SleepRecorder())
    wire.list_batch_size = 2
    chunks: list[list[str]] = []
    try:
        kept = await wire.fetch_payloads(
            ["1", "2", "3", "4", "5"],
            mode="fast",
            on_chunk=lambda payloads: chunks.append([p["id"] for p in payloads]),
        )
    finally:
        await wire.transport.aclose()
    assert kept == []  # nothing held back for the end
    assert len(chunks) == 3 == len(server.requests)  # one hand-over per answer
    assert sorted(i for chunk in chunks for i in chunk) == ["1", "2", "3", "4", "5"]
