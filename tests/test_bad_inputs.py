"""Every public entry point refuses bad arguments with ValueError/TypeError before any request.

One table, one runner: each row calls a public function, constructor or method with one bad
argument and names the exception and a word the message must contain (it says what to fix).
The runner points everything at a fresh simulator and checks afterwards that the simulator
received no request at all, so a check that only fires after a submit (a paid job) fails here
even if the right exception comes out in the end.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest

import mjasync
from mjasync import Button, Task, TaskStatus
from mjasync._batch.download import Downloader, split_grid
from mjasync._batch.journal import Journal, request_key
from mjasync._jobs.limiter import LocalLimiter
from mjasync._requests import Change
from mjasync.testing import FakeMidjourney

pytestmark = pytest.mark.anyio

KEY = "sk-badinputs-0123456789abcdef"
TID = "1320098173412546"
HASH = "0ddb91a0-af46-4ae9-8e8e-c271074eb6e6"
CID = f"MJ::JOB::upsample::1::{HASH}"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32
NAN, INF = math.nan, math.inf

#: A finished grid: U1-U4, V1-V4 and reroll, but no zoom, pan, vary or region buttons.
GRID = Task(
    id=TID,
    status=TaskStatus.SUCCESS,
    prompt="a black cat",
    buttons=(
        *(Button(f"MJ::JOB::upsample::{i}::{HASH}", label=f"U{i}") for i in range(1, 5)),
        *(Button(f"MJ::JOB::variation::{i}::{HASH}", label=f"V{i}") for i in range(1, 5)),
        Button(f"MJ::JOB::reroll::0::{HASH}::SOLO", emoji="🔄"),
    ),
)
#: An upscale: custom zoom and vary (region) are among its buttons.
UPSCALED = Task(
    id="1320098173412547",
    status=TaskStatus.SUCCESS,
    prompt="a black cat",
    buttons=(
        Button(f"MJ::CustomZoom::{HASH}"),
        Button(f"MJ::Inpaint::1::{HASH}::SOLO"),
        Button(f"MJ::Outpaint::50::1::{HASH}::SOLO"),
        Button(f"MJ::JOB::pan_left::1::{HASH}::SOLO"),
    ),
)


@attrs.frozen
class Ctx:
    """What a row may use: an open client on the simulator, its URL, a session, a directory."""

    client: mjasync.Client
    url: str
    session: aiohttp.ClientSession
    tmp: Path


Call = Callable[[Ctx], Any]


@attrs.frozen
class Bad:
    """One row: the call, the exception expected, and a word its message must contain."""

    id: str
    call: Call
    error: type[Exception] | tuple[type[Exception], ...]
    words: str


def client(ctx: Ctx, **options: Any) -> mjasync.Client:
    options.setdefault("api_key", KEY)
    return mjasync.Client(options.pop("base_url", ctx.url), **options)


def opt(name: str, value: Any, error: Any = ValueError, words: str | None = None) -> Bad:
    """A bad Client(...) option."""
    return Bad(
        f"Client-{name}={value!r}"[:60],
        lambda ctx: client(ctx, **{name: value}),
        error,
        words or name,
    )


#: A value of the wrong type: TypeError is the better answer, ValueError is accepted too.
WRONG_TYPE = (TypeError, ValueError)


def numbers(name: str, *values: Any) -> list[Bad]:
    """Bad values for a numeric Client option."""
    return [opt(name, v, WRONG_TYPE if isinstance(v, bool | str) else ValueError) for v in values]


CLIENT_OPTIONS = [
    Bad("Client-no-base-url", lambda ctx: mjasync.Client(None, KEY), ValueError, "base URL"),
    opt("base_url", 8080, TypeError),
    opt("base_url", "relay.example.com"),
    opt("base_url", "ftp://relay.example.com"),
    opt("base_url", "https://user:pw@relay.example.com"),
    opt("base_url", "https://relay.example.com/?key=1"),
    opt("api_key", ""),
    opt("api_key", "   "),
    opt("api_key", 12345, (TypeError, ValueError)),
    opt("mode", "slow"),
    opt("mode", 3, TypeError),
    opt("mode_path", "mj-{mode}"),
    opt("mode_path", "/mj"),
    opt("mode_path", "/{mode}/{mode}"),
    opt("mode_path", 5, TypeError),
    opt("auth", "basic"),
    opt("auth", None),
    *numbers("concurrency", 0, -1, True, 2.5, "many"),
    *numbers("poll_interval", 0, -1, NAN, INF, True, "2"),
    *numbers("timeout", 0, -1, NAN, INF, True, "30"),
    *numbers("max_retries", -1, True, 1.5, "3"),
    *numbers("max_image_bytes", 0, -5, True, 1.5),
    *numbers("list_batch_size", 0, 1001, True, 2.5),
    *numbers("image_seed_timeout", 0, -1, NAN, True, "x"),
    *numbers("stall_timeout", 0, -1, NAN, True),
    opt("session", "a session", TypeError),
    opt("retry", "again", TypeError),
    opt("retry", mjasync.PollSettings(), TypeError),
    opt("limiter", "redis://x", TypeError),
    opt("limiter", object(), TypeError),
    opt("poll_settings", 2.0, TypeError),
    opt("webhook", "https://me.example/hook", TypeError),
]

POLICIES = [
    *(
        Bad(f"RetryPolicy-{k}={v!r}", lambda ctx, k=k, v=v: mjasync.RetryPolicy(**{k: v}), e, k)
        for k, v, e in [
            ("max_retries", -1, ValueError),
            ("max_retries", True, ValueError),
            ("max_retries", "3", ValueError),
            ("base_delay", -1, ValueError),
            ("base_delay", NAN, ValueError),
            ("base_delay", "x", TypeError),
            ("max_delay", NAN, ValueError),
            ("max_delay", -1, ValueError),
            ("jitter", 2, ValueError),
            ("jitter", -0.1, ValueError),
            ("jitter", NAN, ValueError),
            ("max_retry_after", -1, ValueError),
            ("max_retry_after", NAN, ValueError),
            ("refusal_wait", -1, ValueError),
            ("refusal_wait", NAN, ValueError),
            ("refusal_wait", "x", TypeError),
            ("refusal_max_delay", -1, ValueError),
        ]
    ),
    *(
        Bad(f"PollSettings-{k}={v!r}", lambda ctx, k=k, v=v: mjasync.PollSettings(**{k: v}), e, k)
        for k, v, e in [
            ("interval", 0, ValueError),
            ("interval", -1, ValueError),
            ("interval", NAN, ValueError),
            ("interval", "2", TypeError),
            ("max_interval", 0.5, ValueError),  # below the base interval (2.0)
            ("push_interval", 0, ValueError),
            ("push_health", -1, ValueError),
            ("stall_timeout", 0, ValueError),
            ("missing_rounds", 0, ValueError),
            ("missing_rounds", True, ValueError),
        ]
    ),
    *(
        Bad(
            f"LocalLimiter-{v!r}",
            lambda ctx, v=v: LocalLimiter(v),
            ValueError,
            "concurrency",
        )
        for v in (0, -1, True, 2.5, "many")
    ),
    Bad(
        "LocalLimiter-initial-0",
        lambda ctx: LocalLimiter("auto", initial=0),
        ValueError,
        "initial",
    ),
    Bad(
        "LocalLimiter-ceiling-below-initial",
        lambda ctx: LocalLimiter("auto", initial=5, ceiling=4),
        ValueError,
        "ceiling",
    ),
]

REQUESTS = [
    Bad("Imagine-blank", lambda ctx: mjasync.Imagine("  "), ValueError, "blank"),
    Bad("Imagine-int", lambda ctx: mjasync.Imagine(5), TypeError, "prompt"),  # type: ignore[arg-type]
    Bad("Imagine-too-long", lambda ctx: mjasync.Imagine("x" * 9000), ValueError, "limit"),
    Bad("Imagine-images-bytes", lambda ctx: mjasync.Imagine("c", PNG), TypeError, "list"),  # type: ignore[arg-type]
    Bad("Imagine-image-str-path", lambda ctx: mjasync.Imagine("c", ["c.png"]), TypeError, "Path"),
    Bad("Imagine-image-not-image", lambda ctx: mjasync.Imagine("c", [b"%PDF-"]), ValueError, "PNG"),
    Bad(
        "Imagine-image-missing-file",
        lambda ctx: mjasync.Imagine("c", [ctx.tmp / "missing.png"]),
        ValueError,
        "cannot read",
    ),
    Bad("Imagine-bot", lambda ctx: mjasync.Imagine("c", bot_type="DALL_E"), ValueError, "bot_type"),
    Bad("Imagine-bot-int", lambda ctx: mjasync.Imagine("c", bot_type=1), TypeError, "bot_type"),  # type: ignore[arg-type]
    Bad("Imagine-state-256", lambda ctx: mjasync.Imagine("c", state="s" * 256), ValueError, "255"),
    Bad("Imagine-state-int", lambda ctx: mjasync.Imagine("c", state=5), TypeError, "state"),  # type: ignore[arg-type]
    Bad(
        "Imagine-hook-ftp",
        lambda ctx: mjasync.Imagine("c", notify_hook="ftp://x/h"),
        ValueError,
        "http",
    ),
    Bad(
        "Imagine-hook-int",
        lambda ctx: mjasync.Imagine("c", notify_hook=5),
        TypeError,
        "notify_hook",
    ),  # type: ignore[arg-type]
    Bad(
        "Imagine-account-filter-str",
        lambda ctx: mjasync.Imagine("c", account_filter="acct-1"),  # type: ignore[arg-type]
        TypeError,
        "account_filter",
    ),
    Bad("Blend-one", lambda ctx: mjasync.Blend([PNG]), ValueError, "2 to 5"),
    Bad("Blend-six", lambda ctx: mjasync.Blend([PNG] * 6), ValueError, "2 to 5"),
    Bad("Blend-dimensions", lambda ctx: mjasync.Blend([PNG, PNG], "WIDE"), ValueError, "SQUARE"),
    Bad("Blend-dimensions-int", lambda ctx: mjasync.Blend([PNG, PNG], 1), TypeError, "dimensions"),  # type: ignore[arg-type]
    Bad("Blend-images-str", lambda ctx: mjasync.Blend("ab"), TypeError, "list"),  # type: ignore[arg-type]
    Bad("Describe-int", lambda ctx: mjasync.Describe(3), TypeError, "bytes"),  # type: ignore[arg-type]
    Bad("Describe-path-str", lambda ctx: mjasync.Describe("cat.png"), TypeError, "Path"),
    Bad("Describe-empty", lambda ctx: mjasync.Describe(b""), ValueError, "empty"),
    Bad("Shorten-blank", lambda ctx: mjasync.Shorten(""), ValueError, "blank"),
    Bad("Shorten-int", lambda ctx: mjasync.Shorten(5), TypeError, "prompt"),  # type: ignore[arg-type]
    Bad("Action-id-blank", lambda ctx: mjasync.Action("", CID), ValueError, "task id"),
    Bad("Action-id-slash", lambda ctx: mjasync.Action("1/2", CID), ValueError, "task id"),
    Bad("Action-id-none", lambda ctx: mjasync.Action(None, CID), TypeError, "task id"),  # type: ignore[arg-type]
    Bad("Action-id-float", lambda ctx: mjasync.Action(1.5, CID), TypeError, "task id"),  # type: ignore[arg-type]
    Bad("Action-id-bool", lambda ctx: mjasync.Action(True, CID), TypeError, "task id"),  # type: ignore[arg-type]
    Bad("Action-custom-id-label", lambda ctx: mjasync.Action(TID, "U1"), ValueError, "custom id"),
    Bad("Action-custom-id-empty", lambda ctx: mjasync.Action(TID, "MJ::"), ValueError, "custom id"),
    Bad("Action-custom-id-int", lambda ctx: mjasync.Action(TID, 5), TypeError, "custom_id"),  # type: ignore[arg-type]
    Bad("Modal-nothing", lambda ctx: mjasync.Modal(TID), ValueError, "prompt"),
    Bad("Modal-blank-prompt", lambda ctx: mjasync.Modal(TID, prompt=""), ValueError, "blank"),
    Bad("Modal-prompt-int", lambda ctx: mjasync.Modal(TID, prompt=5), TypeError, "prompt"),  # type: ignore[arg-type]
    Bad("Modal-mask-jpeg", lambda ctx: mjasync.Modal(TID, mask=JPEG), ValueError, "PNG"),
    Bad("Modal-mask-int", lambda ctx: mjasync.Modal(TID, mask=5), TypeError, "mask"),  # type: ignore[arg-type]
    Bad("Modal-id", lambda ctx: mjasync.Modal("../x", prompt="p"), ValueError, "task id"),
    Bad("Change-action", lambda ctx: Change(TID, "JUMP", 1), ValueError, "action"),
    Bad("Change-index", lambda ctx: Change(TID, "UPSCALE", 5), ValueError, "index"),
    Bad("Change-id", lambda ctx: Change("a b", "UPSCALE", 1), ValueError, "task id"),
]

WIRE_METHODS = [
    Bad("submit_imagine-blank", lambda ctx: ctx.client.submit_imagine(""), ValueError, "blank"),
    Bad(
        "submit_imagine-mode",
        lambda ctx: ctx.client.submit_imagine("c", mode="hyper"),
        ValueError,
        "mode",
    ),
    Bad(
        "submit_imagine-over-client-cap",
        lambda ctx: client(ctx, max_image_bytes=10).submit_imagine("c", images=[PNG]),
        ValueError,
        "max_image_bytes",
    ),
    Bad("submit_blend-one", lambda ctx: ctx.client.submit_blend([PNG]), ValueError, "2 to 5"),
    Bad("submit_describe-int", lambda ctx: ctx.client.submit_describe(3), TypeError, "bytes"),  # type: ignore[arg-type]
    Bad("submit_shorten-blank", lambda ctx: ctx.client.submit_shorten(" "), ValueError, "blank"),
    Bad(
        "submit_action-id", lambda ctx: ctx.client.submit_action("../x", CID), ValueError, "task id"
    ),
    Bad(
        "submit_action-cid",
        lambda ctx: ctx.client.submit_action(TID, "U1"),
        ValueError,
        "custom id",
    ),
    Bad("submit_modal-nothing", lambda ctx: ctx.client.submit_modal(TID), ValueError, "prompt"),
    Bad(
        "submit_modal-jpeg", lambda ctx: ctx.client.submit_modal(TID, mask=JPEG), ValueError, "PNG"
    ),
    Bad(
        "submit_request-object",
        lambda ctx: ctx.client.submit_request(object()),
        TypeError,
        "request",
    ),  # type: ignore[arg-type]
    Bad("submit_request-str", lambda ctx: ctx.client.submit_request("a cat"), TypeError, "request"),  # type: ignore[arg-type]
    Bad("request_body-object", lambda ctx: ctx.client.request_body(object()), TypeError, "request"),  # type: ignore[arg-type]
    Bad("fetch-traversal", lambda ctx: ctx.client.fetch("../x"), ValueError, "task id"),
    Bad("fetch-too-long", lambda ctx: ctx.client.fetch("1" * 65), ValueError, "task id"),
    Bad("fetch-none", lambda ctx: ctx.client.fetch(None), TypeError, "task id"),  # type: ignore[arg-type]
    Bad("fetch-mode", lambda ctx: ctx.client.fetch(TID, mode="slow"), ValueError, "mode"),
    Bad("fetch_many-str", lambda ctx: ctx.client.fetch_many(TID), TypeError, "single str"),
    Bad("fetch_many-int", lambda ctx: ctx.client.fetch_many(5), TypeError, "int"),  # type: ignore[arg-type]
    Bad("fetch_many-none-id", lambda ctx: ctx.client.fetch_many([TID, None]), TypeError, "task id"),  # type: ignore[list-item]
    Bad(
        "fetch_many-bad-id", lambda ctx: ctx.client.fetch_many([TID, "a/b"]), ValueError, "task id"
    ),
    Bad("image_seed-query", lambda ctx: ctx.client.image_seed("1?x=2"), ValueError, "task id"),
    Bad("image_seed-none", lambda ctx: ctx.client.image_seed(None), TypeError, "task id"),  # type: ignore[arg-type]
    Bad("cancel-traversal", lambda ctx: ctx.client.cancel("../../admin"), ValueError, "task id"),
    Bad("cancel-bool", lambda ctx: ctx.client.cancel(True), TypeError, "task id"),  # type: ignore[arg-type]
]

JOB_API = [
    Bad("submit-object", lambda ctx: ctx.client.submit(object()), TypeError, "request"),  # type: ignore[arg-type]
    Bad("submit-str", lambda ctx: ctx.client.submit("a cat"), TypeError, "Imagine"),  # type: ignore[arg-type]
    Bad(
        "submit-mode",
        lambda ctx: ctx.client.submit(mjasync.Imagine("c"), mode="slow"),
        ValueError,
        "mode",
    ),
    Bad(
        "run-timeout-negative",
        lambda ctx: ctx.client.run(mjasync.Imagine("c"), timeout=-1),
        ValueError,
        "timeout",
    ),
    Bad(
        "run-timeout-nan",
        lambda ctx: ctx.client.run(mjasync.Imagine("c"), timeout=NAN),
        ValueError,
        "timeout",
    ),
    Bad(
        "run-timeout-str",
        lambda ctx: ctx.client.run(mjasync.Imagine("c"), timeout="9"),
        TypeError,
        "timeout",
    ),  # type: ignore[arg-type]
    Bad(
        "run-timeout-bool",
        lambda ctx: ctx.client.run(mjasync.Imagine("c"), timeout=True),
        TypeError,
        "timeout",
    ),
    Bad("imagine-blank", lambda ctx: ctx.client.imagine(""), ValueError, "blank"),
    Bad("imagine-timeout", lambda ctx: ctx.client.imagine("c", timeout=-5), ValueError, "timeout"),
    Bad("imagine-images", lambda ctx: ctx.client.imagine("c", images=[7]), TypeError, "bytes"),  # type: ignore[list-item]
    Bad("job-id", lambda ctx: ctx.client.job("a/b"), ValueError, "task id"),
    Bad("job-none", lambda ctx: ctx.client.job(None), TypeError, "task id"),  # type: ignore[arg-type]
    Bad("job-mode", lambda ctx: ctx.client.job(TID, mode="slow"), ValueError, "mode"),
    Bad("watch-str", lambda ctx: ctx.client.watch(TID), TypeError, "single str"),
    Bad("watch-none-id", lambda ctx: ctx.client.watch([None]), TypeError, "task id"),  # type: ignore[list-item]
    Bad("watch-bad-id", lambda ctx: ctx.client.watch(["1", "a/b"]), ValueError, "task id"),
    Bad("watch-mode", lambda ctx: ctx.client.watch([TID], mode="slow"), ValueError, "mode"),
    Bad("stream-object", lambda ctx: ctx.client.stream([object()]), TypeError, "request"),  # type: ignore[list-item]
    Bad("stream-str", lambda ctx: ctx.client.stream("abc"), TypeError, "request"),  # type: ignore[arg-type]
    Bad(
        "stream-mode",
        lambda ctx: ctx.client.stream([mjasync.Imagine("c")], mode="slow"),
        ValueError,
        "mode",
    ),
    Bad("gather-object", lambda ctx: ctx.client.gather([object()]), TypeError, "request"),  # type: ignore[list-item]
    Bad(
        "gather-good-then-bad",  # all or nothing: the good one must not be sent either
        lambda ctx: ctx.client.gather([mjasync.Imagine("fine"), 42]),  # type: ignore[list-item]
        TypeError,
        "request",
    ),
    Bad(
        "gather-good-then-oversized",
        lambda ctx: client(ctx, max_image_bytes=10).gather(
            [mjasync.Imagine("fine"), mjasync.Imagine("big", [PNG])]
        ),
        ValueError,
        "max_image_bytes",
    ),
    Bad("gather-str", lambda ctx: ctx.client.gather("abc"), TypeError, "request"),  # type: ignore[arg-type]
    Bad(
        "gather-mode",
        lambda ctx: ctx.client.gather([mjasync.Imagine("c")], mode="slow"),
        ValueError,
        "mode",
    ),
    Bad(
        "action-no-such-button", lambda ctx: ctx.client.action(GRID, "U9"), ValueError, "available"
    ),
    Bad("action-button-int", lambda ctx: ctx.client.action(GRID, 5), TypeError, "button"),  # type: ignore[arg-type]
    Bad("action-button-none", lambda ctx: ctx.client.action(TID, None), TypeError, "button"),  # type: ignore[arg-type]
    Bad("action-task-id", lambda ctx: ctx.client.action("a/b", "U1"), ValueError, "task id"),
    Bad("action-custom-id", lambda ctx: ctx.client.action(GRID, "MJ::"), ValueError, "custom id"),
    Bad(
        "action-prompt-int",
        lambda ctx: ctx.client.action(GRID, "U1", prompt=5),
        TypeError,
        "prompt",
    ),  # type: ignore[arg-type]
    Bad("action-mask", lambda ctx: ctx.client.action(GRID, "U1", mask=b"no"), ValueError, "mask"),
    Bad("action-mode", lambda ctx: ctx.client.action(GRID, "U1", mode="slow"), ValueError, "mode"),
    Bad(
        "action-timeout",
        lambda ctx: ctx.client.action(GRID, "U1", timeout=-1),
        ValueError,
        "timeout",
    ),
    *(
        Bad(f"upscale-{v!r}", lambda ctx, v=v: ctx.client.upscale(GRID, v), ValueError, "index")
        for v in (0, 5, True, "1", 1.0)
    ),
    Bad("variation-9", lambda ctx: ctx.client.variation(GRID, 9), ValueError, "index"),
    Bad(
        "upscale-timeout",
        lambda ctx: ctx.client.upscale(GRID, 1, timeout=NAN),
        ValueError,
        "timeout",
    ),
    Bad("pan-diagonal", lambda ctx: ctx.client.pan(UPSCALED, "diagonal"), ValueError, "direction"),
    Bad("pan-missing-button", lambda ctx: ctx.client.pan(GRID, "left"), ValueError, "available"),
    Bad("zoom-3x", lambda ctx: ctx.client.zoom(UPSCALED, 3), ValueError, "factor"),
    Bad("zoom-missing-button", lambda ctx: ctx.client.zoom(GRID, 2), ValueError, "available"),
    Bad("vary-missing-button", lambda ctx: ctx.client.vary(GRID), ValueError, "available"),
    *(
        Bad(
            f"custom_zoom-{v!r}",
            lambda ctx, v=v: ctx.client.custom_zoom(UPSCALED, zoom=v),
            ValueError,
            "zoom",
        )
        for v in (0.5, 2.5, "2", True, NAN)
    ),
    Bad("custom_zoom-grid", lambda ctx: ctx.client.custom_zoom(GRID), ValueError, "custom_zoom"),
    Bad("custom_zoom-task-id", lambda ctx: ctx.client.custom_zoom("a/b"), ValueError, "task id"),
    Bad(
        "custom_zoom-timeout",
        lambda ctx: ctx.client.custom_zoom(UPSCALED, timeout=-1),
        ValueError,
        "timeout",
    ),
    Bad(
        "vary_region-jpeg",
        lambda ctx: ctx.client.vary_region(UPSCALED, mask=JPEG),
        ValueError,
        "PNG",
    ),
    Bad("vary_region-int", lambda ctx: ctx.client.vary_region(UPSCALED, mask=5), TypeError, "mask"),  # type: ignore[arg-type]
    Bad(
        "vary_region-grid",
        lambda ctx: ctx.client.vary_region(GRID, mask=PNG),
        ValueError,
        "inpaint",
    ),
    Bad(
        "vary_region-task-id",
        lambda ctx: ctx.client.vary_region("a/b", mask=PNG),
        ValueError,
        "task id",
    ),
]

OTHERS = [
    Bad("request_key-endpoint", lambda ctx: request_key(5, {}), TypeError, "endpoint"),  # type: ignore[arg-type]
    Bad(
        "request_key-body",
        lambda ctx: request_key("/mj/submit/imagine", 5),
        TypeError,
        "body",
    ),  # type: ignore[arg-type]
    Bad(
        "request_key-occurrence",
        lambda ctx: request_key("/mj/submit/imagine", {}, -1),
        ValueError,
        "occurrence",
    ),
    Bad("Journal-path-int", lambda ctx: Journal(5), TypeError, "int"),  # type: ignore[arg-type]
    Bad(
        "Journal-progress-interval",
        lambda ctx: Journal(ctx.tmp / "j.sqlite", progress_interval=-1),
        ValueError,
        "progress_interval",
    ),
    Bad(
        "Journal-busy-timeout",
        lambda ctx: Journal(ctx.tmp / "j.sqlite", busy_timeout=NAN),
        ValueError,
        "busy_timeout",
    ),
    Bad(
        "Downloader-limit",
        lambda ctx: Downloader(ctx.session, ctx.tmp, limit=0),
        ValueError,
        "limit",
    ),
    Bad(
        "Downloader-max-bytes",
        lambda ctx: Downloader(ctx.session, ctx.tmp, max_bytes=0),
        ValueError,
        "max_bytes",
    ),
    Bad("Downloader-session", lambda ctx: Downloader("s", ctx.tmp), TypeError, "session"),  # type: ignore[arg-type]
    Bad(
        "Downloader-unsafe-name",
        lambda ctx: Downloader(ctx.session, ctx.tmp).download(
            ctx.url + "/_sim/img/abc.png", "../a.png"
        ),
        ValueError,
        "unsafe",
    ),
    Bad("split_grid-int", lambda ctx: split_grid(5), TypeError, "int"),  # type: ignore[arg-type]
    Bad(
        "run_batch-str",
        lambda ctx: mjasync.run_batch(ctx.client, "cat", out_dir=ctx.tmp),
        TypeError,
        "single str",
    ),
    Bad(
        "run_batch-item",
        lambda ctx: mjasync.run_batch(ctx.client, ["a", 5], out_dir=ctx.tmp),
        TypeError,
        "item 2",
    ),
    Bad(
        "run_batch-blank",
        lambda ctx: mjasync.run_batch(ctx.client, ["a", " "], out_dir=ctx.tmp),
        ValueError,
        "blank",
    ),
    Bad(
        "run_batch-download-limit",
        lambda ctx: mjasync.run_batch(ctx.client, ["a"], out_dir=ctx.tmp, download_limit=0),
        ValueError,
        "download_limit",
    ),
    Bad(
        "run_batch-upscale",
        lambda ctx: mjasync.run_batch(ctx.client, ["a"], out_dir=ctx.tmp, upscale="some"),  # type: ignore[arg-type]
        ValueError,
        "upscale",
    ),
    Bad(
        "run_batch-out-dir",
        lambda ctx: mjasync.run_batch(ctx.client, ["a"], out_dir=None),
        TypeError,
        "NoneType",
    ),  # type: ignore[arg-type]
    Bad(
        "WebhookReceiver-port", lambda ctx: mjasync.WebhookReceiver(port=70000), ValueError, "port"
    ),
    Bad(
        "WebhookReceiver-port-str",
        lambda ctx: mjasync.WebhookReceiver(port="80"),
        (TypeError, ValueError),
        "port",
    ),  # type: ignore[arg-type]
    Bad("WebhookReceiver-host", lambda ctx: mjasync.WebhookReceiver(host=5), TypeError, "host"),  # type: ignore[arg-type]
    Bad(
        "WebhookReceiver-url",
        lambda ctx: mjasync.WebhookReceiver(public_url="ftp://x"),
        ValueError,
        "public_url",
    ),
    Bad(
        "WebhookReceiver-secret",
        lambda ctx: mjasync.WebhookReceiver(secret="short"),
        ValueError,
        "secret",
    ),
    Bad("WebhookReceiver-path", lambda ctx: mjasync.WebhookReceiver(path=5), TypeError, "path"),  # type: ignore[arg-type]
    Bad(
        "WebhookReceiver-max-body",
        lambda ctx: mjasync.WebhookReceiver(max_body_bytes=0),
        ValueError,
        "max_body_bytes",
    ),
    Bad("RedisLimiter-url-int", lambda ctx: mjasync.RedisLimiter(5, name="a"), TypeError, "url"),  # type: ignore[arg-type]
    Bad(
        "RedisLimiter-url", lambda ctx: mjasync.RedisLimiter("x", name="a"), ValueError, "Redis URL"
    ),
    Bad(
        "RedisLimiter-name",
        lambda ctx: mjasync.RedisLimiter("redis://127.0.0.1:1", name=""),
        ValueError,
        "name",
    ),
    Bad(
        "RedisLimiter-concurrency",
        lambda ctx: mjasync.RedisLimiter("redis://127.0.0.1:1", name="a", concurrency=0),
        ValueError,
        "concurrency",
    ),
    Bad(
        "RedisLimiter-lease",
        lambda ctx: mjasync.RedisLimiter("redis://127.0.0.1:1", name="a", lease_seconds=0),
        ValueError,
        "lease_seconds",
    ),
]

TABLE = [*CLIENT_OPTIONS, *POLICIES, *REQUESTS, *WIRE_METHODS, *JOB_API, *OTHERS]


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MJ_BASE_URL", "MJ_API_KEY", "MJ_MODE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[tuple[Ctx, FakeMidjourney]]:
    async with (
        FakeMidjourney(api_keys=(KEY,)) as fake,
        aiohttp.ClientSession() as session,
        mjasync.Client(fake.base_url, KEY, poll_interval=0.02) as opened,
    ):
        yield Ctx(opened, fake.base_url, session, tmp_path), fake


async def call(row: Bad, context: Ctx) -> None:
    result = row.call(context)
    if inspect.isawaitable(result):
        await result
    elif inspect.isasyncgen(result):
        try:
            await anext(result)
        finally:
            await result.aclose()


def test_table_ids_are_unique() -> None:
    ids = [row.id for row in TABLE]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


@pytest.mark.parametrize("row", TABLE, ids=[row.id for row in TABLE])
async def test_bad_input_is_refused_before_any_request(
    row: Bad, ctx: tuple[Ctx, FakeMidjourney]
) -> None:
    context, fake = ctx
    with pytest.raises(row.error) as caught:
        await call(row, context)
    # Misuse is not a server problem: it is never reported as one of mjasync's own errors.
    assert not isinstance(caught.value, mjasync.MjError)
    assert row.words.lower() in str(caught.value).lower(), str(caught.value)
    assert sum(fake.stats().requests.values()) == 0, dict(fake.stats().requests)


async def test_a_bad_result_timeout_neither_times_out_nor_abandons_the_job(
    ctx: tuple[Ctx, FakeMidjourney],
) -> None:
    context, fake = ctx
    job = await context.client.submit(mjasync.Imagine("patient"))
    for timeout, error in ((-1, ValueError), (NAN, ValueError), ("1", TypeError)):
        with pytest.raises(error, match="timeout"):
            await job.result(timeout=timeout)  # type: ignore[arg-type]
    assert not job.done  # not abandoned: the paid job is still being watched
    task = await job.result(timeout=30)
    assert task.status is TaskStatus.SUCCESS
    assert fake.stats().requests.get("cancel", 0) == 0
