"""Retry rules: the pure functions, then the timing through WireAPI with an injected sleep."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from mjasync import (
    APIError,
    AuthenticationError,
    BannedPromptError,
    InvalidRequestError,
    NotFoundError,
    ProtocolError,
    QueueFullError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    SubmissionUncertainError,
    TransportError,
    UnsupportedEndpointError,
)
from mjasync._wire.retry import backoff_delay, is_retryable, parse_retry_after, retry_delay

from .conftest import (
    RESET,
    LoopbackServer,
    Recorded,
    Reply,
    SleepRecorder,
    free_port,
    make_wire,
    reply,
    truncated,
)

pytestmark = pytest.mark.anyio

FETCH = "/mj-fast/mj/task/42/fetch"
SUBMIT = "/mj-fast/mj/submit/imagine"
TASK = {"id": "42", "status": "IN_PROGRESS", "progress": "10%"}
ACCEPTED = {"code": 1, "description": "成功", "result": "42"}
BODY = {"prompt": "a black cat", "base64Array": [], "state": "mjasync-nonce-1"}


# -- pure: backoff_delay ----------------------------------------------------------------------


def test_backoff_is_exponential_and_capped_without_jitter() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0, jitter=0.0)
    delays = [backoff_delay(n, policy, lambda: 0.9) for n in range(1, 8)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_backoff_jitter_scales_only_the_jitter_fraction() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=100.0, jitter=0.5)
    assert backoff_delay(3, policy, lambda: 0.0) == 2.0  # 4 * (1 - 0.5)
    assert backoff_delay(3, policy, lambda: 0.5) == 3.0  # 2 + 4 * 0.5 * 0.5
    assert backoff_delay(3, policy, lambda: 0.999) == pytest.approx(3.998)
    full = RetryPolicy(base_delay=1.0, max_delay=100.0, jitter=1.0)
    assert backoff_delay(2, full, lambda: 0.25) == 0.5


def test_backoff_survives_huge_attempt_numbers() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0, jitter=0.0)
    assert backoff_delay(5000, policy, lambda: 0.0) == 8.0


def test_backoff_attempt_zero_or_negative_is_the_base() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0, jitter=0.0)
    assert backoff_delay(0, policy, lambda: 0.0) == 0.5
    assert backoff_delay(-3, policy, lambda: 0.0) == 0.5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_retries": -1},
        {"max_retries": 1.5},
        {"max_retries": True},
        {"base_delay": -1},
        {"max_delay": -1},
        {"max_retry_after": -1},
        {"jitter": 1.5},
        {"jitter": -0.1},
    ],
)
def test_retry_policy_rejects_bad_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


# -- pure: parse_retry_after ------------------------------------------------------------------

NOW = datetime(2015, 10, 21, 7, 28, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 3 ", 3.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("-5", 0.0),
        ("", None),
        ("   ", None),
        (None, None),
        ("soon", None),
        ("inf", None),
        ("nan", None),
        ("Wed, 21 Oct 2015 07:28:05 GMT", 5.0),
        ("Wed, 21 Oct 2015 07:29:00 GMT", 60.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # in the past: retry now
        ("Wed, 21 Oct 2015 09:28:05 +0200", 5.0),
        ("Wed, 21 Oct 2015 07:28:05 -0000", 5.0),
        ("Wed, 99 Foo 2015 07:28:05 GMT", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_parse_retry_after_date_defaults_to_now() -> None:
    when = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    seconds = parse_retry_after(when)
    assert seconds is not None
    assert 100 < seconds <= 120


# -- pure: retry_delay and is_retryable -------------------------------------------------------


def test_retry_delay_uses_backoff_and_stops_after_max_retries() -> None:
    policy = RetryPolicy(max_retries=2, base_delay=1.0, jitter=0.0)
    error = ServerError("boom", http_status=503)
    assert retry_delay(1, policy, error, lambda: 0.0) == 1.0
    assert retry_delay(2, policy, error, lambda: 0.0) == 2.0
    assert retry_delay(3, policy, error, lambda: 0.0) is None


def test_retry_delay_honours_retry_after_up_to_the_cap() -> None:
    policy = RetryPolicy(max_retries=3, base_delay=1.0, jitter=0.0, max_retry_after=30.0)
    assert retry_delay(1, policy, RateLimitError("x", retry_after=12.5), lambda: 0.0) == 12.5
    assert retry_delay(1, policy, QueueFullError("x", retry_after=30.0), lambda: 0.0) == 30.0
    # above the cap: give up instead of sleeping that long
    assert retry_delay(1, policy, RateLimitError("x", retry_after=31.0), lambda: 0.0) is None
    # no Retry-After: the computed backoff
    assert retry_delay(2, policy, RateLimitError("x"), lambda: 0.0) == 2.0
    # still bounded by max_retries
    assert retry_delay(4, policy, RateLimitError("x", retry_after=1.0), lambda: 0.0) is None


@pytest.mark.parametrize(
    ("error", "read", "submit"),
    [
        (TransportError("refused", request_sent=False), True, True),
        (TransportError("reset", request_sent=True), True, False),
        (ProtocolError("truncated"), True, False),
        (RateLimitError("429", http_status=429), True, True),
        (QueueFullError("full", code=23), False, True),
        (ServerError("502", http_status=502), True, False),
        (ServerError("code 9", http_status=200, code=9), True, False),
        (APIError("timeout", http_status=408), True, False),
        (AuthenticationError("no", http_status=401), False, False),
        (NotFoundError("no", code=3), False, False),
        (InvalidRequestError("no", code=4), False, False),
        (BannedPromptError("no", code=24), False, False),
        (UnsupportedEndpointError("no", http_status=404), False, False),
    ],
)
def test_is_retryable(error: APIError | TransportError, read: bool, submit: bool) -> None:
    assert is_retryable(error, "read") is read
    assert is_retryable(error, "submit") is submit


# -- reads through WireAPI: what is retried, and the delays -----------------------------------
# policy: base 1 s, jitter 0.5, random() = 0.5 -> delay(n) = 2**(n-1) * 0.75


async def test_read_retries_5xx_with_exponential_jittered_delays(server: LoopbackServer) -> None:
    server.script(
        "GET",
        FETCH,
        reply(503, {"error": {"message": "busy", "type": "x"}}),
        reply(502, body=b"<title>502</title>", content_type="text/html"),
        Reply(500),
        reply(200, TASK),
    )
    sleep = SleepRecorder()
    wire = make_wire(server.url, sleep=sleep, max_retries=3, base_delay=1.0, jitter=0.5)
    try:
        task = await wire.fetch("42", mode="fast")
    finally:
        await wire.transport.aclose()
    assert task.id == "42"
    assert task.progress == 10
    assert sleep.delays == [0.75, 1.5, 3.0]
    assert len(server.requests_to(FETCH)) == 4
    assert wire.counters.retries == 3


@pytest.mark.parametrize(
    "failure",
    [
        Reply(408),
        Reply(429),
        Reply(500),
        Reply(504, body=b"<html><title>504</title></html>", content_type="text/html"),
        truncated(b'{"id": "42", "sta'),
        Reply(200, body=b'{"id": "42", "sta', content_type="application/json"),
    ],
    ids=["408", "429", "500", "504-html", "truncated-body", "truncated-json"],
)
async def test_read_retries_transient_failures(server: LoopbackServer, failure: object) -> None:
    server.script("GET", FETCH, failure, reply(200, TASK))  # type: ignore[arg-type]
    sleep = SleepRecorder()
    wire = make_wire(server.url, sleep=sleep, max_retries=2, base_delay=1.0, jitter=0.5)
    try:
        task = await wire.fetch("42", mode="fast")
    finally:
        await wire.transport.aclose()
    assert task.id == "42"
    assert sleep.delays == [0.75]
    assert len(server.requests_to(FETCH)) == 2


async def test_read_retries_a_reset_connection(server: LoopbackServer) -> None:
    # aiohttp itself resends an idempotent GET once after a disconnect, so two resets are
    # needed before the wire layer has to retry.
    server.script("GET", FETCH, RESET, RESET, reply(200, TASK))
    sleep = SleepRecorder()
    wire = make_wire(server.url, sleep=sleep, max_retries=2, base_delay=1.0, jitter=0.5)
    try:
        task = await wire.fetch("42", mode="fast")
    finally:
        await wire.transport.aclose()
    assert task.id == "42"
    assert sleep.delays[:1] == [0.75]
    assert len(server.requests_to(FETCH)) == 3


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (Reply(401), AuthenticationError),
        (reply(404, {"code": 3}), NotFoundError),
        (Reply(200), NotFoundError),
        (reply(400, {"description": "bad", "code": 4}), NotFoundError),
        (Reply(404), UnsupportedEndpointError),
    ],
)
async def test_read_does_not_retry_permanent_errors(
    server: LoopbackServer, failure: Reply, error: type[Exception]
) -> None:
    server.script("GET", FETCH, failure, reply(200, TASK))
    sleep = SleepRecorder()
    wire = make_wire(server.url, sleep=sleep, max_retries=3)
    try:
        with pytest.raises(error):
            await wire.fetch("42", mode="fast")
    finally:
        await wire.transport.aclose()
    assert sleep.delays == []
    assert len(server.requests_to(FETCH)) == 1


async def test_read_gives_up_after_max_retries(server: LoopbackServer) -> None:
    server.script("GET", FETCH, Reply(503))
    sleep = SleepRecorder()
    wire = make_wire(server.url, sleep=sleep, max_retries=2, base_delay=1.0, jitter=0.5)
    try:
        with pytest.raises(ServerError) as info:
            await wire.fetch("42", mode="fast")
    finally:
        await wire.transport.aclose()
    assert info.value.http_status == 503
    assert sleep.delays == [0.75, 1.5]
    assert len(server.requests_to(FETCH)) == 3


async def test_read_honours_retry_after_seconds(server: LoopbackServer) -> None:
    server.script("GET", FETCH, Reply(429, headers={"Retry-After": "7"}), reply(200, TASK))
    sleep = SleepRecorder()
    wire = make_wire(server.url, sleep=sleep, max_retries=2, base_delay=1.0, jitter=0.5)
    try:
        await wire.fetch("42", mode="fast")
    finally:
        await wire.transport.aclose()
    assert sleep.delays == [7.0]
    assert wire.counters.rate_limited == 1


async def test_read_honours_retry_after_http_date(server: LoopbackServer) -> None:
    when = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    server.script("GET", FETCH, Reply(429, headers={"Retry-After": when}), reply(200, TASK))
    sleep = SleepRecorder()
    wire = make_wire(server.url, sleep=sleep, max_retries=2, base_delay=1.0, jitter=0.5)
    try:
        await wire.fetch("42", mode="fast")
    finally:
        await wire.transport.aclose()
    assert len(sleep.delays) == 1
    assert 20 < sleep.delays[0] <= 30


async def test_read_gives_up_when_retry_after_exceeds_the_cap(server: LoopbackServer) -> None:
    server.script("GET", FETCH, Reply(429, headers={"Retry-After": "3600"}), reply(200, TASK))
    sleep = SleepRecorder()
    wire = make_wire(server.url, sleep=sleep, max_retries=3, max_retry_after=60.0)
    try:
        with pytest.raises(RateLimitError) as info:
            await wire.fetch("42", mode="fast")
    finally:
        await wire.transport.aclose()
    assert info.value.retry_after == 3600.0
    assert sleep.delays == []
    assert len(server.requests_to(FETCH)) == 1


async def test_max_retries_zero_disables_retrying(server: LoopbackServer) -> None:
    server.script("GET", FETCH, Reply(503), reply(200, TASK))
    sleep = SleepRecorder()
    wire = make_wire(server.url, sleep=sleep, max_retries=0)
    try:
        with pytest.raises(ServerError):
            await wire.fetch("42", mode="fast")
    finally:
        await wire.transport.aclose()
    assert sleep.delays == []
    assert len(server.requests) == 1


# -- submits: the no-resubmit rule ------------------------------------------------------------


async def test_submit_reset_after_the_body_was_read_is_uncertain_and_not_resent(
    server: LoopbackServer,
) -> None:
    server.script("POST", SUBMIT, RESET, reply(200, ACCEPTED))
    sleep = SleepRecorder()
    wire = make_wire(server.url, sleep=sleep, max_retries=5)
    try:
        with pytest.raises(SubmissionUncertainError) as info:
            await wire.submit("/mj/submit/imagine", BODY, mode="fast")
    finally:
        await wire.transport.aclose()
    exc = info.value
    assert exc.state == "mjasync-nonce-1"
    assert exc.body == BODY
    assert exc.endpoint == "/mj/submit/imagine"
    assert exc.mode == "fast"
    assert isinstance(exc.__cause__, TransportError)
    assert exc.__cause__.request_sent is True
    posts = server.requests_to(SUBMIT, "POST")
    assert len(posts) == 1  # exactly one POST: the server did read it
    assert posts[0].json == BODY
    assert sleep.delays == []


@pytest.mark.parametrize(
    "failure",
    [
        truncated(b'{"code": 1, "resu'),
        Reply(200, body=b'{"code": 1, "resu', content_type="application/json"),
        Reply(200),
        reply(200, {"code": 1, "description": "ok", "result": None}),
        Reply(502, body=b"<html><title>502 Bad Gateway</title></html>", content_type="text/html"),
    ],
    ids=["truncated-body", "truncated-json", "empty-200", "no-task-id", "html-502"],
)
async def test_submit_with_unreadable_answer_is_uncertain(
    server: LoopbackServer, failure: object
) -> None:
    server.script("POST", SUBMIT, failure, reply(200, ACCEPTED))  # type: ignore[arg-type]
    sleep = SleepRecorder()
    wire = make_wire(server.url, sleep=sleep, max_retries=5)
    try:
        with pytest.raises(SubmissionUncertainError) as info:
            await wire.submit("/mj/submit/imagine", BODY, mode="fast")
    finally:
        await wire.transport.aclose()
    assert info.value.state == "mjasync-nonce-1"
    assert len(server.requests_to(SUBMIT, "POST")) == 1
    assert sleep.delays == []


async def test_submit_timeout_after_sending_is_uncertain(server: LoopbackServer) -> None:
    import anyio

    never = anyio.Event()

    async def hang(request: web.Request, _: Recorded) -> web.StreamResponse:
        await never.wait()
        return web.Response()

    server.script("POST", SUBMIT, hang)
    sleep = SleepRecorder()
    wire = make_wire(server.url, sleep=sleep, max_retries=5)
    wire.transport.timeout = 0.2
    try:
        with pytest.raises(SubmissionUncertainError) as info:
            await wire.submit("/mj/submit/imagine", BODY, mode="fast")
    finally:
        await wire.transport.aclose()
    assert isinstance(info.value.__cause__, TransportError)
    assert len(server.requests_to(SUBMIT, "POST")) == 1
    assert sleep.delays == []


async def test_submit_to_a_closed_port_is_retried() -> None:
    port = free_port()
    sleep = SleepRecorder()
    wire = make_wire(
        f"http://127.0.0.1:{port}", sleep=sleep, max_retries=2, base_delay=1.0, jitter=0.5
    )
    try:
        with pytest.raises(TransportError) as info:
            await wire.submit("/mj/submit/imagine", BODY, mode="fast")
    finally:
        await wire.transport.aclose()
    assert info.value.request_sent is False
    assert not isinstance(info.value, SubmissionUncertainError)
    assert sleep.delays == [0.75, 1.5]
    assert wire.counters.submit_requests == 3


async def test_submit_refused_connection_then_server_up_succeeds_with_one_post() -> None:
    port = free_port()
    seen: list[object] = []

    async def imagine(request: web.Request) -> web.Response:
        seen.append(await request.json())
        return web.json_response(ACCEPTED)

    app = web.Application()
    app.router.add_post("/mj-fast/mj/submit/imagine", imagine)
    late = TestServer(app, host="127.0.0.1", port=port)

    async def start_server_while_waiting(_: float) -> None:
        if not seen and late.runner is None:
            await late.start_server()

    sleep = SleepRecorder(on_sleep=start_server_while_waiting)
    wire = make_wire(f"http://127.0.0.1:{port}", sleep=sleep, max_retries=3)
    try:
        submission = await wire.submit("/mj/submit/imagine", BODY, mode="fast")
    finally:
        await wire.transport.aclose()
        await late.close()
    assert submission.task_id == "42"
    assert len(sleep.delays) == 1
    assert seen == [BODY]


async def test_queue_full_is_retried_then_succeeds(server: LoopbackServer) -> None:
    full = reply(200, {"code": 23, "description": "队列已满，请稍后尝试"})
    server.script("POST", SUBMIT, full, full, reply(200, ACCEPTED))
    sleep = SleepRecorder()
    wire = make_wire(server.url, sleep=sleep, max_retries=3, base_delay=1.0, jitter=0.5)
    try:
        submission = await wire.submit("/mj/submit/imagine", BODY, mode="fast")
    finally:
        await wire.transport.aclose()
    assert submission.task_id == "42"
    assert submission.code == 1
    posts = server.requests_to(SUBMIT, "POST")
    assert len(posts) == 3
    assert all(p.json == BODY for p in posts)  # the same body (and state) each time
    assert sleep.delays == [0.75, 1.5]
    assert wire.counters.queue_full == 2


async def test_c_queue_full_code_9_is_retried_with_retry_after(server: LoopbackServer) -> None:
    full = reply(
        200,
        {"code": 9, "description": "提交失败，队列已满，请稍后重试"},
        headers={"Retry-After": "4"},
    )
    server.script("POST", SUBMIT, full, reply(200, ACCEPTED))
    sleep = SleepRecorder()
    wire = make_wire(server.url, sleep=sleep, max_retries=3)
    try:
        await wire.submit("/mj/submit/imagine", BODY, mode="fast")
    finally:
        await wire.transport.aclose()
    assert sleep.delays == [4.0]
    assert len(server.requests_to(SUBMIT, "POST")) == 2


async def test_submit_429_is_retried(server: LoopbackServer) -> None:
    limited = reply(429, {"description": "busy", "type": "upstream_error", "code": 30})
    server.script("POST", SUBMIT, limited, reply(200, ACCEPTED))
    sleep = SleepRecorder()
    wire = make_wire(server.url, sleep=sleep, max_retries=3, base_delay=1.0, jitter=0.5)
    try:
        submission = await wire.submit("/mj/submit/imagine", BODY, mode="fast")
    finally:
        await wire.transport.aclose()
    assert submission.task_id == "42"
    assert sleep.delays == [0.75]
    assert len(server.requests_to(SUBMIT, "POST")) == 2


async def test_queue_full_gives_up_after_max_retries(server: LoopbackServer) -> None:
    server.script("POST", SUBMIT, reply(200, {"code": 23, "description": "full"}))
    sleep = SleepRecorder()
    wire = make_wire(server.url, sleep=sleep, max_retries=2, base_delay=1.0, jitter=0.5)
    try:
        with pytest.raises(QueueFullError) as info:
            await wire.submit("/mj/submit/imagine", BODY, mode="fast")
    finally:
        await wire.transport.aclose()
    assert info.value.code == 23
    assert len(server.requests_to(SUBMIT, "POST")) == 3
    assert sleep.delays == [0.75, 1.5]


async def test_queue_full_not_retried_when_refusals_are_not_retried(
    server: LoopbackServer,
) -> None:
    server.script("POST", SUBMIT, reply(200, {"code": 23, "description": "full"}))
    sleep = SleepRecorder()
    wire = make_wire(server.url, sleep=sleep, max_retries=3)
    try:
        with pytest.raises(QueueFullError):
            await wire.submit("/mj/submit/imagine", BODY, mode="fast", retry_refusals=False)
    finally:
        await wire.transport.aclose()
    assert len(server.requests_to(SUBMIT, "POST")) == 1
    assert sleep.delays == []


async def test_banned_prompt_is_never_retried(server: LoopbackServer) -> None:
    banned = reply(
        200,
        {
            "code": 24,
            "description": "可能包含敏感词",
            "properties": {"promptEn": "nude body", "bannedWord": "nude"},
        },
    )
    server.script("POST", SUBMIT, banned, reply(200, ACCEPTED))
    sleep = SleepRecorder()
    wire = make_wire(server.url, sleep=sleep, max_retries=5)
    try:
        with pytest.raises(BannedPromptError) as info:
            await wire.submit("/mj/submit/imagine", BODY, mode="fast")
    finally:
        await wire.transport.aclose()
    assert info.value.banned_word == "nude"
    assert info.value.code == 24
    assert len(server.requests_to(SUBMIT, "POST")) == 1
    assert sleep.delays == []


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (reply(200, {"code": 4, "description": "bad"}), InvalidRequestError),
        (reply(200, {"code": 9, "description": "other failure"}), ServerError),
        (reply(503, {"error": {"message": "down", "type": "x"}}), ServerError),
        (Reply(401), AuthenticationError),
    ],
)
async def test_submit_refusals_other_than_queue_full_are_not_retried(
    server: LoopbackServer, failure: Reply, error: type[Exception]
) -> None:
    server.script("POST", SUBMIT, failure, reply(200, ACCEPTED))
    sleep = SleepRecorder()
    wire = make_wire(server.url, sleep=sleep, max_retries=5)
    try:
        with pytest.raises(error):
            await wire.submit("/mj/submit/imagine", BODY, mode="fast")
    finally:
        await wire.transport.aclose()
    assert len(server.requests_to(SUBMIT, "POST")) == 1
    assert sleep.delays == []


async def test_a_request_url_aiohttp_refuses_is_not_an_uncertain_submit(
    server: LoopbackServer,
) -> None:
    sleep = SleepRecorder()
    wire = make_wire(server.url, sleep=sleep, max_retries=0)
    wire.transport.base_url = "http://127.0.0.1:notaport"  # past the constructor's checks
    try:
        with pytest.raises(TransportError) as info:
            await wire.submit("/mj/submit/imagine", BODY, mode="fast")
    finally:
        await wire.transport.aclose()
    assert not isinstance(info.value, SubmissionUncertainError)
    assert info.value.request_sent is False
