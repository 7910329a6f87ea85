"""The simulator's tasks in a file, so a simulated server can stop and start again.

The file is JSON lines, appended to on every change of a task (one line: the whole task), and
read back at start: the last line of each task id wins. Appending keeps a change cheap and
survives a killed process (at worst its last, torn line is skipped). The server's clock stops
while it is not running: a task that was 40% done is 40% done when the server starts again.

One process at a time may use a file (the ``mjasync`` command line locks it).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import fields
from pathlib import Path
from typing import IO, Any

from ._sim_buttons import ButtonSpec
from ._sim_state import SimTask

__all__ = ["StateFile"]

# Runtime-only fields: timers, slots and loop-clock instants belong to one run.
_SKIPPED = frozenset({"handle", "holds_slot", "created_at", "started_at", "notify_hook"})
_SAVED = tuple(f.name for f in fields(SimTask) if f.name not in _SKIPPED)
_FORGET = {"forget_all": True}
_COMPACT_OVER = 4  # rewrite the file at start once it has this many lines per task


def task_record(task: SimTask) -> dict[str, Any]:
    """``task`` as one JSON-ready record."""
    record = {name: getattr(task, name) for name in _SAVED}
    record["buttons"] = [button.to_json() for button in task.buttons]
    record["text_options"] = list(task.text_options)
    return record


def task_from_record(record: dict[str, Any]) -> SimTask:
    """The task a record describes (raises ``KeyError``/``TypeError`` on a malformed one)."""
    values = {name: record[name] for name in _SAVED if name in record}
    values["buttons"] = tuple(
        ButtonSpec(
            custom_id=b["customId"],
            label=b.get("label", ""),
            emoji=b.get("emoji", ""),
            style=b.get("style", 2),
            type=b.get("type", 2),
        )
        for b in record.get("buttons", ())
    )
    values["text_options"] = tuple(record.get("text_options", ()))
    values["extra"] = dict(record.get("extra") or {})
    return SimTask(notify_hook=None, created_at=0.0, **values)


class StateFile:
    """Where a simulator keeps its tasks between runs (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file: IO[str] | None = None

    def load(self) -> list[SimTask]:
        """The tasks in the file, in the order they were first written (none if no file)."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        latest: dict[str, dict[str, Any]] = {}
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:  # a line torn by a killed process
                continue
            if record == _FORGET:
                latest.clear()
            elif isinstance(record, dict) and isinstance(record.get("id"), str):
                latest[record["id"]] = record
        tasks = []
        for record in latest.values():
            with contextlib.suppress(KeyError, TypeError, ValueError):
                tasks.append(task_from_record(record))
        if len(lines) > _COMPACT_OVER * max(1, len(tasks)):
            self._rewrite(tasks)
        return tasks

    def _rewrite(self, tasks: list[SimTask]) -> None:
        temp = self.path.with_name(f".{self.path.name}.tmp")
        with open(temp, "w", encoding="utf-8") as file:
            for task in tasks:
                file.write(_line(task_record(task)))
        os.replace(temp, self.path)

    def open(self) -> None:
        """Start appending (creates the file and its directory)."""
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open

    def save(self, task: SimTask) -> None:
        """Append ``task`` as it is now."""
        self._append(task_record(task))

    def forget_all(self) -> None:
        """Record that every task is gone (a restart that lost its store)."""
        self._append(_FORGET)

    def _append(self, record: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(_line(record))
            self._file.flush()  # in the OS's hands at once: survives a killed process

    def close(self) -> None:
        """Stop appending. Idempotent."""
        file, self._file = self._file, None
        if file is not None:
            file.close()


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
