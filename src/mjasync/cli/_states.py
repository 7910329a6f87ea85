"""Where each prompt of a running batch stands: one state machine per prompt (pure).

The live view's bar, its counts and its table all read the same :class:`Board`, so they
cannot disagree: every prompt is in exactly one state, the counts add up to the total, and
the bar counts the prompts in a final state. A prompt whose grid finished but whose images
are still downloading, or whose upscales have not started yet, is ``finishing``: it stays in
the counts and in the table until its ``finished`` event.
"""

from __future__ import annotations

from enum import StrEnum

import attrs

from .._batch.types import BatchEvent, BatchEventKind, BatchOutcome
from .._models import TaskStatus

__all__ = ["FINAL", "Board", "PromptState", "Row"]


class PromptState(StrEnum):
    """One prompt's state, in the order the counts show them."""

    QUEUED = "queued"  # nothing sent in this run yet
    SUBMITTED = "submitted"  # sent, waiting upstream (NOT_START, SUBMITTED, MODAL)
    RUNNING = "running"  # IN_PROGRESS
    FINISHING = "finishing"  # succeeded; images being saved, or upscales still to come
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNCERTAIN = "uncertain"
    PENDING = "pending"  # stopped unfinished (a rerun picks it up)


FINAL = frozenset(
    {PromptState.SUCCEEDED, PromptState.FAILED, PromptState.UNCERTAIN, PromptState.PENDING}
)
_FROM_OUTCOME = {
    BatchOutcome.SUCCEEDED: PromptState.SUCCEEDED,
    BatchOutcome.FAILED: PromptState.FAILED,
    BatchOutcome.UNCERTAIN: PromptState.UNCERTAIN,
    BatchOutcome.PENDING: PromptState.PENDING,
}
# A unit (the grid, or one upscale) in flight is one of these; "done" units leave the table.
_ACTIVE = (PromptState.RUNNING, PromptState.SUBMITTED, PromptState.FINISHING)


@attrs.define
class _Unit:
    button: str | None
    state: PromptState
    task_id: str | None = None
    status: TaskStatus | None = None
    progress: int | None = None


@attrs.frozen
class Row:
    """One line of the table: a request of an unfinished prompt."""

    index: int
    button: str | None
    state: PromptState
    task_id: str | None
    status: str
    progress: int
    prompt: str


@attrs.define
class _Prompt:
    text: str = ""
    final: PromptState | None = None
    units: dict[str | None, _Unit] = attrs.Factory(dict)

    @property
    def state(self) -> PromptState:
        if self.final is not None:
            return self.final
        if not self.units:
            return PromptState.QUEUED
        for candidate in _ACTIVE:
            if any(unit.state is candidate for unit in self.units.values()):
                return candidate
        # Every request seen so far has settled, and the prompt has not finished: between
        # the grid and its upscales (waiting for a slot), or writing its files.
        return PromptState.FINISHING


def _unit_state(event: BatchEvent) -> PromptState:
    kind = event.kind
    if kind is BatchEventKind.SUCCEEDED:
        return PromptState.FINISHING  # its images are downloading
    if kind is BatchEventKind.DOWNLOADED:
        return PromptState.SUCCEEDED
    if kind is BatchEventKind.FAILED:
        return PromptState.FAILED
    if kind is BatchEventKind.UNCERTAIN:
        return PromptState.UNCERTAIN
    if event.status is TaskStatus.IN_PROGRESS:
        return PromptState.RUNNING
    if event.status is TaskStatus.SUCCESS:
        return PromptState.FINISHING
    return PromptState.SUBMITTED


class Board:
    """Every prompt's state, moved by the batch's events (:meth:`apply`)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self._prompts: dict[int, _Prompt] = {}

    def apply(self, event: BatchEvent) -> None:
        """Move the prompt ``event`` is about. A finished prompt never moves again."""
        prompt = self._prompts.setdefault(event.index, _Prompt())
        prompt.text = event.prompt
        if prompt.final is not None:
            return
        if event.kind is BatchEventKind.FINISHED:
            outcome = event.result.outcome if event.result is not None else BatchOutcome.PENDING
            prompt.final = _FROM_OUTCOME[outcome]
            return
        unit = prompt.units.get(event.button)
        if unit is None:
            unit = prompt.units[event.button] = _Unit(event.button, PromptState.SUBMITTED)
        unit.state = _unit_state(event)
        unit.task_id = event.task_id or unit.task_id
        if event.status is not None:
            unit.status = event.status
        if event.progress is not None:
            unit.progress = event.progress

    def state(self, index: int) -> PromptState:
        """The state of prompt ``index`` (0-based)."""
        prompt = self._prompts.get(index)
        return prompt.state if prompt is not None else PromptState.QUEUED

    def counts(self) -> dict[PromptState, int]:
        """Prompts per state; every state is listed and the counts add up to ``total``."""
        tally = dict.fromkeys(PromptState, 0)
        for prompt in self._prompts.values():
            tally[prompt.state] += 1
        tally[PromptState.QUEUED] += self.total - len(self._prompts)
        return tally

    @property
    def finished(self) -> int:
        """Prompts in a final state (what the bar shows as done)."""
        return sum(1 for prompt in self._prompts.values() if prompt.state in FINAL)

    def rows(self) -> list[Row]:
        """The table: each request in flight of each unfinished prompt, in prompt order.

        A unit whose task succeeded shows as ``downloading``; a ``finishing`` prompt with
        nothing in flight (its upscales wait for a slot) shows one ``finishing`` row.
        """
        rows = []
        for index in sorted(self._prompts):
            prompt = self._prompts[index]
            state = prompt.state
            if state in FINAL or state is PromptState.QUEUED:
                continue
            active = [u for u in prompt.units.values() if u.state in _ACTIVE]
            waiting = not active
            if waiting:
                main = prompt.units.get(None) or next(iter(prompt.units.values()))
                active = [attrs.evolve(main, state=PromptState.FINISHING)]
            for unit in sorted(active, key=lambda u: u.button or ""):
                if unit.state is PromptState.FINISHING:
                    status = "finishing" if waiting else "downloading"
                    progress = 100
                else:
                    status = unit.status.value if unit.status is not None else unit.state.value
                    progress = unit.progress or 0
                rows.append(
                    Row(index, unit.button, unit.state, unit.task_id, status, progress, prompt.text)
                )
        return rows
