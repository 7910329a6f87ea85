"""A started simulator in one accent, with raw requests that return the wire's ``Response``.

The conformance cases provoke an answer from the simulator the way a real server would be made
to give it, then hand that ``Response`` to the same pure layer the documented answer went to.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import attrs

from mjasync._wire.transport import AuthOverride, Response, Transport
from mjasync.testing import FakeMidjourney
from simulator._helpers import DATA_URL

KEY = "sk-conformance-0123456789"
PNG = DATA_URL


@attrs.define
class Sim:
    """One simulator and a transport that talks to it with the right key."""

    fake: FakeMidjourney
    transport: Transport

    async def raw(
        self,
        method: str,
        route: str,
        *,
        body: dict[str, Any] | None = None,
        form: dict[str, Any] | None = None,
        auth: AuthOverride | None = None,
        mode: str | None = None,
    ) -> Response:
        """One request, answered as is (no interpretation, no retries)."""
        return await self.transport.request(
            method, route, mode=mode, json_body=body, form_body=form, auth=auth
        )

    async def submit(self, route: str, body: dict[str, Any]) -> str:
        """A submit that must be accepted; returns the task id."""
        resp = await self.raw("POST", route, body=body)
        payload = json.loads(resp.body)
        assert resp.status == 200 and payload["code"] in (1, 21, 22), payload
        return str(payload["result"])

    async def wait(self, task_id: str, *statuses: str) -> dict[str, Any]:
        """The task once its status is one of ``statuses``."""
        with anyio.fail_after(5):
            while True:
                task = self.fake.task(task_id)
                if task is not None and task["status"] in statuses:
                    return task
                await anyio.sleep(0.005)

    async def finished(self, prompt: str = "a cat") -> str:
        """The id of a finished imagine."""
        task_id = await self.submit("/mj/submit/imagine", {"prompt": prompt})
        await self.wait(task_id, "SUCCESS")
        return task_id

    async def running(self) -> str:
        """The id of an imagine frozen IN_PROGRESS."""
        task_id = await self.submit("/mj/submit/imagine", {"prompt": "a cat --stall"})
        await self.wait(task_id, "IN_PROGRESS")
        return task_id


@contextlib.asynccontextmanager
async def started(accent: str, **options: Any) -> AsyncIterator[Sim]:
    """A simulator of ``accent`` (quick jobs) and its :class:`Sim`."""
    options.setdefault("job_duration", 0.02)
    options.setdefault("api_keys", (KEY,))
    async with FakeMidjourney(accent=accent, **options) as fake:  # type: ignore[arg-type]
        transport = Transport(
            fake.base_url, KEY, auth="bearer" if accent == "relay" else "mj-api-secret"
        )
        try:
            yield Sim(fake, transport)
        finally:
            await transport.aclose()
