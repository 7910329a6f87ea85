"""RedisPushBus: a push received by one worker reaches the worker that follows the task.

"Workers" here are clients in one process, each with its own receiver, bus and Redis
connections; the simulator posts every hook to worker A's site only (the others' receivers are
mounted nowhere: ``host=None``, same ``public_url``). Polling is set to a minute, so a job that
ends within a test ended by push (the counters say which). The same across real processes is
in ``test_redis_bus_e2e.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest
import redis.asyncio

import mjasync
from mjasync import PollSettings, RedisPushBus, WebhookReceiver
from mjasync._integrations.redis_bus import (
    BusMessage,
    bus_key,
    open_push,
    reconnect_delay,
    seal_push,
)
from mjasync.testing import FakeMidjourney
from redis_server import RedisServer, free_port
from redis_support import redis_proxy, unique_name, wait_until

pytestmark = pytest.mark.redis

KEY = "sk-test"
SECRET = "shared-by-every-worker_0123456789"
LIMIT = 10.0  # a broken bus fails a test within this, rather than hanging it
#: Polls a minute apart (a push-healthy job even less often): what ends within LIMIT did so by
#: push. A re-attached task is still polled once at once.
NEVER = PollSettings(interval=60, max_interval=60, push_interval=600, push_health=900)


# -- the seal (pure) ----------------------------------------------------------------------

KEY_BYTES = bus_key(SECRET)
ORIGIN = b"\x01" * 8
BODY = b'{"id":"1712345678901234","status":"SUCCESS","progress":"100%"}'


def opened(raw: bytes, **overrides: Any) -> BusMessage:
    options: dict[str, Any] = {
        "key": KEY_BYTES,
        "name": "acct-1",
        "now_ms": 1_000_000,
        "max_age_ms": 60_000,
        "max_body_bytes": 1_000,
    }
    options.update(overrides)
    return open_push(raw, **options)


def sealed(body: bytes = BODY, **overrides: Any) -> bytes:
    options: dict[str, Any] = {
        "key": KEY_BYTES,
        "name": "acct-1",
        "origin": ORIGIN,
        "sent_ms": 1_000_000,
    }
    options.update(overrides)
    return seal_push(body, **options)


def test_a_sealed_push_opens_to_its_payload() -> None:
    message = opened(sealed())
    assert message.ok
    assert message.task_id == "1712345678901234"
    assert message.payload == {"id": "1712345678901234", "status": "SUCCESS", "progress": "100%"}
    assert message.origin == ORIGIN
    assert bus_key(SECRET) != SECRET.encode()  # the URL secret itself is never the key


@pytest.mark.parametrize(
    ("raw", "overrides", "reason"),
    [
        (b"", {}, "malformed"),
        (b"x" * 60, {}, "malformed"),
        (sealed()[:-1], {}, "bad_signature"),  # the body was cut
        (sealed().replace(b"SUCCESS", b"FAILURE"), {}, "bad_signature"),  # or changed
        (sealed(key=bus_key("another-deployment-secret-0123")), {}, "bad_signature"),
        (sealed(name="acct-2"), {}, "bad_signature"),  # another bus on the same Redis
        (sealed()[:12] + b"\x02" * 8 + sealed()[20:], {}, "bad_signature"),  # origin changed
        (sealed(sent_ms=1_000_000 - 60_001), {}, "stale"),
        (sealed(sent_ms=1_000_000 + 60_001), {}, "stale"),  # from a clock far ahead
        (sealed(b"x" * 1_001), {}, "too_large"),
        (sealed(b"[1, 2]"), {}, "not_object"),
        (sealed(b"{not json"), {}, "bad_json"),
        (sealed(b'{"status": "SUCCESS"}'), {}, "no_id"),
    ],
)
def test_what_the_seal_refuses(raw: bytes, overrides: dict[str, Any], reason: str) -> None:
    assert opened(raw, **overrides).reason == reason


def test_reconnect_delay_backs_off() -> None:
    assert [reconnect_delay(n, lambda: 1.0) for n in range(8)] == [
        0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0,
    ]  # fmt: skip
    assert reconnect_delay(1, lambda: 0.0) == 0.1


# -- construction ---------------------------------------------------------------------------


def test_a_bus_needs_a_shared_secret() -> None:
    bus = RedisPushBus("redis://127.0.0.1:1/0", name="acct-1")
    with pytest.raises(ValueError, match="secret="):
        WebhookReceiver(bus=bus)


def test_a_bus_serves_one_receiver() -> None:
    bus = RedisPushBus("redis://127.0.0.1:1/0", name="acct-1")
    WebhookReceiver(secret=SECRET, bus=bus)
    with pytest.raises(ValueError, match="already serves"):
        WebhookReceiver(secret=SECRET, bus=bus)


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("http://cache:6379", {}),
        ("redis://cache:6379", {"name": "has space"}),
        ("redis://cache:6379", {"state_seconds": 0}),
        ("redis://cache:6379", {"connect_timeout": 0}),
        ("redis://cache:6379", {"max_pending": 0}),
    ],
)
def test_bad_options_are_refused(url: str, options: dict[str, Any]) -> None:
    options.setdefault("name", "acct-1")
    with pytest.raises(ValueError):
        RedisPushBus(url, **options)


def test_repr_hides_the_password() -> None:
    bus = RedisPushBus("redis://app:s3cret@cache:6379/0", name="acct-1")
    receiver = WebhookReceiver(secret=SECRET, bus=bus)
    assert "s3cret" not in repr(bus)
    assert "s3cret" not in repr(receiver)
    assert SECRET not in repr(receiver)


@pytest.mark.anyio
async def test_a_bus_not_given_to_a_receiver_does_not_start() -> None:
    with pytest.raises(RuntimeError, match="WebhookReceiver"):
        await RedisPushBus("redis://127.0.0.1:1/0", name="acct-1").start()


# -- workers ----------------------------------------------------------------------------------


class Workers:
    """Clients sharing one hook URL (served by the first) and one bus name."""

    def __init__(self, fake: FakeMidjourney, stack: AsyncExitStack, name: str) -> None:
        self.fake = fake
        self.stack = stack
        self.name = name
        self.port = free_port()
        self.clients: list[mjasync.Client] = []
        self.receivers: list[WebhookReceiver] = []

    async def add(
        self, redis_url: str, *, reachable: bool = True, **options: Any
    ) -> mjasync.Client:
        """One more worker; with ``reachable``, once its bus is subscribed."""
        serve = not self.clients
        bus = RedisPushBus(redis_url, name=self.name)
        receiver = WebhookReceiver(
            "127.0.0.1" if serve else None,
            self.port if serve else 0,
            public_url=f"http://127.0.0.1:{self.port}",
            secret=SECRET,
            bus=bus,
        )
        options.setdefault("poll_settings", NEVER)
        client = mjasync.Client(self.fake.base_url, KEY, webhook=receiver, **options)
        await self.stack.enter_async_context(client)
        self.clients.append(client)
        self.receivers.append(receiver)
        if reachable:

            async def subscribed() -> bool:
                return bus.connected

            # Opening waits for the subscription for a while, not for ever (a loaded machine).
            await wait_until(subscribed, timeout=LIMIT, what="the bus is subscribed")
        return client

    def bus(self, index: int) -> RedisPushBus:
        bus = self.receivers[index].bus
        assert bus is not None
        return bus


@asynccontextmanager
async def workers(**sim: Any) -> AsyncIterator[Workers]:
    sim.setdefault("job_duration", 0.3)
    sim.setdefault("progress_steps", 3)
    async with FakeMidjourney(api_keys=(KEY,), **sim) as fake, AsyncExitStack() as stack:
        yield Workers(fake, stack, unique_name())


def poll_requests(fake: FakeMidjourney) -> int:
    requests = fake.stats().requests
    return requests.get("list", 0) + requests.get("fetch", 0)


@pytest.mark.anyio
async def test_pushes_reach_the_worker_that_submitted(redis_url: str) -> None:
    async with workers() as w:
        await w.add(redis_url)  # A: serves the hook URL, follows nothing
        b = await w.add(redis_url)
        with anyio.fail_after(LIMIT):
            results = await b.gather(mjasync.Imagine(f"cat {i}") for i in range(5))
        assert all(isinstance(r, mjasync.Task) and r.status == "SUCCESS" for r in results)
        stats = b.statistics()
        assert (stats.completed_by_push, stats.completed_by_poll) == (5, 0)
        assert poll_requests(w.fake) <= 5  # the confirmations of the pushed ends, at most
        a_hooks = w.receivers[0].statistics()
        assert a_hooks.accepted == 0
        assert a_hooks.relayed == a_hooks.received > 0  # answered 200, not 404
        assert w.bus(1).statistics().applied > 0
        assert w.bus(0).statistics().published == a_hooks.received


@pytest.mark.anyio
async def test_watch_from_another_worker(redis_url: str) -> None:
    async with workers() as w:
        a = await w.add(redis_url)
        b = await w.add(redis_url)
        job = await a.submit(mjasync.Imagine("a cat --stall"))
        sources: list[str] = []
        with anyio.fail_after(LIMIT):
            async for event in b.watch([job.id]):
                sources.append(event.source)
                if len(sources) == 1:
                    w.fake.finish_task(job.id)  # B follows it now: end it
                if event.is_terminal:
                    assert event.status == "SUCCESS"
        assert sources[-1] == "push"
        assert b.statistics().completed_by_push == 1
        assert (await job.result()).status == "SUCCESS"


@pytest.mark.anyio
async def test_forged_and_replayed_messages_change_nothing(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with workers() as w, redis.asyncio.Redis.from_url(redis_url) as store:
        await w.add(redis_url)
        b = await w.add(redis_url)
        job = await b.submit(mjasync.Imagine("a dog --stall"))
        channel = f"mjasync:{{{w.name}}}:push"
        now_ms = int(time.time() * 1000)
        body = f'{{"id":"{job.id}","status":"SUCCESS","progress":"100%"}}'.encode()
        right_key = bus_key(SECRET)
        forged_end = seal_push(
            body, key=right_key, name=w.name, origin=b"\x07" * 8, sent_ms=now_ms
        )  # one who knows the secret could also POST it to the hook URL
        for raw in (
            b"junk",
            seal_push(body, key=bus_key("no-idea-of-the-secret_0123"), name=w.name,
                      origin=b"\x07" * 8, sent_ms=now_ms),
            seal_push(body, key=right_key, name="another-name", origin=b"\x07" * 8,
                      sent_ms=now_ms),
            seal_push(body, key=right_key, name=w.name, origin=b"\x07" * 8,
                      sent_ms=now_ms - 3_600_000),
            forged_end,
        ):  # fmt: skip
            await store.publish(channel, raw)

        async def refuted() -> bool:
            return b.engine.counters.push_ends_refuted == 1

        await wait_until(refuted, timeout=LIMIT, what="the server refuted the forged end")
        assert not job.done
        stats = w.bus(1).statistics()
        assert dict(stats.rejected_by_reason) == {"malformed": 1, "bad_signature": 2, "stale": 1}

        await store.publish(channel, forged_end)  # replayed

        async def replay_dropped() -> bool:
            return w.bus(1).statistics().duplicates == 1

        await wait_until(replay_dropped, timeout=LIMIT, what="the replay was dropped")
        assert b.engine.counters.push_ends_refuted == 1
        w.fake.finish_task(job.id)
        with anyio.fail_after(LIMIT):
            task = await job.result()
        assert task.status == "SUCCESS"
        assert b.statistics().completed_by_push == 1
        assert "the server says it has not" in caplog.text


@pytest.mark.anyio
async def test_a_worker_that_lost_the_bus_catches_up(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    # B reaches Redis through a proxy that the test cuts: B alone loses the bus while A (which
    # receives every post) keeps it. An end published meanwhile reaches B from the stored state
    # when it subscribes again.
    port = urlsplit(own_redis.url).port
    assert port is not None
    async with redis_proxy(port) as proxy, workers() as w:
        await w.add(own_redis.url)
        b = await w.add(proxy.url)
        job = await b.submit(mjasync.Imagine("a bird --stall"))
        with caplog.at_level(logging.INFO, logger="mjasync.redis"):
            proxy.cut()

            async def b_lost_the_bus() -> bool:
                return not w.bus(1).connected

            await wait_until(b_lost_the_bus, timeout=LIMIT, what="B noticed")
            w.fake.finish_task(job.id)

            async with redis.asyncio.Redis.from_url(own_redis.url) as store:

                async def end_stored() -> bool:
                    return bool(await store.exists(w.bus(0).state_key(job.id)))

                await wait_until(end_stored, timeout=LIMIT, what="A published the end")
            assert not job.done
            await proxy.restore()
            with anyio.fail_after(LIMIT):
                task = await job.result()
        assert task.status == "SUCCESS"
        assert b.statistics().completed_by_push == 1
        stats = w.bus(1).statistics()
        assert stats.caught_up == 1
        assert stats.outages == 1
        lost = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(lost) == 1  # one warning for the outage, however many retries
        assert "subscribed again" in caplog.text


@pytest.mark.anyio
async def test_without_redis_each_worker_still_handles_its_own_posts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with caplog.at_level(logging.WARNING, logger="mjasync.redis"):
        async with workers() as w:
            a = await w.add(dead, reachable=False)  # opens although Redis cannot be reached
            with anyio.fail_after(LIMIT):
                results = await a.gather(mjasync.Imagine(f"cat {i}") for i in range(3))
            assert all(isinstance(r, mjasync.Task) for r in results)
            assert a.statistics().completed_by_push == 3
            stats = w.bus(0).statistics()
            assert not stats.connected
            assert stats.published == 0
            assert stats.unpublished == w.receivers[0].statistics().received > 0
    lost = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(lost) == 1
