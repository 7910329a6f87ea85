"""The command line never prints an API key: not in errors, not in a resume hint, not in a view.

The key can reach the screen three ways: echoed from the command line (``Resume with: ...``),
inside an error text (a server quoting the request back, a usage error quoting an argument),
or inside a task's text (a hostile server's ``failReason``). The resume hint is rebuilt
without ``--api-key``; everything else printed goes through :func:`redact`, which knows the
keys given on this command line and in ``MJ_API_KEY``.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "KEY_ENV",
    "KEY_OPTION",
    "key_hint",
    "redact",
    "remember",
    "resume_command",
    "secrets_in",
]

KEY_OPTION = "--api-key"
KEY_ENV = "MJ_API_KEY"
MASK = "***"
# Shorter values would mask ordinary words; no real key is this short.
_MIN_SECRET = 6

_known: set[str] = set()


def secrets_in(argv: Sequence[str], environ: Mapping[str, str]) -> set[str]:
    """The API keys a command line and its environment carry. Pure."""
    found = set()
    env_key = environ.get(KEY_ENV, "").strip()
    if env_key:
        found.add(env_key)
    for i, arg in enumerate(argv):
        if arg == KEY_OPTION and i + 1 < len(argv):
            found.add(argv[i + 1].strip())
        elif arg.startswith(KEY_OPTION + "="):
            found.add(arg.split("=", 1)[1].strip())
    return {key for key in found if len(key) >= _MIN_SECRET}


def remember(keys: Iterable[str | None]) -> None:
    """Add keys that :func:`redact` must mask from now on."""
    _known.update(key for key in keys if key and len(key) >= _MIN_SECRET)


def redact(text: str, keys: Iterable[str] | None = None) -> str:
    """``text`` with every known key (or every one of ``keys``) replaced by ``***``.

    Example:
        >>> redact("refused sk-abcdef123", ["sk-abcdef123"])
        'refused ***'
    """
    # Longest first, so a key that contains another is masked whole.
    for key in sorted(_known if keys is None else set(keys), key=len, reverse=True):
        if key in text:
            text = text.replace(key, MASK)
    return text


def resume_command(argv: Sequence[str]) -> tuple[str, bool]:
    """``mjasync ARGV`` as a shell command without ``--api-key``; and whether one was dropped.

    Example:
        >>> resume_command(["batch", "p.txt", "--out", "o", "--api-key", "sk-secret-1"])
        ('mjasync batch p.txt --out o', True)
    """
    kept: list[str] = []
    dropped = False
    skip_next = False
    for arg in argv:
        if skip_next:
            skip_next = False
            continue
        if arg == KEY_OPTION:
            dropped = skip_next = True
            continue
        if arg.startswith(KEY_OPTION + "="):
            dropped = True
            continue
        kept.append(arg)
    command = shlex.join(["mjasync", *kept])
    # Belt and braces: a key typed somewhere else on the line (say, glued to a prompt file's
    # name) is masked too.
    return redact(command), dropped


def key_hint(dropped: bool, environ: Mapping[str, str] | None = None) -> str:
    """Where the resumed command gets its key from, in a few words."""
    env = os.environ if environ is None else environ
    if dropped:
        return f"(set {KEY_ENV}, or add {KEY_OPTION} KEY: the key is not shown)"
    if env.get(KEY_ENV):
        return f"(the key comes from {KEY_ENV})"
    return ""
