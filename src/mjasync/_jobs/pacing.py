"""How often to look at a task again (pure): the poller's pacing decisions.

:class:`PollSettings` holds the knobs; :func:`estimated_time_left` and
:func:`next_poll_interval` decide, from what a task has shown so far, when it is worth a
request. The polling loop only sleeps and sends.

**Servers that are slow to tell.** A relay (new-api) does not ask upstream when it is asked:
one background loop refreshes every unfinished task every ~15 s, and between refreshes every
answer is the same (only ``imageUrl``'s ``?rand=`` query changes, which the client never
compares: it looks at status and progress). Its progress is as old as the last refresh, so
extrapolating it says nothing about when the next change *shows*. The poller notes, for every
poll that showed a change, the window in which it must have happened
(:class:`ChangeWindow`); :func:`fit_cadence` finds the refresh period and phase that every
window agrees with, if there is one, and :func:`refresh_due` then times each poll to meet the
next refresh instead of trusting the extrapolation. A cadence found is first put on trial
(:func:`judge_cadence`): for one period every task is polled every interval, and any change
off the grid refutes it. (Jobs of equal length started together change in step on any
server; only a relay keeps quiet between its refreshes.)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import attrs

from .._models import TaskStatus

__all__ = [
    "MAX_CADENCE",
    "Cadence",
    "CadenceTrust",
    "ChangeWindow",
    "PollSettings",
    "estimated_time_left",
    "expected_time_left",
    "fit_cadence",
    "judge_cadence",
    "next_poll_interval",
    "refresh_due",
]

_WAITING = frozenset({TaskStatus.NOT_START, TaskStatus.SUBMITTED})
#: Quiet rounds a task without a status is looked at every interval before backing off.
_BLANK_ROUNDS = 16


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


def expected_time_left(
    first: tuple[float, int],
    progress: int,
    changed: tuple[float, float],
    now: float,
    *,
    job_time: float | None,
    sharp: float,
    first_sharp: bool = True,
) -> tuple[float | None, bool]:
    """Seconds until a running task should end, and whether that is sure enough to meet (pure).

    ``first`` is (time, progress) when it was first seen running (``first_sharp``: seen within
    ``sharp`` seconds of the look before); its latest ``progress`` appeared between the two
    looks ``changed`` = (seen unchanged, seen changed). Sure estimates:

    - both readings sharp: the progress rate (:func:`estimated_time_left`, the latest change
      counted from the middle of its window);
    - otherwise, once other jobs finished: as long as they took (``job_time``, from ``first``).

    Otherwise the rate from when the change was seen, not sure: :func:`next_poll_interval`
    then looks halfway and every interval near the end rather than meet it.

    >>> expected_time_left((0.0, 0), 50, (4.9, 5.1), 5.0, job_time=None, sharp=0.5)
    (5.0, True)
    >>> expected_time_left((0.0, 0), 50, (1.0, 5.0), 5.0, job_time=12.0, sharp=0.5)
    (7.0, True)
    >>> expected_time_left((0.0, 0), 50, (1.0, 5.0), 5.0, job_time=None, sharp=0.5)
    (5.0, False)
    """
    since, seen = changed
    if first_sharp and since > first[0] and seen - since <= sharp:
        left = estimated_time_left(first, ((since + seen) / 2, progress), now)
        if left is not None:
            return left, True
    if job_time is not None:
        return first[0] + job_time - now, True
    return estimated_time_left(first, (seen, progress), now), False


def next_poll_interval(
    settings: PollSettings,
    status: TaskStatus,
    *,
    changed: bool,
    quiet_rounds: int,
    push_healthy: bool,
    time_left: float | None = None,
    sure: bool = False,
) -> float:
    """Seconds until a task should be polled again (pure).

    A running task whose end can be estimated (``time_left``, see
    :func:`expected_time_left`) is looked at halfway to its expected end, so a long job costs
    a few polls rather than one per interval. An estimate that is not ``sure`` keeps within
    [interval, max_interval], and once overdue the task backs off like a quiet one. A ``sure``
    one is met: halfway while the end is far (more than two ``max_interval`` away; at most
    every ``push_interval``), then when it is expected (a quarter interval after); once
    overdue, every interval (never slower near the expected end), and only after
    ``max_interval`` overdue the back-off. Otherwise moving tasks are polled at the base
    interval, and so are tasks shown without a status (a relay before its first refresh) for a
    while; tasks waiting in a queue from twice that; quiet ones back off gently up to
    ``max_interval``; push-healthy ones rarely, since pushes tell us first.

    >>> s = PollSettings(interval=1.0, max_interval=4.0)
    >>> next_poll_interval(s, TaskStatus.IN_PROGRESS, changed=True, quiet_rounds=0,
    ...                    push_healthy=False)
    1.0
    >>> next_poll_interval(s, TaskStatus.IN_PROGRESS, changed=True, quiet_rounds=0,
    ...                    push_healthy=False, time_left=5.0)
    2.5
    >>> next_poll_interval(s, TaskStatus.IN_PROGRESS, changed=True, quiet_rounds=0,
    ...                    push_healthy=False, time_left=5.0, sure=True)
    5.25
    """
    if push_healthy:
        return settings.push_interval
    if status is TaskStatus.IN_PROGRESS and time_left is not None and not sure:
        if time_left > 0:
            return min(settings.max_interval, max(settings.interval, time_left / 2))
    elif status is TaskStatus.IN_PROGRESS and time_left is not None:
        if time_left > 2 * settings.max_interval:
            return min(settings.push_interval, time_left / 2)  # far: a look halfway
        if time_left > 0:
            # Near: meet the expected end, a quarter interval late, so that a job a little
            # slower than expected is not missed by a hair and seen an interval later.
            return time_left + settings.interval / 4
        if -time_left <= settings.max_interval:
            return settings.interval  # just overdue: the end is due any moment
    if changed and status is TaskStatus.IN_PROGRESS:
        return settings.interval
    if status is TaskStatus.UNKNOWN and quiet_rounds < _BLANK_ROUNDS:
        # No status yet: a relay before its first refresh from upstream. The refresh that
        # shows it is worth seeing soon, and tells when the relay refreshes.
        return settings.interval
    if status in _WAITING or status is TaskStatus.UNKNOWN:  # from twice the interval, slowing
        return min(settings.max_interval, settings.interval * 2 * 1.5 ** min(quiet_rounds, 8))
    return min(settings.max_interval, settings.interval * (1.5 ** min(quiet_rounds, 8)))


# -- servers that refresh on a cadence -------------------------------------------------------

#: The longest refresh period looked for (seconds); new-api's is 15 s plus its pass time.
MAX_CADENCE = 120.0
#: Windows a cadence must agree with before it is trusted.
_MIN_WINDOWS = 4
#: Relative steps of the period search: coarse over the whole range, fine near a known period.
_COARSE_STEP, _FINE_STEP = 0.01, 0.0025
#: How far (as a share of the period) a refresh may come late: a relay's pass takes time.
_JITTER = 0.02


@attrs.frozen(slots=True)
class ChangeWindow:
    """A task seen unchanged by a poll sent at ``opened`` and changed by ``closed``.

    On a server that changes only at refreshes, one refresh happened within the window.
    ``task_id`` names the task whose window it is (the one seen unchanged latest).
    """

    opened: float
    closed: float
    task_id: str

    @property
    def width(self) -> float:
        """How long the window is (seconds)."""
        return self.closed - self.opened


@attrs.frozen(slots=True)
class Cadence:
    """A server whose answers change only at refreshes ``period`` seconds apart.

    One refresh happened between ``earliest`` and ``latest`` (loop-clock seconds); the others
    are whole periods away from it.
    """

    period: float
    earliest: float
    latest: float

    def next_refresh(self, after: float) -> float:
        """The earliest instant of the first refresh whose earliest instant is after ``after``.

        >>> Cadence(period=15.0, earliest=100.0, latest=100.5).next_refresh(131.0)
        145.0
        """
        periods = math.floor((after - self.earliest) / self.period) + 1
        return self.earliest + periods * self.period


def _fit_at(
    windows: Sequence[ChangeWindow], period: float, min_windows: int, min_periods: int
) -> Cadence | None:
    """The phase at ``period`` that every informative window agrees with, if any (pure)."""
    # Only windows narrower than a third of the period say where in it the refresh was.
    narrow = [window for window in reversed(windows) if window.width <= period / 3]
    if len(narrow) < min_windows or len({window.task_id for window in narrow}) < 2:
        return None
    slack = _JITTER * period
    newest = narrow[0]  # the reference: the refreshes are counted back from its one
    earliest, latest = newest.opened - slack, newest.closed + slack
    refreshes = {0}
    for window in narrow[1:]:
        low, high = window.opened - slack, window.closed + slack
        back = round((earliest + latest - low - high) / (2 * period))
        earliest = max(earliest, low + back * period)
        latest = min(latest, high + back * period)
        if earliest > latest:
            return None
        refreshes.add(back)
    # Changes seen at neighbouring refreshes, not only at a multiple of the period apart:
    # on a server that simply runs jobs of equal length, ends repeat every job time.
    ordered = sorted(refreshes)
    neighbours = sum(1 for a, b in itertools.pairwise(ordered) if b - a == 1)
    if neighbours < 2 or ordered[-1] < min_periods:
        return None
    return Cadence(period=period, earliest=earliest, latest=latest)


def fit_cadence(
    windows: Sequence[ChangeWindow],
    *,
    min_period: float,
    max_period: float = MAX_CADENCE,
    near: float | None = None,
    min_windows: int = _MIN_WINDOWS,
    min_periods: int = 3,
) -> Cadence | None:
    """The refresh cadence every change window agrees with, or ``None`` (pure).

    A cadence is trusted only when at least ``min_windows`` narrow windows (a third of the
    period at most) of at least two tasks, spanning ``min_periods`` periods or more and
    holding neighbouring refreshes at least twice, all hold a refresh on one grid. Among the periods
    that fit, the longest group wins (its divisors fit as well), and within it the shortest
    period: a period guessed short makes the polls come early, which the next poll corrects,
    while one guessed long would make them come ever later.
    ``near``, a period found before, is tried first (a cheap, fine search around it).

    Args:
        windows: recent change windows, oldest first.
        min_period: shorter cadences are not worth following (a few poll intervals).
        max_period: the longest period looked for.
        near: the period of the cadence followed so far, if any.
        min_windows: how many windows must agree.
        min_periods: how many periods they must span.

    >>> ws = [ChangeWindow(t - 0.1, t + 0.05, f"task {t}") for t in (10, 25, 40, 70, 85)]
    >>> fit = fit_cadence(ws, min_period=4.0)
    >>> round(fit.period), 99 < fit.next_refresh(86.0) <= 100  # guessed early, never late
    (15, True)
    """
    if len(windows) < min_windows:
        return None
    span = max(w.closed for w in windows) - min(w.opened for w in windows)
    top = min(max_period, span / min_periods)
    if top < min_period:
        return None

    def scan(high: float, low: float, step: float) -> Cadence | None:
        period, best = high, None
        while period >= low:
            fit = _fit_at(windows, period, min_windows, min_periods)
            if fit is not None:
                best = fit
            elif best is not None:
                break  # the lower end of the longest group of periods that fit
            period *= 1 - step
        return best

    if near is not None and min_period <= near <= top:
        found = scan(min(top, near * 1.03), max(min_period, near * 0.97), _FINE_STEP)
        if found is not None:
            return found
    return scan(top, min_period, _COARSE_STEP)


def refresh_due(
    settings: PollSettings,
    cadence: Cadence,
    now: float,
    *,
    missed: int,
) -> float:
    """When to poll next on a server that refreshes on ``cadence`` (pure; an absolute time).

    Just after the earliest instant the next refresh may come (an interval or a tenth of the
    period after it, whichever is less), so its news is seen within an interval of the
    refresh. If the last round showed nothing (``missed`` rounds in a row:
    the refresh is late, or brought no news), look again after an interval, backing off
    gently up to ``max_interval``, never past the next refresh.

    >>> s = PollSettings(interval=2.0, max_interval=8.0)
    >>> c = Cadence(period=15.0, earliest=100.0, latest=100.5)
    >>> refresh_due(s, c, 101.0, missed=0)  # a tenth of the period after it, at most
    116.5
    >>> refresh_due(s, c, 116.5, missed=1)  # it showed nothing: an interval later
    118.5
    """
    margin = min(settings.interval, cadence.period / 10)
    if missed <= 0:  # this round saw the refresh: the next one
        return cadence.next_refresh(now) + margin
    again = min(settings.max_interval, settings.interval * 1.5 ** min(missed - 1, 8))
    return min(now + again, cadence.next_refresh(now - margin) + margin)


#: How many of its periods a refuted cadence is not tried again.
_REFUTED_PERIODS = 30
#: Periods within this share of each other are the same cadence.
_SAME_PERIOD = 0.05


@attrs.frozen(slots=True)
class CadenceTrust:
    """Where the poller stands with a server's cadence (pure state).

    Attributes:
        trusted: the cadence polls follow, once it passed its trial.
        candidate: a cadence on trial: every task is polled every interval until
            ``trial_until``, and a change off its grid refutes it.
        trial_until: when the candidate's trial ends.
        refuted: ``(period, until)`` of cadences refuted lately, not tried again before
            ``until``.
    """

    trusted: Cadence | None = None
    candidate: Cadence | None = None
    trial_until: float = 0.0
    refuted: tuple[tuple[float, float], ...] = ()


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= _SAME_PERIOD * min(a, b)


def judge_cadence(
    trust: CadenceTrust,
    fit: Cadence | None,
    now: float,
    *,
    interval: float,
    relay: bool = False,
) -> CadenceTrust:
    """Update the trust in a cadence with the latest fit of the change windows (pure).

    A trusted cadence follows the fit while its period holds (a lost fit puts it aside). A
    new fit becomes a candidate, unless its period was refuted lately; it is trusted once it
    still fits after one whole period of polls every ``interval``, refuted if it stops
    fitting before. With ``relay`` (the server showed tasks without a status, as a relay
    does until its first refresh from upstream, so it does refresh on a clock of its own) a
    fit is trusted at once.

    >>> c = Cadence(period=15.0, earliest=100.0, latest=100.2)
    >>> trial = judge_cadence(CadenceTrust(), c, 101.0, interval=2.0)
    >>> trial.candidate == c, trial.trial_until
    (True, 118.0)
    >>> judge_cadence(trial, c, 118.5, interval=2.0).trusted == c
    True
    >>> judge_cadence(trial, None, 105.0, interval=2.0).refuted
    ((15.0, 555.0),)
    >>> judge_cadence(CadenceTrust(), c, 101.0, interval=2.0, relay=True).trusted == c
    True
    """
    refuted = tuple(entry for entry in trust.refuted if entry[1] > now)
    if trust.trusted is not None:
        if fit is not None and _same(fit.period, trust.trusted.period):
            return CadenceTrust(trusted=fit, refuted=refuted)
        # Lost: a new fit must pass a trial again (below).
    elif trust.candidate is not None:
        if fit is not None and _same(fit.period, trust.candidate.period):
            if now >= trust.trial_until:
                return CadenceTrust(trusted=fit, refuted=refuted)
            return CadenceTrust(candidate=fit, trial_until=trust.trial_until, refuted=refuted)
        gone = trust.candidate.period
        refuted += ((gone, now + _REFUTED_PERIODS * gone),)
    if fit is None or any(_same(fit.period, period) for period, _ in refuted):
        return CadenceTrust(refuted=refuted)
    if relay:
        return CadenceTrust(trusted=fit, refuted=refuted)
    return CadenceTrust(candidate=fit, trial_until=now + fit.period + interval, refuted=refuted)
