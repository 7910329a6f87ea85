"""Shared pytest configuration: async tests run on asyncio through anyio's plugin."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# Fixtures of the Redis tests (redis_url, own_redis, store), loaded here so that pytest rewrites
# their asserts. A test that does not ask for them never starts a server.
pytest_plugins = ["redis_server", "redis_support"]
