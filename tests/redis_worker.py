"""A worker process for the RedisLimiter tests (run as a script, not collected by pytest).

``loop``: ``--tasks`` concurrent tasks each take a slot ``--iterations`` times, hold it for
``--hold`` seconds and give it back. While holding, a Lua script counts active holders in Redis
and records the peak atomically, so the test reads an independent measurement of overlap.

``hog``: take ``--count`` slots, print ``held`` and keep them (renewing) until killed.

``client``: run ``--jobs`` imagines at once through ``mjasync.Client(
limiter=RedisLimiter(..., concurrency=3))`` against ``--base-url`` (a simulator) and print
``done ok=<successes> failed=<other outcomes>``.

``bus``: like ``client``, but each worker is a whole deployment's worker: ``Client(limiter=
RedisLimiter(...), webhook=WebhookReceiver(..., bus=RedisPushBus(...)))``. Every worker's hooks
go to ``http://127.0.0.1:<--port>``, which only the worker started with ``--serve`` listens on.
After ``ready`` it waits for the Redis key ``--go-key`` (so every worker is up before the first
submit), then prints ``done ok=<successes> failed=<others> push=<ended by push> poll=<ended by
poll>``, and stays up (serving) until the key ``--stop-key`` appears.

All print ``ready`` once the limiter is started. ``MJASYNC_WORKER_LOG=DEBUG`` in the
environment logs to the worker's stderr file (to see why a test failed).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

import anyio
import redis.asyncio

import mjasync
from mjasync._integrations.redis_limiter import RedisLimiter

# KEYS: active, peak. Increment the holders and raise the peak if needed, in one step.
ENTER = """
local active = redis.call('INCR', KEYS[1])
if active > tonumber(redis.call('GET', KEYS[2]) or 0) then redis.call('SET', KEYS[2], active) end
return active
"""


def counter_keys(name: str) -> tuple[str, str, str]:
    """Keys of the independent counters: holders now, peak holders, finished iterations."""
    return f"test:{name}:active", f"test:{name}:peak", f"test:{name}:done"


def say(line: str) -> None:
    print(line, flush=True)


async def loop(args: argparse.Namespace) -> None:
    active, peak, done = counter_keys(args.name)
    limiter = RedisLimiter(args.url, name=args.name, concurrency=3, lease_seconds=args.lease)
    async with limiter, redis.asyncio.Redis.from_url(args.url) as counters:
        enter = counters.register_script(ENTER)
        say("ready")

        async def work() -> None:
            for _ in range(args.iterations):
                slot = await limiter.acquire(args.mode)
                try:
                    await enter(keys=[active, peak])
                    await anyio.sleep(args.hold)  # the "job" in flight
                    await counters.decr(active)
                    await counters.incr(done)
                finally:
                    await limiter.release(slot)

        async with anyio.create_task_group() as tg:
            for _ in range(args.tasks):
                tg.start_soon(work)
    say("done")


async def hog(args: argparse.Namespace) -> None:
    limiter = RedisLimiter(args.url, name=args.name, concurrency=3, lease_seconds=args.lease)
    async with limiter:
        say("ready")
        slots = [await limiter.acquire(args.mode) for _ in range(args.count)]
        say("held " + " ".join(str(slot.lease_id) for slot in slots))
        await anyio.sleep_forever()


async def client(args: argparse.Namespace) -> None:
    limiter = RedisLimiter(args.url, name=args.name, concurrency=3, lease_seconds=args.lease)
    async with mjasync.Client(
        args.base_url, "sk-test", mode=args.mode, limiter=limiter, poll_interval=0.05
    ) as mj:
        say("ready")
        tag = f"{args.name}-{args.tag}"
        results = await mj.gather(mjasync.Imagine(f"cat {tag} {i}") for i in range(args.jobs))
    ok = sum(isinstance(r, mjasync.Task) and r.status == "SUCCESS" for r in results)
    for result in results:
        if not isinstance(result, mjasync.Task):
            print(repr(result), file=sys.stderr)
    say(f"done ok={ok} failed={len(results) - ok}")


BUS_SECRET = "the-deployment-shared-secret_0123"


async def bus(args: argparse.Namespace) -> None:
    limiter = RedisLimiter(
        args.url, name=args.name, concurrency=3, lease_seconds=args.lease, outage_timeout=20
    )
    receiver = mjasync.WebhookReceiver(
        "127.0.0.1" if args.serve else None,
        args.port if args.serve else 0,
        public_url=f"http://127.0.0.1:{args.port}",
        secret=BUS_SECRET,
        bus=mjasync.RedisPushBus(args.url, name=args.name),
    )
    # Pushes arrive every job_duration/progress_steps: a job that receives them is not
    # polled before its end is pushed (then once, to confirm it).
    pacing = mjasync.PollSettings(
        interval=args.poll, max_interval=args.poll * 2, push_interval=1.5, push_health=2.5
    )
    async with mjasync.Client(
        args.base_url, "sk-test", mode=args.mode, limiter=limiter, webhook=receiver,
        poll_settings=pacing,
    ) as mj:  # fmt: skip
        deadline = time.monotonic() + 30
        while receiver.bus is not None and not receiver.bus.connected:  # a loaded machine
            if time.monotonic() > deadline:
                raise SystemExit("the bus never subscribed")
            await anyio.sleep(0.01)
        say("ready")
        await wait_for_key(args.url, args.go_key)
        tag = f"{args.name}-{args.tag}"
        results = await mj.gather(mjasync.Imagine(f"cat {tag} {i}") for i in range(args.jobs))
        stats = mj.statistics()
        ok = sum(isinstance(r, mjasync.Task) and r.status == "SUCCESS" for r in results)
        for result in results:
            if not isinstance(result, mjasync.Task):
                print(repr(result), file=sys.stderr)
        say(
            f"done ok={ok} failed={len(results) - ok} push={stats.completed_by_push} "
            f"poll={stats.completed_by_poll}"
        )
        # Like a web worker, stay up (serving the hook URL) until the deployment stops.
        await wait_for_key(args.url, args.stop_key, timeout=120)


async def wait_for_key(url: str, key: str, *, timeout: float = 30) -> None:
    """Return once ``key`` exists in Redis (riding out a Redis that is down meanwhile)."""
    deadline = time.monotonic() + timeout
    async with redis.asyncio.Redis.from_url(url) as store:
        while True:
            try:
                if await store.exists(key):
                    return
            except (redis.RedisError, OSError):
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{key} never appeared")
            await anyio.sleep(0.02)


ROLES = {"loop": loop, "hog": hog, "client": client, "bus": bus}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=sorted(ROLES))
    parser.add_argument("url")
    parser.add_argument("name")
    parser.add_argument("--mode", default="fast")
    parser.add_argument("--lease", type=float, default=1.0)
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--hold", type=float, default=0.02)
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--base-url")
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--tag", default="w")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--go-key", default="")
    parser.add_argument("--stop-key", default="")
    parser.add_argument("--poll", type=float, default=1.0)
    args = parser.parse_args()
    if level := os.environ.get("MJASYNC_WORKER_LOG"):
        logging.basicConfig(level=level, format="%(created).3f %(name)s %(message)s")
        logging.getLogger("asyncio").setLevel(logging.WARNING)
    anyio.run(ROLES[args.role], args)
    sys.exit(0)


if __name__ == "__main__":
    main()
