"""``mjasync batch PROMPTS_FILE --out DIR``: many prompts, journaled, downloaded, summarised."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any, Literal

import anyio
import click

from .._batch.batch import Batch, UpscaleChoice
from .._batch.types import BatchSummary
from .._requests import Imagine, Request, Video
from ._config import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    ConfigError,
    Connection,
    ImageOptions,
    connect,
    connection_options,
    image_options,
    translate_errors,
)
from ._display import LiveView, PlainView, View
from ._secrets import key_hint, resume_command

__all__ = ["batch", "read_prompts", "video_request"]


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


def read_prompts(path: str) -> list[str]:
    """The prompts of a file: one per line; blank lines and ``#`` comments are skipped.

    Raises:
        ConfigError: the file is missing, unreadable, not text, empty, or a prompt is invalid.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"prompts file {path!r} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"prompts file {path!r} is a directory") from None
    except UnicodeDecodeError:
        raise ConfigError(f"prompts file {path!r} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"cannot read prompts file {path!r}: {exc.strerror}") from None
    prompts = []
    for number, line in enumerate(text.splitlines(), start=1):
        prompt = line.strip()
        if not prompt or prompt.startswith("#"):
            continue
        try:
            Imagine(prompt)
        except ValueError as exc:
            raise ConfigError(f"{path}, line {number}: {exc}") from None
        prompts.append(prompt)
    if not prompts:
        raise ConfigError(
            f"prompts file {path!r} has no prompts (one per line; blank lines and # comments "
            "are skipped)"
        )
    return prompts


def video_request(line: str, *, motion: str | None = None) -> Video:
    """A prompts-file line as a video: ``[IMAGE] PROMPT``, IMAGE an http(s) URL or a file.

    The first word is the start frame when it is an http(s) URL or names an existing file;
    otherwise the whole line is the prompt.

    Raises:
        ValueError, TypeError: the image is unusable, or nothing is left for the prompt.
    """
    first, _, rest = line.strip().partition(" ")
    image: str | Path | None = None
    if first.startswith(("http://", "https://")):
        image = first
    elif Path(first).is_file():
        image = Path(first)
    if image is None:
        return Video(line.strip(), motion=motion)
    if not rest.strip():
        raise ValueError(f"{line.strip()!r} names a start frame but no prompt")
    return Video(rest.strip(), image=image, motion=motion)


def _video_requests(path: str, prompts: list[str], motion: str | None) -> list[Request]:
    requests: list[Request] = []
    for number, prompt in enumerate(prompts, start=1):
        try:
            requests.append(video_request(prompt, motion=motion))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{path}, prompt {number}: {exc}") from None
    return requests


async def _run(
    conn: Connection,
    prompts: list[str] | list[Request],
    out_dir: Path,
    journal: Path | None,
    upscale: UpscaleChoice,
    split: bool,
    resubmit_uncertain: bool,
    interactive: bool,
    images: ImageOptions,
) -> tuple[BatchSummary, View]:
    async with connect(conn) as client:
        job = Batch(
            client,
            prompts,
            out_dir=out_dir,
            journal=journal,
            upscale=upscale,
            split=split,
            resubmit_uncertain=resubmit_uncertain,
            allow_private_image_hosts=images.allow_private_hosts,
            image_read_timeout=images.read_timeout,
        )
        header = (
            f"mjasync batch: {job.total} prompts on {conn.where} -> {out_dir} "
            f"(journal {job.journal_path})"
        )
        view: View = LiveView(job.total, header) if interactive else PlainView(job.total, header)
        async with anyio.create_task_group() as tg:
            tg.start_soon(view.run)
            try:
                summary = await job.run(view.on_event)
            finally:
                tg.cancel_scope.cancel()
                view.close()
        return summary, view


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
@click.option("--upscale", type=UpscaleType(), help="Upscale U1-U4 (or all) of every grid.")
@click.option("--split", is_flag=True, help="Also cut each grid into four files (needs Pillow).")
@click.option(
    "--video",
    "as_video",
    is_flag=True,
    help="Animate instead of imagine: each line is '[IMAGE] PROMPT' (IMAGE an http(s) URL or "
    "a file); the .mp4 files are downloaded.",
)
@click.option(
    "--motion",
    type=click.Choice(["low", "high"]),
    help="With --video: how much moves [server: low].",
)
@click.option(
    "--resubmit-uncertain",
    is_flag=True,
    help="Resend submits whose answer was lost earlier (they may be paid twice).",
)
@image_options
@connection_options(simulate=True, concurrency=True)
def batch(
    prompts_file: str,
    out_dir: Path,
    journal: Path | None,
    upscale: UpscaleChoice,
    split: bool,
    as_video: bool,
    motion: str | None,
    resubmit_uncertain: bool,
    **options: Any,
) -> None:
    """Generate every prompt of PROMPTS_FILE (one per line; blank lines and # comments skipped).

    Images (with --video: .mp4 videos and their posters), manifest.jsonl and an index.html
    contact sheet go to --out. A journal records every
    submission before and after it is sent: run the same command again after a crash or
    Ctrl-C and it finishes the batch without paying twice. Only one batch at a time may use a
    journal or an output directory. Exit status: 0 if every prompt succeeded, 1 if some failed
    or are uncertain, 2 for usage or configuration errors (another batch holding the journal
    included), 130 if interrupted.
    """
    images = ImageOptions.from_options(options)
    conn = Connection.from_options(options)
    prompts = read_prompts(prompts_file)
    if motion is not None and not as_video:
        raise ConfigError("--motion goes with --video")
    if as_video and (upscale is not None or split):
        raise ConfigError("--video makes videos: --upscale and --split do not apply")
    requests: list[str] | list[Request] = (
        _video_requests(prompts_file, prompts, motion) if as_video else prompts
    )
    if split and importlib.util.find_spec("PIL") is None:
        raise ConfigError("--split needs Pillow: pip install 'mjasync[images]'")
    interactive = sys.stdout.isatty()
    try:
        with translate_errors():
            summary, view = asyncio.run(
                _run(
                    conn,
                    requests,
                    out_dir,
                    journal,
                    upscale,
                    split,
                    resubmit_uncertain,
                    interactive,
                    images,
                )
            )
    except KeyboardInterrupt:
        # Never echo the command line as typed: it may hold --api-key.
        command, dropped = resume_command(sys.argv[1:])
        hint = key_hint(dropped)
        journal_shown = os.fspath(journal or out_dir / "journal.sqlite")
        click.echo(
            f"mjasync batch: interrupted; the journal ({journal_shown}) is saved. "
            f"Resume with: {command}" + (f" {hint}" if hint else ""),
            err=True,
        )
        sys.exit(EXIT_INTERRUPTED)
    view.summary(summary)
    sys.exit(0 if summary.ok else EXIT_FAILED)
