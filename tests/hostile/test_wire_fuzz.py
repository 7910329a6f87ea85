"""No answer can crash the client: the whole client against random answers (issue 12, item 3).

Not the pure parsers (``tests/fuzz`` covers those) but a real :class:`mjasync.Client` with a
:class:`WebhookReceiver`, talking HTTP to a hostile server that answers one job's submit,
fetch and list-by-condition with what hypothesis draws (random bytes, JSON of any shape,
nesting up to 1,500 levels, task-like objects with junk in every field, truncations, odd
statuses), and pushes the same to the receiver. Another job on the same client gets honest
answers in the same list requests.

Whatever the draw: the honest job finishes, nothing but :class:`MjError` reaches the caller,
at most the job concerned fails, leaving ``async with Client`` raises nothing (no
``ExceptionGroup``), and no safety net had to catch an unforeseen exception (nothing logged at
ERROR). ``MJASYNC_HOSTILE_EXAMPLES`` sets how many draws (default 25, enough for CI).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
import anyio
import attrs
import pytest
from aiohttp import web
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import mjasync

from .conftest import KEY
from .wire_server import HostileServer, Seen, deep_json, task_json

pytestmark = pytest.mark.anyio

GOOD, BAD = "1000000000000001", "1000000000000002"
EXAMPLES = int(os.environ.get("MJASYNC_HOSTILE_EXAMPLES", "25"))
DEFAULT_RECURSION_LIMIT = 1000  # CPython's
# A server saying "queue full" for ever is waited out 0.1 s only.
QUICK = mjasync.RetryPolicy(
    max_retries=1, base_delay=0.001, max_delay=0.01, refusal_max_delay=0.01, refusal_wait=0.1
)

# -- what a hostile server says ------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(["SUCCESS", "FAILURE", "IN_PROGRESS", "MODAL", "100%", "", BAD, GOOD]),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
STATUSES = st.sampled_from(["SUCCESS", "FAILURE", "CANCEL", "MODAL", "IN_PROGRESS"])
IDS = st.one_of(st.just(BAD), st.sampled_from(["../../admin/x?y=", "", "9" * 80, "x y"]), JSON)


# Depths around the limits that matter: ours (64), the stack (~1,000 Python frames) and
# orjson's (1,024): in between, a payload decodes but its later repr or re-encoding recursed.
# Sampled, not drawn from ranges: hypothesis favours the ends of a range.
DEPTHS = st.sampled_from([2, 64, 65, 500, 940, 960, 980, 990, 1000, 1010, 1023, 1024, 1025, 1500])


@st.composite
def deep(draw: st.DrawFn) -> str:
    depth = draw(DEPTHS)
    kind = draw(st.sampled_from(["list", "dict"]))
    return deep_json(depth, kind=kind).decode()


@st.composite
def task_like(draw: st.DrawFn, task_id: Any = None) -> str:
    """A task object for ``task_id`` (BAD, or a drawn id) with junk in its fields."""
    fields: dict[str, str] = {
        "id": json.dumps(task_id if task_id is not None else draw(IDS)),
    }
    # Mostly a status that ends the job: then the client reads the whole payload.
    fields["status"] = draw(
        st.one_of(STATUSES.map(json.dumps), STATUSES.map(json.dumps), JSON.map(json.dumps), deep())
    )
    for name in ("progress", "properties", "buttons", "imageUrls", "failReason"):
        if draw(st.booleans()):
            fields[name] = draw(st.one_of(JSON.map(json.dumps), deep()))
    return "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}"


def _cut(text: str, where: int) -> str:
    return text[: max(0, min(len(text) - 1, where))]


BODY = st.one_of(
    st.binary(max_size=64),
    JSON.map(lambda v: json.dumps(v).encode()),
    deep().map(str.encode),
    task_like(BAD).map(str.encode),
    st.tuples(task_like(BAD), st.integers(0, 200)).map(lambda t: _cut(*t).encode()),
    st.lists(task_like(), max_size=3).map(lambda items: ("[" + ",".join(items) + "]").encode()),
)
STATUS = st.sampled_from([200, 200, 200, 201, 202, 204, 400, 401, 404, 409, 429, 500, 502, 302])
# A whole list answer of 401/403 rightly ends every job it asked about (the key is refused),
# the honest one included: not a crash, and not what this test is about.
ROUND_STATUS = STATUS.filter(lambda status: status not in (401, 403))


@attrs.frozen
class Script:
    """Everything the hostile server says in one run.

    Three jobs: ``good`` is answered honestly throughout; ``bad`` is accepted as BAD, then
    ``ride_along`` list answers carry ``bad_items`` for it (its payloads: junk, deep,
    terminal) and ``noise`` besides, every fetch of it gets ``fetch``, and ``pushes`` are
    posted to the receiver; ``odd`` gets ``submit`` as its submit answer.

    The good job's status comes in the same list answers: one the client cannot read at all
    (say, nested beyond any decoder) holds it up, so hostile answers stop after a few rounds.
    """

    submit: tuple[int, bytes]
    first_rounds: list[tuple[int, bytes]]  # whole list answers before the others
    ride_along: int
    bad_items: list[str]
    noise: list[str]
    fetch: tuple[int, bytes]
    pushes: list[bytes]


ACCEPTED = st.builds(
    lambda code, result, extra: json.dumps({"code": code, "result": result, **extra}).encode(),
    st.sampled_from([1, 21, 22]),
    IDS,
    st.dictionaries(st.sampled_from(["properties", "description"]), JSON, max_size=2),
)
SCRIPTS = st.builds(
    Script,
    submit=st.tuples(STATUS, st.one_of(ACCEPTED, BODY)),
    first_rounds=st.lists(st.tuples(ROUND_STATUS, BODY), max_size=2),
    ride_along=st.integers(min_value=1, max_value=4),
    bad_items=st.lists(task_like(BAD), min_size=1, max_size=3),
    noise=st.lists(st.one_of(task_like(), JSON.map(json.dumps), deep()), max_size=3),
    fetch=st.tuples(STATUS, BODY),
    pushes=st.lists(st.one_of(BODY, task_like(BAD).map(str.encode)), max_size=3),
)


def install(server: HostileServer, script: Script) -> None:
    """Answer the good job honestly and everything else from ``script``."""
    rounds = list(script.first_rounds)

    def raw(status: int, body: bytes) -> web.Response:
        headers = {"Content-Type": "application/json"}
        if status == 302:
            headers["Location"] = "http://127.0.0.1:9/elsewhere"
        if status == 204:
            return web.Response(status=status, headers=headers)
        return web.Response(status=status, body=body, headers=headers)

    async def submit(request: web.Request, seen: Seen) -> web.StreamResponse:
        prompt = seen.json.get("prompt")
        if prompt in ("good", "bad"):
            return web.json_response({"code": 1, "result": GOOD if prompt == "good" else BAD})
        return raw(*script.submit)

    riding = script.ride_along

    async def list_tasks(request: web.Request, seen: Seen) -> web.StreamResponse:
        nonlocal riding
        if rounds:
            return raw(*rounds.pop(0))
        items = [task_json(GOOD).decode()]
        if riding > 0:
            riding -= 1
            items = [*script.bad_items, *items, *script.noise]
        return raw(200, ("[" + ",".join(items) + "]").encode())

    async def fetch(request: web.Request, seen: Seen) -> web.StreamResponse:
        if request.match_info.get("tail", "").split("/")[-2:-1] == [GOOD]:
            return raw(200, task_json(GOOD))
        return raw(*script.fetch)

    server.on("POST", "/mj-fast/mj/submit/imagine", submit)
    server.on("POST", "/mj-fast/mj/task/list-by-condition", list_tasks)
    server.on("GET", "/mj-fast/mj/task/.*/fetch", fetch)
    server.on("POST", "/mj-fast/mj/task/.*/cancel", lambda r, s: _ok())


async def _ok() -> web.StreamResponse:
    return web.json_response({"code": 1, "description": "ok"})


class Errors(logging.Handler):
    """Collects ERROR records of mjasync: a safety net caught something unforeseen."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.getMessage()}\n{record.exc_text or ''}")


@contextmanager
def errors_logged() -> Iterator[Errors]:
    handler = Errors()
    logger = logging.getLogger("mjasync")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@contextmanager
def real_stack() -> Iterator[None]:
    """Python's default recursion limit, as the client has in real life.

    Hypothesis raises the limit while it runs a test, which would hide exactly the bugs of
    deep nesting this test looks for (a payload that decodes, then recurses when re-encoded).
    """
    raised = sys.getrecursionlimit()
    sys.setrecursionlimit(DEFAULT_RECURSION_LIMIT)
    try:
        yield
    finally:
        sys.setrecursionlimit(raised)


def settled(value: object) -> None:
    """A wire call's outcome: a value, or an MjError (anything else fails the test)."""
    if isinstance(value, BaseException):
        assert isinstance(value, mjasync.MjError), repr(value)


async def outcome(call: Any) -> object:
    try:
        return await call
    except mjasync.MjError as exc:
        return exc


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(script=SCRIPTS)
# Once found: with no list-by-condition, one id's bare 404 closed the fetch route for all jobs.
@example(
    script=Script(
        submit=(200, b""),
        first_rounds=[(404, b"")],
        ride_along=1,
        bad_items=['{"id": "1000000000000002", "status": "SUCCESS"}'],
        noise=[],
        fetch=(404, b""),
        pushes=[],
    )
)
async def test_no_answer_crashes_the_client(script: Script) -> None:
    # A bound for a hung example, so that it fails with its draw instead of hanging CI.
    with real_stack(), errors_logged() as errors, anyio.fail_after(60):
        async with HostileServer() as server:
            install(server, script)
            receiver = mjasync.WebhookReceiver()
            async with (
                mjasync.Client(
                    server.url,
                    KEY,
                    webhook=receiver,
                    poll_interval=0.01,
                    retry=QUICK,
                ) as client,
                aiohttp.ClientSession() as session,
            ):
                good = await client.submit(mjasync.Imagine("good"))
                bad = await client.submit(mjasync.Imagine("bad"))
                odd = await outcome(client.submit(mjasync.Imagine("odd")))
                settled(odd)
                for body in script.pushes:
                    async with session.post(receiver.notify_url, data=body) as resp:
                        assert resp.status in (200, 400, 404), resp.status  # never a 500
                settled(await outcome(client.fetch(BAD)))
                settled(await outcome(client.fetch_many([GOOD, BAD])))
                with anyio.fail_after(30):
                    task = await good.result()
                for job in (bad, odd):
                    if isinstance(job, mjasync.Job) and job.done:
                        settled(await outcome(job.result()))
            # Leaving `async with` raised nothing: no ExceptionGroup, no stray error.
    assert task.id == GOOD and task.status is mjasync.TaskStatus.SUCCESS
    assert errors.records == []
