"""The batch's two reports in the output directory: ``manifest.jsonl`` and ``index.html``.

Both are rewritten whole and atomically (temporary file, fsync, rename), so a reader never
sees half a file and a crash leaves the previous version. Both only ever reference files by
names relative to the output directory, which the downloader chose itself.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from .types import BatchOutcome, PromptResult

__all__ = ["render_index", "render_manifest", "write_atomic"]

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif")
_VIDEO_SUFFIXES = (".mp4",)


def _create_temp(path: Path) -> tuple[Path, int]:
    """A new file beside ``path`` with a name nobody else uses: ``.NAME.<random>.tmp``."""
    # Exclusive and not through a symlink; a fixed name would let two writers (two threads,
    # or a second process) rename or delete each other's temporary file.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_BINARY", 0)
    while True:
        temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return temp, os.open(temp, flags, 0o644)
        except FileExistsError:  # 48 random bits taken: astronomically rare, try again
            continue


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) in one rename. Blocking: run it in a thread."""
    temp, fd = _create_temp(path)
    try:
        with open(fd, "w", encoding="utf-8", newline="\n") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def render_manifest(results: Sequence[PromptResult]) -> str:
    """One JSON object per line and prompt, in input order (see :meth:`PromptResult.to_json`)."""
    return "".join(
        json.dumps(result.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n"
        for result in results
    )


_CSS = """
:root { color-scheme: light dark; --bg: #f6f6f4; --card: #fff; --fg: #1d1d1f; --muted: #6e6e73;
  --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --pending: #57606a; }
@media (prefers-color-scheme: dark) { :root { --bg: #111; --card: #1c1c1e; --fg: #eee;
  --muted: #a1a1a6; } }
* { box-sizing: border-box; }
body { margin: 0; padding: 1.5rem; background: var(--bg); color: var(--fg);
  font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
h1 { font-size: 1.3rem; margin: 0 0 .3rem; overflow-wrap: anywhere; }
.counts { color: var(--muted); margin: 0 0 1.2rem; }
.grid { display: grid; gap: 1rem; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr));
  align-items: start; }
.card { background: var(--card); border-radius: 10px; padding: .75rem;
  box-shadow: 0 1px 3px rgba(0,0,0,.12); display: flex; flex-direction: column; gap: .5rem; }
.card img, .card video { width: 100%; height: auto; border-radius: 6px; display: block; }
.videos { display: flex; flex-direction: column; gap: .4rem; }
.thumbs { display: grid; grid-template-columns: repeat(4, 1fr); gap: .3rem; }
figure { margin: 0; }
figcaption { color: var(--muted); font-size: 11px; text-align: center; }
.upscales { border-top: 1px solid rgba(127,127,127,.25); padding-top: .4rem; }
.upscales .thumbs { grid-template-columns: repeat(auto-fill, minmax(56px, 1fr)); }
.prompt { margin: 0; word-break: break-word; }
.meta { color: var(--muted); font-size: 12px; display: flex; gap: .5rem; flex-wrap: wrap; }
.badge { font-weight: 600; text-transform: uppercase; font-size: 11px; letter-spacing: .03em; }
.succeeded .badge { color: var(--ok); } .failed .badge { color: var(--bad); }
.uncertain .badge { color: var(--warn); } .pending .badge { color: var(--pending); }
.error { color: var(--bad); font-size: 12px; margin: 0; word-break: break-word; }
.noimage { color: var(--muted); font-size: 12px; padding: 2rem 0; text-align: center;
  border: 1px dashed var(--muted); border-radius: 6px; }
"""


def _href(relative: str) -> str:
    # Our names are already plain ASCII slugs; quoting keeps the link valid if that changes.
    return html.escape(quote(relative, safe="/"), quote=True)


def _images(files: Sequence[str]) -> list[str]:
    return [f for f in files if f.lower().endswith(_IMAGE_SUFFIXES)]


def _videos(files: Sequence[str]) -> list[str]:
    return [f for f in files if f.lower().endswith(_VIDEO_SUFFIXES)]


def _video_section(videos: Sequence[str], poster: str | None, prompt: str) -> str:
    """The players of a video task, each with the task's image as its poster."""
    # preload="none": a sheet of dozens of videos loads nothing until one is played.
    shown = f' poster="{_href(poster)}"' if poster else ""
    players = "".join(
        f'<video controls loop muted playsinline preload="none"{shown} src="{_href(video)}" '
        f'aria-label="{html.escape(f"video {n} of: {prompt}", quote=True)}">'
        f'<a href="{_href(video)}">{html.escape(video)}</a></video>'
        for n, video in enumerate(videos, start=1)
    )
    return f'<section class="videos" aria-label="videos">{players}</section>'


def _figure(file: str, caption: str, alt: str = "") -> str:
    return (
        f'<figure><a href="{_href(file)}"><img src="{_href(file)}" loading="lazy" '
        f'alt="{html.escape(alt, quote=True)}"></a>'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _section(kind: str, title: str, figures: list[str]) -> str:
    return (
        f'<section class="{kind}" aria-label="{html.escape(title, quote=True)}">'
        f'<div class="thumbs">{"".join(figures)}</div></section>'
    )


def _upscale_figures(result: PromptResult) -> tuple[list[str], list[str]]:
    """The upscales' images, labelled by button; and a note per upscale without one."""
    figures, missing = [], []
    for upscale in result.upscales:
        label = upscale.button or "upscale"
        images = _images(upscale.files)
        for n, file in enumerate(images, start=1):
            caption = label if len(images) == 1 else f"{label} ({n})"
            figures.append(_figure(file, caption, f"{label} of: {result.prompt}"))
        if not images:
            grid_failed = upscale.outcome is BatchOutcome.PENDING and result.main.outcome in (
                BatchOutcome.FAILED,
                BatchOutcome.UNCERTAIN,
            )
            missing.append(f"{label}: {'not run' if grid_failed else upscale.outcome.value}")
    return figures, missing


def _card(result: PromptResult) -> str:
    """One prompt: its grid, the grid's four images, its upscales (each labelled), status.

    The sections are the prompt's own job (``grid``: the grid and its parts, numbered 1-4
    like Midjourney's buttons) and each kind of follow-up (``upscales``: labelled U1-U4);
    more kinds (videos) get sections of their own.
    """
    outcome = result.outcome.value
    own = _images(result.main.files)
    videos = _videos(result.main.files)
    parts = [f'<div class="card {outcome}">']
    if videos:
        # A video task's image is its poster: shown on the players, not beside them.
        parts.append(_video_section(videos, own[0] if own else None, result.prompt))
    elif own:
        grid, rest = own[0], own[1:]
        parts.append(
            f'<a href="{_href(grid)}"><img src="{_href(grid)}" loading="lazy" '
            f'alt="{html.escape(result.prompt, quote=True)}"></a>'
        )
        if rest:
            figures = [
                _figure(f, str(n), f"image {n} of: {result.prompt}")
                for n, f in enumerate(rest, start=1)
            ]
            parts.append(_section("parts", "the grid's images", figures))
    else:
        parts.append('<div class="noimage">no image</div>')
    upscales, missing = _upscale_figures(result)
    if upscales:
        parts.append(_section("upscales", "upscales", upscales))
    parts.append(f'<p class="prompt">{html.escape(result.prompt)}</p>')
    meta = [
        f'<span class="badge">{html.escape(outcome)}</span>',
        f"<span>#{result.index + 1}</span>",
    ]
    if result.task_id:
        meta.append(f"<span>task {html.escape(result.task_id)}</span>")
    if result.main.status:
        meta.append(f"<span>{html.escape(result.main.status)}</span>")
    meta.extend(f"<span>{html.escape(note)}</span>" for note in missing)
    parts.append(f'<div class="meta">{"".join(meta)}</div>')
    if result.error:
        parts.append(f'<p class="error">{html.escape(result.error)}</p>')
    parts.append("</div>")
    return "".join(parts)


def render_index(results: Sequence[PromptResult], *, title: str = "mjasync batch") -> str:
    """A self-contained contact sheet: every prompt with its images, status and error.

    Videos are ``<video>`` players with the task's image as their poster. Inline CSS, no
    scripts, no external assets; files are linked by relative names, so the output directory
    can be moved or zipped as a whole.
    """
    tally = dict.fromkeys((o.value for o in BatchOutcome), 0)
    for result in results:
        tally[result.outcome.value] += 1
    counts = ", ".join(f"{n} {name}" for name, n in tally.items() if n) or "no prompts"
    cards = "\n".join(_card(result) for result in results)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n"
        f"<body><h1>{html.escape(title)}</h1>"
        f'<p class="counts">{len(results)} prompts: {html.escape(counts)}</p>\n'
        f'<div class="grid">\n{cards}\n</div></body></html>\n'
    )
