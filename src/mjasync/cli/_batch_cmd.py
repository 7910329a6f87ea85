"""``mjasync batch PROMPTS_FILE --out DIR``: many prompts, journaled, downloaded, summarised."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any, Literal

import anyio
import attrs
import click

from .._batch.batch import Batch, UpscaleChoice
from .._batch.types import BatchItem, BatchSummary
from .._requests import Imagine, Video
from ._config import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    CliError,
    ConfigError,
    Connection,
    ImageOptions,
    connect,
    connection_options,
    image_options,
    translate_errors,
)
from ._display import LiveView, PlainView, View
from ._prompts import PromptFormat, read_prompts
from ._secrets import key_hint, resume_command

__all__ = ["batch", "read_prompts", "simulator_state_for", "video_item"]


def video_item(item: str | BatchItem, *, motion: str | None = None) -> BatchItem:
    """A prompts-file row as a video: its first image (or a leading URL) is the start frame.

    A row's ``images`` (JSONL, CSV) come first; on a plain line, a first word that is an
    http(s) URL, or names an existing file, is the start frame and the rest the prompt.

    Raises:
        ValueError, TypeError: more than one image, an unusable one, or no prompt left.
    """
    options = item if isinstance(item, BatchItem) else BatchItem(item)
    request = options.request
    text = request.prompt if isinstance(request, Imagine) else str(request)
    images: list[str | Path] = list(request.images) if isinstance(request, Imagine) else []
    first, _, rest = text.strip().partition(" ")
    if first.startswith(("http://", "https://")):
        images.insert(0, first)
        text = rest
    elif not images and first and Path(first).is_file():
        images.append(Path(first))
        text = rest
    if len(images) > 1:
        raise ValueError("a video takes one start image")
    if not text.strip():
        raise ValueError(f"{request!r} names a start frame but no prompt")
    video = Video(text.strip(), image=images[0] if images else None, motion=motion)
    return attrs.evolve(options, request=video, upscale=None)


class UpscaleType(click.ParamType[int | Literal["all"]]):
    """``--upscale``: a button number 1-4, or ``all``."""

    name = "1-4|all"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> int | Literal["all"]:
        text = str(value).strip().lower()
        if text == "all":
            return "all"
        if text in ("1", "2", "3", "4"):
            return int(text)
        return self.fail(f"{value!r} is not 1, 2, 3, 4 or 'all'", param, ctx)


async def _confirm_retry(job: Batch, conn: Connection, *, yes: bool, can_ask: bool) -> None:
    """Say what ``--retry-failed`` will pay before it pays; ask, or insist on ``--yes``."""
    plan = await job.preview()
    if not plan.retried:
        click.echo("--retry-failed: nothing failed earlier; nothing to submit again", err=True)
        return
    what = (
        f"--retry-failed: {plan.retried} failed or lost request(s) will be submitted again; "
        f"this run submits at most {plan.submits} job(s) in all"
    )
    if conn.simulate:
        click.echo(f"{what} (simulated: nothing is paid)", err=True)
        return
    click.echo(f"{what}. Each one is paid again.", err=True)
    if yes:
        return
    if not can_ask:
        raise ConfigError(
            f"--retry-failed would pay for {plan.retried} job(s) again; add --yes to confirm "
            "(there is no terminal to ask on)"
        )
    # Asked on the event loop's own thread, on purpose: nothing runs yet, and Ctrl-C at the
    # question then stops the command at once (a worker thread would wait for the answer).
    if not click.confirm("Submit them again?", default=False, err=True):
        raise CliError("nothing was sent (--retry-failed not confirmed)")


async def _run(
    conn: Connection,
    items: list[str | BatchItem],
    out_dir: Path,
    journal: Path | None,
    settings: _Settings,
    images: ImageOptions,
) -> tuple[BatchSummary, View]:
    async with connect(conn) as client:
        job = Batch(
            client,
            items,
            out_dir=out_dir,
            journal=journal,
            upscale=settings.upscale,
            split=settings.split,
            resubmit_uncertain=settings.resubmit_uncertain,
            retry_failed=settings.retry_failed,
            allow_private_image_hosts=images.allow_private_hosts,
            image_read_timeout=images.read_timeout,
        )
        if settings.retry_failed:
            await _confirm_retry(job, conn, yes=settings.yes, can_ask=settings.can_ask)
        header = (
            f"mjasync batch: {job.total} prompts on {conn.where} -> {out_dir} "
            f"(journal {job.journal_path})"
        )
        view: View = (
            LiveView(job.total, header, verbose=conn.verbose)
            if settings.interactive
            else PlainView(job.total, header, verbose=conn.verbose)
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(view.run)
            try:
                summary = await job.run(view.on_event)
            finally:
                tg.cancel_scope.cancel()
                view.close()
        return summary, view


@attrs.frozen
class _Settings:
    upscale: UpscaleChoice
    split: bool
    resubmit_uncertain: bool
    retry_failed: bool
    yes: bool
    interactive: bool
    can_ask: bool


@click.command()
@click.argument("prompts_file", metavar="PROMPTS_FILE")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output directory: images, manifest.jsonl, index.html, journal.",
)
@click.option(
    "--journal",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Journal file [default: DIR/journal.sqlite]. Rerun with the same one to resume.",
)
@click.option(
    "--format",
    "prompt_format",
    type=click.Choice(["auto", "lines", "jsonl", "csv"]),
    default="auto",
    show_default=True,
    help="Format of PROMPTS_FILE; auto goes by the suffix (.jsonl, .csv, else lines).",
)
@click.option("--upscale", type=UpscaleType(), help="Upscale U1-U4 (or all) of every grid.")
@click.option(
    "--split",
    is_flag=True,
    help="Also cut each grid into four files (needs Pillow); grids whose four images the "
    "server sends itself are not cut, and the summary says so.",
)
@click.option(
    "--resubmit-uncertain",
    is_flag=True,
    help="Resend submits whose answer was lost earlier (they may be paid twice).",
)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Submit again the prompts that failed earlier or whose task the server lost (paid "
    "again: says how many and asks first).",
)
@click.option("-y", "--yes", is_flag=True, help="Do not ask before --retry-failed pays again.")
@click.option(
    "--video",
    "as_video",
    is_flag=True,
    help="Animate instead of imagine: each prompt's image (or a leading URL or file on a "
    "line) is the start frame; the .mp4 files are downloaded.",
)
@click.option(
    "--motion",
    type=click.Choice(["low", "high"]),
    help="With --video: how much moves [server: low].",
)
@image_options
@connection_options(simulate=True, concurrency=True)
def batch(
    prompts_file: str,
    out_dir: Path,
    journal: Path | None,
    prompt_format: PromptFormat,
    upscale: UpscaleChoice,
    split: bool,
    resubmit_uncertain: bool,
    retry_failed: bool,
    yes: bool,
    as_video: bool,
    motion: str | None,
    **options: Any,
) -> None:
    """Generate every prompt of PROMPTS_FILE ('-' reads standard input).

    \b
    PROMPTS_FILE is one of:
      lines  one prompt per line; blank lines and # comments are skipped
      JSONL  (.jsonl) one object per line: {"prompt": "a red fox", "upscale": 2}
      CSV    (.csv) a header row naming the fields, then one row per prompt
    Fields: prompt (required); images: URLs (put in front of the prompt) or file paths
    (relative to the file; sent as images), a JSON list or space-separated in CSV; mode:
    fast|relax|turbo; upscale: 1-4|all|none (overrides --upscale); name: the words the
    files are named with. Every row is checked before anything is sent.

    With --video each prompt is animated instead (its image, or a leading URL or file on a
    plain line, is the start frame) and the .mp4 files are downloaded.

    Images (videos), manifest.jsonl and an index.html contact sheet go to --out. A journal
    records every submission before and after it is sent: run the same command again after a
    crash or Ctrl-C and it finishes the batch without paying twice, and downloads again any image
    that went missing. Prompts that failed stay failed until --retry-failed. With --simulate
    the simulated server keeps its tasks beside the journal, so a simulated batch resumes
    the same way. Only one batch at a time may use a journal or an output directory. Exit
    status: 0 if every prompt succeeded, 1 if some failed or are uncertain, 2 for usage or
    configuration errors (another batch holding the journal included), 130 if interrupted.
    """
    images = ImageOptions.from_options(options)
    conn = Connection.from_options(options)
    items = read_prompts(prompts_file, prompt_format)
    if motion is not None and not as_video:
        raise ConfigError("--motion goes with --video")
    if as_video:
        if upscale is not None or split:
            raise ConfigError("--video makes videos: --upscale and --split do not apply")
        items = _video_items(prompts_file, items, motion)
    if split and importlib.util.find_spec("PIL") is None:
        raise ConfigError("--split needs Pillow: pip install 'mjasync[images]'")
    journal_path = journal or out_dir / "journal.sqlite"
    if conn.simulate:  # the simulated account lives beside the journal it belongs to
        conn = attrs.evolve(conn, simulate_state=simulator_state_for(journal_path))
    from_stdin = prompts_file == "-"
    settings = _Settings(
        upscale=upscale,
        split=split,
        resubmit_uncertain=resubmit_uncertain,
        retry_failed=retry_failed,
        yes=yes,
        interactive=sys.stdout.isatty(),
        can_ask=sys.stdin.isatty() and not from_stdin,
    )
    try:
        with translate_errors(conn.verbose):
            summary, view = asyncio.run(_run(conn, items, out_dir, journal, settings, images))
    except KeyboardInterrupt:
        # Never echo the command line as typed: it may hold --api-key.
        command, dropped = resume_command(sys.argv[1:])
        hint = key_hint(dropped)
        if from_stdin:
            hint = (hint + " " if hint else "") + "(with the same prompts on standard input)"
        click.echo(
            f"mjasync batch: interrupted; the journal ({os.fspath(journal_path)}) is saved. "
            f"Resume with: {command}" + (f" {hint}" if hint else ""),
            err=True,
        )
        sys.exit(EXIT_INTERRUPTED)
    view.summary(summary)
    sys.exit(0 if summary.ok else EXIT_FAILED)


def simulator_state_for(journal: Path) -> Path:
    """Where a simulated batch keeps its simulator's tasks: beside the journal."""
    return journal.with_name(journal.stem + ".simulator.jsonl")


def _video_items(
    source: str, items: list[str | BatchItem], motion: str | None
) -> list[str | BatchItem]:
    videos: list[str | BatchItem] = []
    for number, item in enumerate(items, start=1):
        try:
            videos.append(video_item(item, motion=motion))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{source}, prompt {number}: {exc}") from None
    return videos
