"""Single-job commands: ``imagine``, ``describe``, ``video``, ``fetch`` and ``action``."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Coroutine
from contextlib import aclosing
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from .._batch.download import Downloader, ImageHostPolicy, image_session
from .._client import Client
from .._models import Task, TaskAction, TaskStatus
from .._requests import Describe, Imagine, Request, Video
from ._config import (
    EXIT_INTERRUPTED,
    Connection,
    ImageOptions,
    connect,
    connection_options,
    image_options,
    server_text,
    translate_errors,
)
from ._secrets import redact

__all__ = ["action", "describe", "fetch", "image_argument", "imagine", "video"]

_OUT = click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Download the result's images into this directory.",
)
_SIMULATED_URLS = (
    "(simulated: image URLs work only while a --simulate command runs; --out DIR saves the "
    "images, or later: mjasync fetch ID --simulate --out DIR)"
)


def _run(coro: Coroutine[Any, Any, None], verbose: bool = False) -> None:
    """Run a command's coroutine; errors become one line, Ctrl-C exits 130."""
    try:
        with translate_errors(verbose):
            asyncio.run(coro)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)


def _say(line: str) -> None:
    # Every field shown here comes from the server: none may carry the key to the screen.
    click.echo(redact(line))


def _show_task(task: Task, files: list[str], conn: Connection) -> None:
    text_result = task.action in (TaskAction.DESCRIBE, TaskAction.SHORTEN)
    _say(f"task {task.id}: {task.action.value} {task.status.value}")
    if task.prompt and not text_result:
        _say(f"prompt: {task.prompt}")
    if task.image_url:
        _say(f"{'poster' if task.videos else 'image'}: {task.image_url}")
    for number, ref in enumerate(task.videos, start=1):
        _say(f"video {number}: {ref.url}")
    if task.fail_reason:
        _say(f"fail reason: {server_text(task.fail_reason, conn.verbose)}")
    if text_result and task.final_prompt:
        _say(task.final_prompt)
    if task.buttons and not text_result:
        _say("buttons: " + " ".join(button.name for button in task.buttons))
        _say(f"press one: mjasync action {task.id} BUTTON" + (" --simulate" * conn.simulate))
    for path in files:
        _say(f"saved: {path}")
    if conn.simulate and task.image_url and not files:
        _say(_SIMULATED_URLS)


async def _download(
    client: Client,
    task: Task,
    out_dir: Path | None,
    images: ImageOptions,
    label: str | None = None,
) -> list[str]:
    if out_dir is None or task.status is not TaskStatus.SUCCESS:
        return []
    # A session of our own: image hosts never see the API key, and it connects only to
    # public hosts and the API server itself (unless --allow-private-image-hosts).
    policy = ImageHostPolicy(images.allow_private_hosts, client.base_url)
    async with image_session(policy) as session:
        downloader = Downloader(
            session,
            out_dir,
            read_timeout=images.read_timeout,
            allow_private_image_hosts=policy.allow_private,
            api_server=policy.api_server,
        )
        paths = await downloader.fetch_task_images(task, label=label)
    return [str(p) for p in paths]


def _label(button: str) -> str | None:
    """The file-name label for a pressed button: ``U2``, ``V1``; ``None`` for the others."""
    text = button.strip()
    return text.upper() if re.fullmatch(r"[UuVv][1-4]", text) else None


async def _follow(client: Client, request: Request) -> Task:
    """Submit and wait, showing progress (a spinner on a terminal, lines otherwise)."""
    job = await client.submit(request)
    interactive = sys.stderr.isatty()
    console = Console(stderr=True)
    click.echo(f"submitted task {job.id}", err=True)
    if interactive:
        with console.status(f"task {job.id}: waiting") as status:
            async with aclosing(job.events()) as events:
                async for event in events:
                    percent = f" {event.progress}%" if event.progress is not None else ""
                    status.update(f"task {job.id}: {event.status.value}{percent}")
    else:
        async with aclosing(job.events()) as events:
            async for event in events:
                percent = f" {event.progress}%" if event.progress is not None else ""
                click.echo(f"task {job.id}: {event.status.value}{percent}", err=True)
    return await job.result()


async def _press(client: Client, task: Task | str, button: str) -> Task:
    """Press ``button`` of ``task`` and wait (a MODAL step is answered for you)."""
    return await client.action(task, button)


@click.command()
@click.argument("prompt")
@click.option(
    "--then",
    "then",
    multiple=True,
    metavar="BUTTON",
    help="Then press BUTTON (U1-U4, V1-V4, ...) of the result; repeat to chain "
    "(--then V1 --then U2: a variation, then its U2).",
)
@_OUT
@image_options
@connection_options(simulate=True)
def imagine(prompt: str, then: tuple[str, ...], out_dir: Path | None, **options: Any) -> None:
    """Generate one 2x2 grid from PROMPT and print (or --out: save) the result.

    With --simulate, the simulated server keeps its tasks between commands: press a
    button later with `mjasync action ID U2 --simulate`.
    """
    images = ImageOptions.from_options(options)
    conn = Connection.from_options(options)
    with translate_errors(conn.verbose):
        request = Imagine(prompt)

    async def main() -> None:
        async with connect(conn) as client:
            task = await _follow(client, request)
            files = await _download(client, task, out_dir, images)
            _show_task(task, files, conn)
            for button in then:
                task = await _press(client, task, button)
                files = await _download(client, task, out_dir, images, _label(button))
                _show_task(task, files, conn)

    _run(main(), conn.verbose)


@click.command()
@click.argument("image")
@connection_options(simulate=True)
def describe(image: str, **options: Any) -> None:
    """Print the four prompts the server suggests for IMAGE (a file, or an http(s) URL)."""
    conn = Connection.from_options(options)
    source: str | Path = image if image.startswith(("http://", "https://")) else Path(image)
    with translate_errors(conn.verbose):
        request = Describe(source)

    async def main() -> None:
        async with connect(conn) as client:
            task = await _follow(client, request)
            _show_task(task, [], conn)

    _run(main(), conn.verbose)


def image_argument(value: str | None) -> str | Path | None:
    """An image given on the command line: an http(s) URL as is, anything else a file."""
    if value is None:
        return None
    return value if value.startswith(("http://", "https://")) else Path(value)


@click.command()
@click.argument("prompt", required=False)
@click.option("--image", metavar="FILE|URL", help="The start frame to animate.")
@click.option("--end-image", metavar="FILE|URL", help="An end frame (not with --loop).")
@click.option("--motion", type=click.Choice(["low", "high"]), help="How much moves [server: low].")
@click.option("--loop", is_flag=True, help="End where it began.")
@click.option("--batch-size", type=click.Choice(["1", "2", "4"]), help="Videos made [server: 4].")
@click.option("--hd", is_flag=True, help="720p instead of 480p (needs an HD-capable account).")
@click.option("--extend", "extend_id", metavar="ID", help="Extend a finished video task instead.")
@click.option(
    "--index",
    type=click.IntRange(1, 4),
    default=1,
    show_default=True,
    help="Which video of --extend's task to continue.",
)
@_OUT
@image_options
@connection_options(simulate=True)
def video(
    prompt: str | None,
    image: str | None,
    end_image: str | None,
    motion: str | None,
    loop: bool,
    batch_size: str | None,
    hd: bool,
    extend_id: str | None,
    index: int,
    out_dir: Path | None,
    **options: Any,
) -> None:
    """Animate an image into short videos (or --extend one) and print (or --out: save) them.

    PROMPT says what happens; with --extend it defaults to the extended task's prompt. With
    --out the .mp4 files are downloaded, and the poster image with them. Needs a server with
    a video endpoint (C# servers, newer relays); `mjasync doctor` tells.
    """
    images = ImageOptions.from_options(options)
    conn = Connection.from_options(options)
    request: Video | None = None
    with translate_errors(conn.verbose):
        if extend_id is not None:
            if image or end_image or loop or batch_size or hd:
                raise ValueError(
                    "--extend takes no --image, --end-image, --loop, --batch-size or --hd"
                )
        elif prompt is None:
            raise ValueError("video needs a PROMPT (or --extend ID)")
        else:
            request = Video(
                prompt,
                image=image_argument(image),
                end_image=image_argument(end_image),
                motion=motion,
                loop=loop,
                batch_size=int(batch_size) if batch_size else None,
                video_type="vid_1.1_i2v_720" if hd else None,
            )

    async def main() -> None:
        async with connect(conn) as client:
            wanted = request
            if wanted is None:
                assert extend_id is not None
                parent = await client.fetch(extend_id)
                wanted = Video.extend(parent, index, prompt=prompt, motion=motion)
            task = await _follow(client, wanted)
            files = await _download(client, task, out_dir, images)
            _show_task(task, files, conn)

    _run(main(), conn.verbose)


@click.command()
@click.argument("task_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print the task as the server sent it.")
@_OUT
@image_options
@connection_options(simulate=True, poll=False)
def fetch(task_id: str, as_json: bool, out_dir: Path | None, **options: Any) -> None:
    """Show one task by its ID (and with --out, save its images). Asks once; never waits."""
    images = ImageOptions.from_options(options)
    conn = Connection.from_options(options)

    async def main() -> None:
        async with connect(conn) as client:
            task = await client.fetch(task_id)
            files = await _download(client, task, out_dir, images)
        if as_json:
            _say(json.dumps(dict(task.raw), indent=2, ensure_ascii=False))
        else:
            _show_task(task, files, conn)

    _run(main(), conn.verbose)


@click.command()
@click.argument("task_id", metavar="ID")
@click.argument("button")
@_OUT
@image_options
@connection_options(simulate=True)
def action(task_id: str, button: str, out_dir: Path | None, **options: Any) -> None:
    """Press BUTTON (U1-U4, V1-V4, reroll, zoom_2x, pan_left, ...) of task ID and wait.

    With --simulate, ID is a task an earlier --simulate command made (the simulated server
    keeps its tasks between commands).
    """
    images = ImageOptions.from_options(options)
    conn = Connection.from_options(options)

    async def main() -> None:
        async with connect(conn) as client:
            task = await _press(client, task_id, button)
            files = await _download(client, task, out_dir, images, _label(button))
            _show_task(task, files, conn)

    _run(main(), conn.verbose)
