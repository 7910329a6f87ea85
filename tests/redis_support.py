"""Helpers shared by the Redis tests: conditions with deadlines, a look into Redis, workers.

``tests/conftest.py`` loads it (and ``redis_server``) as a plugin, for the ``store`` fixture.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import cast

import anyio
import anyio.abc
import pytest
import redis.asyncio
from anyio.streams.buffered import BufferedByteReceiveStream

from redis_server import free_port

WORKER = str(Path(__file__).with_name("redis_worker.py"))
MARGIN = 1.0  # seconds of slack on the promised bounds, for loaded CI machines


def unique_name() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def leases_key(name: str, mode: str = "fast") -> str:
    return f"mjasync:{{{name}}}:{mode}:leases"


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """A plain client to look at what the limiter wrote."""
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


async def wait_until(
    condition: Callable[[], Awaitable[bool]], *, timeout: float = 10.0, what: str = ""
) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    try:
        with anyio.fail_after(timeout):
            while not await condition():
                await anyio.sleep(0.01)
    except TimeoutError:
        pytest.fail(f"not true within {timeout} s: {what}")


async def live_leases(store: redis.asyncio.Redis, name: str, mode: str = "fast") -> list[str]:
    """Lease ids whose expiry (server time) is still ahead."""
    seconds, micros = await store.time()
    now_ms = seconds * 1000 + micros // 1000
    members = await store.zrangebyscore(leases_key(name, mode), f"({now_ms}", "+inf")
    return [member.decode() for member in cast(list[bytes], members)]


async def last_expiry(store: redis.asyncio.Redis, name: str, mode: str = "fast") -> float:
    """The latest expiry (server ms) in the lease set."""
    reply = await store.zrange(leases_key(name, mode), -1, -1, withscores=True)
    ((_, score),) = cast(list[tuple[bytes, float]], reply)
    return score


async def server_ms(store: redis.asyncio.Redis) -> int:
    seconds, micros = await store.time()
    return int(seconds * 1000 + micros // 1000)


class Worker:
    """A ``redis_worker.py`` subprocess with line-wise stdout."""

    def __init__(self, process: anyio.abc.Process, stderr: Path) -> None:
        self.process = process
        self.stderr = stderr
        assert process.stdout is not None
        self._stdout = BufferedByteReceiveStream(process.stdout)

    async def expect(self, prefix: str, *, timeout: float = 30.0) -> str:
        try:
            with anyio.fail_after(timeout):
                line = (await self._stdout.receive_until(b"\n", 65536)).decode()
        except (TimeoutError, anyio.EndOfStream, anyio.IncompleteRead):
            pytest.fail(f"worker said no {prefix!r}; stderr:\n{self.stderr.read_text()}")
        assert line.startswith(prefix), line
        return line

    async def finish(self, *, timeout: float = 60.0) -> None:
        with anyio.fail_after(timeout):
            code = await self.process.wait()
        assert code == 0, self.stderr.read_text()


@asynccontextmanager
async def spawn(tmp_path: Path, *args: str) -> AsyncIterator[Worker]:
    stderr = tmp_path / f"worker-{uuid.uuid4().hex[:6]}.err"
    with stderr.open("wb") as err:
        process = await anyio.open_process(
            [sys.executable, WORKER, *args], stdout=subprocess.PIPE, stderr=err
        )
    try:
        yield Worker(process, stderr)
    finally:
        if process.returncode is None:
            process.kill()
        with anyio.CancelScope(shield=True):
            await process.wait()
            await process.aclose()


class RedisProxy:
    """A TCP forwarder to a Redis server that a test can cut and restore.

    Cutting closes every forwarded connection and stops listening (new connections are
    refused), as if the network between one process and Redis went away; restoring listens
    again on the same port. The Redis server itself, and everyone else's connections, are
    untouched.
    """

    def __init__(self, task_group: anyio.abc.TaskGroup, target_port: int) -> None:
        self.port = free_port()
        self._target = target_port
        self._task_group = task_group
        self._scope: anyio.CancelScope | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def restore(self) -> None:
        """Listen (again) and forward new connections."""
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=self.port)
        scope = self._scope = anyio.CancelScope()

        async def serve() -> None:
            with scope:
                async with listener:
                    await listener.serve(self._forward)

        self._task_group.start_soon(serve)

    def cut(self) -> None:
        """Drop every forwarded connection and stop listening."""
        if self._scope is not None:
            self._scope.cancel()
            self._scope = None

    async def _forward(self, client: anyio.abc.SocketStream) -> None:
        async with client:
            try:
                upstream = await anyio.connect_tcp("127.0.0.1", self._target)
            except OSError:
                return
            async with upstream, anyio.create_task_group() as tg:

                async def pump(source: anyio.abc.ByteStream, sink: anyio.abc.ByteStream) -> None:
                    try:
                        async for chunk in source:
                            await sink.send(chunk)
                    except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                        pass
                    tg.cancel_scope.cancel()  # one side is gone: close both

                tg.start_soon(pump, client, upstream)
                tg.start_soon(pump, upstream, client)


@asynccontextmanager
async def redis_proxy(target_port: int) -> AsyncIterator[RedisProxy]:
    """A running :class:`RedisProxy` to the Redis server on ``target_port``."""
    async with anyio.create_task_group() as tg:
        proxy = RedisProxy(tg, target_port)
        await proxy.restore()
        try:
            yield proxy
        finally:
            # Not tg.cancel_scope.cancel(): that would replace the body's own exception (a
            # failed assert) with a CancelledError.
            proxy.cut()
