"""RedisLimiter against a real redis-server (started by the ``redis_url`` fixture).

Every test uses its own limiter name, so they share one server without interfering. Waits are
conditions polled under a deadline; the only durations asserted are the ones the API promises
(an unreachable Redis fails within ``connect_timeout``, a dead process's slots come back within
``lease_seconds``), each with a margin.
"""

from __future__ import annotations

import logging
import random
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from functools import reduce
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
import redis.asyncio

from mjasync import LimiterError
from mjasync._integrations.redis_limiter import RedisLimiter, redact_url
from mjasync._jobs.limiter import AimdState, Limiter, LimiterStatistics, next_limit
from redis_server import RedisServer, free_port
from redis_support import (
    MARGIN,
    last_expiry,
    leases_key,
    live_leases,
    server_ms,
    spawn,
    unique_name,
    wait_until,
)
from redis_worker import counter_keys

pytestmark = pytest.mark.redis


def waiting(limiter: RedisLimiter, n: int) -> Callable[[], Awaitable[bool]]:
    """A condition: ``n`` tasks wait in ``limiter``'s "fast" budget."""

    async def condition() -> bool:
        stats = {s.mode: s for s in limiter.statistics()}
        return "fast" in stats and stats["fast"].waiting == n

    return condition


def subscribers(store: redis.asyncio.Redis, name: str, n: int) -> Callable[[], Awaitable[bool]]:
    """A condition: ``n`` connections listen on the "fast" release channel of ``name``."""

    async def condition() -> bool:
        ((_, count),) = await store.pubsub_numsub(f"mjasync:{{{name}}}:fast:released")
        return bool(count == n)

    return condition


# -- construction, repr, protocol ---------------------------------------------------------


def test_redact_url_hides_passwords() -> None:
    assert redact_url("redis://:s3cret@h:6379/0") == "redis://:***@h:6379/0"
    assert redact_url("rediss://app:s3cret@h/2") == "rediss://app:***@h/2"
    assert redact_url("redis://h:1/0?password=s3cret&x=1") == "redis://h:1/0?password=***&x=1"
    assert redact_url("unix:///run/redis.sock?db=1") == "unix:///run/redis.sock?db=1"
    assert redact_url("redis://app@h") == "redis://app@h"


def test_repr_and_errors_never_show_the_password() -> None:
    limiter = RedisLimiter("redis://user:s3cret@127.0.0.1:1/0", name="acct-1")
    assert "s3cret" not in repr(limiter)
    assert "user:***@127.0.0.1:1" in repr(limiter)
    with pytest.raises(ValueError, match="Redis URL") as info:
        RedisLimiter("http://user:s3cret@example.invalid/", name="acct-1")
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": ""},
        {"name": "has space"},
        {"name": "{tag}"},
        {"name": "a", "concurrency": 0},
        {"name": "a", "concurrency": True},
        {"name": "a", "concurrency": "many"},
        {"name": "a", "lease_seconds": 0},
        {"name": "a", "connect_timeout": 0},
        {"name": "a", "outage_timeout": -1},
        {"name": "a", "outage_timeout": float("inf")},
        {"name": "a", "concurrency": "auto", "initial": 20, "ceiling": 16},
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RedisLimiter("redis://127.0.0.1:1/0", **kwargs)


def test_missing_redis_package_names_the_extra() -> None:
    # In a fresh interpreter where `import redis` fails: mjasync imports, the constructor says
    # what to install.
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "import mjasync, mjasync._integrations.redis_limiter\n"
        "try:\n"
        "    mjasync._integrations.redis_limiter.RedisLimiter('redis://h', name='n')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "pip install 'mjasync[redis]'" in result.stdout


@pytest.mark.anyio
async def test_implements_the_protocol_and_its_lifecycle(redis_url: str) -> None:
    limiter = RedisLimiter(redis_url, name=unique_name())
    assert isinstance(limiter, Limiter)
    with pytest.raises(RuntimeError, match="start"):
        await limiter.acquire("fast")
    await limiter.start()
    with pytest.raises(RuntimeError, match="only once"):
        await limiter.start()
    slot = await limiter.acquire(None)
    assert slot.mode == "default"
    await limiter.aclose()
    await limiter.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await limiter.acquire("fast")
    await limiter.release(slot)  # after close: harmless


@pytest.mark.anyio
async def test_start_and_aclose_work_from_any_task_and_scope(
    redis_url: str,
    store: redis.asyncio.Redis,
) -> None:
    # Like a client that starts the limiter inside its own task group and closes it under a
    # shield after leaving that group: no cancel scope of the limiter's spans the two calls.
    name = unique_name()
    limiter = RedisLimiter(redis_url, name=name, lease_seconds=0.3)
    async with anyio.create_task_group() as tg:
        await limiter.start()
        tg.start_soon(anyio.sleep, 0)
    slot = await limiter.acquire("fast")
    first_expiry = await last_expiry(store, name)

    async def renewed() -> bool:
        return await last_expiry(store, name) > first_expiry

    await wait_until(renewed, what="the renewal runs after the starting scope ended")
    with anyio.CancelScope(shield=True), anyio.move_on_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(limiter.aclose)
    assert await store.zcard(leases_key(name)) == 0
    await limiter.release(slot)  # after close: harmless


@pytest.mark.anyio
async def test_aclose_stops_a_waiting_acquire(redis_url: str, store: redis.asyncio.Redis) -> None:
    name = unique_name()
    async with RedisLimiter(redis_url, name=name) as a:
        held = [await a.acquire("fast") for _ in range(3)]
        b = RedisLimiter(redis_url, name=name)
        await b.start()
        errors: list[BaseException] = []

        async def wait_in_b() -> None:
            try:
                await b.acquire("fast")
            except RuntimeError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_in_b)
            await wait_until(waiting(b, 1), what="b waits")
            await b.aclose()
            await a.release(held.pop())  # the notice wakes b, which must not take the slot
        assert len(errors) == 1
        assert "closed" in str(errors[0])
        assert sorted(await live_leases(store, name)) == sorted(str(s.lease_id) for s in held)


# -- the budget -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_many_acquirers_never_exceed_the_limit(
    redis_url: str,
    store: redis.asyncio.Redis,
) -> None:
    # Two limiters (two connections) on one name, 40 tasks: overlap measured independently.
    name = unique_name()
    active = peak = 0

    async def worker(limiter: RedisLimiter) -> None:
        nonlocal active, peak
        for _ in range(5):
            slot = await limiter.acquire("fast")
            active += 1
            peak = max(peak, active)
            await anyio.sleep(0.002)  # the "job" in flight
            active -= 1
            await limiter.release(slot)

    async with RedisLimiter(redis_url, name=name) as a, RedisLimiter(redis_url, name=name) as b:
        async with anyio.create_task_group() as tg:
            for i in range(40):
                tg.start_soon(worker, a if i % 2 else b)
        assert a.statistics()[0].in_use == b.statistics()[0].in_use == 0
    assert peak == 3
    assert await store.zcard(leases_key(name)) == 0


@pytest.mark.anyio
async def test_statistics_are_this_processes_view(redis_url: str) -> None:
    name = unique_name()
    async with RedisLimiter(redis_url, name=name, concurrency=2) as limiter:
        held = [await limiter.acquire("fast"), await limiter.acquire("fast")]
        async with anyio.create_task_group() as tg:
            tg.start_soon(limiter.acquire, "fast")

            await wait_until(waiting(limiter, 1), what="the third acquire waits")
            assert limiter.statistics() == (LimiterStatistics("fast", 2, 2, 1),)
            assert limiter.limit("fast") == 2
            assert limiter.shared_in_use("fast") == 2
            tg.cancel_scope.cancel()
        for slot in held:
            await limiter.release(slot)
        assert limiter.statistics() == (LimiterStatistics("fast", 2, 0, 0),)


@pytest.mark.anyio
async def test_release_is_idempotent(
    redis_url: str,
    store: redis.asyncio.Redis,
) -> None:
    name = unique_name()
    async with RedisLimiter(redis_url, name=name) as limiter:
        first = await limiter.acquire("fast")
        second = await limiter.acquire("fast")
        await limiter.release(first)
        await limiter.release(first)
        assert await live_leases(store, name) == [second.lease_id]
        assert limiter.statistics()[0].in_use == 1
        await limiter.release(second)
        await limiter.release(second)
        assert await store.zcard(leases_key(name)) == 0


@pytest.mark.anyio
async def test_aclose_releases_everything(
    redis_url: str,
    store: redis.asyncio.Redis,
) -> None:
    name = unique_name()
    async with RedisLimiter(redis_url, name=name) as limiter:
        for mode in ("fast", "relax", "fast"):
            await limiter.acquire(mode)
        assert len(await live_leases(store, name, "fast")) == 2
    assert await store.zcard(leases_key(name, "fast")) == 0
    assert await store.zcard(leases_key(name, "relax")) == 0


@pytest.mark.anyio
async def test_leases_are_renewed_while_held(
    redis_url: str,
    store: redis.asyncio.Redis,
) -> None:
    name = unique_name()
    async with RedisLimiter(redis_url, name=name, lease_seconds=0.3) as limiter:
        slot = await limiter.acquire("fast")
        first_expiry = await last_expiry(store, name)

        async def past_first_expiry() -> bool:
            return await server_ms(store) > first_expiry + 300

        await wait_until(past_first_expiry, what="a full lease time went by")
        assert await live_leases(store, name) == [slot.lease_id]
        await limiter.release(slot)


# -- cancellation ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_cancelled_waiting_acquire_leaves_no_lease(
    redis_url: str,
    store: redis.asyncio.Redis,
) -> None:
    name = unique_name()
    async with RedisLimiter(redis_url, name=name) as a, RedisLimiter(redis_url, name=name) as b:
        held = [await a.acquire("fast") for _ in range(3)]
        async with anyio.create_task_group() as tg:
            tg.start_soon(b.acquire, "fast")

            await wait_until(waiting(b, 1), what="b's acquire waits")
            await wait_until(subscribers(store, name, 1), what="b listens for releases")
            tg.cancel_scope.cancel()
        assert b.statistics()[0] == LimiterStatistics("fast", 3, 0, 0)
        await wait_until(subscribers(store, name, 0), what="b stopped listening")
        assert sorted(await live_leases(store, name)) == sorted(str(s.lease_id) for s in held)
        # The budget still works: a freed slot goes to the next waiter.
        await a.release(held[0])
        with anyio.fail_after(10):
            slot = await b.acquire("fast")
        assert len(await live_leases(store, name)) == 3
        await b.release(slot)


@pytest.mark.anyio
async def test_cancellation_after_the_grant_gives_the_lease_back(
    redis_url: str,
    store: redis.asyncio.Redis,
) -> None:
    # The worst moment: Redis granted the lease, and the cancellation arrives while we read the
    # answer. The script call is wrapped to cancel the caller exactly then.
    name = unique_name()
    async with RedisLimiter(redis_url, name=name) as limiter:
        real = limiter._acquire_script
        assert real is not None
        with anyio.CancelScope() as scope:

            async def grant_then_cancel(*args: Any, **kwargs: Any) -> Any:
                reply = await real(*args, **kwargs)
                assert reply[0] == 1, "the script granted the lease"
                scope.cancel()
                return reply

            limiter._acquire_script = grant_then_cancel  # type: ignore[assignment]
            await limiter.acquire("fast")
            pytest.fail("acquire returned although its caller was cancelled")
        assert scope.cancelled_caught
        assert await store.zcard(leases_key(name)) == 0
        assert limiter.statistics()[0].in_use == 0


@pytest.mark.anyio
async def test_random_cancellations_leak_nothing(
    redis_url: str,
    store: redis.asyncio.Redis,
) -> None:
    # Cancel acquires at random moments (before, during, after the script) and check after
    # each one that Redis holds exactly the slots the caller received.
    name = unique_name()
    rng = random.Random(8)
    got_slots = cancelled = 0
    async with RedisLimiter(redis_url, name=name) as limiter:
        for _ in range(150):
            slot = None
            with anyio.move_on_after(rng.uniform(0, 0.002)) as scope:
                slot = await limiter.acquire("fast")
            if slot is not None:
                assert await live_leases(store, name) == [slot.lease_id]
                await limiter.release(slot)
                got_slots += 1
            cancelled += scope.cancelled_caught
            assert await store.zcard(leases_key(name)) == 0
            assert limiter.statistics()[0].in_use == 0
    assert got_slots + cancelled == 150


# -- concurrency="auto" ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_auto_limit_is_shared_between_instances(redis_url: str) -> None:
    name = unique_name()
    auto: dict[str, Any] = {"concurrency": "auto", "initial": 3, "ceiling": 8}
    async with (
        RedisLimiter(redis_url, name=name, **auto) as a,
        RedisLimiter(redis_url, name=name, **auto) as b,
    ):
        for _ in range(3):  # a full window of accepted submits on a
            await a.feedback("fast", "accepted")
        assert a.limit("fast") == 4
        slots = [await b.acquire("fast") for _ in range(4)]  # b is granted a's learned limit
        assert b.limit("fast") == 4
        assert await b._try_acquire(b._mode("fast"), "probe") is not None, "5th is refused"

        await b.feedback("fast", "refused")  # b halves it for everyone
        assert b.limit("fast") == 2
        assert await a._try_acquire(a._mode("fast"), "probe") is not None
        assert a.limit("fast") == 2
        for slot in slots:
            await b.release(slot)
        kept = [await a.acquire("fast"), await a.acquire("fast")]
        assert await a._try_acquire(a._mode("fast"), "probe") is not None
        for slot in kept:
            await a.release(slot)


@pytest.mark.anyio
async def test_concurrent_feedback_loses_no_update(
    redis_url: str,
    store: redis.asyncio.Redis,
) -> None:
    # 80 accepted submits reported at once through two instances end where 80 sequential
    # applications of next_limit end: no update is lost to a race.
    name = unique_name()
    auto: dict[str, Any] = {"concurrency": "auto", "initial": 3, "ceiling": 64}
    async with (
        RedisLimiter(redis_url, name=name, **auto) as a,
        RedisLimiter(redis_url, name=name, **auto) as b,
        anyio.create_task_group() as tg,
    ):
        for i in range(80):
            tg.start_soon((a if i % 2 else b).feedback, "fast", "accepted")
    expected = reduce(
        lambda state, _: next_limit(state, "accepted", ceiling=64), range(80), AimdState(3)
    )
    stored = await store.hgetall(f"mjasync:{{{name}}}:fast:aimd")
    assert AimdState(int(stored[b"limit"]), int(stored[b"accepted"])) == expected
    assert expected.limit > 10  # the fold really grew


@pytest.mark.anyio
async def test_fixed_limit_ignores_feedback(redis_url: str) -> None:
    async with RedisLimiter(redis_url, name=unique_name(), concurrency=5) as limiter:
        await limiter.feedback("fast", "refused")
        assert limiter.limit("fast") == 5
        assert not limiter.adaptive


# -- Redis unreachable ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_closed_port_raises_limiter_error_fast() -> None:
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    limiter = RedisLimiter(url, name="acct-1", connect_timeout=1.0)
    with anyio.fail_after(1.0 + MARGIN), pytest.raises(LimiterError) as info:
        await limiter.start()
    assert "127.0.0.1" in str(info.value)
    assert "s3cret" not in str(info.value)


@pytest.mark.anyio
async def test_silent_server_raises_limiter_error_within_connect_timeout() -> None:
    # A socket that completes the TCP handshake (backlog) but never answers: only our timeout
    # can end the wait.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        limiter = RedisLimiter(f"redis://127.0.0.1:{port}/0", name="acct-1", connect_timeout=0.5)
        with anyio.fail_after(0.5 + MARGIN), pytest.raises(LimiterError, match=r"within 0\.5 s"):
            await limiter.start()


@pytest.mark.anyio
async def test_redis_lost_mid_run(
    own_redis: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # outage_timeout=0: no riding out (tests/test_redis_faults.py covers that).
    limiter = RedisLimiter(own_redis.url, name=unique_name(), connect_timeout=1.0, outage_timeout=0)
    async with limiter:
        slot = await limiter.acquire("fast")
        own_redis.stop()
        with anyio.fail_after(1.0 + MARGIN), pytest.raises(LimiterError):
            await limiter.acquire("fast")
        with caplog.at_level(logging.WARNING, logger="mjasync.redis"):
            with anyio.fail_after(1.0 + MARGIN):
                await limiter.release(slot)  # logged, not raised: the lease will expire
        assert "could not release 1 lease" in caplog.text
        assert limiter.statistics()[0].in_use == 0
    # aclose() above did not raise either.


@pytest.mark.anyio
async def test_restarted_redis_gets_held_leases_back(
    own_redis: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Redis runs without persistence; after a restart the renewal re-creates the leases of the
    # jobs still in flight.
    name = unique_name()
    async with RedisLimiter(own_redis.url, name=name, lease_seconds=0.6) as limiter:
        held = sorted([str((await limiter.acquire("fast")).lease_id) for _ in range(2)])
        own_redis.stop()
        own_redis.start()
        store = redis.asyncio.Redis.from_url(own_redis.url)
        try:

            async def rebuilt() -> bool:
                return sorted(await live_leases(store, name)) == held

            with caplog.at_level(logging.WARNING, logger="mjasync.redis"):
                await wait_until(rebuilt, what="leases re-created after the restart")
            # The pooled connections died with the server; the budget still works.
            third = await limiter.acquire("fast")
            assert await limiter._try_acquire(limiter._mode("fast"), "probe") is not None
            await limiter.release(third)
            assert "were re-created" in caplog.text
        finally:
            await store.aclose()


# -- several processes ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_three_processes_never_exceed_the_shared_limit(
    redis_url: str,
    store: redis.asyncio.Redis,
    tmp_path: Path,
) -> None:
    name = unique_name()
    loop = ["loop", redis_url, name, "--tasks", "5", "--iterations", "8", "--hold", "0.02"]
    async with (
        spawn(tmp_path, *loop) as w1,
        spawn(tmp_path, *loop) as w2,
        spawn(tmp_path, *loop) as w3,
    ):
        for worker in (w1, w2, w3):
            await worker.expect("ready")
        for worker in (w1, w2, w3):
            await worker.expect("done")
            await worker.finish()
    active, peak, done = counter_keys(name)
    assert int(await store.get(done) or 0) == 3 * 5 * 8
    assert int(await store.get(peak) or 0) == 3  # reached, never exceeded
    assert int(await store.get(active) or 0) == 0
    assert await store.zcard(leases_key(name)) == 0


@pytest.mark.anyio
async def test_killed_process_slots_come_back_within_the_lease(
    redis_url: str,
    store: redis.asyncio.Redis,
    tmp_path: Path,
) -> None:
    name = unique_name()
    lease = 1.0
    _, peak, done = counter_keys(name)
    async with spawn(tmp_path, "hog", redis_url, name, "--lease", str(lease)) as hog:
        await hog.expect("ready")
        hog_ids = sorted((await hog.expect("held")).split()[1:])
        first_expiry = await last_expiry(store, name)
        loop = ["loop", redis_url, name, "--lease", str(lease), "--tasks", "3", "--iterations", "5"]
        async with spawn(tmp_path, *loop) as w1, spawn(tmp_path, *loop) as w2:
            await w1.expect("ready")
            await w2.expect("ready")

            # The hog keeps its slots past their first expiry (it renews) and the others wait.
            async def past_first_expiry() -> bool:
                return await server_ms(store) > first_expiry + 200

            await wait_until(past_first_expiry, what="the hog's first lease time went by")
            assert sorted(await live_leases(store, name)) == hog_ids
            assert int(await store.get(done) or 0) == 0

            hog.process.send_signal(signal.SIGKILL)

            async def others_proceed() -> bool:
                return int(await store.get(done) or 0) > 0

            # The hog's last renewal was at most lease/3 ago: its slots expire within `lease`.
            await wait_until(others_proceed, timeout=lease + MARGIN, what="slots reclaimed")
            for worker in (w1, w2):
                await worker.expect("done")
                await worker.finish()
    assert int(await store.get(done) or 0) == 2 * 3 * 5
    assert int(await store.get(peak) or 0) <= 3
    assert await live_leases(store, name) == []
