"""The documentation site's own checks: no undocumented public name, a layout that keeps up.

The MkDocs hooks in ``docs/_hooks/`` stop ``mkdocs build`` on these problems; the same checks
run here so that the test suite catches them without MkDocs installed.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

import mjasync
import mjasync.testing

ROOT = Path(__file__).resolve().parents[1]
HOOKS = ROOT / "docs" / "_hooks"


def load(name: str) -> ModuleType:
    """Import ``docs/_hooks/<name>.py`` (hooks are files MkDocs loads, not a package)."""
    spec = importlib.util.spec_from_file_location(f"docs_hook_{name}", HOOKS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_every_public_name_is_in_the_api_reference_once() -> None:
    public_names = load("public_names")
    assert public_names.problems() == []
    documented = public_names.documented()
    assert {f"mjasync.{name}" for name in mjasync.__all__} <= documented.keys()
    assert {f"mjasync.testing.{name}" for name in mjasync.testing.__all__} <= documented.keys()


def test_reference_check_finds_a_missing_a_stale_and_a_doubled_entry(tmp_path: Path) -> None:
    public_names = load("public_names")
    reference = tmp_path / "reference"
    shutil.copytree(public_names.REFERENCE, reference)
    jobs_page = reference / "jobs.md"
    text = jobs_page.read_text(encoding="utf-8")
    assert "::: mjasync.ProgressEvent\n" in text
    jobs_page.write_text(
        text.replace("::: mjasync.ProgressEvent\n", "::: mjasync.NoSuchName\n"),
        encoding="utf-8",
    )
    client_page = reference / "client.md"
    client_page.write_text(
        client_page.read_text(encoding="utf-8") + "\n::: mjasync.Job\n", encoding="utf-8"
    )
    found = public_names.problems(reference)
    assert len(found) == 3, found
    assert "mjasync.ProgressEvent is public" in found[0]
    assert "mjasync.NoSuchName is in the API reference (jobs.md)" in found[1]
    assert found[2] == "mjasync.Job is documented more than once: client.md, jobs.md"


def test_architecture_page_lists_every_module() -> None:
    table = load("package_layout").layout_table()
    modules = sorted((ROOT / "src" / "mjasync").rglob("*.py"))
    assert "`mjasync/_jobs/engine.py` | The job engine: slots, submits" in table
    for path in modules:
        if path.name != "__init__.py":
            assert f"`{path.relative_to(ROOT / 'src').as_posix()}`" in table


def test_docstrings_render_as_markdown() -> None:
    pytest.importorskip("griffe", reason="the docs extra: pip install -e '.[docs]'")
    extension = load("griffe_mjasync")
    public = extension._public_names()
    text = (
        "Returns a :class:`Task`; see :meth:`~mjasync.Client.stream` and :func:`_private`.\n"
        "\n"
        "Example::\n"
        "\n"
        "    async for event in job.events():\n"
        "        print(event)\n"
        "\n"
        ">>> 1 + 1\n"
        "2\n"
        "\n"
        "The end."
    )
    rendered = extension._fence_literal_blocks(
        extension._ROLE.sub(lambda match: extension._role(match, public), text)
    )
    assert rendered == (
        "Returns a [`Task`][mjasync.Task]; see `stream` and `_private`.\n"
        "\n"
        "Example:\n"
        "\n"
        "```python\n"
        "async for event in job.events():\n"
        "    print(event)\n"
        "```\n"
        "\n"
        "```pycon\n"
        ">>> 1 + 1\n"
        "2\n"
        "```\n"
        "\n"
        "The end."
    )
