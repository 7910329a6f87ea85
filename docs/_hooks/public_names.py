"""No undocumented public name: every name in ``mjasync.__all__`` (and ``mjasync.testing``'s)
has an entry in the API reference, and the reference names nothing that is not public.

An MkDocs hook (``mkdocs.yml``: ``hooks:``), so every docs build fails on a gap, and a plain
module, so ``tests/test_docs_reference.py`` runs the same check without MkDocs installed.

A reference entry is a ``::: mjasync.Name`` line (mkdocstrings renders it from the docstring).
A name mkdocstrings cannot render (``__version__``, computed on first access) is documented in
prose under an anchor ``<a id="mjasync.__version__"></a>``.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
MODULES = ("mjasync", "mjasync.testing")

_ENTRY = re.compile(r"^:::\s+(mjasync(?:\.testing)?)\.(\w+)\s*$", re.MULTILINE)
_ANCHOR = re.compile(r'<a id="(mjasync(?:\.testing)?)\.(\w+)"></a>')


def documented(reference: Path = REFERENCE) -> dict[str, list[str]]:
    """``"module.Name"`` -> the reference pages that document it."""
    found: dict[str, list[str]] = {}
    for page in sorted(reference.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        for module, name in [*_ENTRY.findall(text), *_ANCHOR.findall(text)]:
            found.setdefault(f"{module}.{name}", []).append(page.name)
    return found


def public() -> set[str]:
    """``"module.Name"`` for every name the public modules export."""
    names: set[str] = set()
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        names.update(f"{module_name}.{name}" for name in module.__all__)
    return names


def problems(reference: Path = REFERENCE) -> list[str]:
    """What is wrong with the reference (empty when every public name has one entry)."""
    entries = documented(reference)
    exported = public()
    found: list[str] = []
    for name in sorted(exported - entries.keys()):
        found.append(
            f"{name} is public (in __all__) but not in the API reference: add "
            f"'::: {name}' to the page of docs/reference/ where it belongs"
        )
    for name in sorted(entries.keys() - exported):
        found.append(
            f"{name} is in the API reference ({', '.join(entries[name])}) but not in "
            f"{name.rsplit('.', 1)[0]}.__all__: remove it, or export it"
        )
    for name, pages in sorted(entries.items()):
        if len(pages) > 1:
            found.append(f"{name} is documented more than once: {', '.join(pages)}")
    return found


def on_pre_build(config: Any, **kwargs: Any) -> None:
    """MkDocs hook: stop the build (strict or not) if the reference and ``__all__`` differ."""
    from mkdocs.exceptions import PluginError

    found = problems()
    if found:
        raise PluginError("API reference out of step with __all__:\n  " + "\n  ".join(found))
