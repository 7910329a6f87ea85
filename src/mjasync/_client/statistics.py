"""``client.statistics()``: a frozen snapshot of what a client is doing and has done."""

from __future__ import annotations

import attrs

from .._jobs.engine import JobEngine
from .._wire.api import WireAPI

__all__ = ["ClientStatistics", "ModeStatistics", "snapshot"]


@attrs.frozen(slots=True)
class ModeStatistics:
    """One mode's budget and watch list at the moment of the snapshot.

    ``in_flight`` counts every slot held, ``queued_ahead`` the ones let wait in the account's
    queue on purpose (``queue_ahead``).
    """

    mode: str
    limit: int
    in_flight: int
    waiting_for_slot: int
    watched: int
    queued_ahead: int = 0


@attrs.frozen(slots=True)
class ClientStatistics:
    """A snapshot of what the client is doing and has done (``client.statistics()``).

    Attributes:
        modes: per-mode budget and watch counts.
        requests: HTTP requests sent (retries included); ``retries`` of them were retries.
        submits, polls, fetches: requests by kind (``polls`` are list-by-condition calls).
        queue_full: queue-full refusals seen; ``rate_limited``: HTTP 429 answers.
        jobs_submitted: submits the server accepted (each is a task id, paid for).
        submits_failed: submits refused or left uncertain (no job was followed).
        jobs_succeeded, jobs_failed: jobs that ended, by outcome; every job is counted
            once, whichever way it was followed (``run``, ``submit`` + ``result``,
            ``gather``, ``stream``, ``watch``, the batch).
        jobs_abandoned: jobs given up because their last owner left (also counted as
            failed); each was cancelled upstream where the server can, and kept its slot
            until the server said it ended.
        watched: tasks followed now (abandoned ones included while they hold a slot).
        events: progress events emitted; ``parsed``: task payloads parsed (the rest were
            recognised as unchanged before parsing).
        completed_by_poll, completed_by_push: which source first delivered each end (a
            pushed end is always confirmed by a poll before the job ends).
        push_ends_refuted: pushes that claimed an end the server did not confirm.
    """

    modes: tuple[ModeStatistics, ...]
    requests: int
    retries: int
    submits: int
    polls: int
    fetches: int
    queue_full: int
    rate_limited: int
    jobs_submitted: int
    submits_failed: int
    jobs_succeeded: int
    jobs_failed: int
    jobs_abandoned: int
    watched: int
    events: int
    parsed: int
    poll_rounds: int
    completed_by_poll: int
    completed_by_push: int
    pushes_applied: int
    push_ends_refuted: int

    def mode(self, name: str | None) -> ModeStatistics | None:
        """The snapshot of one mode (``None``: the default budget), if it was used."""
        key = name or "default"
        return next((m for m in self.modes if m.mode == key), None)


def snapshot(api: WireAPI, engine: JobEngine) -> ClientStatistics:
    """Read every counter once."""
    wire, jobs = api.counters, engine.counters
    modes = tuple(
        ModeStatistics(
            mode=stats.mode,
            limit=stats.limit,
            in_flight=stats.in_use + engine.queued_ahead(stats.mode),
            waiting_for_slot=stats.waiting,
            watched=engine.watched(stats.mode),
            queued_ahead=engine.queued_ahead(stats.mode),
        )
        for stats in engine.limiter.statistics()
    )
    return ClientStatistics(
        modes=modes,
        requests=wire.requests,
        retries=wire.retries,
        submits=wire.submit_requests,
        polls=wire.list_requests,
        fetches=wire.fetch_requests,
        queue_full=wire.queue_full,
        rate_limited=wire.rate_limited,
        jobs_submitted=jobs.submitted,
        submits_failed=jobs.submits_failed,
        jobs_succeeded=jobs.succeeded,
        jobs_failed=jobs.failed,
        jobs_abandoned=jobs.abandoned,
        watched=engine.watched(),
        events=jobs.events,
        parsed=jobs.parsed,
        poll_rounds=jobs.poll_rounds,
        completed_by_poll=jobs.completed_by_poll,
        completed_by_push=jobs.completed_by_push,
        pushes_applied=jobs.pushes_applied,
        push_ends_refuted=jobs.push_ends_refuted,
    )
