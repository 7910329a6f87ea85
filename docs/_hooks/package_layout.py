"""MkDocs hook: replace ``<!-- package-layout -->`` with a table of mjasync's modules.

Each row is a module and the first line of its docstring, read from the source when the site is
built, so the architecture page cannot fall behind the package.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

MARKER = "<!-- package-layout -->"
SOURCE = Path(__file__).resolve().parents[2] / "src"


def layout_table(source: Path = SOURCE) -> str:
    """A Markdown table: module path, summary line."""
    rows = ["| module | what it is |", "|---|---|"]
    for path in sorted((source / "mjasync").rglob("*.py")):
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        summary = docstring.strip().split("\n\n", 1)[0].replace("\n", " ").replace("|", "\\|")
        if path.name == "__init__.py" and len(summary.split()) < 3:
            continue  # a bare package marker
        relative = path.relative_to(source).as_posix()
        rows.append(f"| `{relative}` | {summary} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Fill in the marker, where a page has it."""
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, layout_table())
