"""Prompt files for ``mjasync batch``: plain lines, JSON lines or CSV, from a file or stdin.

Every row is checked before anything is sent; a bad one is a :class:`ConfigError` that names
the file and the line. The formats:

* **lines** (``.txt``, anything else): one prompt per line; blank lines and ``#`` comments
  are skipped.
* **JSONL** (``.jsonl``, ``.ndjson``): one JSON object per line with the fields below (a
  bare JSON string is a prompt); blank lines and ``#`` comments are skipped.
* **CSV** (``.csv``): a header row naming the fields below, then one row per prompt.

Fields: ``prompt`` (required); ``images``: image references, a list in JSON or separated by
spaces in CSV: ``http(s)`` URLs go in front of the prompt, as Midjourney expects them, and
file paths (relative to the prompts file) are sent as images; ``mode``: fast, relax or turbo;
``upscale``: 1-4, all or none (overrides ``--upscale``); ``name``: the words the files are
named with instead of the prompt's.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO, Literal

from .._batch.types import BatchItem
from .._requests import Imagine
from ._config import ConfigError

__all__ = ["FIELDS", "PromptFormat", "parse_prompts", "read_prompts"]

PromptFormat = Literal["auto", "lines", "jsonl", "csv"]
FIELDS = ("prompt", "images", "mode", "upscale", "name")
_SUFFIXES: Mapping[str, PromptFormat] = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
_URL_PREFIXES = ("http://", "https://")

Item = str | BatchItem


def _fail(where: str, what: str) -> ConfigError:
    return ConfigError(f"{where}: {what}")


def _images(value: object, where: str) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise _fail(where, "images must be a list of URLs or file paths")


def _item(row: Mapping[str, object], where: str, base: Path) -> Item:
    """One row's prompt, checked (and its image files read) before anything is sent."""
    unknown = sorted(set(row) - set(FIELDS))
    if unknown:
        raise _fail(
            where,
            f"unknown field(s) {', '.join(map(repr, unknown))}; the fields are "
            + ", ".join(FIELDS),
        )
    prompt = row.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise _fail(where, "'prompt' is missing or empty")
    refs = _images(row.get("images"), where)
    urls = [ref for ref in refs if ref.startswith(_URL_PREFIXES)]
    files = [base / ref for ref in refs if not ref.startswith(_URL_PREFIXES)]
    text = " ".join([*urls, prompt.strip()])
    try:
        request = Imagine(text, images=files)
    except (ValueError, TypeError, OSError) as exc:
        raise _fail(where, str(exc)) from None
    mode, upscale, name = (row.get(key) or None for key in ("mode", "upscale", "name"))
    if mode is None and upscale is None and name is None and not files:
        return request.prompt
    try:
        return BatchItem(request, mode=mode, upscale=upscale, name=name)
    except (ValueError, TypeError) as exc:
        raise _fail(where, str(exc)) from None


def _lines(text: str, source: str) -> list[Item]:
    items: list[Item] = []
    for number, line in enumerate(text.splitlines(), start=1):
        prompt = line.strip()
        if not prompt or prompt.startswith("#"):
            continue
        try:
            Imagine(prompt)
        except ValueError as exc:
            raise _fail(f"{source}, line {number}", str(exc)) from None
        items.append(prompt)
    return items


def _jsonl(text: str, source: str, base: Path) -> list[Item]:
    items: list[Item] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        where = f"{source}, line {number}"
        try:
            row = json.loads(stripped)
        except ValueError as exc:
            raise _fail(where, f"not JSON ({exc.args[0] if exc.args else exc})") from None
        if isinstance(row, str):
            row = {"prompt": row}
        if not isinstance(row, dict):
            raise _fail(where, f"expected a JSON object with a 'prompt', not {type(row).__name__}")
        items.append(_item(row, where, base))
    return items


def _csv(text: str, source: str, base: Path) -> list[Item]:
    reader = csv.DictReader(io.StringIO(text), restkey="\0extra")
    header = [name.strip() for name in reader.fieldnames or ()]
    if "prompt" not in header:
        raise _fail(f"{source}, line 1", "a CSV prompts file needs a header row with 'prompt'")
    reader.fieldnames = header
    items: list[Item] = []
    previous = reader.line_num  # the header's last line
    for row in reader:
        where = f"{source}, line {previous + 1}"  # a quoted cell may span lines
        previous = reader.line_num
        if "\0extra" in row:
            raise _fail(where, f"more cells than the header's {len(header)} columns")
        cells = {k: (v.strip() if isinstance(v, str) else v) for k, v in row.items()}
        if not any(cells.values()):
            continue  # an empty row
        items.append(_item({k: v for k, v in cells.items() if v}, where, base))
    return items


def parse_prompts(
    text: str, *, source: str, fmt: PromptFormat = "lines", base: Path | None = None
) -> list[Item]:
    """The prompts of ``text`` in format ``fmt`` (``auto``: JSONL if it starts with ``{``).

    Raises:
        ConfigError: a row is bad (named by ``source`` and line), or there are no prompts.
    """
    if fmt == "auto":
        first = next(
            (s for s in (ln.strip() for ln in text.splitlines()) if s and not s.startswith("#")),
            "",
        )
        fmt = "jsonl" if first.startswith("{") else "lines"
    folder = base if base is not None else Path.cwd()
    if fmt == "jsonl":
        items = _jsonl(text, source, folder)
    elif fmt == "csv":
        items = _csv(text, source, folder)
    else:
        items = _lines(text, source)
    if not items:
        raise ConfigError(
            f"prompts file {source!r} has no prompts (one per line; blank lines and # comments "
            "are skipped)"
        )
    return items


def read_prompts(
    path: str, fmt: PromptFormat = "auto", stdin: BinaryIO | None = None
) -> list[Item]:
    """The prompts of the file at ``path`` (``-``: standard input), in format ``fmt``.

    ``auto`` picks the format by the file's suffix (``.jsonl``/``.ndjson``, ``.csv``, else
    lines); for standard input, JSONL when the first prompt line starts with ``{``.

    Raises:
        ConfigError: the file is missing, unreadable, not text, empty, or a row is bad.
    """
    if path == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        try:
            text = stream.read().decode("utf-8-sig")  # UTF-8 whatever the locale says
        except UnicodeDecodeError:
            raise ConfigError("standard input is not UTF-8 text") from None
        return parse_prompts(text, source="<stdin>", fmt=fmt)
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
    if fmt == "auto":
        fmt = _SUFFIXES.get(Path(path).suffix.lower(), "lines")
    return parse_prompts(text, source=path, fmt=fmt, base=Path(path).parent)
