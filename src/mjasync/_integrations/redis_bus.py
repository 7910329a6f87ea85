"""Pushes shared by several workers over Redis: a push that reaches any worker reaches them all.

A server POSTs ``notifyHook`` to one URL, and a load balancer hands each post to any worker.
With ``WebhookReceiver(..., bus=RedisPushBus(url, name=...))`` in every worker, the receiver
that gets a post validates it (secret, size, shape) and applies it locally as before, then
publishes it on the channel ``mjasync:{name}:push``; every other receiver subscribed to the
same name applies it to its clients' jobs, or ignores it when none of them follows the task.

Terminal states are also stored for ``state_seconds`` under ``mjasync:{name}:push:<task id>``.
A receiver that (re)subscribes (after Redis or its connection came back) reads those keys for
every task its clients follow, so an end published while it was not listening still arrives.

What goes over Redis is sealed: ``magic | sent (ms) | origin | HMAC-SHA256 | body``, the body
being the posted bytes exactly as the receiver validated them. The HMAC key is derived from the
receivers' shared URL ``secret`` and covers the bus name, the time, the origin and the body; a
reader re-validates the body like a post (:func:`~mjasync._integrations.webhook.decode_push_body`),
drops messages older (or newer) than ``state_seconds`` and any it has already applied, and skips
its own. So only payloads a receiver of this deployment validated get in. And what gets in is a
push like any other: a pushed end is a hint the job engine confirms with the server before the
job ends (:mod:`mjasync._jobs.engine`, rule 4).

Someone with access to Redis but not the secret can read every pushed payload (prompts, image
URLs), drop or delay messages and delete the stored states (the workers then poll, as without
a bus), and replay a genuine message to a worker that has not seen it, within ``state_seconds``:
at worst one early confirmation poll, or a job polled at the push pace for a while. They cannot
make a job end, fail or change. (They can also disturb a :class:`~mjasync.RedisLimiter` on the
same Redis; see its module.)

When Redis cannot be reached, the bus says so once (a warning), every post is still applied by
the worker that received it, the others' jobs are found by polling, and the bus reconnects with
backoff on its own (logged when it is back).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
import secrets
import struct
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Final, Self
from urllib.parse import urlsplit

import anyio
import attrs

from .redis_limiter import check_budget_name, check_redis_url, require_redis
from .webhook import decode_push_body

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
    from redis.asyncio import Redis

__all__ = [
    "BusMessage",
    "PushBusStatistics",
    "RedisPushBus",
    "bus_key",
    "open_push",
    "reconnect_delay",
    "seal_push",
]

log = logging.getLogger("mjasync.redis")

MAGIC: Final = b"mjb1"
#: magic, sent (ms since the epoch), origin (8 random bytes per bus), HMAC-SHA256.
_HEADER: Final = struct.Struct(">4sQ8s32s")
_KEY_LABEL: Final = b"mjasync push bus v1"
#: How many applied messages each bus remembers, to apply a replayed one at most once.
_REMEMBERED: Final = 10_000
#: Terminal states read back per MGET after a (re)subscription.
_CATCH_UP_CHUNK: Final = 500
#: Messages published per pipelined round trip.
_PUBLISH_BATCH: Final = 256
#: A subscription silent this long is asked for a PING; no answer within ``connect_timeout``
#: more means the connection is dead (a host that vanished sends no FIN).
_HEALTH_SECONDS: Final = 10.0
_RECONNECT_FIRST: Final = 0.1
_RECONNECT_CAP: Final = 5.0


def bus_key(secret: str) -> bytes:
    """The HMAC key of a bus, derived from the receivers' shared URL secret.

    A key of its own (not the secret itself), so a sealed message says nothing about the
    secret that lets one post to the hook URL.
    """
    return hmac.new(secret.encode(), _KEY_LABEL, hashlib.sha256).digest()


def _mac(key: bytes, name: str, sent_ms: int, origin: bytes, body: bytes) -> bytes:
    mac = hmac.new(key, MAGIC + name.encode() + b"\0" + struct.pack(">Q", sent_ms), hashlib.sha256)
    mac.update(origin)
    mac.update(body)
    return mac.digest()


def seal_push(body: bytes, *, key: bytes, name: str, origin: bytes, sent_ms: int) -> bytes:
    """Wrap a validated pushed body for the bus (pure).

    Args:
        body: the posted bytes, as the receiver validated them.
        key: :func:`bus_key` of the shared secret.
        name: the bus name (a message for another name does not verify).
        origin: the sending bus's 8-byte id (a bus skips its own messages).
        sent_ms: the wall-clock time of sealing, in milliseconds since the epoch.
    """
    if len(origin) != 8:
        raise ValueError("origin must be 8 bytes")
    mac = _mac(key, name, sent_ms, origin, body)
    return _HEADER.pack(MAGIC, sent_ms, origin, mac) + body


@attrs.frozen(slots=True)
class BusMessage:
    """One message read from the bus, opened and checked by :func:`open_push`.

    Attributes:
        reason: ``"valid"``, or why it was refused: ``"malformed"`` (not a sealed message),
            ``"too_large"``, ``"bad_signature"`` (not sealed with this bus's key and name),
            ``"stale"`` (sealed more than ``max_age`` away from now), or what
            :func:`~mjasync._integrations.webhook.decode_push_body` says of the body
            (``"bad_json"``, ``"not_object"``, ``"no_id"``).
        origin, mac: who sent it, and its HMAC (a message's identity), once verified.
        task_id, payload: the decoded task, when valid.
    """

    reason: str
    origin: bytes | None = None
    mac: bytes | None = attrs.field(default=None, repr=False)
    task_id: str | None = None
    payload: Mapping[str, Any] | None = attrs.field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """``True`` when the message may be applied."""
        return self.reason == "valid"


def open_push(
    raw: bytes, *, key: bytes, name: str, now_ms: int, max_age_ms: int, max_body_bytes: int
) -> BusMessage:
    """Verify and decode one message from the bus (pure).

    The seal is checked before anything is parsed, and the body then gets the same checks as
    a posted one, so a message from anyone without the key, or any body a receiver would have
    refused, is refused here too.

    Example::

        message = open_push(raw, key=bus_key(secret), name="acct-1", now_ms=now,
                            max_age_ms=120_000, max_body_bytes=1_000_000)
        if message.ok:
            engine.observe(message.payload, "push")
    """
    if len(raw) < _HEADER.size:
        return BusMessage("malformed")
    if len(raw) - _HEADER.size > max_body_bytes:
        return BusMessage("too_large")
    magic, sent_ms, origin, mac = _HEADER.unpack_from(raw)
    if magic != MAGIC:
        return BusMessage("malformed")
    body = raw[_HEADER.size :]
    if not hmac.compare_digest(mac, _mac(key, name, sent_ms, origin, body)):
        return BusMessage("bad_signature")
    if abs(now_ms - sent_ms) > max_age_ms:
        return BusMessage("stale", origin=origin, mac=mac)
    verdict = decode_push_body(body, max_body_bytes=max_body_bytes)
    if not verdict.ok:
        return BusMessage(verdict.reason, origin=origin, mac=mac)
    return BusMessage(
        "valid", origin=origin, mac=mac, task_id=verdict.task_id, payload=verdict.payload
    )


def reconnect_delay(attempt: int, rng: Callable[[], float]) -> float:
    """Seconds before the ``attempt``-th reconnection (pure): 0.1 s doubling to 5 s, jittered.

    >>> [reconnect_delay(n, lambda: 1.0) for n in (0, 1, 2, 9)]
    [0.1, 0.2, 0.4, 5.0]
    """
    base = min(_RECONNECT_CAP, _RECONNECT_FIRST * 2.0 ** min(attempt, 30))
    return base * (0.5 + rng() / 2)


@attrs.frozen(slots=True)
class PushBusStatistics:
    """A snapshot of what a :class:`RedisPushBus` sent and received.

    Attributes:
        connected: subscribed to the channel right now.
        published: pushes this worker received and published.
        unpublished: pushes it could not publish (Redis unreachable, or too many waiting);
            the other workers find those changes by polling.
        received: messages read from the bus (the pub/sub channel and the stored states).
        applied: messages delivered to a job one of this receiver's clients follows.
        ignored: valid messages for tasks none of its clients follows.
        own: its own messages coming back (already applied when they were received).
        duplicates: messages applied before (a replay, or the same end seen twice).
        rejected_by_reason: messages refused, by :class:`BusMessage` reason.
        caught_up: terminal states applied from the stored states after a (re)subscription.
        outages: how many times the subscription was lost (or could not be made at start).
    """

    connected: bool
    published: int
    unpublished: int
    received: int
    applied: int
    ignored: int
    own: int
    duplicates: int
    rejected_by_reason: Mapping[str, int]
    caught_up: int
    outages: int

    @property
    def rejected(self) -> int:
        """Every refused message."""
        return sum(self.rejected_by_reason.values())


def _redis_errors() -> tuple[type[BaseException], ...]:
    from redis.exceptions import RedisError

    return (RedisError, OSError, TimeoutError)


#: What the receiver hands the bus: apply a payload to its clients' jobs (``True`` if any
#: followed the task), and list the task ids they follow.
Deliver = Callable[[str, Mapping[str, Any]], bool]
Followed = Callable[[], Iterable[str]]


class RedisPushBus:
    """Shares the pushes one worker receives with every worker that uses the same ``name``.

    Give it to each worker's receiver; the receivers must share ``secret=`` (and, behind a
    load balancer, ``public_url=``)::

        bus = mjasync.RedisPushBus("redis://cache:6379/0", name="acct-1")
        receiver = mjasync.WebhookReceiver(
            port=8090, public_url="https://me.example", secret=SHARED_SECRET, bus=bus
        )
        async with mjasync.Client(url, key, limiter=limiter, webhook=receiver) as client:
            ...

    The receiver starts and stops the bus. Whatever happens to Redis, every job still ends:
    without the bus, a job whose pushes went to another worker is found by polling.

    Args:
        url: the Redis URL (``redis://``, ``rediss://``, ``unix://``); its password never
            appears in reprs, messages or logs.
        name: the deployment's name (the same for every worker; e.g. the upstream account).
            Letters, digits and ``-_.:@/`` only.
        connect_timeout: the bound on connecting and on every Redis call.
        state_seconds: how long a task's terminal state stays in Redis for workers that were
            not listening, and the oldest message a worker accepts.
        max_pending: pushes waiting to be published at most; more are not published.

    Raises:
        ImportError: the ``redis`` package is missing (``pip install 'mjasync[redis]'``).
        ValueError: a bad URL scheme, name or number.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str,
        connect_timeout: float = 5.0,
        state_seconds: float = 120.0,
        max_pending: int = 10_000,
    ) -> None:
        require_redis("RedisPushBus")
        self._safe_url = check_redis_url(url)
        check_budget_name(name)
        if not connect_timeout > 0:
            raise ValueError(f"connect_timeout must be positive, not {connect_timeout!r}")
        if not 1 <= state_seconds <= 86_400:
            raise ValueError(f"state_seconds must be within 1..86400, not {state_seconds!r}")
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise ValueError(f"max_pending must be a positive int, not {max_pending!r}")
        self._url = url
        self._password = urlsplit(url).password
        self._name = name
        self._timeout = float(connect_timeout)
        self._state_ms = round(state_seconds * 1000)
        self._max_pending = max_pending
        self._channel = f"mjasync:{{{name}}}:push"
        self._origin = secrets.token_bytes(8)
        # Set by the receiver (bind):
        self._key: bytes | None = None
        self._max_body_bytes = 1_000_000
        self._deliver: Deliver | None = None
        self._followed: Followed | None = None
        # Running state:
        self._publisher: Redis | None = None
        self._subscriber: Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._outbox: MemoryObjectSendStream[tuple[str, bytes, bool]] | None = None
        self._connected = False
        self._down_since: float | None = None
        self._publish_failing = False
        self._counts: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._seen: OrderedDict[bytes, None] = OrderedDict()

    def __repr__(self) -> str:
        state = "connected" if self._connected else "running" if self._tasks else "stopped"
        return f"RedisPushBus(url={self._safe_url!r}, name={self._name!r}, {state})"

    @property
    def name(self) -> str:
        """The bus name."""
        return self._name

    @property
    def connected(self) -> bool:
        """``True`` while subscribed: pushes are shared right now."""
        return self._connected

    def state_key(self, task_id: str) -> str:
        """The Redis key holding a task's last terminal state (sealed)."""
        return f"{self._channel}:{task_id}"

    # -- wiring ---------------------------------------------------------------------------

    def bind(
        self, *, secret: str, max_body_bytes: int, deliver: Deliver, followed: Followed
    ) -> None:
        """Connect the bus to its receiver (called by ``WebhookReceiver(bus=...)``).

        Raises:
            ValueError: the bus already serves another receiver.
        """
        if self._deliver is not None:
            raise ValueError("this RedisPushBus already serves a WebhookReceiver; make one each")
        self._key = bus_key(secret)
        self._max_body_bytes = max_body_bytes
        self._deliver = deliver
        self._followed = followed

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def running(self) -> bool:
        """``True`` between :meth:`start` and :meth:`aclose`."""
        return bool(self._tasks)

    async def start(self) -> None:
        """Connect, subscribe and start publishing (idempotent; the receiver calls it).

        Waits up to ``connect_timeout`` for the subscription. If Redis cannot be reached, that
        is logged once and the bus keeps trying in the background: it never fails its caller.

        Raises:
            RuntimeError: the bus was not given to a ``WebhookReceiver``.
        """
        if self._tasks:
            return
        if self._deliver is None:
            raise RuntimeError("give the bus to a receiver: WebhookReceiver(..., bus=bus)")
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialBackoff, NoBackoff

        options: dict[str, Any] = {
            "socket_connect_timeout": self._timeout,
            "socket_timeout": self._timeout,
            "client_name": f"mjasync-bus:{self._name}",
        }
        # One quick retry survives a pooled connection that died with a Redis restart.
        self._publisher = Redis.from_url(
            self._url, retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 1), **options
        )
        # No retries: a lost subscription must surface here, so that the bus catches up on
        # what it missed (redis-py would otherwise resubscribe silently).
        self._subscriber = Redis.from_url(self._url, retry=Retry(NoBackoff(), 0), **options)
        outbox, inbox = anyio.create_memory_object_stream[tuple[str, bytes, bool]](
            self._max_pending
        )
        self._outbox = outbox
        first_try = anyio.Event()
        loop = asyncio.get_running_loop()
        # Plain asyncio tasks: the bus outlives the call that starts it (the first client to
        # open), and a task group opened here would stay open in that caller's task.
        self._tasks = [
            loop.create_task(self._listen(first_try), name=f"mjasync bus {self._name} listen"),
            loop.create_task(self._publish(inbox), name=f"mjasync bus {self._name} publish"),
        ]
        with anyio.move_on_after(self._timeout * 2):
            await first_try.wait()

    async def aclose(self) -> None:
        """Stop listening and publishing, and disconnect (idempotent; never raises)."""
        tasks, self._tasks = self._tasks, []
        outbox, self._outbox = self._outbox, None
        self._connected = False
        with anyio.CancelScope(shield=True):
            if outbox is not None:
                outbox.close()
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks)
            for client in (self._publisher, self._subscriber):
                if client is not None:
                    try:
                        with anyio.move_on_after(self._timeout):
                            await client.aclose()
                    except _redis_errors() as exc:
                        log.debug("push bus %s: closing a connection: %s", self._name, exc)
            self._publisher = self._subscriber = None

    # -- publishing -----------------------------------------------------------------------

    def publish(self, task_id: str, body: bytes, *, terminal: bool) -> bool:
        """Queue a validated pushed body for the other workers (never blocks, never raises).

        Args:
            task_id: the task the body is about.
            body: the posted bytes, as validated.
            terminal: the body reports a terminal status: also store it for late readers.

        Returns:
            ``True`` if it will be published; ``False`` when the bus is not connected or too
            many pushes are waiting (the other workers then poll for that change).
        """
        outbox, key = self._outbox, self._key
        if outbox is None or key is None or not self._connected:
            self._counts["unpublished"] += 1
            return False
        sealed = seal_push(body, key=key, name=self._name, origin=self._origin, sent_ms=_wall_ms())
        try:
            outbox.send_nowait((task_id, sealed, terminal))
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._counts["unpublished"] += 1
            return False
        return True

    async def _publish(self, inbox: MemoryObjectReceiveStream[tuple[str, bytes, bool]]) -> None:
        async with inbox:
            async for first in inbox:
                batch = [first]
                while len(batch) < _PUBLISH_BATCH:
                    try:
                        batch.append(inbox.receive_nowait())
                    except anyio.WouldBlock:
                        break
                await self._send(batch)

    async def _send(self, batch: list[tuple[str, bytes, bool]]) -> None:
        client = self._publisher
        assert client is not None
        try:
            with anyio.fail_after(self._timeout):
                async with client.pipeline(transaction=False) as pipe:
                    for task_id, sealed, terminal in batch:
                        pipe.publish(self._channel, sealed)
                        if terminal:
                            pipe.set(self.state_key(task_id), sealed, px=self._state_ms)
                    await pipe.execute()
        except _redis_errors() as exc:
            self._counts["unpublished"] += len(batch)
            if not self._publish_failing and self._connected:
                # A lost connection is reported by the listener; this is Redis refusing.
                log.warning("push bus %s: publishing failed: %s", self._name, self._scrub(exc))
            self._publish_failing = True
            return
        self._publish_failing = False
        self._counts["published"] += len(batch)

    # -- listening ------------------------------------------------------------------------

    async def _listen(self, first_try: anyio.Event) -> None:
        attempt = 0
        while True:
            client = self._subscriber
            assert client is not None
            pubsub = client.pubsub()
            try:
                with anyio.fail_after(self._timeout):
                    await pubsub.subscribe(self._channel)
                    while True:
                        message = await pubsub.get_message(timeout=self._timeout)
                        if message is not None and message.get("type") == "subscribe":
                            break
                self._back()
                attempt = 0
                first_try.set()
                await self._catch_up(client)
                await self._read(pubsub)
            except _redis_errors() as exc:
                self._lost(exc)
                first_try.set()
            finally:
                with anyio.CancelScope(shield=True), anyio.move_on_after(self._timeout):
                    try:
                        await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]
                    except _redis_errors():
                        pass
            await anyio.sleep(reconnect_delay(attempt, random.random))
            attempt += 1

    async def _read(self, pubsub: Any) -> None:
        """Apply messages until the connection fails (raises then)."""
        quiet_since = anyio.current_time()
        pinged = False
        while True:
            message = await pubsub.get_message(timeout=1.0)
            now = anyio.current_time()
            if message is None:
                if not pinged and now - quiet_since >= _HEALTH_SECONDS:
                    await pubsub.ping()
                    pinged = True
                elif pinged and now - quiet_since >= _HEALTH_SECONDS + self._timeout:
                    raise TimeoutError("the subscription did not answer a PING")
                continue
            quiet_since, pinged = now, False
            if message.get("type") == "message":
                self._receive(message.get("data"), catching_up=False)

    async def _catch_up(self, client: Redis) -> None:
        """Read the stored terminal states of every followed task (after a subscription)."""
        assert self._followed is not None
        ids = list(dict.fromkeys(self._followed()))
        for start in range(0, len(ids), _CATCH_UP_CHUNK):
            keys = [self.state_key(task_id) for task_id in ids[start : start + _CATCH_UP_CHUNK]]
            with anyio.fail_after(self._timeout):
                values = await client.mget(keys)
            for value in values:
                if value is not None:
                    self._receive(value, catching_up=True)

    def _receive(self, raw: object, *, catching_up: bool) -> None:
        """Check one message and apply it (never raises: a bad message is counted)."""
        self._counts["received"] += 1
        if not isinstance(raw, bytes):
            self._rejected["malformed"] += 1
            return
        assert self._key is not None
        assert self._deliver is not None
        message = open_push(
            raw,
            key=self._key,
            name=self._name,
            now_ms=_wall_ms(),
            max_age_ms=self._state_ms,
            max_body_bytes=self._max_body_bytes,
        )
        if not message.ok:
            self._rejected[message.reason] += 1
            log.debug("push bus %s: message refused (%s)", self._name, message.reason)
            return
        if message.origin == self._origin:
            self._counts["own"] += 1  # applied here when it was posted
            return
        assert message.mac is not None
        if message.mac in self._seen:
            self._counts["duplicates"] += 1
            return
        self._seen[message.mac] = None
        if len(self._seen) > _REMEMBERED:
            self._seen.popitem(last=False)
        assert message.task_id is not None
        assert message.payload is not None
        try:
            delivered = self._deliver(message.task_id, message.payload)
        except Exception:  # a bug in delivery must not end the subscription
            log.exception("push bus %s: applying task %s failed", self._name, message.task_id)
            return
        if delivered:
            self._counts["applied"] += 1
            if catching_up:
                self._counts["caught_up"] += 1
        else:
            self._counts["ignored"] += 1

    def _back(self) -> None:
        self._connected = True
        if self._down_since is not None:
            log.warning(
                "push bus %s: subscribed again after %.1f s; pushes are shared again",
                self._name,
                anyio.current_time() - self._down_since,
            )
            self._down_since = None

    def _lost(self, exc: BaseException) -> None:
        self._connected = False
        if self._down_since is None:
            self._down_since = anyio.current_time()
            self._counts["outages"] += 1
            log.warning(
                "push bus %s: Redis at %s unreachable (%s); each push now reaches only the "
                "worker that receives it, the others poll, until the bus reconnects",
                self._name,
                self._safe_url,
                self._scrub(exc),
            )
        else:
            log.debug("push bus %s: still unreachable: %s", self._name, self._scrub(exc))

    def _scrub(self, exc: BaseException) -> str:
        text = f"{type(exc).__name__}: {exc}"
        return text.replace(self._password, "***") if self._password else text

    # -- observability --------------------------------------------------------------------

    def statistics(self) -> PushBusStatistics:
        """A frozen snapshot of the bus's counters."""
        counts = self._counts
        return PushBusStatistics(
            connected=self._connected,
            published=counts["published"],
            unpublished=counts["unpublished"],
            received=counts["received"],
            applied=counts["applied"],
            ignored=counts["ignored"],
            own=counts["own"],
            duplicates=counts["duplicates"],
            rejected_by_reason=MappingProxyType(dict(sorted(self._rejected.items()))),
            caught_up=counts["caught_up"],
            outages=counts["outages"],
        )


def _wall_ms() -> int:
    # Wall clock, not the loop's: messages cross machines, whose loop clocks have nothing in
    # common (the age check allows for seconds of skew, not for monotonic clocks).
    return int(time.time() * 1000)
