"""A midjourney-proxy that is slow to answer submits: the id exists before the caller hears it.

Purpose-built for the cancellation tests (the simulator answers too promptly). Every submit
creates its task at once, then waits ``submit_delay`` before answering; tasks run for
``job_duration`` unless cancelled (``POST .../cancel`` ends them ``cancel_delay`` later, as a
C# proxy does: FAILURE with "取消任务"). The
server keeps its own count of tasks that are active (created and not ended), and the peak.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web


class SlowProxy:
    """State and routes of the slow server (``async with SlowProxy.serve(...) as proxy``)."""

    def __init__(self, *, submit_delay: float, job_duration: float, cancel_delay: float) -> None:
        self.submit_delay = submit_delay
        self.job_duration = job_duration
        self.cancel_delay = cancel_delay
        self.created: list[str] = []
        self.cancelled: list[str] = []
        self.ended: dict[str, str] = {}
        self.started_at: dict[str, float] = {}
        self.peak_active = 0
        self.base_url = ""
        self._ids = itertools.count(1_700_000_000_000_000)

    @property
    def active(self) -> int:
        return len(self.created) - len(self.ended)

    def _status(self, task_id: str) -> tuple[str, str]:
        loop = asyncio.get_running_loop()
        if (
            task_id not in self.ended
            and loop.time() - self.started_at[task_id] >= self.job_duration
        ):
            self.ended[task_id] = "SUCCESS"
        status = self.ended.get(task_id, "IN_PROGRESS")
        return status, ("100%" if status == "SUCCESS" else "50%" if status == "IN_PROGRESS" else "")

    def _task(self, task_id: str) -> dict[str, Any]:
        status, progress = self._status(task_id)
        return {
            "id": task_id,
            "action": "IMAGINE",
            "status": status,
            "progress": progress,
            "failReason": "取消任务" if task_id in self.cancelled else None,
            "imageUrl": f"{self.base_url}/img/{task_id}.png" if status == "SUCCESS" else None,
        }

    async def submit(self, request: web.Request) -> web.Response:
        task_id = str(next(self._ids))
        self.created.append(task_id)
        self.started_at[task_id] = asyncio.get_running_loop().time()
        self.peak_active = max(self.peak_active, self.active)
        await asyncio.sleep(self.submit_delay)  # the job exists; the answer is on its way
        return web.json_response({"code": 1, "description": "提交成功", "result": task_id})

    async def list_tasks(self, request: web.Request) -> web.Response:
        ids = (await request.json()).get("ids", [])
        return web.json_response([self._task(i) for i in ids if i in self.started_at])

    async def fetch(self, request: web.Request) -> web.Response:
        task_id = request.match_info["id"]
        if task_id not in self.started_at:
            return web.Response(status=204)
        return web.json_response(self._task(task_id))

    async def cancel(self, request: web.Request) -> web.Response:
        task_id = request.match_info["id"]
        if task_id in self.started_at and task_id not in self.ended:
            self.cancelled.append(task_id)
            asyncio.get_running_loop().call_later(self.cancel_delay, self._end_cancelled, task_id)
        return web.json_response({"code": 1, "description": "ok"})

    def _end_cancelled(self, task_id: str) -> None:
        self.ended.setdefault(task_id, "FAILURE")  # C marks a cancelled task FAILURE

    @classmethod
    @asynccontextmanager
    async def serve(
        cls, *, submit_delay: float, job_duration: float, cancel_delay: float = 0.0
    ) -> AsyncIterator[SlowProxy]:
        proxy = cls(submit_delay=submit_delay, job_duration=job_duration, cancel_delay=cancel_delay)
        app = web.Application()
        prefix = "/mj-fast/mj"
        app.router.add_post(f"{prefix}/submit/imagine", proxy.submit)
        app.router.add_post(f"{prefix}/task/list-by-condition", proxy.list_tasks)
        app.router.add_get(prefix + "/task/{id}/fetch", proxy.fetch)
        app.router.add_post(prefix + "/task/{id}/cancel", proxy.cancel)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        proxy.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            yield proxy
        finally:
            await runner.cleanup()
