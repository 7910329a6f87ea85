"""Fixtures for the batch tests: a time-scaled simulator and a fast-polling client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

import mjasync
import sim_clients
from mjasync.testing import FakeMidjourney

KEY = "sk-batch-test-0123456789"


def fast_client(fake: FakeMidjourney, **options: Any) -> mjasync.Client:
    """A client that polls every 20 ms and waits out refusals in milliseconds."""
    return sim_clients.fast_client(fake, KEY, max_retries=2, **options)


@pytest.fixture(autouse=True)
def simulator_state(tmp_path_factory, monkeypatch) -> None:
    """``--simulate`` single commands keep their account in a file: one per test, not ~."""
    path = tmp_path_factory.mktemp("simulator") / "simulator.jsonl"
    monkeypatch.setenv("MJASYNC_SIMULATOR_STATE", str(path))


@pytest.fixture
def sim_options() -> dict[str, Any]:
    return {"job_duration": 0.08, "progress_steps": 3}


@pytest.fixture
async def fake(sim_options: dict[str, Any]) -> AsyncIterator[FakeMidjourney]:
    async with FakeMidjourney(api_keys=(KEY,), **sim_options) as server:
        yield server


@pytest.fixture
def make_client(fake: FakeMidjourney) -> Callable[..., mjasync.Client]:
    return lambda **options: fast_client(fake, **options)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
