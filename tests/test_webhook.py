"""WebhookReceiver against the simulator posting real notifyHook callbacks on loopback.

Synchronisation is by events and conditions, never by sleeping: "finished by push" is shown by
counters (no poll request was made, with a poll interval of a minute), not by timing.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, aclosing
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

import mjasync
from mjasync import TaskStatus
from mjasync._integrations.webhook import WebhookReceiver, validate_push
from mjasync._jobs.events import status_rank
from mjasync.testing import FakeMidjourney, Faults

pytestmark = pytest.mark.anyio

KEY = "sk-test-0123456789abcdef"
SECRET = "s3cret-for-the-tests_0123456789"
NEVER = 60.0  # a poll interval no test outlives: what finishes did so by push
LIMIT = 10.0  # a broken push path fails a test within this, rather than hanging it


def make_client(fake: FakeMidjourney, webhook: Any, **options: Any) -> mjasync.Client:
    options.setdefault("poll_interval", NEVER)
    options.setdefault("retry", mjasync.RetryPolicy(max_retries=3, base_delay=0.01))
    return mjasync.Client(fake.base_url, KEY, webhook=webhook, **options)


def poll_requests(fake: FakeMidjourney) -> int:
    requests = fake.stats().requests
    return requests.get("list", 0) + requests.get("fetch", 0)


async def collect(job: mjasync.Job) -> list[mjasync.ProgressEvent]:
    async with aclosing(job.events()) as events:
        return [event async for event in events]


async def collect_all(jobs: list[mjasync.Job]) -> list[list[mjasync.ProgressEvent]]:
    streams: list[list[mjasync.ProgressEvent]] = [[] for _ in jobs]

    async def one(index: int) -> None:
        streams[index] = await collect(jobs[index])

    async with anyio.create_task_group() as tg:
        for index in range(len(jobs)):
            tg.start_soon(one, index)
    return streams


async def first_event(job: mjasync.Job, predicate: Any) -> mjasync.ProgressEvent:
    async with aclosing(job.events()) as events:
        async for event in events:
            if predicate(event):
                return event
    raise AssertionError("the job ended before the awaited event")


def assert_well_formed(events: Iterable[mjasync.ProgressEvent]) -> None:
    events = list(events)
    terminal = [e for e in events if e.is_terminal]
    assert len(terminal) == 1
    assert events[-1] is terminal[0]
    for before, after in itertools.pairwise(events):
        assert status_rank(after.status) >= status_rank(before.status), (before, after)
        if after.status is before.status:
            assert (after.progress or 0) > (before.progress or 0), (before, after)


async def post(
    session: aiohttp.ClientSession, url: str, data: Any = b"{}", method: str = "POST", **kw: Any
) -> tuple[int, str]:
    async with session.request(method, url, data=data, **kw) as response:
        return response.status, await response.text()


@pytest.fixture
async def fake() -> AsyncIterator[FakeMidjourney]:
    async with FakeMidjourney(api_keys=(KEY,), job_duration=0.05, progress_steps=3) as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


# -- events arrive by push ------------------------------------------------------------------


async def test_jobs_finish_by_push_long_before_a_poll_could_see_them(fake):
    receiver = WebhookReceiver()
    async with make_client(fake, receiver) as client:
        jobs = [await client.submit(mjasync.Imagine(f"a heron {i}")) for i in range(3)]
        with anyio.fail_after(LIMIT):
            streams = await collect_all(jobs)
        stats = client.statistics()
    for events in streams:
        assert_well_formed(events)
        assert events[-1].status is TaskStatus.SUCCESS
        assert {e.source for e in events} <= {"submit", "push"}
        assert events[-1].source == "push"
    assert stats.completed_by_push == 3
    assert stats.completed_by_poll == 0
    # Polls only to confirm each pushed end (a push can hurry an end, never forge one).
    assert 1 <= stats.poll_rounds <= 3 and stats.polls == stats.poll_rounds
    assert stats.fetches == 0 and poll_requests(fake) == stats.polls
    hooks = receiver.statistics()
    assert hooks.accepted > 0
    assert hooks.rejected == 0
    assert hooks.completed_by_push == 3
    assert hooks.pushes_applied == stats.pushes_applied > 0


async def test_every_submit_carries_the_secret_notify_url(fake):
    receiver = WebhookReceiver()
    other = WebhookReceiver()
    async with make_client(fake, receiver) as client:
        task = await client.imagine("a kite", timeout=LIMIT)
        url = receiver.notify_url
    assert (fake.task(task.id) or {})["properties"]["notifyHook"] == url
    secret = url.rsplit("/", 1)[1]
    assert len(secret) >= 32
    assert url == f"http://127.0.0.1:{url.split(':')[2].split('/')[0]}/mjasync/hooks/{secret}"
    assert secret not in repr(receiver)
    assert secret not in str(receiver.statistics())
    assert other.public_url is None
    other.public_url = "https://me.example/base/"
    assert other.notify_url.startswith("https://me.example/base/mjasync/hooks/")
    assert other.notify_url.rsplit("/", 1)[1] != secret  # every receiver has its own


# -- bad posts ------------------------------------------------------------------------------


async def test_bad_posts_are_refused_with_the_right_status_and_counted(fake, session):
    receiver = WebhookReceiver(secret=SECRET, max_body_bytes=4096)
    async with make_client(fake, receiver) as client:
        base = f"{receiver.url}{receiver.path}"
        good = receiver.notify_url
        cases = [
            (f"{base}", b'{"id": "1"}', {}, 401),  # no secret
            (f"{base}/{SECRET[:-1]}x", b'{"id": "1"}', {}, 401),  # wrong secret
            (f"{base}/{SECRET}-longer", b'{"id": "1"}', {}, 401),
            (good, b'{"id": "1", "status": ', {}, 400),  # cut JSON
            (good, b"\xff\xfe not utf-8", {}, 400),
            (good, b'["id", "1"]', {}, 400),  # JSON, not an object
            (good, b'{"status": "SUCCESS"}', {}, 400),  # no id
            (good, b"{" + b" " * 5000 + b"}", {}, 413),  # Content-Length over the cap
            (good, b'{"id": "1999999999999999"}', {}, 404),  # nobody watches it
        ]
        for url, body, headers, expected in cases:
            status, _ = await post(session, url, body, headers=headers)
            assert status == expected, (url.replace(SECRET, "***"), body[:40])
        status, _ = await post(session, good, method="GET")
        assert status == 405
        # Still healthy: the next job is finished by push.
        task = await client.imagine("after the noise", timeout=LIMIT)
        assert task.status is TaskStatus.SUCCESS
        assert client.statistics().completed_by_push == 1
    stats = receiver.statistics()
    assert dict(stats.rejected_by_reason) == {
        "bad_json": 2,
        "bad_secret": 2,
        "method": 1,
        "missing_secret": 1,
        "no_id": 1,
        "not_object": 1,
        "too_large": 1,
        "unknown_task": 1,
    }
    assert stats.unknown_task == 1
    assert stats.received == stats.accepted + stats.late + stats.rejected
    assert stats.accepted > 0


async def test_a_body_streamed_past_the_cap_is_cut_off(fake, session):
    receiver = WebhookReceiver(max_body_bytes=1000)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"id": "1", "pad": "'
        for _ in range(100):
            yield b"x" * 100  # no Content-Length: chunked, so only the capped read sees it

    async with receiver, make_client(fake, receiver):
        status, _ = await post(session, receiver.notify_url, chunks())
        small, _ = await post(session, receiver.notify_url, b'{"id": "7"}')
    assert status == 413
    assert small == 404
    assert dict(receiver.statistics().rejected_by_reason) == {"too_large": 1, "unknown_task": 1}


# -- duplicates and disorder ----------------------------------------------------------------


async def test_duplicated_and_reordered_posts_never_regress_or_repeat():
    faults = Faults(webhook_duplicate=1.0)  # every post twice; 8 sender workers reorder them
    receiver = WebhookReceiver()
    async with (
        FakeMidjourney(api_keys=(KEY,), job_duration=0.05, progress_steps=6, faults=faults) as fk,
        make_client(fk, receiver, concurrency=6) as client,
    ):
        jobs = [await client.submit(mjasync.Imagine(f"a flock {i}")) for i in range(6)]
        with anyio.fail_after(LIMIT):
            streams = await collect_all(jobs)
        stats = client.statistics()
        duplicated = fk.stats().webhooks_duplicated
    for events in streams:
        assert_well_formed(events)
        assert events[-1].status is TaskStatus.SUCCESS
    assert duplicated > 0
    assert stats.completed_by_push == 6
    assert stats.pushes_applied > stats.events - 6  # many pushes collapsed into no event


async def test_regressing_repeated_and_late_posts_change_nothing(fake, session):
    receiver = WebhookReceiver()
    async with make_client(fake, receiver) as client:
        job = await client.submit(mjasync.Imagine("a statue --stall"))  # freezes at 37%
        with anyio.fail_after(LIMIT):
            await first_event(job, lambda e: e.progress == 37)
        current = fake.task(job.id)
        assert current is not None
        events: list[mjasync.ProgressEvent] = []

        async def consume() -> None:
            events.extend(await collect(job))

        older = {**current, "status": "SUBMITTED", "progress": "0%"}
        lower = {**current, "progress": "10%"}
        forged = {**current, "status": "SUCCESS", "progress": "100%", "imageUrl": "http://evil"}
        with anyio.fail_after(LIMIT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(consume)
                answers = [
                    await post(session, receiver.notify_url, json.dumps(body))
                    for body in (older, lower, current, forged)
                ]
                # A pushed end is only a hint: the server is asked, says 37%, and wins.
                while client.statistics().push_ends_refuted < 1:
                    await anyio.sleep(0.005)
                assert not job.done
                fake.finish_task(job.id)  # now it really ends (and the server pushes that)
            task = await job.result(LIMIT)
            answers += [
                await post(session, receiver.notify_url, json.dumps(body))
                for body in (older, forged)
            ]
    assert [status for status, _ in answers] == [200] * 6
    assert [reason for _, reason in answers] == [
        "accepted",
        "accepted",
        "accepted",
        "accepted",
        "late",
        "late",
    ]
    # The consumer started at the current state (37%); then only the real end.
    assert [(e.status, e.progress) for e in events] == [
        (TaskStatus.IN_PROGRESS, 37),
        (TaskStatus.SUCCESS, 100),
    ]
    assert events[-1].source == "push"
    assert task.status is TaskStatus.SUCCESS and task.image_url != "http://evil"
    assert receiver.statistics().late == 2


# -- polling as the fallback ----------------------------------------------------------------


async def test_a_relay_that_strips_hooks_still_completes_every_job_by_polling():
    receiver = WebhookReceiver()
    async with (
        FakeMidjourney(api_keys=(KEY,), accent="relay", job_duration=0.05) as relay,
        make_client(relay, receiver, poll_interval=0.02) as client,
    ):
        results = await client.gather(mjasync.Imagine(f"a lake {i}") for i in range(5))
        stats = client.statistics()
        sent = relay.stats().webhooks_sent
    assert all(isinstance(r, mjasync.Task) and r.status is TaskStatus.SUCCESS for r in results)
    assert stats.completed_by_poll == 5
    assert stats.completed_by_push == 0
    assert sent == 0
    assert receiver.statistics().received == 0


async def test_when_pushes_stop_the_poller_finishes_the_job(fake):
    receiver = WebhookReceiver()
    async with make_client(fake, receiver, poll_interval=0.02) as client:
        job = await client.submit(mjasync.Imagine("a long river --slow"))
        with anyio.fail_after(LIMIT):
            await first_event(job, lambda e: e.source == "push" and e.progress)
            fake.faults = Faults(webhook_drop=1.0)  # from now on every callback is lost
            task = await job.result(LIMIT)
        stats = client.statistics()
    assert task.status is TaskStatus.SUCCESS
    assert stats.completed_by_poll == 1
    assert stats.pushes_applied > 0
    assert fake.stats().webhooks_dropped > 0


async def test_push_healthy_jobs_are_polled_far_less():
    async def polls_for(push: bool) -> tuple[int, int]:
        options = {"api_keys": (KEY,), "job_duration": 1.0, "progress_steps": 10}
        async with FakeMidjourney(**options) as server:
            receiver = WebhookReceiver() if push else None
            async with make_client(server, receiver, poll_interval=0.02, concurrency=3) as client:
                results = await client.gather(mjasync.Imagine(f"a tide {i}") for i in range(3))
                assert all(isinstance(r, mjasync.Task) for r in results)
                by_push = client.statistics().completed_by_push
            return poll_requests(server), by_push

    polling_alone, none_by_push = await polls_for(push=False)
    with_push, all_by_push = await polls_for(push=True)
    assert none_by_push == 0
    assert all_by_push == 3
    # ~50 base intervals per job: polling alone asks dozens of times, push-healthy jobs a few.
    assert with_push * 3 <= polling_alone, (with_push, polling_alone)


# -- lifecycle ------------------------------------------------------------------------------


async def test_closing_the_client_with_jobs_in_flight_ends_cleanly(fake, session):
    receiver = WebhookReceiver()
    client = make_client(fake, receiver)
    async with client:
        jobs = [await client.submit(mjasync.Imagine(f"a glacier {i} --slow")) for i in range(3)]
        with anyio.fail_after(LIMIT):
            await first_event(jobs[0], lambda e: e.source == "push")
        url = receiver.notify_url
        assert receiver.running
    assert not receiver.running  # the site the client's attach started went with it
    assert receiver.port is None
    for job in jobs:
        with pytest.raises(mjasync.TaskError, match="closed"):
            await job.result(LIMIT)
    with pytest.raises(aiohttp.ClientConnectionError):
        await post(session, url, b'{"id": "1"}')
    assert receiver.statistics().attached == 0
    with pytest.raises(RuntimeError, match="not running"):
        _ = receiver.url


async def test_one_receiver_serves_two_clients_and_stops_after_the_last(fake):
    receiver = WebhookReceiver()
    first, second = make_client(fake, receiver), make_client(fake, receiver)
    async with first:
        async with second:
            assert receiver.statistics().attached == 2
            a, b = (
                await first.imagine("left", timeout=LIMIT),
                await second.imagine("right", timeout=LIMIT),
            )
            assert first.statistics().completed_by_push == 1
            assert second.statistics().completed_by_push == 1
        assert receiver.running  # the first client still needs it
        assert (await first.imagine("alone", timeout=LIMIT)).status is TaskStatus.SUCCESS
        assert first.statistics().completed_by_push == 2
    assert not receiver.running
    stats = receiver.statistics()
    assert stats.completed_by_push == 3  # detached clients' counts are kept
    assert a.id != b.id


async def test_an_explicitly_started_receiver_outlives_its_clients(fake):
    async with WebhookReceiver(secret=SECRET) as receiver:
        port = receiver.port
        assert port
        for prompt in ("one", "two"):
            async with make_client(fake, receiver) as client:
                await client.imagine(prompt, timeout=LIMIT)
                assert client.statistics().completed_by_push == 1
            assert receiver.running
            assert receiver.port == port
        assert receiver.notify_url == f"http://127.0.0.1:{port}/mjasync/hooks/{SECRET}"
    assert not receiver.running


async def test_mounted_into_an_aiohttp_app_and_as_a_sub_application(fake):
    app = web.Application()
    mounted = WebhookReceiver(path="/hooks/mj")
    mounted.mount(app)
    nested = WebhookReceiver()
    app.add_subapp("/ext", nested.app())
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        mounted.public_url = base
        nested.public_url = f"{base}/ext"
        for receiver in (mounted, nested):
            async with make_client(fake, receiver) as client:
                assert (await client.imagine("a moth", timeout=LIMIT)).status is TaskStatus.SUCCESS
                assert client.statistics().completed_by_push == 1
            assert receiver.port is None  # your app served it; no site of its own
            assert not receiver.running
    finally:
        await runner.cleanup()


async def test_a_mounted_receiver_needs_a_public_url(fake):
    receiver = WebhookReceiver()
    receiver.mount(web.Application())
    with pytest.raises(ValueError, match="public_url"):
        await receiver.attach(object())  # refused before the tracker is even looked at
    # The client refuses to open (the error may come wrapped in its task group's group).
    with pytest.raises(BaseException) as caught:
        async with make_client(fake, receiver):
            pass
    assert "public_url" in repr(caught.value)
    assert receiver.statistics().attached == 0
    with pytest.raises(RuntimeError, match="public_url"):
        _ = receiver.notify_url


# -- the ASGI adapter and handle_payload ----------------------------------------------------


class AsgiCall:
    """Drives an ASGI app with one HTTP request, without any server."""

    def __init__(self, path: str, body_chunks: list[bytes], *, headers=(), root_path=""):
        self.scope = {
            "type": "http",
            "method": "POST",
            "path": path,
            "root_path": root_path,
            "headers": [(k.encode(), v.encode()) for k, v in headers],
        }
        self.incoming = [
            {"type": "http.request", "body": chunk, "more_body": i < len(body_chunks) - 1}
            for i, chunk in enumerate(body_chunks)
        ]
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        return self.incoming.pop(0)

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    async def run(self, app: Any) -> tuple[int, bytes]:
        await app(self.scope, self.receive, self.send)
        return self.sent[0]["status"], self.sent[1]["body"]


async def test_the_asgi_adapter_feeds_the_same_handler(fake):
    receiver = WebhookReceiver(secret=SECRET, public_url="http://testserver", max_body_bytes=2000)
    asgi = receiver.asgi_app()
    async with make_client(fake, receiver) as client:
        assert not receiver.running  # mounted: nothing of its own to start
        job = await client.submit(mjasync.Imagine("a lantern --stall"))
        fake.finish_task(job.id)  # the push below then tells the truth: the server confirms it
        payload = {"id": job.id, "status": "SUCCESS", "progress": "100%", "imageUrl": "x"}
        body = json.dumps(payload).encode()
        # Mounted by Starlette at /mjasync/hooks: root_path is the mount point.
        path = f"/mjasync/hooks/{SECRET}"
        ok = await AsgiCall(path, [body[:10], body[10:]], root_path="/mjasync/hooks").run(asgi)
        task = await job.result(LIMIT)
        bad = await AsgiCall("/mjasync/hooks/wrong-secret-000000", [body]).run(asgi)
        missing = await AsgiCall("/mjasync/hooks", [body]).run(asgi)
        big = await AsgiCall(path, [b"{" + b" " * 1500] * 2).run(asgi)
        declared = await AsgiCall(path, [b"{}"], headers=[("content-length", "5000")]).run(asgi)
    assert ok == (200, b"accepted")
    assert task.status is TaskStatus.SUCCESS
    assert bad[0] == missing[0] == 401
    assert big[0] == declared[0] == 413
    assert dict(receiver.statistics().rejected_by_reason) == {
        "bad_secret": 1,
        "missing_secret": 1,
        "too_large": 2,
    }


async def test_the_asgi_adapter_answers_lifespan_messages():
    receiver = WebhookReceiver()
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: Any) -> None:
        sent.append(message["type"])

    await receiver.asgi_app()({"type": "lifespan"}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_handle_payload_serves_a_route_of_your_own(fake):
    receiver = WebhookReceiver(None, secret=SECRET, public_url="http://my-app.example")
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(make_client(fake, receiver))
        job = await client.submit(mjasync.Imagine("a bell --stall"))
        fake.finish_task(job.id, status="FAILURE", fail_reason="no")
        body = json.dumps({"id": int(job.id), "status": "FAILURE", "failReason": "no"}).encode()
        assert receiver.handle_payload("nope" * 5, body).status == 401
        verdict = receiver.handle_payload(SECRET, body)
        with pytest.raises(mjasync.TaskFailedError, match="no"):
            await job.result(LIMIT)
    assert (verdict.status, verdict.reason, verdict.task_id) == (200, "accepted", job.id)
    assert verdict.payload is not None
    assert verdict.payload["failReason"] == "no"
    assert not receiver.running  # host=None: never a site of its own
    with pytest.raises(RuntimeError, match="host=None"):
        await receiver.start()
    assert receiver.statistics().completed_by_push == 1


# -- the pure parts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_secret", "body", "expected"),
    [
        (None, b'{"id": "1"}', (401, "missing_secret")),
        ("", b'{"id": "1"}', (401, "missing_secret")),
        ("x" * 31, b'{"id": "1"}', (401, "bad_secret")),
        ("ü" * 31, b'{"id": "1"}', (401, "bad_secret")),
        (SECRET, b"x" * 101, (413, "too_large")),
        (SECRET, b"", (400, "bad_json")),
        (SECRET, b"[" * 90, (400, "bad_json")),
        (SECRET, b"null", (400, "not_object")),
        (SECRET, b'{"id": ""}', (400, "no_id")),
        (SECRET, b'{"id": true}', (400, "no_id")),
        (SECRET, b'{"id": 1320098173412546}', (200, "valid")),
        (SECRET, b'{"id": " 17 ", "status": "IN_PROGRESS"}', (200, "valid")),
    ],
)
def test_validate_push(given_secret, body, expected):
    verdict = validate_push(given_secret, body, secret=SECRET, max_body_bytes=100)
    assert (verdict.status, verdict.reason) == expected
    if verdict.ok:
        assert verdict.task_id == str(json.loads(body)["id"]).strip()
        assert verdict.payload == json.loads(body)


@given(secret=st.one_of(st.none(), st.text(max_size=40)), body=st.binary(max_size=300))
def test_validate_push_never_raises(secret, body):
    verdict = validate_push(secret, body, secret=SECRET, max_body_bytes=200)
    assert verdict.status in (200, 400, 401, 413)
    assert verdict.ok == (verdict.task_id is not None)


def test_options_are_checked_and_the_secret_never_shown():
    receiver = WebhookReceiver(secret=SECRET, public_url="https://me.example")
    assert SECRET not in repr(receiver)
    assert "***" in repr(receiver)
    assert receiver.notify_url == f"https://me.example/mjasync/hooks/{SECRET}"
    with pytest.raises(ValueError, match="at least 16") as caught:
        WebhookReceiver(secret="short")
    assert "short" not in str(caught.value)
    with pytest.raises(ValueError, match="letters"):
        WebhookReceiver(secret="has a space in it, long enough")
    with pytest.raises(ValueError, match="http"):
        WebhookReceiver(public_url="ftp://me.example")
    with pytest.raises(ValueError, match="query"):
        WebhookReceiver(public_url="https://me.example/?a=1")
    with pytest.raises(ValueError, match="2000"):
        WebhookReceiver(public_url="https://me.example/" + "a" * 2000)
    with pytest.raises(ValueError, match="path"):
        WebhookReceiver(path="/")
    with pytest.raises(ValueError, match="port"):
        WebhookReceiver(port=70000)
    with pytest.raises(ValueError, match="max_body_bytes"):
        WebhookReceiver(max_body_bytes=0)
    with pytest.raises(RuntimeError, match="no URL yet"):
        _ = WebhookReceiver().notify_url
    assert WebhookReceiver(path="hooks/").path == "/hooks"
