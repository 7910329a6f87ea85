"""A worker process for the RedisLimiter tests (run as a script, not collected by pytest).

``loop``: ``--tasks`` concurrent tasks each take a slot ``--iterations`` times, hold it for
``--hold`` seconds and give it back. While holding, a Lua script counts active holders in Redis
and records the peak atomically, so the test reads an independent measurement of overlap.

``hog``: take ``--count`` slots, print ``held`` and keep them (renewing) until killed.

``client``: run ``--jobs`` imagines at once through ``mjasync.Client(
limiter=RedisLimiter(..., concurrency=3))`` against ``--base-url`` (a simulator) and print
``done ok=<successes> failed=<other outcomes>``.

Both print ``ready`` once the limiter is started.
"""

from __future__ import annotations

import argparse
import sys

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


ROLES = {"loop": loop, "hog": hog, "client": client}


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
    args = parser.parse_args()
    anyio.run(ROLES[args.role], args)
    sys.exit(0)


if __name__ == "__main__":
    main()
