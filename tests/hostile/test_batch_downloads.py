"""Issue 12, item 9: the server does not choose where image downloads connect, or how much.

Before the fix an image URL (or a redirect) could point a batch at any service this machine can
reach — ``169.254.169.254`` was reached — a task could list 2,000 images and get 2,001 files,
a body could stall for the whole 300 s timeout, and a SUCCESS without an image was DONE for
good. The hostile proxy below serves the API on one loopback port; :class:`Bystander` is an
"internal service" on another. Images served by the API server itself (same IP *and* port:
the simulator's way) are fine; the bystander must never see a request unless the caller
opts in.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

import mjasync
from batch._support import assert_real_png, clean_env, read_manifest, run_cli
from mjasync._batch.batch import Batch
from mjasync._batch.download import (
    DEFAULT_MAX_BYTES_PER_TASK,
    DEFAULT_MAX_IMAGES_PER_TASK,
    DEFAULT_MAX_REDIRECTS,
    DEFAULT_READ_TIMEOUT,
    ImageHostPolicy,
    expects_image,
    image_session,
)
from mjasync._batch.hosts import address_kind
from mjasync._batch.journal import Journal, JournalState
from mjasync._batch.types import BatchOutcome
from mjasync._models import Task, TaskAction

from .download_server import Bystander, HostileProxy, bystander, hostile_proxy

pytestmark = pytest.mark.anyio

KEY = "sk-hostile-downloads-000000"


@pytest.fixture
async def proxy() -> AsyncIterator[HostileProxy]:
    async with hostile_proxy() as server:
        yield server


@pytest.fixture
async def internal() -> AsyncIterator[Bystander]:
    async with bystander() as service:
        yield service


def client(proxy: HostileProxy) -> mjasync.Client:
    return mjasync.Client(proxy.base, KEY, poll_interval=0.02)


def image_files(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.suffix in (".png", ".jpg", ".webp", ".gif"))


def serve_by_prompt(proxy: HostileProxy, urls: dict[str, Any]) -> None:
    """Each prompt's task gets the fields ``urls[prompt]`` (a URL means its imageUrl)."""

    def shape(task_id: str, prompt: str) -> dict[str, Any]:
        fields = urls[prompt]
        return {"imageUrl": fields} if isinstance(fields, str) else dict(fields)

    proxy.shape = shape


def ssrf_urls(proxy: HostileProxy, internal: Bystander) -> dict[str, str]:
    port = internal.port
    return {
        "on the API server": proxy.url("/img/own.png"),
        "on the API server by name": proxy.url("/img/own2.png").replace("127.0.0.1", "localhost"),
        "another port, literal": f"{internal.base}/direct.png",
        "another port, by name": f"http://localhost:{port}/named.png",
        "another port, via redirect": proxy.url(f"/redirect?to={internal.base}/hop.png"),
        "another port, IPv4-mapped IPv6": f"http://[::ffff:127.0.0.1]:{port}/mapped.png",
        "another port, 0.0.0.0": f"http://0.0.0.0:{port}/zero.png",
        "another port, decimal IPv4": f"http://2130706433:{port}/decimal.png",
        "cloud metadata": "http://169.254.169.254/latest/meta-data/iam.png",
        "private network": "http://10.11.12.13/cdn.png",
    }


# --------------------------------------------------------------------------- pure decisions


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "non-public"),
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
    ],
)
def test_address_kind(address: str, kind: str | None) -> None:
    assert address_kind(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        (TaskAction.IMAGINE, True),
        (TaskAction.UPSCALE, True),
        (TaskAction.BLEND, True),
        (TaskAction.DESCRIBE, False),
        (TaskAction.SHORTEN, False),
        (TaskAction.VIDEO, False),
        (TaskAction.UNKNOWN, False),
    ],
)
def test_expects_image(action: TaskAction, expected: bool) -> None:
    assert expects_image(Task(id="1", action=action)) is expected


def test_documented_defaults_are_sane() -> None:
    assert DEFAULT_MAX_IMAGES_PER_TASK == 16  # a grid and its four images is 5
    assert DEFAULT_MAX_BYTES_PER_TASK == 256 * 1024 * 1024
    assert DEFAULT_MAX_REDIRECTS == 5
    assert DEFAULT_READ_TIMEOUT == 30.0


# --------------------------------------------------------------------------- SSRF


async def test_images_only_come_from_public_hosts_or_the_api_server(
    proxy: HostileProxy, internal: Bystander, tmp_path: Path
) -> None:
    urls = ssrf_urls(proxy, internal)
    serve_by_prompt(proxy, urls)
    out = tmp_path / "out"
    async with client(proxy) as c:
        with anyio.fail_after(30):
            summary = await mjasync.run_batch(c, list(urls), out_dir=out)

    assert internal.hits == 0  # not one request reached the internal service
    by_prompt = {r.prompt: r for r in summary.results}
    for prompt in ("on the API server", "on the API server by name"):
        assert by_prompt[prompt].outcome is BatchOutcome.SUCCEEDED, by_prompt[prompt].error
    for prompt in ("on the API server", "on the API server by name"):
        for name in by_prompt[prompt].files:
            assert_real_png(out / name)
    refused = [p for p in urls if not p.startswith("on the API server")]
    for prompt in refused:
        result = by_prompt[prompt]
        assert result.outcome is BatchOutcome.FAILED, prompt
        if prompt != "another port, decimal IPv4":  # aiohttp may reject the URL itself
            assert "refused" in (result.error or ""), (prompt, result.error)
    assert "link-local" in (by_prompt["cloud metadata"].error or "")
    assert "allow_private_image_hosts" in (by_prompt["cloud metadata"].error or "")
    # The refusal is not final: the journal keeps these SUCCEEDED, a rerun may try again.
    async with Journal(out / "journal.sqlite") as journal:
        states = {e.label: e.state for e in await journal.entries()}
    assert states["cloud metadata"] is JournalState.SUCCEEDED
    assert states["on the API server"] is JournalState.DONE


async def test_opting_in_allows_private_hosts(
    proxy: HostileProxy, internal: Bystander, tmp_path: Path
) -> None:
    urls = ssrf_urls(proxy, internal)
    wanted = ["another port, literal", "another port, by name", "another port, via redirect"]
    serve_by_prompt(proxy, urls)
    async with client(proxy) as c:
        summary = await mjasync.run_batch(
            c, wanted, out_dir=tmp_path / "out", allow_private_image_hosts=True
        )
    assert summary.ok, [r.error for r in summary.results]
    assert internal.hits == 3


class MappedDNS(AbstractResolver):
    """A name server that says a public-looking name lives on loopback (as rebinding does)."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        address = self.names.get(host.rstrip("."))
        if address is None:
            raise OSError(f"no such host {host}")
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": 0,
            }
        ]

    async def close(self) -> None:
        pass


async def test_resolved_addresses_are_checked_not_the_host_name(
    proxy: HostileProxy, internal: Bystander, tmp_path: Path
) -> None:
    dns = MappedDNS({"images.example.com": "127.0.0.1"})
    serve_by_prompt(
        proxy,
        {
            "a public-looking name": f"http://images.example.com:{internal.port}/x.png",
            "the same name, API port": f"http://images.example.com:{proxy.base.rsplit(':')[-1]}"
            "/img/api.png",
        },
    )
    async with client(proxy) as c:
        policy = ImageHostPolicy(api_server=c.base_url)
        async with image_session(policy, resolver=dns) as session:
            batch = Batch(
                c,
                ["a public-looking name", "the same name, API port"],
                out_dir=tmp_path / "out",
                session=session,
            )
            summary = await batch.run()
    first, second = summary.results
    assert first.outcome is BatchOutcome.FAILED
    assert "images.example.com resolves to 127.0.0.1 (a loopback address" in (first.error or "")
    assert "images.example.com" in dns.asked  # checked on what the name resolved to
    assert internal.hits == 0
    # The API server's own socket, whatever name leads there, is the API server.
    assert second.outcome is BatchOutcome.SUCCEEDED, second.error


async def test_a_session_of_your_own_is_checked_before_each_request(
    proxy: HostileProxy, internal: Bystander, tmp_path: Path
) -> None:
    urls = ssrf_urls(proxy, internal)
    wanted = ["on the API server", "another port, by name", "another port, via redirect"]
    serve_by_prompt(proxy, urls)
    async with client(proxy) as c, aiohttp.ClientSession() as session:
        summary = await Batch(c, wanted, out_dir=tmp_path / "out", session=session).run()
    outcomes = [r.outcome for r in summary.results]
    assert outcomes == [BatchOutcome.SUCCEEDED, BatchOutcome.FAILED, BatchOutcome.FAILED]
    assert internal.hits == 0


async def test_redirects_are_capped(proxy: HostileProxy, tmp_path: Path) -> None:
    serve_by_prompt(proxy, {"loop": proxy.url("/loop/0")})
    async with client(proxy) as c:
        with anyio.fail_after(20):
            summary = await mjasync.run_batch(c, ["loop"], out_dir=tmp_path / "out")
    (result,) = summary.results
    assert result.outcome is BatchOutcome.FAILED
    assert f"more than {DEFAULT_MAX_REDIRECTS} redirects" in (result.error or "")
    assert proxy.image_hits["/loop"] == DEFAULT_MAX_REDIRECTS + 1


# --------------------------------------------------------------------------- per-task limits


async def test_a_task_with_thousands_of_images_writes_none(
    proxy: HostileProxy, tmp_path: Path
) -> None:
    many = [{"url": proxy.url(f"/img/{n}.png")} for n in range(2000)]
    serve_by_prompt(proxy, {"flood": {"imageUrls": many}})
    out = tmp_path / "out"
    async with client(proxy) as c:
        with anyio.fail_after(30):
            summary = await mjasync.run_batch(c, ["flood"], out_dir=out)
    (result,) = summary.results
    assert result.outcome is BatchOutcome.FAILED
    assert "2001 images, over the limit of 16" in (result.error or "")
    assert image_files(out) == []
    assert sum(proxy.image_hits.values()) == 0


async def test_bytes_per_task_are_capped(proxy: HostileProxy, tmp_path: Path) -> None:
    size, cap = 300_000, 1_000_000
    urls = [{"url": proxy.url(f"/sized/{size}/{n}.png")} for n in range(5)]
    serve_by_prompt(proxy, {"heavy": {"imageUrl": None, "imageUrls": urls}})
    out = tmp_path / "out"
    async with client(proxy) as c:
        summary = await mjasync.run_batch(
            c, ["heavy"], out_dir=out, max_image_bytes_per_task=cap, download_limit=1
        )
    (result,) = summary.results
    assert result.outcome is BatchOutcome.FAILED
    assert f"exceed {cap} bytes" in (result.error or "")
    assert sum(p.stat().st_size for p in image_files(out)) <= cap


async def test_the_image_count_limit_is_settable(proxy: HostileProxy, tmp_path: Path) -> None:
    urls = [{"url": proxy.url(f"/img/{n}.png")} for n in range(20)]
    serve_by_prompt(proxy, {"twenty": {"imageUrl": None, "imageUrls": urls}})
    async with client(proxy) as c:
        summary = await mjasync.run_batch(
            c, ["twenty"], out_dir=tmp_path / "out", max_images_per_task=20
        )
    assert summary.ok, summary.results[0].error
    assert len(summary.files) == 20


# --------------------------------------------------------------------------- read timeout


async def test_a_stalled_image_fails_after_the_read_timeout(
    proxy: HostileProxy, tmp_path: Path
) -> None:
    serve_by_prompt(proxy, {"stall": proxy.url("/stall.png")})
    out = tmp_path / "out"
    async with client(proxy) as c:
        with anyio.fail_after(10):  # far below the 300 s overall download timeout
            summary = await mjasync.run_batch(c, ["stall"], out_dir=out, image_read_timeout=0.3)
    (result,) = summary.results
    assert result.outcome is BatchOutcome.FAILED
    assert "no data for 0.3s (read timeout)" in (result.error or "")
    assert sorted(p.name for p in out.iterdir() if p.name.endswith(".part")) == []


async def test_cli_image_flags(proxy: HostileProxy, internal: Bystander, tmp_path: Path) -> None:
    urls = ssrf_urls(proxy, internal)
    urls["stall"] = proxy.url("/stall.png")
    serve_by_prompt(proxy, urls)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("another port, literal\nstall\n", encoding="utf-8")
    common = ["batch", str(prompts), "--base-url", proxy.base, "--api-key", KEY]
    common += ["--poll-interval", "0.05", "--image-read-timeout", "0.3"]

    strict = await run_cli(*common, "--out", str(tmp_path / "strict"))
    assert strict.returncode == 1, strict.stderr.decode()
    assert internal.hits == 0
    errors = [line["error"] for line in read_manifest(tmp_path / "strict")]
    assert "refused" in errors[0]
    assert "read timeout" in errors[1]

    opted = await run_cli(
        *common, "--out", str(tmp_path / "opted"), "--allow-private-image-hosts", env=clean_env()
    )
    assert internal.hits == 1
    manifest = read_manifest(tmp_path / "opted")
    assert manifest[0]["outcome"] == "succeeded", opted.stdout.decode()
    assert "read timeout" in manifest[1]["error"]


# --------------------------------------------------------------------------- SUCCESS, no image


async def test_success_without_an_image_is_not_done_and_a_rerun_downloads(
    proxy: HostileProxy, tmp_path: Path
) -> None:
    serve_by_prompt(proxy, {"late image": {"imageUrl": None, "imageUrls": []}})
    out = tmp_path / "out"
    async with client(proxy) as c:
        first = await mjasync.run_batch(c, ["late image"], out_dir=out)
    (result,) = first.results
    assert result.outcome is BatchOutcome.FAILED
    assert "without an image URL" in (result.error or "")
    async with Journal(out / "journal.sqlite") as journal:
        (entry,) = await journal.entries()
    assert entry.state is JournalState.SUCCEEDED  # not DONE: nothing was downloaded

    # The server fills the image in later; the rerun asks again and downloads it.
    (task_id,) = proxy.tasks
    proxy.tasks[task_id]["imageUrl"] = proxy.url(f"/img/{task_id}.png")
    async with client(proxy) as c:
        second = await mjasync.run_batch(c, ["late image"], out_dir=out)
    assert second.ok, second.results[0].error
    assert second.submitted == 0
    assert proxy.submits() == 1
    assert len(second.files) == 1
    assert_real_png(out / second.files[0])
    async with Journal(out / "journal.sqlite") as journal:
        (entry,) = await journal.entries()
    assert entry.state is JournalState.DONE
    assert entry.files == second.files


async def test_success_without_an_image_is_not_done_without_downloads_either(
    proxy: HostileProxy, tmp_path: Path
) -> None:
    serve_by_prompt(proxy, {"no image": {"imageUrl": None}})
    out = tmp_path / "out"
    async with client(proxy) as c:
        summary = await mjasync.run_batch(c, ["no image"], out_dir=out, download=False)
    assert summary.results[0].outcome is BatchOutcome.FAILED
    async with Journal(out / "journal.sqlite") as journal:
        (entry,) = await journal.entries()
    assert entry.state is JournalState.SUCCEEDED


# --------------------------------------------------------------------------- bad options


@pytest.mark.parametrize(
    ("options", "error", "words"),
    [
        ({"image_read_timeout": 0}, ValueError, "image_read_timeout"),
        ({"image_read_timeout": float("nan")}, ValueError, "image_read_timeout"),
        ({"image_read_timeout": "5"}, TypeError, "image_read_timeout"),
        ({"max_images_per_task": 0}, ValueError, "max_images_per_task"),
        ({"max_images_per_task": True}, TypeError, "max_images_per_task"),
        ({"max_image_bytes_per_task": -1}, ValueError, "max_image_bytes_per_task"),
    ],
)
async def test_bad_download_options_fail_before_anything_is_sent(
    proxy: HostileProxy, tmp_path: Path, options: dict[str, Any], error: type, words: str
) -> None:
    async with client(proxy) as c:
        with pytest.raises(error, match=words):
            await mjasync.run_batch(c, ["cat"], out_dir=tmp_path / "out", **options)
    assert proxy.log == []
    assert not (tmp_path / "out").exists()
