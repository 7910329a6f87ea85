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

from .._batch.types import (
    BatchEvent,
    BatchEventKind,
    BatchOutcome,
    BatchSummary,
    PromptResult,
)
from ._secrets import redact
from ._states import Board, PromptState

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
    """The interface both views share (and a silent default).

    ``verbose``: failure lines also show the server's own words.
    """

    def __init__(self, total: int, header: str, *, verbose: bool = False) -> None:
        self.total = total
        self.header = header
        self.verbose = verbose

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

    def __init__(
        self, total: int, header: str, out: TextIO | None = None, *, verbose: bool = False
    ) -> None:
        super().__init__(total, header, verbose=verbose)
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
            head = f"{where} {kind.value} {task}".rstrip()
            self._print(f"{head}: {event.error}" if event.error else head)
        elif kind is BatchEventKind.FINISHED and event.result is not None:
            self._print(f"{where} finished: {event.result.outcome.value}")
        else:
            self._print(f"{where} {kind.value} {task}".rstrip())

    def summary(self, summary: BatchSummary) -> None:
        for line in summary_lines(summary, verbose=self.verbose):
            self._print(line)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def jobs_line(summary: BatchSummary) -> str:
    """``2 new, 1 retried, 3 resumed, 6 already done``: what happened to the jobs."""
    new = summary.submitted - summary.retried
    parts = [f"{new} new"]
    if summary.retried:
        parts.append(f"{summary.retried} retried")
    parts += [f"{summary.resumed} resumed", f"{summary.skipped} already done"]
    return ", ".join(parts)


def cost_line(summary: BatchSummary) -> str:
    """``4 API requests: 3 submits (2 accepted, 1 refused), 1 poll``: what the run sent.

    A submit is one POST; the server accepts it (a job), refuses it (nothing paid) or
    answers "queue full", after which the same request is sent again later.
    """
    submits = _plural(summary.submits, "submit")
    if summary.submits != summary.submitted:
        again = summary.submits - summary.submitted - summary.refused
        why = [f"{summary.submitted} accepted"]
        if summary.refused:
            why.append(f"{summary.refused} refused")
        if again > 0:
            why.append(f"{again} sent again after a full queue")
        submits += f" ({', '.join(why)})"
    return (
        f"{_plural(summary.requests, 'API request')}: {submits}, {_plural(summary.polls, 'poll')}"
    )


def note_lines(summary: BatchSummary) -> list[str]:
    """Notes about options that did less than asked (``--split``)."""
    if not summary.split_skipped:
        return []
    return [
        f"--split: {_plural(summary.split_skipped, 'grid')} not cut: the server sent each "
        "grid's four images itself, at full size (NAME_1.png to NAME_4.png beside the grid)"
    ]


def summary_lines(summary: BatchSummary, *, verbose: bool = False) -> list[str]:
    """The summary as plain text lines."""
    counts = summary.counts
    lines = [
        f"{summary.total} prompts: {counts['succeeded']} succeeded, {counts['failed']} failed, "
        f"{counts['uncertain']} uncertain"
        + (f", {counts['pending']} pending" if counts["pending"] else ""),
        f"jobs: {jobs_line(summary)}; images: {len(summary.files)} "
        f"({summary.downloaded} downloaded now)",
        f"cost: {cost_line(summary)}, in {summary.wall_time:.1f}s",
        *note_lines(summary),
        f"manifest: {summary.manifest}",
        f"contact sheet: {summary.index}",
        f"journal: {summary.journal}",
    ]
    lines += problem_lines(summary, verbose=verbose)
    return lines


def _problem(result: PromptResult, verbose: bool) -> str:
    line = f"  #{result.index + 1} {result.outcome.value}: {_short(result.prompt, 50)}: "
    line += result.error or "?"
    if verbose and result.server_message:
        line += f" (server said {result.server_message!r})"
    return redact(line)


def problem_lines(summary: BatchSummary, limit: int = 20, *, verbose: bool = False) -> list[str]:
    """What went wrong, prompt by prompt (at most ``limit`` lines), and what to do."""
    bad = [r for r in summary.results if r.outcome in (BatchOutcome.FAILED, BatchOutcome.UNCERTAIN)]
    lines = [_problem(r, verbose) for r in bad[:limit]]
    if len(bad) > limit:
        lines.append(f"  ... and {len(bad) - limit} more (see the manifest)")
    if summary.failed:
        lines.append(
            f"{_plural(summary.failed, 'prompt')} failed. Rerun the same command to retry "
            "what the server refused or could not finish downloading; add --retry-failed "
            "to also redo failed or lost jobs (paid again: it says how many before it sends)."
        )
    if summary.uncertain:
        lines.append(
            f"{summary.uncertain} prompt(s) are uncertain: the server may have created them "
            "without telling us. They were not sent again; check the account, then rerun "
            "with --resubmit-uncertain to submit them anyway (they may be paid twice)."
        )
    return lines


_STATE_STYLE = {
    PromptState.QUEUED: "dim",
    PromptState.SUBMITTED: "cyan",
    PromptState.RUNNING: "blue",
    PromptState.FINISHING: "magenta",
    PromptState.SUCCEEDED: "green",
    PromptState.FAILED: "red",
    PromptState.UNCERTAIN: "yellow",
    PromptState.PENDING: "dim",
}


class LiveView(View):
    """A rich live display: overall bar with ETA, counts by state, in-flight tasks.

    All three read one :class:`~mjasync.cli._states.Board` (a state machine per prompt), so
    the bar's count is always the sum of the final states shown beside it.
    """

    def __init__(
        self,
        total: int,
        header: str,
        console: Console | None = None,
        *,
        verbose: bool = False,
    ) -> None:
        super().__init__(total, header, verbose=verbose)
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
        self.board = Board(total)
        self._live: Live | None = None
        self._console.print(Text(header, style="bold"))

    def on_event(self, event: BatchEvent) -> None:
        self.board.apply(event)
        self._progress.update(self._bar, completed=self.board.finished)

    def _counts(self) -> Text:
        counts = self.board.counts()
        text = Text()
        shown = [
            state
            for state in PromptState
            if counts[state] or state not in (PromptState.PENDING, PromptState.FINISHING)
        ]
        for i, state in enumerate(shown):
            if i:
                text.append("  ·  ", style="dim")
            text.append(f"{state.value} {counts[state]}", style=_STATE_STYLE[state])
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
        rows = self.board.rows()
        for row in rows[:_MAX_ROWS]:
            filled = row.progress // 10
            bar = "█" * filled + "░" * (10 - filled)
            label = f"#{row.index + 1}" + (f" {row.button}" if row.button else "")
            table.add_row(
                label,
                row.task_id or "",
                Text(row.status, style=_STATE_STYLE[row.state]),
                f"{bar} {row.progress:>3}%",
                redact(_short(row.prompt, room)),
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
        table.add_row("jobs", jobs_line(summary))
        table.add_row("images", f"{len(summary.files)} ({summary.downloaded} downloaded now)")
        table.add_row("cost", cost_line(summary))
        table.add_row("time", f"{summary.wall_time:.1f}s")
        table.add_row("manifest", summary.manifest)
        table.add_row("contact sheet", summary.index)
        table.add_row("journal", summary.journal)
        console.print(table)
        for line in note_lines(summary):
            console.print(line, style="yellow", highlight=False)
        for line in problem_lines(summary, verbose=self.verbose):
            console.print(line, style="yellow" if "uncertain" in line else None, highlight=False)
