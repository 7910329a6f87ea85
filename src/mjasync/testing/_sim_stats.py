"""What the simulator served, counted for tests and benchmarks.

:class:`Counters` is the live, mutable tally (O(1) per event); :class:`SimStats` is the frozen
snapshot handed to callers and served as JSON by ``GET /_sim/stats``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any

__all__ = ["Counters", "SimStats"]


def _frozen(counter: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(sorted(counter.items())))


def _seconds(values: Mapping[str, float]) -> Mapping[str, float]:
    return MappingProxyType({key: round(value, 6) for key, value in sorted(values.items())})


@dataclass(frozen=True, slots=True)
class SimStats:
    """A snapshot of the simulator's counters.

    Per-mode mappings (``active``, ``running``, ``queued``, ``peak_active``, ``peak_running``)
    have one entry per account: ``fast`` (also the unprefixed routes) and every configured mode.

    Attributes:
        requests: requests per route kind: ``submit``, ``fetch``, ``list``, ``image_seed``,
            ``cancel``, ``image``, ``stats``, ``other`` (unknown routes).
        accepted: submissions that created or started a task (codes 1, 21, 22).
        accepted_by_endpoint: the same, per submit endpoint (``imagine``, ``action``, ...).
        refused: refusals by reason: ``queue_full``, ``banned``, ``invalid``, ``not_found``,
            ``auth``.
        duplicates: accepted submissions whose JSON body, minus ``notifyHook``, equals an earlier
            accepted one on the same endpoint (a resend of the same logical request).
        active: tasks per mode now NOT_START, SUBMITTED or IN_PROGRESS.
        running: tasks per mode now IN_PROGRESS.
        queued: tasks per mode now waiting for a core slot (NOT_START).
        peak_active, peak_running: the highest ``active`` / ``running`` seen per mode.
        peak_queued: the highest ``queued`` (jobs waiting for a core) seen per mode.
        core_busy: core-seconds per mode with a job holding the core (SUBMITTED or
            IN_PROGRESS), from the first job's arrival to the latest change of cores in use.
        core_idle: core-seconds per mode with no job on the core while jobs were still to
            come: the sum over cores of their free time from the first job's arrival to the
            latest moment a job got a core (idle time a client could have used).
        finished: tasks that reached SUCCESS, FAILURE or CANCEL, by status.
        tasks: tasks the server currently knows.
        faults: injected faults by fault name (``html_502``, ``rate_limit``,
            ``connection_reset``, ``truncated_json``, ``response_lost``, ``latency``).
        faults_by_route: the same split by route kind (``submit``, ``poll``).
        webhooks_sent, webhooks_failed: notifyHook posts answered 2xx / failed or non-2xx.
        webhooks_dropped, webhooks_duplicated: posts the webhook faults dropped or doubled.
    """

    requests: Mapping[str, int]
    accepted: int
    accepted_by_endpoint: Mapping[str, int]
    refused: Mapping[str, int]
    duplicates: int
    active: Mapping[str, int]
    running: Mapping[str, int]
    queued: Mapping[str, int]
    peak_active: Mapping[str, int]
    peak_running: Mapping[str, int]
    peak_queued: Mapping[str, int]
    core_busy: Mapping[str, float]
    core_idle: Mapping[str, float]
    finished: Mapping[str, int]
    tasks: int
    faults: Mapping[str, int]
    faults_by_route: Mapping[str, Mapping[str, int]]
    webhooks_sent: int
    webhooks_failed: int
    webhooks_dropped: int
    webhooks_duplicated: int

    @property
    def refused_total(self) -> int:
        """All refusals together."""
        return sum(self.refused.values())

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dicts (what ``GET /_sim/stats`` serves)."""
        out: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, Mapping):
                value = {k: dict(v) if isinstance(v, Mapping) else v for k, v in value.items()}
            out[item.name] = value
        return out


class Counters:
    """The live tallies behind :class:`SimStats`; every update is O(1)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Zero every counter (the per-mode peaks are re-based by the caller)."""
        self.requests: Counter[str] = Counter()
        self.accepted = 0
        self.accepted_by_endpoint: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.duplicates = 0
        self.finished: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.faults_by_route: dict[str, Counter[str]] = {"submit": Counter(), "poll": Counter()}
        self.webhooks_sent = 0
        self.webhooks_failed = 0
        self.webhooks_dropped = 0
        self.webhooks_duplicated = 0
        self._bodies: set[bytes] = set()

    def fault(self, route_kind: str, name: str) -> None:
        """Count one injected fault."""
        self.faults[name] += 1
        self.faults_by_route.setdefault(route_kind, Counter())[name] += 1

    def accept(self, endpoint: str, body: Mapping[str, Any]) -> None:
        """Count an accepted submission and whether its body was seen before."""
        self.accepted += 1
        self.accepted_by_endpoint[endpoint] += 1
        comparable = {k: v for k, v in body.items() if k != "notifyHook"}
        canonical = json.dumps([endpoint, comparable], sort_keys=True, ensure_ascii=False)
        # A digest keeps memory flat when bodies carry megabytes of base64 images.
        digest = hashlib.blake2b(canonical.encode(), digest_size=16).digest()
        if digest in self._bodies:
            self.duplicates += 1
        else:
            self._bodies.add(digest)

    def snapshot(
        self,
        *,
        active: Mapping[str, int],
        running: Mapping[str, int],
        queued: Mapping[str, int],
        peak_active: Mapping[str, int],
        peak_running: Mapping[str, int],
        peak_queued: Mapping[str, int],
        core_busy: Mapping[str, float],
        core_idle: Mapping[str, float],
        tasks: int,
    ) -> SimStats:
        """Freeze the counters together with the accounts' current figures."""
        return SimStats(
            requests=_frozen(self.requests),
            accepted=self.accepted,
            accepted_by_endpoint=_frozen(self.accepted_by_endpoint),
            refused=_frozen(self.refused),
            duplicates=self.duplicates,
            active=_frozen(active),
            running=_frozen(running),
            queued=_frozen(queued),
            peak_active=_frozen(peak_active),
            peak_running=_frozen(peak_running),
            peak_queued=_frozen(peak_queued),
            core_busy=_seconds(core_busy),
            core_idle=_seconds(core_idle),
            finished=_frozen(self.finished),
            tasks=tasks,
            faults=_frozen(self.faults),
            faults_by_route=MappingProxyType(
                {kind: _frozen(c) for kind, c in sorted(self.faults_by_route.items())}
            ),
            webhooks_sent=self.webhooks_sent,
            webhooks_failed=self.webhooks_failed,
            webhooks_dropped=self.webhooks_dropped,
            webhooks_duplicated=self.webhooks_duplicated,
        )
