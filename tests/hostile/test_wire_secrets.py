"""Secrets stay secret whatever the server echoes (issue 12, items 6b and 6c).

(b) The C# proxy echoes ``properties.notifyHook`` on every task, and a webhook receiver's URL
carries its secret in the path: it was kept in ``Task.properties`` and ``Task.raw`` (which the
batch journal stores). It is now left out of both, and out of every error text.

(c) A server echoing the API key with some characters JSON-escaped (``\\u0073k-...``,
``\\/``), as HTML character references or percent-encoded, got past the byte scrubber, which
only looked for the key as written. Whatever spelling reaches an exception (message, body
snippet, cause), a log line or a task, the key is now redacted. :func:`leaks` decodes every
spelling before it looks.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import aiohttp
import anyio
import pytest
from aiohttp import web

import mjasync
from mjasync._batch.batch import run_batch

from .conftest import KEY, everything_about, json_escaped, leaks, log_text
from .wire_server import HostileServer, Seen, rounds, submit_ids, task_json

pytestmark = pytest.mark.anyio

A, B = "1320098173412546", "1320098173412547"
HOOK_SECRET = "hook-Secret-0123456789abcdefXYZ"
FAST = {"poll_interval": 0.02, "retry": mjasync.RetryPolicy(max_retries=1, base_delay=0.01)}
# A key with '/' and '+': PHP escapes '/' as '\/', .NET writes '+' as '\u002B'.
SLASHED_KEY = "sk-Zq8x/V3mN+7pL2wR9tY4uK6jH"


# -- (b) notifyHook ------------------------------------------------------------------------


class EchoingProxy:
    """Echoes each job's notifyHook in ``properties`` of every answer about it, like C does."""

    def __init__(self, server: HostileServer) -> None:
        self.server = server
        self.hook = ""
        self.statuses = {A: "SUCCESS", B: "FAILURE"}
        server.on("POST", "/mj-fast/mj/submit/imagine", self.submit)
        server.on("POST", "/mj-fast/mj/task/list-by-condition", rounds(self.tasks))
        server.on("GET", "/mj-fast/mj/task/.*/fetch", self.fetch)

    def task(self, task_id: str) -> bytes:
        props = {"notifyHook": self.hook, "discordInstanceId": "1", "finalPrompt": "cat"}
        fail = "the hook said no" if self.statuses[task_id] == "FAILURE" else None
        return task_json(
            task_id, self.statuses[task_id], properties=props, failReason=fail, prompt="cat"
        )

    async def submit(self, request: web.Request, seen: Seen) -> web.StreamResponse:
        body = seen.json
        self.hook = body.get("notifyHook", "")
        if body["prompt"] == "banned":
            props = {"bannedWord": "cat", "notifyHook": self.hook}
            return web.json_response({"code": 24, "description": "banned", "properties": props})
        task_id = A if body["prompt"] == "good" else B
        props = {"notifyHook": self.hook, "numberOfQueues": 0}
        # The C# proxy posts the task to the hook as well.
        async with aiohttp.ClientSession() as session:
            push = self.task(task_id).replace(b'"SUCCESS"', b'"IN_PROGRESS"')
            await session.post(self.hook, data=push)
        return web.json_response({"code": 1, "result": task_id, "properties": props})

    def tasks(self, round_number: int, ids: list[str]) -> bytes:
        return b"[" + b",".join(self.task(i) for i in ids if i in self.statuses) + b"]"

    async def fetch(self, request: web.Request, seen: Seen) -> web.StreamResponse:
        # Unreadable: no id, but the hook is there, for the error's body snippet to show.
        return web.json_response({"properties": {"notifyHook": self.hook}, "status": "?"})


async def test_an_echoed_notify_hook_is_never_kept_or_shown(
    server: HostileServer, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    proxy = EchoingProxy(server)
    receiver = mjasync.WebhookReceiver(secret=HOOK_SECRET)
    shown: list[str] = []
    async with mjasync.Client(server.url, KEY, webhook=receiver, **FAST) as client:  # type: ignore[arg-type]
        with anyio.fail_after(10):
            job = await client.submit(mjasync.Imagine("good"))
            async for event in job.events():
                if event.task is not None:
                    shown += [repr(event), repr(event.task), repr(dict(event.task.raw))]
            task = await job.result()
            with pytest.raises(mjasync.TaskFailedError) as failed:
                await client.run(mjasync.Imagine("bad"))
            with pytest.raises(mjasync.BannedPromptError) as banned:
                await client.run(mjasync.Imagine("banned"))
            with pytest.raises(mjasync.ProtocolError) as unreadable:
                await client.fetch(A)
            submission = await client.submit_request(mjasync.Imagine("good"))
        summary = await run_batch(client, ["good"], out_dir=tmp_path, download=False)

    assert HOOK_SECRET in proxy.hook  # the server did get (and echo) the secret
    assert task.properties["finalPrompt"] == "cat" and "notifyHook" not in task.properties
    assert "notifyHook" not in dict(task.raw)["properties"]
    assert "notifyHook" not in submission.properties
    assert summary.succeeded == 1
    shown += [
        repr(task),
        repr(dict(task.raw)),
        repr(dict(task.properties)),
        task.raw._json.decode() if isinstance(task.raw._json, bytes) else task.raw._json,  # type: ignore[attr-defined]
        repr(submission),
        repr(dict(submission.properties)),
        everything_about(failed.value),
        everything_about(banned.value),
        everything_about(unreadable.value),
        log_text(caplog),
    ]
    # The batch journal stores task.raw: no file under the output folder holds the secret.
    shown.append(files_text(tmp_path))
    assert not leaks("\n".join(shown), [HOOK_SECRET])
    assert "notifyHook" in unreadable.value.body  # shown as a key, its value hidden  # type: ignore[operator]


def files_text(folder: Path) -> str:
    """Every file under ``folder`` (the journal among them), as text."""
    assert list(folder.glob("*.sqlite")), "no journal to check"
    return "\n".join(p.read_bytes().decode("latin-1") for p in folder.rglob("*") if p.is_file())


# -- (c) the API key in any spelling -------------------------------------------------------


def key_of(seen: Seen) -> str:
    return seen.headers.get("Authorization", "").removeprefix("Bearer ") or seen.headers.get(
        "mj-api-secret", ""
    )


Echo = Callable[[str], web.StreamResponse]


def echo(build: Echo) -> Callable[[web.Request, Seen], object]:
    async def handler(request: web.Request, seen: Seen) -> web.StreamResponse:
        return build(key_of(seen))

    return handler


def json_body(status: int, key_text: str, field: str = "description") -> web.Response:
    # key_text goes in as it is: the JSON escapes in it are the server's own spelling.
    raw = f'{{"code": 9, "{field}": "Incorrect API key provided: {key_text}"}}'
    return web.Response(status=status, text=raw, content_type="application/json")


def php_escaped(key: str) -> str:
    return key.replace("/", "\\/").replace("+", "\\u002B")


def entity_escaped(key: str) -> str:
    return "".join(f"&#{ord(c)};" if i % 2 else c for i, c in enumerate(key))


def percent_escaped(key: str) -> str:
    return "".join(f"%{ord(c):02X}" if i % 2 else c for i, c in enumerate(key))


SPELLINGS = {
    "json-u": json_escaped,
    "json-all": lambda key: json_escaped(key, every=1),
    "php": lambda key: php_escaped(json_escaped(key, every=5)),
}
ANSWERS: dict[str, Callable[[Callable[[str], str]], Echo]] = {
    "401-json": lambda spell: lambda key: json_body(401, spell(key)),
    "500-json": lambda spell: lambda key: json_body(500, spell(key), "message"),
    "400-text": lambda spell: (
        lambda key: web.Response(
            status=400, text=f"bad key {spell(key)}", content_type="text/plain"
        )
    ),
    "200-unreadable": lambda spell: (
        lambda key: web.Response(
            text=f'{{"id": "{spell(key)}", oops', content_type="application/json"
        )
    ),
    "200-task": lambda spell: (
        lambda key: web.Response(
            body=task_json(A, "FAILURE").replace(
                b'"FAILURE"', f'"FAILURE", "failReason": "key {spell(key)}"'.encode(), 1
            ),
            content_type="application/json",
        )
    ),
}


async def exercise(client: mjasync.Client) -> list[BaseException]:
    """Every way an answer reaches the caller: a fetch, a submit, a job to its end."""
    errors: list[BaseException] = []
    calls = [
        lambda: client.fetch(A),
        lambda: client.submit_request(mjasync.Imagine("cat")),
        lambda: client.run(mjasync.Imagine("cat")),
    ]
    for call in calls:
        with anyio.fail_after(10):
            try:
                result = await call()
            except mjasync.MjError as exc:
                errors.append(exc)
            else:
                errors.append(RuntimeError(repr(result) + repr(getattr(result, "raw", ""))))
    return errors


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
@pytest.mark.parametrize("shape", sorted(ANSWERS))
@pytest.mark.parametrize("key", [KEY, SLASHED_KEY])
@pytest.mark.parametrize("auth", ["bearer", "mj-api-secret"])
async def test_a_key_echoed_in_escapes_is_redacted_everywhere(
    server: HostileServer,
    caplog: pytest.LogCaptureFixture,
    spelling: str,
    shape: str,
    key: str,
    auth: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    build = ANSWERS[shape](SPELLINGS[spelling])
    server.on("*", "/.*", echo(build))  # type: ignore[arg-type]
    if shape == "200-task":  # a job that runs to its (failed) end, carrying the key
        server.on("POST", "/mj-fast/mj/submit/imagine", submit_ids(A))
        server.on(
            "POST",
            "/mj-fast/mj/task/list-by-condition",
            echo(
                lambda k: web.Response(
                    body=b"[" + build(k).body + b"]", content_type="application/json"
                )
            ),  # type: ignore[arg-type, operator]
        )

    async with mjasync.Client(server.url, key, auth=auth, **FAST) as client:  # type: ignore[arg-type]
        errors = await exercise(client)

    assert key_of(server.requests[0]) == key  # the server had it, and sent it back
    text = "\n".join(everything_about(e) for e in errors) + log_text(caplog)
    assert not leaks(text, [key]), text
    assert "…" in text  # redacted, not dropped: the user sees a key was echoed


@pytest.mark.parametrize(
    "spell", [entity_escaped, percent_escaped], ids=["html-entities", "percent"]
)
async def test_a_key_in_an_error_page_title_or_a_redirect_is_redacted(
    server: HostileServer, caplog: pytest.LogCaptureFixture, spell: Callable[[str], str]
) -> None:
    caplog.set_level(logging.DEBUG)
    page = "<html><head><title>Bad key {}</title></head></html>"
    server.on(
        "GET",
        "/.*",
        echo(
            lambda k: web.Response(status=502, text=page.format(spell(k)), content_type="text/html")
        ),  # type: ignore[arg-type]
    )
    server.on(
        "POST",
        "/.*",
        echo(
            lambda k: web.Response(
                status=302, headers={"Location": f"https://x.example/?k={quote(spell(k))}"}
            )
        ),  # type: ignore[arg-type]
    )
    async with mjasync.Client(server.url, KEY, **FAST) as client:  # type: ignore[arg-type]
        errors = await exercise(client)
    text = "\n".join(everything_about(e) for e in errors) + log_text(caplog)
    assert not leaks(text, [KEY]), text


def test_the_leak_detector_sees_through_every_spelling() -> None:
    # The check above would be vacuous if `leaks` missed what it is meant to catch.
    for spell in (*SPELLINGS.values(), entity_escaped, percent_escaped, lambda k: k):
        assert leaks(f"xx {spell(KEY)} yy", [KEY])
    assert leaks(json.dumps(php_escaped(SLASHED_KEY)), [SLASHED_KEY])
