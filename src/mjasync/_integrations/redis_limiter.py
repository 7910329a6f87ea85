"""A shared in-flight budget on Redis: several processes, one upstream account.

Each process runs its own :class:`RedisLimiter` with the same ``name``. Per mode, a slot is a
*lease* in a Redis sorted set ``mjasync:{name}:<mode>:leases`` (member: lease id, score: expiry
in server milliseconds). The braces are a Redis Cluster hash tag, so every key of one name lives
in one slot. Leases are granted by a Lua script that first drops expired leases and then grants
one only while the count is below the limit; the script reads ``redis.call('TIME')``, so the
clocks of the client machines never matter. A holder renews its leases every ``lease_seconds/3``;
a process that dies stops renewing and its leases expire, so nothing leaks and, since expired
leases are removed before counting, nothing is counted twice.

A waiter that is refused listens on ``mjasync:{name}:<mode>:released``, where every release
is published, and otherwise retries when the earliest lease would expire.

Redis faults. *Restarted without its data*: every script call carries the *epoch* this process
last saw (a random id in the hash ``mjasync:{name}:epoch``). A script that finds the epoch gone
although its caller knew one has met a Redis that lost its data: it starts a new epoch with a
*hold* of one ``lease_seconds``, during which no slot is granted while the holders, renewing
every ``lease_seconds/3``, re-assert their leases (even above the limit: the jobs are in flight
upstream). Only then do the waiters count the leases again, so the true number is what they see.
(A process that first meets the emptied Redis without having known the old epoch cannot tell;
it is the one case the hold misses.)

*Unreachable for a while*: an acquisition retries with backoff for up to ``outage_timeout``
seconds (the outage is measured from the first failed call of this process, and logged once),
then raises :class:`~mjasync.LimiterError`; once the outage has lasted that long, acquisitions
fail at once (one probe a second) until Redis answers again. Leases already held are unaffected:
their jobs run to their ends, and a release that fails leaves the lease to expire.

``concurrency="auto"`` keeps the AIMD state in a hash ``mjasync:{name}:<mode>:aimd``. The rule
itself stays the pure :func:`~mjasync._jobs.limiter.next_limit`; Redis only provides a
compare-and-set script, so every process applies the same rule to the same shared state.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import random
import secrets
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import attrs

from .._errors import LimiterError
from .._jobs.limiter import AimdState, LimiterStatistics, Outcome, Slot, next_limit
from .._wire.modes import mode_key

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub
    from redis.commands.core import AsyncScript

__all__ = [
    "RedisLimiter",
    "check_budget_name",
    "check_redis_url",
    "outage_retry_delay",
    "redact_url",
    "require_redis",
]

_LOG = logging.getLogger("mjasync.redis")


#: The longest a waiter sleeps without a wake-up. Pub/sub normally wakes it at once; this only
#: bounds the delay when a notification is lost (pub/sub reconnecting) or never sent.
_POLL_CAP = 1.0
#: A learned AIMD limit that nobody touched for a day is forgotten (the key expires).
_AIMD_TTL_MS = 86_400_000
#: Compare-and-set attempts per feedback; each failure means another process succeeded.
_CAS_ATTEMPTS = 32
#: An acquisition retrying an unreachable Redis waits this long first, doubling up to the cap.
_RETRY_FIRST = 0.05
_RETRY_CAP = 1.0
#: Once an outage outlasted ``outage_timeout``, acquisitions fail at once unless the last failed
#: call is older than this (then they try once): a dead Redis costs a queue of 1,000 requests
#: one probe a second, not 1,000 connect timeouts.
_PROBE_INTERVAL = 1.0
_SCHEMES = frozenset({"redis", "rediss", "unix"})
_SECRET_QUERY_KEYS = frozenset({"password", "pass", "passwd", "secret", "token"})

# All scripts compute "now" from the server clock and need Redis >= 3.2 (effects replication;
# the guarded call enables it on 3.2-4.x and is a no-op on 5+).
_NOW = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# Keep the set itself alive exactly as long as its latest lease: a name nobody uses any more
# disappears from Redis on its own.
_EXPIRE_SET = """
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[1], tonumber(last[2]) + 1000) end
"""

# The epoch check shared by acquire and renew. KEYS[n]: the epoch hash; ARGV: the caller's
# known epoch ('' for a process that has not seen one yet), a fresh id, the hold in ms. A known
# epoch that is gone means Redis lost its data; one that changed means a newcomer re-created it
# first. Either way the leases of the jobs in flight are missing: hold new grants for a lease
# time, once per epoch, so their holders can re-assert them first.
_EPOCH = """
local function check_epoch(key, known, fresh, hold_ms)
  local id = redis.call('HGET', key, 'id')
  if not id then
    id = fresh
    redis.call('HSET', key, 'id', id)
    if known ~= '' then redis.call('HSET', key, 'hold', now + hold_ms) end
  elseif known ~= '' and known ~= id then
    redis.call('HSETNX', key, 'hold', now + hold_ms)
  end
  redis.call('PEXPIRE', key, 86400000)
  return id, tonumber(redis.call('HGET', key, 'hold') or 0)
end
"""

# KEYS: leases, aimd, epoch. ARGV: lease id, lease ms, fixed limit (0 = use the shared AIMD
# limit), initial AIMD limit, known epoch, fresh epoch id, hold ms. Returns {granted, leases now
# held, limit, ms until worth trying again, epoch}.
_ACQUIRE = (
    _NOW
    + _EPOCH
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local epoch, hold = check_epoch(KEYS[3], ARGV[5], ARGV[6], tonumber(ARGV[7]))
local limit = tonumber(ARGV[3])
if limit == 0 then
  limit = tonumber(redis.call('HGET', KEYS[2], 'limit') or ARGV[4])
end
local count = redis.call('ZCARD', KEYS[1])
if hold > now then return {0, count, limit, hold - now, epoch} end
if count < limit then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
"""
    + _EXPIRE_SET
    + """
  return {1, count + 1, limit, 0, epoch}
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, count, limit, tonumber(first[2]) - now, epoch}
"""
)

# KEYS: leases, epoch. ARGV: lease ms, known epoch, fresh epoch id, hold ms, then the ids this
# process holds. A held lease that is missing (expired while Redis or this process stalled, or
# Redis restarted empty) is added back: the job is still in flight upstream, so counting it is
# the truth even if that briefly exceeds the limit. Returns {leases re-created, leases now
# held, epoch}.
_RENEW = (
    _NOW
    + _EPOCH
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local epoch = check_epoch(KEYS[2], ARGV[2], ARGV[3], tonumber(ARGV[4]))
local expiry = now + tonumber(ARGV[1])
local recreated = 0
for i = 5, #ARGV do
  recreated = recreated + redis.call('ZADD', KEYS[1], expiry, ARGV[i])
end
"""
    + _EXPIRE_SET
    + """
return {recreated, redis.call('ZCARD', KEYS[1]), epoch}
"""
)

# KEYS: leases. ARGV: the mode's release channel, the mode, then lease ids. The notice makes
# the waiters of every process try again at once. Returns how many leases were removed.
_RELEASE = """
local removed = 0
for i = 3, #ARGV do
  removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
end
if removed > 0 then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return removed
"""

# KEYS: aimd. ARGV: expected limit, expected accepted, new limit, new accepted, initial limit,
# ttl ms. Writes the new state only if the stored one is the expected one (a missing hash is the
# initial state). Returns {written, limit, accepted} with the state now stored.
_AIMD_CAS = """
local limit = tonumber(redis.call('HGET', KEYS[1], 'limit') or ARGV[5])
local accepted = tonumber(redis.call('HGET', KEYS[1], 'accepted') or 0)
if limit ~= tonumber(ARGV[1]) or accepted ~= tonumber(ARGV[2]) then
  return {0, limit, accepted}
end
redis.call('HSET', KEYS[1], 'limit', ARGV[3])
redis.call('HSET', KEYS[1], 'accepted', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return {1, tonumber(ARGV[3]), tonumber(ARGV[4])}
"""


def redact_url(url: str) -> str:
    """Return ``url`` with its password replaced by ``***``, for messages and logs.

    Args:
        url: a Redis URL (``redis://``, ``rediss://`` or ``unix://``).

    Example:
        >>> redact_url("redis://app:hunter2@cache:6379/0?password=x")
        'redis://app:***@cache:6379/0?password=***'
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<unparseable URL>"
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    if parts.password is not None:
        netloc = f"{parts.username or ''}:***@{netloc}"
    elif parts.username:
        netloc = f"{parts.username}@{netloc}"
    query = [
        (key, "***" if key.lower() in _SECRET_QUERY_KEYS else value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    # Built by hand: urlunsplit drops the "//" of "unix:///path" when there is no host.
    text = f"{parts.scheme}://{netloc}{parts.path}"
    return f"{text}?{urlencode(query, safe='*')}" if query else text


def require_redis(what: str = "RedisLimiter") -> None:
    """Fail at construction, not at the first call, when the extra is missing."""
    try:
        import redis.asyncio  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"{what} needs the redis package: pip install 'mjasync[redis]'") from exc


def check_redis_url(url: object) -> str:
    """Check a Redis URL's type and scheme; return it redacted (for messages and reprs).

    Raises:
        TypeError: not a str.
        ValueError: not ``redis://``, ``rediss://`` or ``unix://`` (shown without password).
    """
    if not isinstance(url, str):
        raise TypeError(f"url must be a str like 'redis://host:6379/0', not {type(url).__name__}")
    safe_url = redact_url(url)
    if urlsplit(url).scheme not in _SCHEMES:
        raise ValueError(f"not a Redis URL (redis://, rediss://, unix://): {safe_url}")
    return safe_url


def check_budget_name(name: object) -> None:
    """Names go into Redis keys (inside a ``{...}`` hash tag): 1-200 of ``A-Za-z0-9-_.:@/``.

    Raises:
        ValueError: any other name.
    """
    if (
        not isinstance(name, str)
        or not 0 < len(name) <= 200
        or not all(ch.isalnum() or ch in "-_.:@/" for ch in name)
    ):
        raise ValueError(f"name must be 1-200 letters, digits or -_.:@/, not {name!r}")


def _redis_errors() -> tuple[type[BaseException], ...]:
    from redis.exceptions import RedisError

    return (RedisError, OSError)


def _ints(reply: Any, n: int) -> list[int]:
    if not isinstance(reply, list | tuple) or len(reply) != n:
        raise LimiterError(f"unexpected reply from a Redis script: {reply!r}")
    return [int(item) for item in reply]


def _ints_and_epoch(reply: Any, n: int) -> tuple[list[int], str]:
    """A script reply of ``n`` integers followed by the epoch id."""
    if not isinstance(reply, list | tuple) or len(reply) != n + 1:
        raise LimiterError(f"unexpected reply from a Redis script: {reply!r}")
    epoch = reply[-1]
    return _ints(reply[:-1], n), epoch.decode() if isinstance(epoch, bytes) else str(epoch)


def outage_retry_delay(attempt: int, remaining: float, rng: Callable[[], float]) -> float:
    """Seconds to wait before retrying an unreachable Redis (pure): exponential, jittered.

    50 ms doubling per attempt up to 1 s, times a random factor in [0.5, 1), never past the
    ``remaining`` time of the outage budget.

    >>> outage_retry_delay(0, 10.0, lambda: 1.0), outage_retry_delay(9, 0.3, lambda: 1.0)
    (0.05, 0.3)
    """
    base = min(_RETRY_CAP, _RETRY_FIRST * 2.0 ** min(attempt, 30))
    return max(0.0, min(remaining, base * (0.5 + rng() / 2)))


@attrs.define(eq=False)
class _ModeState:
    """This process's view of one mode's shared budget."""

    key: str
    leases_key: str
    aimd_key: str
    channel: str
    limit: int
    aimd: AimdState
    #: Leases everywhere, as of the last script answer.
    shared: int = 0
    held: dict[str, Slot] = attrs.field(factory=dict)
    #: Lease ids whose grant we could not confirm (Redis failed mid-call); removed on renewal.
    doubtful: set[str] = attrs.field(factory=set)
    waiting: int = 0
    #: Only the head of the local queue talks to Redis: one process with 1,000 waiters still
    #: sends one script per release, not 1,000.
    head: anyio.Lock = attrs.field(factory=anyio.Lock)
    #: Serialises renew and release, so a renew that read an id just before its release cannot
    #: add the lease back after the release removed it.
    store: anyio.Lock = attrs.field(factory=anyio.Lock)
    #: Serialises this process's feedback, so its compare-and-set rarely conflicts with itself.
    aimd_lock: anyio.Lock = attrs.field(factory=anyio.Lock)
    #: Subscribed to ``channel`` while this mode has waiters; owned by the head waiter.
    pubsub: PubSub | None = None


class _RenewTimer:
    """Runs a coroutine function on the event loop every ``interval`` seconds, from a thread.

    Why a thread and not a task: a task needs a task group, and a task group opened in
    ``start()`` stays open in the caller's task until ``aclose()``. Any cancel scope the
    caller opens in between (a shield around the client's cleanup, a timeout) would then be
    exited out of order. The thread only keeps time; the renewal itself runs on the event loop,
    so all Redis I/O and state stay on one thread, and ``aclose()`` joins it.
    """

    def __init__(
        self, interval: float, tick: Callable[[], Coroutine[Any, Any, None]], name: str
    ) -> None:
        self._interval = interval
        self._tick = tick
        self._token = anyio.lowlevel.current_token()
        self._stop = threading.Event()
        # Daemon: a limiter that is never closed must not keep the interpreter alive.
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                anyio.from_thread.run(self._tick, token=self._token)
            except anyio.RunFinishedError:
                return  # the event loop ended without aclose(); nothing left to renew for
            except Exception:
                _LOG.exception("lease renewal failed")

    async def aclose(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            await anyio.to_thread.run_sync(self._thread.join)


class RedisLimiter:
    """An in-flight budget shared by every process that uses the same Redis and ``name``.

    Pass it to the client; each mode's slots become leases in Redis, renewed while a job is in
    flight and reclaimed ``lease_seconds`` after a process dies::

        limiter = mjasync.RedisLimiter("redis://cache:6379/0", name="acct-1")
        async with mjasync.Client(base_url, key, limiter=limiter) as client:
            task = await client.imagine("black cat")

    Every process sharing a ``name`` should use the same ``concurrency``, ``initial`` and
    ``ceiling``: a fixed limit is checked against each caller's own value.

    Args:
        url: the Redis URL (``redis://[user:password@]host:port/db``, ``rediss://``,
            ``unix://``). The password never appears in reprs, messages or logs.
        name: the budget's name, e.g. the upstream account; processes with the same name share
            the budget. Letters, digits and ``-_.:@/`` only.
        concurrency: jobs in flight per mode across all processes, or ``"auto"`` for a shared
            AIMD limit starting at ``initial`` and never above ``ceiling``.
        lease_seconds: how long a lease outlives its holder. Leases are renewed every third of
            it; a dead process's slots come back after at most this long. After Redis lost its
            data (a restart without persistence), no slot is granted for this long, so that
            the holders re-assert theirs first and the budget is never overrun.
        connect_timeout: the bound on connecting and on every Redis call.
        outage_timeout: how long an acquisition rides out an unreachable Redis (retrying with
            backoff, from 50 ms up to 1 s apart) before it raises :class:`LimiterError`; ``0``
            raises at the first failure. Jobs already holding a slot are not affected.
        ceiling: the most ``"auto"`` will ever allow.
        initial: the starting limit for ``"auto"``.

    Raises:
        ImportError: the ``redis`` package is missing (``pip install 'mjasync[redis]'``).
        ValueError: a bad URL scheme, name or number.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str,
        concurrency: int | Literal["auto"] = 3,
        lease_seconds: float = 30.0,
        connect_timeout: float = 5.0,
        ceiling: int = 16,
        initial: int = 3,
        outage_timeout: float = 30.0,
    ) -> None:
        require_redis("RedisLimiter")
        self._safe_url = check_redis_url(url)
        check_budget_name(name)
        if concurrency != "auto" and (
            not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1
        ):
            raise ValueError(f"concurrency must be a positive int or 'auto', not {concurrency!r}")
        if not 1 <= initial <= ceiling:
            raise ValueError(f"need 1 <= initial ({initial}) <= ceiling ({ceiling})")
        if not lease_seconds >= 0.1:
            raise ValueError(f"lease_seconds must be at least 0.1, not {lease_seconds!r}")
        if not connect_timeout > 0:
            raise ValueError(f"connect_timeout must be positive, not {connect_timeout!r}")
        if not 0 <= outage_timeout < float("inf"):
            raise ValueError(f"outage_timeout must be >= 0 seconds, not {outage_timeout!r}")
        self._url = url
        self._password = urlsplit(url).password
        self._name = name
        self._adaptive = concurrency == "auto"
        self._fixed = 0 if concurrency == "auto" else concurrency
        self._initial = initial if concurrency == "auto" else concurrency
        self._ceiling = ceiling
        self._lease_seconds = float(lease_seconds)
        self._lease_ms = round(lease_seconds * 1000)
        self._timeout = float(connect_timeout)
        self._outage_timeout = float(outage_timeout)
        #: When this process's calls to Redis began failing (loop clock), ``None`` while they
        #: succeed; and when the last one failed.
        self._down_since: float | None = None
        self._last_failure = 0.0
        #: The epoch of the shared state this process last saw ('' before the first answer).
        self._epoch = ""
        # Lease ids say who holds them (host, pid) for whoever inspects Redis; the random part
        # keeps two limiters in one process apart.
        self._lease_prefix = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._counter = itertools.count(1)
        self._modes: dict[str, _ModeState] = {}
        self._epoch_key = f"mjasync:{{{name}}}:epoch"
        self._redis: Redis | None = None
        self._timer: _RenewTimer | None = None
        self._closed = False
        self._acquire_script: AsyncScript | None = None
        self._renew_script: AsyncScript | None = None
        self._release_script: AsyncScript | None = None
        self._cas_script: AsyncScript | None = None

    def __repr__(self) -> str:
        concurrency = "'auto'" if self._adaptive else str(self._fixed)
        return (
            f"RedisLimiter(url={self._safe_url!r}, name={self._name!r}, "
            f"concurrency={concurrency}, lease_seconds={self._lease_seconds:g}, "
            f"outage_timeout={self._outage_timeout:g})"
        )

    @property
    def name(self) -> str:
        """The budget's name."""
        return self._name

    @property
    def adaptive(self) -> bool:
        """``True`` for ``concurrency="auto"``."""
        return self._adaptive

    @property
    def lease_seconds(self) -> float:
        """How long a lease outlives its holder."""
        return self._lease_seconds

    @property
    def outage_timeout(self) -> float:
        """How long an acquisition rides out an unreachable Redis."""
        return self._outage_timeout

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> RedisLimiter:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Connect and start renewing held leases.

        ``start()`` and :meth:`aclose` leave no cancel scope open between them, so they may be
        called from any task and inside any scope (a shield, a timeout).

        Raises:
            LimiterError: Redis did not answer within ``connect_timeout``.
            RuntimeError: already started or closed.
        """
        if self._redis is not None or self._closed:
            raise RuntimeError("RedisLimiter.start() may be called only once")
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialBackoff

        client = Redis.from_url(
            self._url,
            socket_connect_timeout=self._timeout,
            socket_timeout=self._timeout,
            # One quick retry survives a pooled connection that died with a Redis restart;
            # more would only delay the LimiterError our own timeout raises anyway.
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 1),
            client_name=f"mjasync:{self._name}",
        )
        try:
            await self._call("PING", client.ping, track=False)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._close_quietly(client)
            raise
        self._redis = client
        self._acquire_script = client.register_script(_ACQUIRE)
        self._renew_script = client.register_script(_RENEW)
        self._release_script = client.register_script(_RELEASE)
        self._cas_script = client.register_script(_AIMD_CAS)
        self._timer = _RenewTimer(self._lease_seconds / 3, self._renew_all, f"mjasync-{self._name}")
        self._timer.start()
        _LOG.debug("limiter %r connected", self)

    async def aclose(self) -> None:
        """Release every held lease, stop renewing and disconnect. Idempotent.

        A Redis that cannot be reached is logged, not raised: the leases expire on their own.
        """
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            if self._timer is not None:
                await self._timer.aclose()
                self._timer = None
            for state in self._modes.values():
                ids = [*state.held, *state.doubtful]
                state.held.clear()
                state.doubtful.clear()
                if ids:
                    await self._remove(state, ids)
                if not state.waiting:
                    # A waiter's channel is its own to close: closing the client below breaks
                    # its read, and it then finds the limiter closed.
                    await self._drop_pubsub(state)
            await self._close_quietly(self._redis)
        self._redis = None

    async def _close_quietly(self, client: Redis | None) -> None:
        if client is None:
            return
        try:
            with anyio.move_on_after(self._timeout):
                await client.aclose()
        except _redis_errors() as exc:
            _LOG.debug("closing the Redis connection to %s: %s", self._safe_url, exc)

    # -- the protocol ---------------------------------------------------------------------

    async def acquire(self, mode: str | None) -> Slot:
        """Wait for a free slot in ``mode``'s budget, shared by every process with this name.

        Waiting costs Redis almost nothing: one task per process and mode (the head of the
        local queue) tries; when refused it listens on the mode's release channel and tries
        again when any process releases, or when the earliest lease would expire (a dead
        holder's slot), at most a second later in any case.

        An unreachable Redis is retried with backoff for up to ``outage_timeout`` seconds from
        the first failure; after a Redis restart that lost the leases, no slot is granted for
        one ``lease_seconds`` (see the module docstring).

        Cancellable: a cancelled acquire holds no lease afterwards, even when the cancellation
        arrives after Redis granted it.

        Args:
            mode: the mode (``None`` shares the ``default`` budget).

        Raises:
            LimiterError: Redis stayed unreachable for ``outage_timeout`` seconds.
            RuntimeError: :meth:`start` was not called, or the limiter is closed.
        """
        self._require_started()
        state = self._mode(mode_key(mode))
        lease_id = self._new_lease_id()
        state.waiting += 1
        try:
            async with state.head:
                try:
                    attempt = 0
                    while True:
                        self._require_started()  # closed while we waited: stop here
                        self._check_outage()
                        try:
                            delay = await self._try_acquire(state, lease_id)
                            if delay is None:
                                break
                            if state.pubsub is None:
                                # Subscribe, then try again at once: a release between our try
                                # and the subscription would otherwise go unheard.
                                await self._subscribe(state)
                                continue
                            attempt = 0
                            await self._wait_for_release(state, delay)
                        except LimiterError as exc:
                            await self._drop_pubsub(state)
                            await self._ride_out(exc, attempt)
                            attempt += 1
                            # The failed call may have been granted: that id is doubtful (the
                            # next renewal removes it); the next try uses a fresh one.
                            lease_id = self._new_lease_id()
                finally:
                    if state.waiting == 1:  # nobody queued behind us: stop listening
                        await self._drop_pubsub(state)
        finally:
            state.waiting -= 1
        slot = state.held[lease_id]
        try:
            await anyio.lowlevel.checkpoint_if_cancelled()
        except anyio.get_cancelled_exc_class():
            # Cancelled while the (shielded) script ran: the lease exists, give it back.
            await self.release(slot)
            raise
        return slot

    async def release(self, slot: Slot) -> None:
        """Give a lease back and wake waiters in every process. Idempotent.

        Runs shielded (it is called from cancelled scopes) and bounded by ``connect_timeout``;
        if Redis cannot be reached the failure is logged and the lease simply expires.

        Args:
            slot: a slot returned by :meth:`acquire` on this limiter.
        """
        state = self._modes.get(slot.mode)
        if state is None or slot.lease_id is None or slot.lease_id not in state.held:
            return
        del state.held[slot.lease_id]
        await self._remove(state, [slot.lease_id])

    def release_nowait(self, slot: Slot) -> bool:
        """A lease lives in Redis: releasing it is I/O, so always ``False`` (use ``release``)."""
        return False

    async def feedback(self, mode: str | None, outcome: Outcome) -> None:
        """Apply :func:`~mjasync._jobs.limiter.next_limit` to the shared AIMD state ("auto" only).

        The new state is written with a compare-and-set script, retried on the state another
        process wrote meanwhile, so concurrent feedback is never lost. If Redis cannot be
        reached the feedback is logged and dropped (the next acquire reports the outage).

        Args:
            mode: the mode the submit went to.
            outcome: ``"accepted"`` or ``"refused"`` (queue full, HTTP 429).
        """
        if not self._adaptive:
            return
        if outcome not in ("accepted", "refused"):
            raise ValueError(f"outcome must be 'accepted' or 'refused', not {outcome!r}")
        self._require_started()
        state = self._mode(mode_key(mode))
        script = self._cas_script
        assert script is not None
        async with state.aimd_lock:
            expected = state.aimd
            for attempt in range(_CAS_ATTEMPTS):
                proposed = next_limit(expected, outcome, ceiling=self._ceiling)
                args = [
                    expected.limit,
                    expected.accepted_in_window,
                    proposed.limit,
                    proposed.accepted_in_window,
                    self._initial,
                    _AIMD_TTL_MS,
                ]
                try:
                    reply = await self._call(
                        "AIMD update", functools.partial(script, keys=[state.aimd_key], args=args)
                    )
                except LimiterError as exc:
                    _LOG.warning("limiter %s: feedback %r dropped: %s", self._name, outcome, exc)
                    return
                written, limit, accepted = _ints(reply, 3)
                state.aimd = expected = AimdState(limit, accepted)
                state.limit = limit
                if written:
                    return
                # Another process wrote first. Retrying at once lets two busy processes keep
                # overtaking each other; a short random pause breaks the tie.
                await anyio.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))
            _LOG.warning(
                "limiter %s: feedback %r dropped after %d conflicting updates",
                self._name,
                outcome,
                _CAS_ATTEMPTS,
            )

    def limit(self, mode: str | None) -> int:
        """The limit for ``mode`` as of the last Redis answer (the shared one for ``"auto"``)."""
        state = self._modes.get(mode_key(mode))
        return state.limit if state is not None else self._initial

    def shared_in_use(self, mode: str | None) -> int:
        """Leases held by all processes for ``mode``, as of the last Redis answer."""
        state = self._modes.get(mode_key(mode))
        return state.shared if state is not None else 0

    def statistics(self) -> tuple[LimiterStatistics, ...]:
        """One snapshot per mode used so far; ``in_use`` and ``waiting`` are this process's."""
        return tuple(
            LimiterStatistics(
                mode=state.key, limit=state.limit, in_use=len(state.held), waiting=state.waiting
            )
            for state in self._modes.values()
        )

    # -- internals ------------------------------------------------------------------------

    def _new_lease_id(self) -> str:
        return f"{self._lease_prefix}:{next(self._counter)}"

    async def _ride_out(self, error: LimiterError, attempt: int) -> None:
        """Wait before retrying a failed call, or raise ``error`` once the outage is too long."""
        if not isinstance(error.__cause__, _redis_errors()):
            raise error  # not an outage (a reply we cannot read): retrying would not help
        now = anyio.current_time()
        # None: another call (a renewal) succeeded meanwhile; Redis flaps, count from now.
        down = self._down_since if self._down_since is not None else now
        elapsed = now - down
        remaining = self._outage_timeout - elapsed
        if remaining <= 0:
            raise LimiterError(
                f"{error} (Redis unreachable for {elapsed:.1f} s; outage_timeout is "
                f"{self._outage_timeout:g} s)"
            ) from error
        await anyio.sleep(outage_retry_delay(attempt, remaining, random.random))

    def _check_outage(self) -> None:
        """Fail at once while a long outage lasts, but let one call a second probe Redis."""
        down = self._down_since
        if down is None:
            return
        now = anyio.current_time()
        if now - down >= self._outage_timeout and now - self._last_failure < _PROBE_INTERVAL:
            raise LimiterError(
                f"Redis at {self._safe_url} has been unreachable for {now - down:.1f} s "
                f"(outage_timeout is {self._outage_timeout:g} s)"
            )

    def _require_started(self) -> None:
        if self._closed:
            raise RuntimeError("the RedisLimiter is closed")
        if self._redis is None:
            raise RuntimeError("call RedisLimiter.start() first (or use `async with`)")

    def _mode(self, key: str) -> _ModeState:
        state = self._modes.get(key)
        if state is None:
            prefix = f"mjasync:{{{self._name}}}:{key}"
            state = self._modes[key] = _ModeState(
                key=key,
                leases_key=f"{prefix}:leases",
                aimd_key=f"{prefix}:aimd",
                channel=f"{prefix}:released",
                limit=self._initial,
                aimd=AimdState(self._initial),
            )
        return state

    async def _call(
        self, what: str, op: Callable[[], Awaitable[Any]], *, track: bool = True
    ) -> Any:
        """Run one Redis operation within ``connect_timeout``, as a :class:`LimiterError`.

        With ``track``, failures and successes mark the start and end of an outage (logged
        once each way).
        """
        try:
            with anyio.fail_after(self._timeout):
                reply = await op()
        except TimeoutError as exc:
            error = LimiterError(
                f"Redis at {self._safe_url} did not answer {what} within {self._timeout:g} s"
            )
            if track:
                self._failed(error)
            raise error from exc
        except _redis_errors() as exc:
            error = LimiterError(f"Redis at {self._safe_url} failed {what}: {self._scrub(exc)}")
            if track:
                self._failed(error)
            raise error from exc
        if track and self._down_since is not None:
            _LOG.warning(
                "limiter %s: Redis answers again after %.1f s",
                self._name,
                anyio.current_time() - self._down_since,
            )
            self._down_since = None
        return reply

    def _failed(self, error: LimiterError) -> None:
        now = anyio.current_time()
        self._last_failure = now
        if self._down_since is None:
            self._down_since = now
            _LOG.warning(
                "limiter %s: %s; acquisitions retry for up to %g s, jobs in flight carry on",
                self._name,
                error,
                self._outage_timeout,
            )

    def _scrub(self, exc: BaseException) -> str:
        text = f"{type(exc).__name__}: {exc}"
        if self._password:
            text = text.replace(self._password, "***")
        return text

    async def _try_acquire(self, state: _ModeState, lease_id: str) -> float | None:
        """One attempt. ``None`` when granted, else how long to wait at most before the next."""
        script = self._acquire_script
        assert script is not None
        args: list[str | int] = [
            lease_id,
            self._lease_ms,
            self._fixed,
            self._initial,
            self._epoch,
            secrets.token_hex(8),
            self._lease_ms,
        ]
        keys = [state.leases_key, state.aimd_key, self._epoch_key]
        # Shielded: once the script is on the wire Redis may grant the lease whether or not we
        # stay to read the answer. Reading it tells us what we hold; a cancellation is then
        # honoured by acquire(), which gives the lease back. _call bounds the shielded wait.
        with anyio.CancelScope(shield=True):
            try:
                reply = await self._call("acquire", lambda: script(keys=keys, args=args))
            except LimiterError:
                # The script may or may not have run; the caller gets its error now, and the
                # next renewal removes the id (until then it is at worst a lease nobody renews).
                state.doubtful.add(lease_id)
                raise
            (granted, count, limit, wait_ms), self._epoch = _ints_and_epoch(reply, 4)
            state.shared = count
            state.limit = limit
            if granted:
                state.held[lease_id] = Slot(mode=state.key, lease_id=lease_id)
                return None
        # Without a notice, try again just after the earliest lease expires: that is when a dead
        # process's slot comes back. A little jitter keeps processes from retrying in lockstep.
        return min(_POLL_CAP, max(wait_ms, 0) / 1000 + 0.005) + random.uniform(0, 0.02)

    async def _subscribe(self, state: _ModeState) -> None:
        """Listen on the mode's release channel (confirmed before returning)."""
        self._require_started()
        assert self._redis is not None
        pubsub = self._redis.pubsub()

        async def subscribe() -> None:
            await pubsub.subscribe(state.channel)
            while True:
                message = await pubsub.get_message(timeout=self._timeout)
                if message is not None and message.get("type") == "subscribe":
                    return

        try:
            await self._call("SUBSCRIBE", subscribe)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._close_pubsub(pubsub)
            raise
        state.pubsub = pubsub

    async def _wait_for_release(self, state: _ModeState, delay: float) -> None:
        """Return on the first release notice, or after ``delay`` seconds."""
        pubsub = state.pubsub
        assert pubsub is not None
        deadline = anyio.current_time() + delay
        try:
            while (remaining := deadline - anyio.current_time()) > 0:
                message = await pubsub.get_message(timeout=remaining)
                if message is not None and message.get("type") == "message":
                    return
        except anyio.get_cancelled_exc_class():
            # A read cut short may leave half a message on the connection: start afresh.
            await self._drop_pubsub(state)
            raise
        except _redis_errors() as exc:
            # The next try reports a real outage; here we only lose the channel. Fall back to
            # waiting out the delay, and subscribe afresh after the next refusal.
            _LOG.debug("limiter %s: release channel lost: %s", self._name, self._scrub(exc))
            await self._drop_pubsub(state)
            await anyio.sleep(max(0.0, deadline - anyio.current_time()))

    async def _drop_pubsub(self, state: _ModeState) -> None:
        pubsub, state.pubsub = state.pubsub, None
        if pubsub is not None:
            with anyio.CancelScope(shield=True):
                await self._close_pubsub(pubsub)

    async def _close_pubsub(self, pubsub: PubSub) -> None:
        try:
            with anyio.move_on_after(self._timeout):
                await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]
        except _redis_errors() as exc:
            _LOG.debug("closing a Redis pub/sub connection: %s", exc)

    async def _remove(self, state: _ModeState, ids: Sequence[str], *, quiet: bool = False) -> bool:
        """Delete leases in Redis and notify waiters; shielded, bounded, never raises.

        ``quiet``: a failure is only a debug message (leases nobody holds, retried each round).
        """
        script = self._release_script
        if script is None:
            return False
        args: list[str | int] = [state.channel, state.key, *ids]
        with anyio.CancelScope(shield=True):
            try:
                with anyio.fail_after(self._timeout):
                    async with state.store:
                        await self._call(
                            "release", lambda: script(keys=[state.leases_key], args=args)
                        )
            except (LimiterError, TimeoutError) as exc:
                _LOG.log(
                    logging.DEBUG if quiet else logging.WARNING,
                    "limiter %s: could not release %d lease(s) in mode %s (%s); "
                    "they expire within %g s",
                    self._name,
                    len(ids),
                    state.key,
                    exc,
                    self._lease_seconds,
                )
                return False
        return True

    async def _renew_all(self) -> None:
        """One renewal round (called by the timer thread, on the event loop)."""
        for state in list(self._modes.values()):
            if state.doubtful:
                doubtful = list(state.doubtful)
                if await self._remove(state, doubtful, quiet=True):
                    state.doubtful.difference_update(doubtful)
            await self._renew(state)

    async def _renew(self, state: _ModeState) -> None:
        script = self._renew_script
        assert script is not None
        async with state.store:
            ids = list(state.held)
            if not ids:
                return
            args: list[str | int] = [
                self._lease_ms,
                self._epoch,
                secrets.token_hex(8),
                self._lease_ms,
                *ids,
            ]
            keys = [state.leases_key, self._epoch_key]
            try:
                reply = await self._call("renew", lambda: script(keys=keys, args=args))
            except LimiterError as exc:
                # The outage itself was logged once; the leases expire unless a later round
                # (after Redis is back) re-creates them.
                _LOG.debug(
                    "limiter %s: could not renew %d lease(s) in mode %s: %s",
                    self._name,
                    len(ids),
                    state.key,
                    exc,
                )
                return
        (recreated, count), self._epoch = _ints_and_epoch(reply, 2)
        state.shared = count
        if recreated:
            _LOG.warning(
                "limiter %s: %d lease(s) in mode %s had expired in Redis and were re-created "
                "(their jobs are still in flight)",
                self._name,
                recreated,
                state.key,
            )
