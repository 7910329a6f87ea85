"""How often to look at a task again (pure): the poller's pacing decisions.

:class:`PollSettings` holds the knobs; :func:`estimated_time_left` and
:func:`next_poll_interval` decide, from what a task has shown so far, when it is worth a
request. The polling loop only sleeps and sends.
"""

from __future__ import annotations

import math

import attrs

from .._models import TaskStatus

__all__ = ["PollSettings", "estimated_time_left", "next_poll_interval"]

_WAITING = frozenset({TaskStatus.UNKNOWN, TaskStatus.NOT_START, TaskStatus.SUBMITTED})


@attrs.frozen(slots=True)
class PollSettings:
    """How the poller paces itself.

    Args:
        interval: the base interval: how often a task whose progress moves is polled.
        max_interval: the slowest a task is polled while nothing changes.
        push_interval: how often a task that receives pushes is still polled (a fallback).
        push_health: a push within this many seconds makes a task push-healthy.
        stall_timeout: seconds without any change before :class:`TaskStalledError`.
        missing_rounds: rounds a task may be absent from list answers before it is
            confirmed with a direct fetch and reported lost.
    """

    interval: float = 2.0
    max_interval: float = 8.0
    push_interval: float = 20.0
    push_health: float = 30.0
    stall_timeout: float = 900.0
    missing_rounds: int = 3

    def __attrs_post_init__(self) -> None:
        for name in ("interval", "max_interval", "push_interval", "push_health", "stall_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
            if math.isnan(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        if math.isinf(self.interval) or self.max_interval < self.interval:
            raise ValueError(
                f"need a finite interval <= max_interval, not {self.interval!r} and "
                f"{self.max_interval!r}"
            )
        rounds = self.missing_rounds
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
            raise ValueError(f"missing_rounds must be an int >= 1, not {rounds!r}")

    @classmethod
    def around(cls, interval: float, stall_timeout: float = 900.0) -> PollSettings:
        """Settings scaled from one base interval."""
        return cls(
            interval=interval,
            max_interval=interval * 4,
            push_interval=interval * 10,
            push_health=interval * 15,
            stall_timeout=stall_timeout,
        )


def estimated_time_left(
    first: tuple[float, int], latest: tuple[float, int], now: float
) -> float | None:
    """Seconds until a running task should reach 100%, from two progress readings (pure).

    ``first`` is (time, progress) when the task was first seen running, ``latest`` when its
    progress last changed. The rate is taken from the two; since the task started before we
    first saw it, the rate is if anything overestimated, so the estimate errs early (an
    early look costs a poll; a late one costs the caller time). ``None`` when there is no
    rate yet; ``<= 0`` when the task is overdue.

    >>> estimated_time_left((10.0, 0), (14.0, 20), now=15.0)
    15.0
    """
    (t0, p0), (t1, p1) = first, latest
    if p1 <= p0 or t1 <= t0:
        return None
    rate = (p1 - p0) / (t1 - t0)
    return t1 + (100 - p1) / rate - now


def next_poll_interval(
    settings: PollSettings,
    status: TaskStatus,
    *,
    changed: bool,
    quiet_rounds: int,
    push_healthy: bool,
    time_left: float | None = None,
) -> float:
    """Seconds until a task should be polled again (pure).

    A running task whose end can be estimated (``time_left``, see
    :func:`estimated_time_left`) is looked at halfway to its expected end, so a long job costs
    a few polls rather than one per interval, and its end is still seen within about an
    interval. Otherwise moving tasks are polled at the base interval; tasks waiting in a queue
    at twice that; quiet ones back off gently up to ``max_interval``; push-healthy ones
    rarely, since pushes tell us first.

    >>> s = PollSettings(interval=1.0, max_interval=4.0)
    >>> next_poll_interval(s, TaskStatus.IN_PROGRESS, changed=True, quiet_rounds=0,
    ...                    push_healthy=False)
    1.0
    >>> next_poll_interval(s, TaskStatus.IN_PROGRESS, changed=True, quiet_rounds=0,
    ...                    push_healthy=False, time_left=5.0)
    2.5
    """
    if push_healthy:
        return settings.push_interval
    if status is TaskStatus.IN_PROGRESS and time_left is not None and time_left > 0:
        return min(settings.max_interval, max(settings.interval, time_left / 2))
    if changed and status is TaskStatus.IN_PROGRESS:
        return settings.interval
    if status in _WAITING:
        return min(settings.max_interval, settings.interval * 2)
    return min(settings.max_interval, settings.interval * (1.5 ** min(quiet_rounds, 8)))
