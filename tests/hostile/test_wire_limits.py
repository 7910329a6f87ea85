"""Every answer is read with a byte limit and an idle timeout (issue 12, item 2).

An endless chunked body used to grow the client until the machine ran out of memory (the CLI
died with a raw ``MemoryError`` at 8.6 GB); a 50 MB body cost 200 MB. Now an answer past
``Client(max_response_bytes=...)`` is a :class:`ProtocolError` (a
:class:`SubmissionUncertainError` on a submit: the server may have taken the job), read a chunk
at a time and given up at once; a body that goes silent mid-way is a :class:`TransportError`
after ``read_idle_timeout``; one that trickles for ever ends at ``timeout``.

The hostile server counts the bytes it managed to hand to its socket. Memory is measured with
``tracemalloc`` (client and server share the process, so the server's buffers count too).
No assertion depends on how fast anything runs.
"""

from __future__ import annotations

import gzip
import json
import socket
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import aiohttp
import anyio
import pytest
from aiohttp import web

import mjasync
from mjasync._wire.api import LIST_BYTES_PER_ID
from mjasync._wire.transport import DEFAULT_MAX_RESPONSE_BYTES, Transport

from .conftest import KEY
from .wire_server import (
    CHUNK,
    SEND_BUFFER,
    HostileServer,
    Seen,
    answer,
    endless,
    sized,
    stall,
    trickle,
)

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
CAP = 1 * MiB
BODY = 50 * 1000 * 1000  # "a 50 MB body"
NO_RETRY = mjasync.RetryPolicy(max_retries=0)
TASK = "1320098173412546"
#: The client's receive buffer in the tests that count bytes exactly (see `small_buffers`).
RECEIVE_BUFFER = 16 * 1024
#: What may be on its way when the client stops: aiohttp reads ahead up to twice its 64 KiB
#: read buffer, and each socket buffer holds what the kernel allows (it doubles the asked
#: size and rounds up a little).
IN_FLIGHT = 2 * 64 * 1024 + 4 * (RECEIVE_BUFFER + SEND_BUFFER)


@contextmanager
def peak_memory() -> Iterator[list[int]]:
    """Yields a list that holds the traced peak (bytes) once the block is done."""
    result: list[int] = []
    tracemalloc.start()
    try:
        yield result
    finally:
        result.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


@asynccontextmanager
async def small_buffers() -> AsyncIterator[aiohttp.ClientSession]:
    """A session whose sockets have a small receive buffer: the bytes the server manages to
    write beyond what the client read are then bounded by :data:`IN_FLIGHT` (loopback
    buffers may otherwise grow to many MiB). The limit itself is the client's, not the
    session's: a session only carries the requests."""

    def make_socket(addr_info: tuple[object, ...]) -> socket.socket:
        family, kind, proto = addr_info[0], addr_info[1], addr_info[2]
        sock = socket.socket(family, kind, proto)  # type: ignore[arg-type]
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        return sock

    connector = aiohttp.TCPConnector(socket_factory=make_socket)  # type: ignore[arg-type]
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


async def served_streams(server: HostileServer) -> None:
    """Wait (bounded) until every streaming handler has noticed the client left."""
    with anyio.fail_after(10):
        await server.streams_done.wait()


async def test_an_endless_body_stops_at_the_limit_with_a_protocol_error(
    server: HostileServer,
) -> None:
    server.on("GET", "/.*", endless(server))
    with peak_memory() as peak:
        async with (
            small_buffers() as session,
            mjasync.Client(
                server.url, KEY, max_response_bytes=CAP, retry=NO_RETRY, session=session
            ) as client,
        ):
            with pytest.raises(mjasync.ProtocolError, match="limit of 1,048,576") as caught:
                await client.fetch(TASK)
        await served_streams(server)

    assert caught.value.path == f"/mj-fast/mj/task/{TASK}/fetch"
    # The client read the limit and at most one chunk more; the rest never left the server.
    assert server.written <= CAP + CHUNK + IN_FLIGHT
    assert peak[0] < 4 * MiB


@pytest.mark.parametrize("declare", [True, False], ids=["content-length", "chunked"])
async def test_a_50_mb_body_costs_no_more_than_the_limit(
    server: HostileServer, declare: bool
) -> None:
    server.on("GET", "/.*", sized(server, BODY, declare=declare))
    with peak_memory() as peak:
        async with (
            small_buffers() as session,
            mjasync.Client(
                server.url, KEY, max_response_bytes=CAP, retry=NO_RETRY, session=session
            ) as client,
        ):
            with pytest.raises(mjasync.ProtocolError, match="past the limit") as caught:
                await client.fetch(TASK)
        await served_streams(server)

    if declare:  # refused on its Content-Length: not a byte of the body was read
        assert "declares 50,000,000 bytes" in str(caught.value)
        assert server.written <= IN_FLIGHT
    else:
        assert server.written <= CAP + CHUNK + IN_FLIGHT
    assert peak[0] < 4 * MiB  # the body is 50 MB


async def test_the_default_limit_holds_on_the_default_session(server: HostileServer) -> None:
    server.on("GET", "/.*", sized(server, BODY, declare=False))
    with peak_memory() as peak:
        async with mjasync.Client(server.url, KEY, retry=NO_RETRY) as client:
            with pytest.raises(mjasync.ProtocolError, match="limit of 4,194,304"):
                await client.fetch(TASK)
        await served_streams(server)

    assert 4 * MiB == DEFAULT_MAX_RESPONSE_BYTES
    assert server.written < BODY  # stopped early (socket buffers make "how early" vary)
    assert peak[0] < 3 * DEFAULT_MAX_RESPONSE_BYTES


async def test_a_compressed_bomb_is_limited_after_decompression(server: HostileServer) -> None:
    inflated = 64 * MiB
    bomb = gzip.compress(b"[" + b" " * inflated + b"]", 9)  # about 64 KB on the wire

    async def handler(request: web.Request, seen: Seen) -> web.StreamResponse:
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        return web.Response(body=bomb, headers=headers)

    server.on("GET", "/.*", handler)
    with peak_memory() as peak:
        async with mjasync.Client(
            server.url, KEY, max_response_bytes=CAP, retry=NO_RETRY
        ) as client:
            with pytest.raises(mjasync.ProtocolError, match="past the limit"):
                await client.fetch(TASK)
    assert len(bomb) < CAP
    assert peak[0] < 4 * MiB  # 64 MiB once inflated


async def test_an_oversized_submit_answer_is_uncertain_and_not_resent(
    server: HostileServer,
) -> None:
    server.on("POST", "/mj-fast/mj/submit/imagine", endless(server))
    async with mjasync.Client(server.url, KEY, max_response_bytes=CAP) as client:
        with pytest.raises(mjasync.SubmissionUncertainError) as caught:
            await client.submit_request(mjasync.Imagine("a black cat"))
    await served_streams(server)

    assert isinstance(caught.value.__cause__, mjasync.ProtocolError)  # the server may have
    assert caught.value.state is not None  # taken it: the state nonce finds it later
    assert server.paths() == ["/mj-fast/mj/submit/imagine"]


def tasks_answer(count: int, pad: int) -> bytes:
    tasks = [
        {"id": str(int(TASK) + i), "status": "IN_PROGRESS", "prompt": "x" * pad}
        for i in range(count)
    ]
    return json.dumps(tasks).encode()


async def test_a_list_answer_may_grow_with_the_ids_asked_and_no_further(
    server: HostileServer,
) -> None:
    ids = [str(int(TASK) + i) for i in range(100)]
    # 100 tasks of 20 KB each: 2 MB, over the 1 MiB limit of one answer, but within what
    # 100 ids may bring (LIST_BYTES_PER_ID each on top).
    body = tasks_answer(len(ids), 20_000)
    assert CAP < len(body) < CAP + len(ids) * LIST_BYTES_PER_ID
    server.on("POST", "/mj-fast/mj/task/list-by-condition", answer(raw=body))

    async with mjasync.Client(server.url, KEY, max_response_bytes=CAP, retry=NO_RETRY) as c:
        found = await c.fetch_many(ids)
        assert sorted(found) == ids
        # The same answer to a question about 2 ids is over what 2 ids may bring.
        with pytest.raises(mjasync.ProtocolError, match="past the limit"):
            await c.fetch_many(ids[:2])


async def test_a_slowloris_trickle_ends_at_the_request_timeout(server: HostileServer) -> None:
    server.on("*", "/.*", trickle(server))
    async with mjasync.Client(server.url, KEY, timeout=0.5, retry=NO_RETRY) as client:
        with anyio.fail_after(20):  # a bound for the test, not a measurement
            with pytest.raises(mjasync.TransportError, match=r"no answer within 0\.5s"):
                await client.fetch(TASK)
            # On a submit, the server may have taken the job: uncertain, not resent.
            with pytest.raises(mjasync.SubmissionUncertainError):
                await client.submit_request(mjasync.Imagine("a black cat"))
    await served_streams(server)
    assert server.paths() == [f"/mj-fast/mj/task/{TASK}/fetch", "/mj-fast/mj/submit/imagine"]


async def test_silence_in_the_middle_of_an_answer_ends_at_the_idle_timeout(
    server: HostileServer,
) -> None:
    server.on("GET", "/.*", stall(server))
    # A long request timeout: only the idle timeout can end this in time.
    transport = Transport(server.url, KEY, timeout=300, read_idle_timeout=0.2)
    try:
        with anyio.fail_after(20):  # a bound for the test, not a measurement
            with pytest.raises(mjasync.TransportError, match=r"went silent for 0\.2s") as caught:
                await transport.request("GET", f"/mj/task/{TASK}/fetch", mode="fast")
    finally:
        await transport.aclose()
    assert caught.value.request_sent  # a submit in this state would be uncertain
    await served_streams(server)


async def test_a_slow_start_is_not_an_idle_timeout(server: HostileServer) -> None:
    # Waiting for the answer to start is bounded by `timeout` alone: a C# proxy uploading
    # images to Discord may take a while before it answers a submit.
    started = anyio.Event()

    async def slow(request: web.Request, seen: Seen) -> web.StreamResponse:
        started.set()
        await anyio.sleep(0.6)  # the server's pace, not a test synchronisation
        return web.json_response({"id": TASK, "status": "SUCCESS"})

    server.on("GET", "/.*", slow)
    transport = Transport(server.url, KEY, timeout=30, read_idle_timeout=0.1)
    try:
        resp = await transport.request("GET", f"/mj/task/{TASK}/fetch", mode="fast")
    finally:
        await transport.aclose()
    assert started.is_set() and resp.status == 200 and b"SUCCESS" in resp.body


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("max_response_bytes", 0),
        ("max_response_bytes", 100),
        ("max_response_bytes", True),
        ("max_response_bytes", 1.5e6),
    ],
)
def test_bad_limits_are_refused_before_anything_is_sent(option: str, value: object) -> None:
    with pytest.raises(ValueError, match=option):
        mjasync.Client("http://127.0.0.1:9", KEY, **{option: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0, -1, float("nan"), True])
def test_bad_idle_timeouts_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="read_idle_timeout"):
        Transport("http://127.0.0.1:9", KEY, read_idle_timeout=value)  # type: ignore[arg-type]
