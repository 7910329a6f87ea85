"""The live view agrees with itself: bar, counts and table, after every event of a real run."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

import mjasync
from mjasync._batch.types import BatchEvent, BatchEventKind
from mjasync.cli._display import LiveView

pytestmark = pytest.mark.anyio

PROMPTS = ["a red fox", "a blue whale", "a storm --fail", "some gore here", "a green tree"]
FINAL = ("succeeded", "failed", "uncertain", "pending")
COUNT = re.compile(r"\b(queued|submitted|running|finishing|succeeded|failed|uncertain|pending)"
                   r" (\d+)\b")  # fmt: skip


def _frame(view: LiveView, console: Console, buffer: io.StringIO) -> str:
    buffer.seek(0)
    buffer.truncate()
    console.print(view._render())
    return buffer.getvalue()


async def _events(make_client, tmp_path) -> list[BatchEvent]:
    events: list[BatchEvent] = []
    async with make_client() as client:
        summary = await mjasync.run_batch(
            client, PROMPTS, out_dir=tmp_path / "out", upscale=2, on_event=events.append
        )
    assert summary.counts["succeeded"] == 3
    return events


async def test_bar_counts_and_table_agree_after_every_event(make_client, tmp_path):
    events = await _events(make_client, tmp_path)
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=160, color_system=None)
    view = LiveView(len(PROMPTS), "header", console=console)
    finished: set[int] = set()
    settled: set[int] = set()  # its grid succeeded (downloads and upscales may follow)
    for event in events:
        view.on_event(event)
        if event.kind is BatchEventKind.FINISHED:
            finished.add(event.index)
        if event.kind is BatchEventKind.SUCCEEDED and event.button is None:
            settled.add(event.index)
        frame = _frame(view, console, buffer)
        counts_line = next(line for line in frame.splitlines() if " · " in line)
        counts = {name: int(n) for name, n in COUNT.findall(counts_line)}
        done, total = map(int, re.search(r"(\d+)/(\d+)", frame).groups())
        assert total == len(PROMPTS)
        assert sum(counts.values()) == len(PROMPTS), counts_line  # nobody vanishes
        assert done == sum(counts.get(name, 0) for name in FINAL), (done, counts_line)
        assert done == len(finished)
        for index in settled - finished:  # succeeded, still downloading or upscaling
            assert re.search(rf"^\s*#{index + 1}\b", frame, re.MULTILINE), frame
    last = _frame(view, console, buffer)
    assert "5/5" in last
    assert "succeeded 3" in last
    assert "failed 2" in last


def test_a_prompt_that_stopped_unfinished_is_counted_as_pending() -> None:
    from mjasync._batch.types import BatchOutcome, PromptResult, RequestResult
    from mjasync._models import TaskStatus
    from mjasync.cli._states import Board, PromptState

    board = Board(2)
    running = BatchEvent(
        kind=BatchEventKind.PROGRESS,
        index=0,
        prompt="a red fox",
        key="k",
        task_id="1",
        status=TaskStatus.IN_PROGRESS,
        progress=40,
    )
    board.apply(running)
    assert board.counts()[PromptState.RUNNING] == 1
    assert [row.index for row in board.rows()] == [0]
    pending = PromptResult(0, "a red fox", RequestResult("k", BatchOutcome.PENDING, "1"))
    board.apply(
        BatchEvent(kind=BatchEventKind.FINISHED, index=0, prompt="a red fox", key="k",
                   result=pending)
    )  # fmt: skip
    board.apply(running)  # a late event never moves a finished prompt
    counts = board.counts()
    assert counts[PromptState.PENDING] == 1
    assert counts[PromptState.QUEUED] == 1
    assert sum(counts.values()) == 2
    assert board.finished == 1
    assert board.rows() == []
