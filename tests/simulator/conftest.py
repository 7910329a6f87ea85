"""Fixtures: start fakes on loopback and talk to them with plain aiohttp."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import pytest

from mjasync.testing import FakeMidjourney

from ._helpers import KEY, Api

MakeSim = Callable[..., Awaitable[tuple[FakeMidjourney, Api]]]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def make_sim(session: aiohttp.ClientSession) -> AsyncIterator[MakeSim]:
    """``fake, api = await make_sim(**options)``: a started fake and an Api sending the key."""
    async with AsyncExitStack() as stack:

        async def make(headers: dict[str, str] | None = None, **options: Any):
            fake = await stack.enter_async_context(FakeMidjourney(**options))
            return fake, Api(session, fake, {"mj-api-secret": KEY} if headers is None else headers)

        yield make


@pytest.fixture
async def sim(make_sim: MakeSim) -> tuple[FakeMidjourney, Api]:
    """A default C-accent fake with quick jobs."""
    return await make_sim(job_duration=0.03)
