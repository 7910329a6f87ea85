"""Mutation testing of the pure decisions, each module against its own tests (issue 18).

Run from the repository root (needs the ``dev`` extra, which brings mutmut)::

    .venv/bin/python -m tests.mutation                 # every module, then the score table
    .venv/bin/python -m tests.mutation interpret retry # some modules only
    .venv/bin/python -m tests.mutation --show          # also print each survivor's diff

For each module in :data:`TARGETS` the driver lays out ``build/mutation/<module>/`` (links to
``src/`` and ``tests/`` plus a ``pyproject.toml`` whose ``[tool.mutmut]`` is the repository's
with ``only_mutate`` set to that one file and the test selection set to that module's tests),
runs ``mutmut run`` there on the module's decision functions only, and reads mutmut's results.
Every run starts from scratch, so a result never comes from a stale cache.

A survivor counts as killed only when ``tests/MUTATION.md`` names it (its full mutant name,
in backquotes) and says why it is equivalent. The driver prints the per-module table for
``tests/MUTATION.md``, writes each module's survivors with their diffs to
``build/mutation/<module>/survivors.txt``, and exits 1 when a module scores below
:data:`REQUIRED_SCORE` or has a survivor that ``tests/MUTATION.md`` does not explain.

To add a module or a function: add or extend a :class:`Target` below (and its
``only_mutate`` entry in ``pyproject.toml``). This file is not a test module: pytest does not
collect it, and CI does not run it (a full run takes a few minutes).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "mutation"
NOTES = ROOT / "tests" / "MUTATION.md"
REQUIRED_SCORE = 95.0


@dataclass(frozen=True)
class Target:
    """One module: which of its functions are mutated, and which tests must notice."""

    name: str
    source: str
    #: ``"function"``, ``"Class.method"``, ``"Class.*"`` or ``"*"`` (every function).
    functions: tuple[str, ...]
    tests: tuple[str, ...]


TARGETS: tuple[Target, ...] = (
    Target(
        "retry",
        "src/mjasync/_wire/retry.py",
        ("*",),
        ("tests/decisions/test_retry_table.py",),
    ),
    Target(
        "limiter",
        "src/mjasync/_jobs/limiter.py",
        ("next_limit", "LocalLimiter.*"),
        ("tests/decisions/test_limiter_table.py",),
    ),
    Target(
        "events",
        "src/mjasync/_jobs/events.py",
        ("is_advance", "status_rank"),
        ("tests/decisions/test_events_table.py",),
    ),
    Target(
        "pacing",
        "src/mjasync/_jobs/pacing.py",
        ("*",),
        ("tests/decisions/test_pacing_table.py",),
    ),
    Target(
        "interpret",
        "src/mjasync/_wire/interpret.py",
        ("*",),
        ("tests/decisions/test_interpret_table.py",),
    ),
    Target(
        "validation",
        "src/mjasync/_validation.py",
        ("*",),
        ("tests/decisions/test_validation_table.py",),
    ),
)

# mutmut's exit-code meanings (mutmut.stats.status_by_exit_code, mutmut 3.8); a timeout is a
# mutant the tests noticed (it hung or looped), so it counts as killed.
_KILLED = {1, 3, 24, -24, 36, 152, 255}
_SURVIVED = {0}
_NO_TESTS = {5, 33}
_MUTANT_NAME = re.compile(r"`(mjasync\.[\w.ǁ]+__mutmut_\d+)`")


@dataclass(frozen=True)
class Result:
    """One module's tally."""

    target: Target
    mutants: int
    killed: int
    survivors: tuple[str, ...]
    explained: tuple[str, ...]

    @property
    def survived(self) -> int:
        return len(self.survivors)

    @property
    def raw_score(self) -> float:
        return 100.0 * self.killed / self.mutants if self.mutants else 100.0

    @property
    def score(self) -> float:
        """Counting the survivors that tests/MUTATION.md explains as equivalent."""
        done = self.killed + len(self.explained)
        return 100.0 * done / self.mutants if self.mutants else 100.0

    @property
    def unexplained(self) -> tuple[str, ...]:
        return tuple(name for name in self.survivors if name not in self.explained)


def module_name(source: str) -> str:
    """``src/mjasync/_wire/retry.py`` -> ``mjasync._wire.retry`` (as mutmut names it)."""
    return source.removeprefix("src/").removesuffix(".py").replace("/", ".")


def mutant_globs(target: Target) -> list[str]:
    """mutmut's names for the target's functions: ``x_f``, ``xǁClassǁmethod`` (``ǁ`` = U+01C1)."""
    module = module_name(target.source)
    globs = []
    for function in target.functions:
        if function == "*":
            mangled = "*"
        elif "." in function:
            cls, method = function.split(".", 1)
            mangled = f"xǁ{cls}ǁ{method}"
        else:
            mangled = f"x_{function}"
        globs.append(f"{module}.{mangled}__mutmut_*")
    return globs


def _toml_value(value: object) -> str:
    # JSON's strings, lists, numbers and booleans are valid TOML for the values used here.
    return json.dumps(value, ensure_ascii=False)


def repository_settings() -> tuple[str, dict[str, object]]:
    """pyproject.toml's text and its ``[tool.mutmut]`` table."""
    text = (ROOT / "pyproject.toml").read_text("utf-8")
    return text, dict(tomllib.loads(text).get("tool", {}).get("mutmut", {}))


def check_setup() -> None:
    """mutmut is installed, and pyproject.toml's ``only_mutate`` lists every target."""
    if importlib.util.find_spec("mutmut") is None:
        raise SystemExit("mutmut is not installed: .venv/bin/pip install -e '.[dev]'")
    listed = repository_settings()[1].get("only_mutate", [])
    missing = [t.source for t in TARGETS if not isinstance(listed, list) or t.source not in listed]
    if missing:
        raise SystemExit(f"add {missing} to only_mutate in pyproject.toml's [tool.mutmut]")


def module_pyproject(target: Target) -> str:
    """The repository's pyproject.toml with ``[tool.mutmut]`` narrowed to one module."""
    text, settings = repository_settings()
    settings["only_mutate"] = [target.source]
    settings["pytest_add_cli_args_test_selection"] = list(target.tests)
    kept, skipping = [], False
    for line in text.splitlines():
        if line.startswith("["):
            skipping = line.strip() == "[tool.mutmut]"
        if not skipping:
            kept.append(line)
    section = ["[tool.mutmut]", *(f"{key} = {_toml_value(v)}" for key, v in settings.items())]
    return "\n".join([*kept, "", *section, ""])


def prepare(target: Target) -> Path:
    """A fresh ``build/mutation/<name>/`` with links to src/ and tests/ and its own config."""
    where = WORK / target.name
    if where.exists():
        shutil.rmtree(where)  # removes the links, not what they point to
    where.mkdir(parents=True)
    for name in ("src", "tests"):
        (where / name).symlink_to(ROOT / name, target_is_directory=True)
    (where / "pyproject.toml").write_text(module_pyproject(target), "utf-8")
    return where


def run_mutmut(target: Target, where: Path, max_children: int) -> None:
    missing = [path for path in target.tests if not (ROOT / path).exists()]
    if missing:
        raise SystemExit(f"{target.name}: no such test file: {', '.join(missing)}")
    command = [
        sys.executable,
        "-m",
        "mutmut",
        "run",
        "--max-children",
        str(max_children),
        *mutant_globs(target),
    ]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    with (where / "mutmut.log").open("w", encoding="utf-8") as log:
        done = subprocess.run(command, cwd=where, stdout=log, stderr=subprocess.STDOUT, env=env)
    if done.returncode != 0:
        tail = (where / "mutmut.log").read_text("utf-8", "replace")[-3000:]
        raise SystemExit(f"{target.name}: mutmut failed ({done.returncode}):\n{tail}")


def explained_names() -> set[str]:
    """Mutant names that tests/MUTATION.md lists (each with the reason it is equivalent)."""
    if not NOTES.exists():
        return set()
    return set(_MUTANT_NAME.findall(NOTES.read_text("utf-8")))


def tally(target: Target, where: Path, explained: set[str]) -> Result:
    meta = where / "mutants" / (target.source + ".meta")
    codes: dict[str, int | None] = json.loads(meta.read_text("utf-8"))["exit_code_by_key"]
    globs = mutant_globs(target)
    chosen = {k: v for k, v in codes.items() if any(fnmatchcase(k, g) for g in globs)}
    statuses = Counter(
        "killed" if v in _KILLED else "survived" if v in _SURVIVED | _NO_TESTS else "other"
        for v in chosen.values()
    )
    if statuses["other"]:
        odd = {k: v for k, v in chosen.items() if v not in _KILLED | _SURVIVED | _NO_TESTS}
        raise SystemExit(f"{target.name}: mutants with an unexpected result: {odd}")
    survivors = tuple(sorted(k for k, v in chosen.items() if v not in _KILLED))
    return Result(
        target=target,
        mutants=len(chosen),
        killed=statuses["killed"],
        survivors=survivors,
        explained=tuple(name for name in survivors if name in explained),
    )


def survivor_diffs(result: Result, where: Path) -> str:
    parts = []
    for name in result.survivors:
        shown = subprocess.run(
            [sys.executable, "-m", "mutmut", "show", name],
            cwd=where,
            capture_output=True,
            text=True,
            check=False,
        )
        note = "explained in tests/MUTATION.md" if name in result.explained else "UNEXPLAINED"
        parts.append(f"## {name} ({note})\n{shown.stdout.strip()}\n")
    text = "\n".join(parts)
    (where / "survivors.txt").write_text(text, "utf-8")
    return text


def table(results: list[Result]) -> str:
    lines = [
        "| module | functions | tests | mutants | killed | survived | of which equivalent "
        "(explained) | score | killed / mutants |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        functions = ", ".join(f"`{f}`" for f in r.target.functions)
        tests = ", ".join(f"`{Path(path).name}`" for path in r.target.tests)
        lines.append(
            f"| `{r.target.source.removeprefix('src/mjasync/')}` | {functions} | {tests} "
            f"| {r.mutants} | {r.killed} | {r.survived} | {len(r.explained)} | {r.score:.1f}% "
            f"| {r.raw_score:.1f}% |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__)
    parser.add_argument("modules", nargs="*", help="module names (default: all)")
    parser.add_argument("--show", action="store_true", help="print each survivor's diff")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args(argv)
    by_name = {t.name: t for t in TARGETS}
    unknown = [m for m in args.modules if m not in by_name]
    if unknown:
        parser.error(f"unknown module(s) {unknown}; choose from {sorted(by_name)}")
    chosen = [by_name[m] for m in args.modules] if args.modules else list(TARGETS)

    check_setup()
    explained = explained_names()
    results = []
    for target in chosen:
        started = datetime.datetime.now()
        print(f"== {target.name}: {target.source} against {', '.join(target.tests)}", flush=True)
        where = prepare(target)
        run_mutmut(target, where, args.max_children)
        result = tally(target, where, explained)
        diffs = survivor_diffs(result, where)
        seconds = (datetime.datetime.now() - started).total_seconds()
        print(
            f"   {result.mutants} mutants, {result.killed} killed, {result.survived} survived "
            f"({len(result.unexplained)} unexplained), raw {result.raw_score:.1f}%, "
            f"counted {result.score:.1f}%, {seconds:.0f} s",
            flush=True,
        )
        if args.show and diffs:
            print(diffs)
        results.append(result)

    print()
    print(f"python -m tests.mutation, {datetime.date.today().isoformat()}")
    print(table(results))
    failing = [r for r in results if r.score < REQUIRED_SCORE or r.unexplained]
    for r in failing:
        print(f"\n{r.target.name}: {r.score:.1f}% counted; unexplained survivors:")
        for name in r.unexplained:
            print(f"  {name}")
        print(f"  (diffs in {WORK / r.target.name / 'survivors.txt'})")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
