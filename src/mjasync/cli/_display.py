"""How ``mjasync batch`` shows a run: a rich live view on a terminal, plain lines otherwise.

Both views take the batch's events one by one (:meth:`on_event`) and end with a summary. The
live view is redrawn by a ticker task on the event loop, never by rich's own thread, so the
state it reads is never changed under its feet.
"""

from __future__ import annotations

import sys
from typing import TextIO

import anyio
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from .._batch.types import BatchEvent, BatchEventKind, BatchOutcome, BatchSummary
from ._secrets import redact

__all__ = ["LiveView", "PlainView", "View"]

_OUTCOME_STYLE = {
    BatchOutcome.SUCCEEDED: "green",
    BatchOutcome.FAILED: "red",
    BatchOutcome.UNCERTAIN: "yellow",
    BatchOutcome.PENDING: "dim",
}
_MAX_ROWS = 12  # in-flight rows shown; the rest are counted


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


class View:
    """The interface both views share (and a silent default)."""

    def __init__(self, total: int, header: str) -> None:
        self.total = total
        self.header = header

    def on_event(self, event: BatchEvent) -> None:
        """Take one batch event."""

    async def run(self) -> None:
        """Redraw until cancelled (the live view); return at once otherwise."""

    def close(self) -> None:
        """Stop drawing (idempotent)."""

    def summary(self, summary: BatchSummary) -> None:
        """Show the summary of a finished batch."""


class PlainView(View):
    """One line per event, for logs and pipes: no colour, no cursor tricks."""

    def __init__(self, total: int, header: str, out: TextIO | None = None) -> None:
        super().__init__(total, header)
        self._out = out or sys.stdout
        self._width = len(str(total))
        self._print(header)

    def _print(self, line: str) -> None:
        # Errors and prompts come from the server too: never let one carry the key out.
        print(redact(line), file=self._out, flush=True)

    def on_event(self, event: BatchEvent) -> None:
        where = f"[{event.index + 1:>{self._width}}/{self.total}"
        where += f" {event.button}]" if event.button else "]"
        task = f"task {event.task_id}" if event.task_id else ""
        kind = event.kind
        if kind is BatchEventKind.PROGRESS:
            status = event.status.value if event.status is not None else "?"
            percent = f" {event.progress}%" if event.progress is not None else ""
            self._print(f"{where} {status}{percent} {task}".rstrip())
        elif kind in (BatchEventKind.SUBMITTED, BatchEventKind.RESUMED):
            self._print(f"{where} {kind.value} {task}: {_short(event.prompt, 60)}")
        elif kind is BatchEventKind.DOWNLOADED:
            self._print(f"{where} downloaded {len(event.files)} file(s) {task}".rstrip())
        elif kind in (BatchEventKind.FAILED, BatchEventKind.UNCERTAIN):
            self._print(f"{where} {kind.value} {task}: {event.error or ''}".rstrip(": "))
        elif kind is BatchEventKind.FINISHED and event.result is not None:
            self._print(f"{where} finished: {event.result.outcome.value}")
        else:
            self._print(f"{where} {kind.value} {task}".rstrip())

    def summary(self, summary: BatchSummary) -> None:
        for line in summary_lines(summary):
            self._print(line)


def summary_lines(summary: BatchSummary) -> list[str]:
    """The summary as plain text lines."""
    counts = summary.counts
    lines = [
        f"{summary.total} prompts: {counts['succeeded']} succeeded, {counts['failed']} failed, "
        f"{counts['uncertain']} uncertain"
        + (f", {counts['pending']} pending" if counts["pending"] else ""),
        f"tasks: {summary.submitted} submitted, {summary.resumed} resumed, "
        f"{summary.skipped} already done; images: {len(summary.files)} "
        f"({summary.downloaded} downloaded now)",
        f"cost: {summary.requests} API requests ({summary.submits} submits, "
        f"{summary.polls} polls) in {summary.wall_time:.1f}s",
        f"manifest: {summary.manifest}",
        f"contact sheet: {summary.index}",
        f"journal: {summary.journal}",
    ]
    lines += problem_lines(summary)
    return lines


def problem_lines(summary: BatchSummary, limit: int = 20) -> list[str]:
    """What went wrong, prompt by prompt (at most ``limit`` lines), and what to do."""
    bad = [r for r in summary.results if r.outcome in (BatchOutcome.FAILED, BatchOutcome.UNCERTAIN)]
    lines = [
        redact(f"  #{r.index + 1} {r.outcome.value}: {_short(r.prompt, 50)}: {r.error or '?'}")
        for r in bad[:limit]
    ]
    if len(bad) > limit:
        lines.append(f"  ... and {len(bad) - limit} more (see the manifest)")
    if summary.uncertain:
        lines.append(
            f"{summary.uncertain} prompt(s) are uncertain: the server may have created them "
            "without telling us. They were not sent again; check the account, then rerun "
            "with --resubmit-uncertain to submit them anyway (they may be paid twice)."
        )
    return lines


class LiveView(View):
    """A rich live display: overall bar with ETA, counts by state, in-flight tasks."""

    def __init__(self, total: int, header: str, console: Console | None = None) -> None:
        super().__init__(total, header)
        self._console = console or Console()
        self._progress = Progress(
            TextColumn("[bold]prompts"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self._console,
        )
        self._bar = self._progress.add_task("prompts", total=total)
        self._done: dict[int, BatchOutcome] = {}
        self._started: set[int] = set()
        self._flight: dict[tuple[int, str | None], BatchEvent] = {}
        self._live: Live | None = None
        self._console.print(Text(header, style="bold"))

    def on_event(self, event: BatchEvent) -> None:
        slot = (event.index, event.button)
        kind = event.kind
        if kind is BatchEventKind.FINISHED and event.result is not None:
            self._done[event.index] = event.result.outcome
            self._progress.update(self._bar, completed=len(self._done))
            for key in [k for k in self._flight if k[0] == event.index]:
                del self._flight[key]
        elif kind in (BatchEventKind.SUBMITTED, BatchEventKind.RESUMED, BatchEventKind.PROGRESS):
            self._flight[slot] = event
            self._started.add(event.index)
        else:
            self._flight.pop(slot, None)

    def _counts(self) -> Text:
        running = sum(
            1
            for e in self._flight.values()
            if e.status is not None and e.status.value == "IN_PROGRESS"
        )
        waiting = len(self._flight) - running
        # Started and not finished: in flight, downloading, or between grid and upscales.
        queued = self.total - len(self._done) - len(self._started - self._done.keys())
        text = Text()
        parts: list[tuple[str, int, str]] = [
            ("queued", queued, "dim"),
            ("submitted", waiting, "cyan"),
            ("running", running, "blue"),
        ]
        parts += [
            (o.value, sum(1 for v in self._done.values() if v is o), _OUTCOME_STYLE[o])
            for o in (BatchOutcome.SUCCEEDED, BatchOutcome.FAILED, BatchOutcome.UNCERTAIN)
        ]
        for i, (name, count, style) in enumerate(parts):
            if i:
                text.append("  ·  ", style="dim")
            text.append(f"{name} {count}", style=style)
        return text

    def _table(self) -> Table:
        table = Table(box=None, pad_edge=False, show_header=True, header_style="dim")
        # Fixed columns never wrap: only the prompt gives way on a narrow terminal.
        table.add_column("#", justify="right", no_wrap=True, min_width=3)
        table.add_column("task", no_wrap=True, min_width=16)
        table.add_column("status", no_wrap=True, min_width=11)
        table.add_column("progress", justify="right", no_wrap=True, min_width=15)
        table.add_column("prompt", overflow="ellipsis", no_wrap=True)
        # Cut the prompt ourselves: left to shrink the table, rich collapses the first column.
        room = max(12, self._console.width - 56)
        rows = sorted(self._flight.values(), key=lambda e: (e.index, e.button or ""))
        for event in rows[:_MAX_ROWS]:
            progress = event.progress or 0
            filled = progress // 10
            bar = "█" * filled + "░" * (10 - filled)
            label = f"#{event.index + 1}" + (f" {event.button}" if event.button else "")
            table.add_row(
                label,
                event.task_id or "",
                event.status.value if event.status is not None else "",
                f"{bar} {progress:>3}%",
                _short(event.prompt, room),
            )
        if len(rows) > _MAX_ROWS:
            table.add_row("", "", f"+{len(rows) - _MAX_ROWS} more", "", "")
        return table

    def _render(self) -> RenderableType:
        return Group(self._progress, self._counts(), self._table())

    async def run(self) -> None:
        with Live(
            self._render(), console=self._console, auto_refresh=False, transient=True
        ) as live:
            self._live = live
            try:
                while True:
                    live.update(self._render(), refresh=True)
                    await anyio.sleep(0.125)
            finally:
                self._live = None

    def summary(self, summary: BatchSummary) -> None:
        console = self._console
        counts = summary.counts
        table = Table(title="mjasync batch", show_header=False, title_style="bold")
        table.add_column(style="dim")
        table.add_column()
        outcome = Text()
        for i, o in enumerate(
            (
                BatchOutcome.SUCCEEDED,
                BatchOutcome.FAILED,
                BatchOutcome.UNCERTAIN,
                BatchOutcome.PENDING,
            )
        ):
            if o is BatchOutcome.PENDING and not counts[o.value]:
                continue
            if i:
                outcome.append(", ")
            outcome.append(f"{counts[o.value]} {o.value}", style=_OUTCOME_STYLE[o])
        table.add_row("prompts", Text(f"{summary.total}: ").append_text(outcome))
        table.add_row(
            "tasks",
            f"{summary.submitted} submitted, {summary.resumed} resumed, "
            f"{summary.skipped} already done",
        )
        table.add_row("images", f"{len(summary.files)} ({summary.downloaded} downloaded now)")
        table.add_row(
            "cost",
            f"{summary.requests} API requests ({summary.submits} submits, {summary.polls} polls)",
        )
        table.add_row("time", f"{summary.wall_time:.1f}s")
        table.add_row("manifest", summary.manifest)
        table.add_row("contact sheet", summary.index)
        table.add_row("journal", summary.journal)
        console.print(table)
        for line in problem_lines(summary):
            console.print(line, style="yellow" if "uncertain" in line else None, highlight=False)
