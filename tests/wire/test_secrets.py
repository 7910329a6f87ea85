"""The API key never shows: not in repr, not in exception text, not in log records."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable

import pytest

import mjasync
from mjasync._wire.transport import redact_key

from .conftest import (
    KEY,
    REDACTED,
    RESET,
    LoopbackServer,
    Reply,
    SleepRecorder,
    free_port,
    make_wire,
    reply,
)

pytestmark = pytest.mark.anyio


def _all_text(exc: BaseException) -> str:
    """Everything a user might print: str, repr and the formatted chain with causes."""
    parts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        parts += [str(cause), repr(cause)]
        cause = cause.__cause__ or cause.__context__
    return "\n".join(parts)


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records
    )


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("sk-1234567890abcdef", "sk-…cdef"),
        (KEY, REDACTED),
        ("0123456789secretWXYZ", "…WXYZ"),
        ("hunter2", "…"),
        ("", "<none>"),
        (None, "<none>"),
    ],
)
def test_redact_key(key: str | None, shown: str) -> None:
    assert redact_key(key) == shown


@pytest.mark.parametrize("auth", ["bearer", "mj-api-secret"])
def test_repr_shows_the_key_redacted(auth: str) -> None:
    client = mjasync.Client("http://127.0.0.1:1", KEY, auth=auth)  # type: ignore[arg-type]
    assert KEY not in repr(client)
    assert KEY not in str(client)
    assert REDACTED in repr(client)


def test_key_from_env_is_redacted_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MJ_API_KEY", KEY)
    client = mjasync.Client("http://127.0.0.1:1")
    assert KEY not in repr(client)
    assert REDACTED in repr(client)


ECHOES = [
    reply(401, {"error": {"message": f"Incorrect API key provided: {KEY}", "type": "auth"}}),
    Reply(401, body=f"invalid secret {KEY}".encode(), content_type="text/plain"),
    Reply(401),
    reply(400, {"code": 4, "description": f"token {KEY} has no quota", "type": "upstream_error"}),
    Reply(502, body=f"<html><title>bad {KEY}</title></html>".encode(), content_type="text/html"),
]


@pytest.mark.parametrize("answer", ECHOES, ids=["openai", "text", "empty", "relay", "html"])
@pytest.mark.parametrize("auth", ["bearer", "mj-api-secret"])
async def test_errors_never_carry_the_key_even_when_the_server_echoes_it(
    server: LoopbackServer,
    make_client: Callable[..., mjasync.Client],
    caplog: pytest.LogCaptureFixture,
    answer: Reply,
    auth: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    server.script("POST", r".*", answer)
    server.script("GET", r".*", answer)
    async with make_client(auth=auth) as client:
        with pytest.raises(mjasync.MjError) as submit_info:
            await client.submit_imagine("cat")
        with pytest.raises(mjasync.MjError) as fetch_info:
            await client.fetch("123")
    for info in (submit_info, fetch_info):
        assert KEY not in _all_text(info.value)
        if isinstance(info.value, mjasync.APIError):
            assert KEY not in info.value.description
    assert KEY not in _logged(caplog)
    # the key was really sent, so the test is meaningful
    sent = server.requests[0].headers
    assert KEY in (sent.get("Authorization", "") + sent.get("mj-api-secret", ""))


async def test_retries_and_their_logs_never_carry_the_key(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = reply(503, {"error": {"message": f"overloaded for {KEY}", "type": "x"}})
    server.script("GET", r".*", echo)
    server.script("POST", r".*", RESET)
    wire = make_wire(server.url, sleep=SleepRecorder(), max_retries=2)
    try:
        with pytest.raises(mjasync.ServerError) as read_info:
            await wire.fetch("1", mode="fast")
        with pytest.raises(mjasync.SubmissionUncertainError) as submit_info:
            await wire.submit("/mj/submit/imagine", {"prompt": "cat"}, mode="fast")
    finally:
        await wire.transport.aclose()
    assert len(server.requests_to(r".*/fetch")) == 3
    assert caplog.records  # the retries were logged...
    assert KEY not in _logged(caplog)  # ...without the key
    assert KEY not in _all_text(read_info.value)
    assert KEY not in _all_text(submit_info.value)


async def test_transport_failures_never_carry_the_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()
    async with mjasync.Client(f"http://127.0.0.1:{port}", KEY, max_retries=0) as client:
        with pytest.raises(mjasync.TransportError) as info:
            await client.fetch("123")
        with pytest.raises(mjasync.TransportError):
            await client.submit_imagine("cat")
    assert info.value.request_sent is False
    assert KEY not in _all_text(info.value)
    assert KEY not in _logged(caplog)


def test_plain_http_warning_does_not_show_the_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = mjasync.Client("http://relay.example.com", KEY)
    assert "unencrypted" in _logged(caplog)
    assert KEY not in _logged(caplog)
    assert KEY not in repr(client)


async def test_a_short_secret_does_not_corrupt_task_data(
    server: LoopbackServer, make_client: Callable[..., mjasync.Client]
) -> None:
    # Self-hosted secrets can be short; the task data must come through untouched.
    task = {"id": "1320098173412346", "prompt": "cat 1234", "status": "SUCCESS"}
    server.script("GET", r".*", reply(200, task))
    async with make_client(api_key="1234", auth="mj-api-secret") as client:
        fetched = await client.fetch("1320098173412346")
    assert fetched.id == "1320098173412346"
    assert fetched.prompt == "cat 1234"
    assert fetched.raw["id"] == "1320098173412346"


async def test_a_short_secret_echoed_in_an_error_is_scrubbed(
    server: LoopbackServer, make_client: Callable[..., mjasync.Client]
) -> None:
    secret = "s3cr3t!"
    server.script("GET", r".*", Reply(401, body=b"bad secret s3cr3t!", content_type="text/plain"))
    async with make_client(api_key=secret, auth="mj-api-secret") as client:
        with pytest.raises(mjasync.AuthenticationError) as info:
            await client.fetch("1")
    assert secret not in _all_text(info.value)


async def test_a_trivial_key_does_not_mangle_messages() -> None:
    # A one-character "secret" is no secret; replacing it everywhere would wreck every text.
    port = free_port()
    async with mjasync.Client(f"http://127.0.0.1:{port}", "1", max_retries=0) as client:
        with pytest.raises(mjasync.TransportError) as info:
            await client.fetch("123")
    assert f"127.0.0.1:{port}" in str(info.value)
