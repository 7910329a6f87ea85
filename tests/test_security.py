"""Security checks, end to end: the key stays secret, files stay put, pushes need the secret,
TLS is verified, and plain http to a remote host is called out.

* The API key (and a wrong one) never appears in a log record at DEBUG level (mjasync's and
  aiohttp's loggers), in a repr, or in an exception's text or traceback, over a run that goes
  through successes, failures, refusals, retries, lost submit answers, auth failures and
  connection failures.
* Downloaded images land in the output directory whatever the prompt says (the unit tests in
  ``test_download.py`` cover hostile names and URLs one by one; this is the whole path).
* A forged push without the receiver's secret cannot finish a job.
* An https base URL to a server with a self-signed certificate fails verification.
* A plain-http base URL to a non-loopback host logs a warning (only constructed: no request).
"""

from __future__ import annotations

import logging
import shutil
import socket
import ssl
import subprocess
import traceback
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web

import mjasync
from mjasync._batch.download import Downloader
from mjasync.testing import FakeMidjourney, FaultRates, Faults

pytestmark = pytest.mark.anyio

KEY = "sk-Zq8xV3mN7pL2wR9tY4uK6jH1"
WRONG_KEY = "sk-Qw7eR4tY1uI8oP5aS2dF9gH3"
SECRETS = (KEY, WRONG_KEY)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def leaks(text: str, secrets: Iterable[str] = SECRETS) -> list[str]:
    """Pieces of a secret found in ``text``: any 8 consecutive characters of it count."""
    found = []
    for secret in secrets:
        body = secret.removeprefix("sk-")
        for start in range(len(body) - 7):
            if body[start : start + 8] in text:
                found.append(body[start : start + 8])
    return found


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def everything_about(exc: BaseException) -> str:
    """str, repr and the formatted traceback with every cause and context."""
    parts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    seen: set[int] = set()
    item: BaseException | None = exc
    while item is not None and id(item) not in seen:
        seen.add(id(item))
        parts += [str(item), repr(item)]
        for name in ("body", "description", "message", "properties", "state", "endpoint"):
            parts.append(repr(getattr(item, name, None)))
        item = item.__cause__ or item.__context__
    return "\n".join(parts)


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    lines = []
    for record in caplog.records:
        lines.append(f"{record.name} {record.levelname} {record.getMessage()}")
        lines.append(repr(record.args))
        lines.append(repr(record.__dict__))  # extra= fields included
        if record.exc_info and record.exc_info[1] is not None:
            lines.append(everything_about(record.exc_info[1]))
    return "\n".join(lines)


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MJ_BASE_URL", "MJ_API_KEY", "MJ_MODE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    for name in ("mjasync", "aiohttp", "aiohttp.client", "aiohttp.server", "aiohttp.web"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def fast(fake: FakeMidjourney, key: str = KEY, **options: Any) -> mjasync.Client:
    options.setdefault("poll_interval", 0.02)
    options.setdefault(
        "retry", mjasync.RetryPolicy(max_retries=4, base_delay=0.005, refusal_max_delay=0.05)
    )
    return mjasync.Client(fake.base_url, key, **options)


# -- the key ----------------------------------------------------------------------------------


async def test_the_key_never_shows_in_logs_reprs_or_errors_over_a_rough_run(
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    faults = Faults(
        submit=FaultRates(response_lost=0.15, rate_limit=0.1, retry_after=0),
        poll=FaultRates(html_502=0.1, rate_limit=0.05, connection_reset=0.05, truncated_json=0.05),
    )
    errors: list[BaseException] = []
    shown: list[Any] = []
    async with FakeMidjourney(api_keys=(KEY,), faults=faults, seed=5, job_duration=0.03) as fake:
        requests = [mjasync.Imagine(f"a quiet harbour {i}") for i in range(20)]
        async with fast(fake, concurrency=6) as client:
            with anyio.fail_after(60):
                results = await client.gather(requests)
                tasks = [r for r in results if isinstance(r, mjasync.Task)]
                events = [event async for event in client.watch([tasks[0].id])]
                # Then each fault once for sure: a lost submit answer, a read that runs out of
                # retries; and then the server's own refusals and failures.
                fake.set_faults(Faults(submit=FaultRates(response_lost=1.0)))
                try:
                    await client.submit_imagine("an answer that gets lost")
                except mjasync.MjError as exc:
                    errors.append(exc)
                fake.set_faults(Faults(poll=FaultRates(html_502=1.0)))
                try:
                    await client.fetch(tasks[0].id)
                except mjasync.MjError as exc:
                    errors.append(exc)
                fake.set_faults(None)
                for call in (
                    lambda: client.run(mjasync.Imagine("a nude statue")),
                    lambda: client.run(mjasync.Imagine("a storm --fail")),
                    lambda: client.fetch("999999"),
                    lambda: client.image_seed("999999"),
                    lambda: client.submit(mjasync.Imagine("a handle to show")),
                ):
                    try:
                        shown.append(await call())
                    except mjasync.MjError as exc:
                        errors.append(exc)
            shown += [client, client._transport, client.statistics(), *requests, *events]
        errors += [r for r in results if isinstance(r, BaseException)]
        shown += tasks
        # Both header schemes, and a key the server refuses.
        async with fast(fake, auth="mj-api-secret") as client:
            shown.append(await client.fetch_many([t.id for t in tasks]))
        for auth in ("bearer", "mj-api-secret"):
            async with fast(fake, WRONG_KEY, auth=auth) as client:
                for call in (lambda: client.submit_imagine("x"), lambda: client.fetch("1")):
                    with pytest.raises(mjasync.AuthenticationError) as caught:
                        await call()
                    errors.append(caught.value)
                shown.append(client)
        accepted = fake.stats().accepted
    # Nothing listens on this port: the connection is refused.
    async with mjasync.Client(f"http://127.0.0.1:{free_port()}", KEY, max_retries=1) as dead:
        with pytest.raises(mjasync.TransportError) as caught:
            await dead.submit_imagine("into the void")
        errors.append(caught.value)
    shown.append(mjasync.Client("http://relay.example.com", KEY))  # logs the http warning

    kinds = {type(e).__name__ for e in errors}
    assert {"AuthenticationError", "TransportError", "NotFoundError"} <= kinds, kinds
    assert {"SubmissionUncertainError", "BannedPromptError", "TaskFailedError"} <= kinds, kinds
    assert "ServerError" in kinds, kinds
    assert accepted > 0  # the key really was sent and accepted
    text = log_text(debug_logs)
    assert "retry" in text and "unencrypted" in text  # the run did log, at DEBUG too
    assert not leaks(text), leaks(text)
    for error in errors:
        assert not leaks(everything_about(error)), (
            type(error).__name__,
            leaks(everything_about(error)),
        )
    for thing in shown:
        assert not leaks(repr(thing) + str(thing)), type(thing).__name__


def test_request_and_policy_reprs_carry_no_key_even_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MJ_API_KEY", KEY)
    monkeypatch.setenv("MJ_BASE_URL", "https://relay.example.com")
    client = mjasync.Client()
    assert client.base_url == "https://relay.example.com"
    assert not leaks(repr(client) + str(client) + repr(client._transport))
    assert "sk-…6jH1" in repr(client)


# -- downloads --------------------------------------------------------------------------------


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.mark.parametrize("accent", ["csharp", "relay"])
async def test_downloaded_images_stay_in_the_output_directory(tmp_path: Path, accent: str) -> None:
    out = tmp_path / "deep" / "out"
    hostile = "../../../escaped/..\\..\\win C:\\x /etc/passwd %2e%2e%2f"
    async with (
        FakeMidjourney(api_keys=(KEY,), accent=accent, job_duration=0.03) as fake,
        fast(fake) as client,
        aiohttp.ClientSession() as session,
    ):
        grid = await client.imagine(hostile)
        upscale = await client.upscale(grid, 2)
        downloader = Downloader(session, out, api_server=client.base_url)
        paths = await downloader.fetch_task_images(grid, split=False)
        paths += await downloader.fetch_task_images(upscale)
    assert len(paths) >= 2
    root = out.resolve()
    written = files_under(tmp_path)
    assert written and {p.resolve().parent for p in written} == {root}
    assert all(p.resolve().parent == root and ".." not in p.name for p in paths)
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in paths)
    assert not (tmp_path / "escaped").exists()


# -- pushes -----------------------------------------------------------------------------------


async def test_a_push_cannot_finish_a_job_without_the_secret_nor_with_it(
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    receiver = mjasync.WebhookReceiver(secret="the-receivers-secret-0123456789")
    async with (
        FakeMidjourney(api_keys=(KEY,), job_duration=0.03) as fake,
        mjasync.Client(fake.base_url, KEY, webhook=receiver, poll_interval=0.02) as client,
        aiohttp.ClientSession() as session,
    ):
        job = await client.submit(mjasync.Imagine("a lighthouse --stall"))  # never ends by itself
        forged = {"id": job.id, "status": "SUCCESS", "progress": "100%", "imageUrl": "http://evil"}
        base = receiver.notify_url.rsplit("/", 1)[0]
        secret = receiver.notify_url.rsplit("/", 1)[1]
        for url in (base, f"{base}/", f"{base}/{secret[:-1]}", f"{base}/{secret}x", f"{base}/x"):
            async with session.post(url, json=forged) as resp:
                assert resp.status in (401, 404), (url, resp.status)
        # A post is delivered (or not) before it is answered: the answers are in, so the
        # forged ones have had every chance to do harm.
        assert not job.done and job.status is not mjasync.TaskStatus.SUCCESS
        # The same body with the secret is taken, as a hint only: the server is asked before
        # the job ends, says the job still runs, and wins.
        async with session.post(receiver.notify_url, json=forged) as resp:
            assert resp.status == 200
        with anyio.fail_after(10):
            while client.statistics().push_ends_refuted < 1:
                await anyio.sleep(0.005)
        assert not job.done
        fake.finish_task(job.id)
        with anyio.fail_after(10):
            task = await job.result()
        assert task.image_url and "evil" not in task.image_url
        notify_url = receiver.notify_url
    stats = receiver.statistics()
    assert (
        stats.rejected_by_reason.get("bad_secret", 0)
        + stats.rejected_by_reason.get("missing_secret", 0)
        >= 3
    )
    assert fake.stats().accepted == 1
    # The hook URL carries the secret: like the key, it is never logged.
    assert notify_url.rsplit("/", 1)[1] not in log_text(debug_logs)


# -- TLS --------------------------------------------------------------------------------------


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("no openssl binary to make a certificate (see the connector check)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
async def tls_server(self_signed: tuple[Path, Path]) -> AsyncIterator[tuple[str, list[str]]]:
    """An https server on loopback with a self-signed certificate; yields (url, paths hit)."""
    hits: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({"id": "1", "status": "SUCCESS", "progress": "100%"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*self_signed)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
        yield f"https://127.0.0.1:{runner.addresses[0][1]}", hits
    finally:
        await runner.cleanup()


async def test_tls_certificates_are_verified_by_default(
    tls_server: tuple[str, list[str]], self_signed: tuple[Path, Path]
) -> None:
    url, hits = tls_server
    async with mjasync.Client(url, KEY, max_retries=0) as client:
        with pytest.raises(mjasync.TransportError, match=r"(?i)certificate") as caught:
            await client.fetch("1")
        with pytest.raises(mjasync.TransportError):
            await client.submit_imagine("over an untrusted line")
    assert caught.value.request_sent is False
    assert hits == []  # no request (and so no key) ever went to the untrusted server
    # The same server with its certificate trusted answers: verification was the only obstacle.
    trusted = ssl.create_default_context(cafile=str(self_signed[0]))
    connector = aiohttp.TCPConnector(ssl=trusted)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        mjasync.Client(url, KEY, session=session) as client,
    ):
        assert (await client.fetch("1")).status is mjasync.TaskStatus.SUCCESS
    assert hits == ["/mj-fast/mj/task/1/fetch"]


async def test_the_clients_own_connector_does_not_disable_verification() -> None:
    client = mjasync.Client("https://relay.example.com", KEY)
    try:
        connector = client._transport.session().connector
        assert isinstance(connector, aiohttp.TCPConnector)
        assert connector._ssl is not False  # False would mean "do not verify"
        if isinstance(connector._ssl, ssl.SSLContext):
            assert connector._ssl.verify_mode is ssl.CERT_REQUIRED
    finally:
        await client.aclose()


# -- plain http -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://relay.example.com",
        "http://10.0.0.5:8080",
        "http://[2001:db8::1]/",
        "http://127.0.0.1.nip.io",
    ],
)
def test_plain_http_to_a_remote_host_warns(caplog: pytest.LogCaptureFixture, url: str) -> None:
    caplog.set_level(logging.DEBUG, logger="mjasync")
    mjasync.Client(url, KEY)  # constructing is enough: nothing is sent anywhere
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "unencrypted" in warnings[0].getMessage()
    assert not leaks(log_text(caplog))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://localhost:8080",
        "http://[::1]:8080",
        "https://relay.example.com",
    ],
)
def test_https_and_loopback_do_not_warn(caplog: pytest.LogCaptureFixture, url: str) -> None:
    caplog.set_level(logging.DEBUG, logger="mjasync")
    mjasync.Client(url, KEY)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
