"""Progress in the browser: a FastAPI app that streams one job's events as Server-Sent Events.

The same page and routes as ``examples/sse_progress_aiohttp.py``: ``POST /jobs`` submits once
and answers with the task id; ``GET /jobs/{id}/events`` streams the job's progress as
``text/event-stream``; the page (``examples/sse_progress.html``) shows the image when the last
event lands. A reconnecting ``EventSource`` follows the same job again, never a new one, and
the stream only observes the job, so a closed tab never cancels it.

Needs FastAPI and uvicorn: ``pip install 'mjasync[fastapi]'``. Run it against the built-in
simulator (no account needed), then open http://127.0.0.1:8000/::

    python examples/sse_progress_fastapi.py

or against your own server (``MJ_BASE_URL`` / ``MJ_API_KEY`` from the environment; this pays
for every prompt you submit)::

    MJ_BASE_URL=https://relay.example.com MJ_API_KEY=sk-... \\
        python examples/sse_progress_fastapi.py --real

It writes nothing to disk: the page shows the image from the URL the server gave.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel

import mjasync
from mjasync.testing import FakeMidjourney

PAGE = Path(__file__).with_name("sse_progress.html")
ClientFactory = Callable[[], mjasync.Client]
#: Jobs remembered for their event streams; the oldest are forgotten first.
MAX_JOBS = 1000


class NewJob(BaseModel):
    """The body of ``POST /jobs``."""

    prompt: str


def sse_message(event: mjasync.ProgressEvent) -> str:
    """One event as an SSE message: ``progress`` while the job runs, ``done`` at the end."""
    data: dict[str, object] = {
        "task_id": event.task_id,
        "status": event.status.value,
        "progress": event.progress,
        "queue_position": event.queue_position,
    }
    if event.is_terminal:
        task = event.task
        if event.error is not None:
            data["error"] = str(event.error)
        elif task is not None:
            data["image_url"] = task.image_url
            data["prompt"] = task.prompt
    kind = "done" if event.is_terminal else "progress"
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n"


async def _next_event(events: AsyncIterator[mjasync.ProgressEvent]) -> mjasync.ProgressEvent:
    return await anext(events)


async def sse_messages(job: mjasync.Job, *, keep_alive: float = 15.0) -> AsyncGenerator[str, None]:
    """The job's events as SSE messages, and a comment whenever ``keep_alive`` seconds pass.

    A queued job can be silent for minutes; proxies close a silent stream, and the comment
    also finds out early that the browser has gone. The pending read is not cancelled for the
    comment, so no event is lost.
    """
    events = job.observe()  # an observer: leaving early never cancels the job
    pending = asyncio.ensure_future(_next_event(events))
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=keep_alive)
            if not done:
                yield ": still working\n\n"
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                return
            yield sse_message(event)
            if event.is_terminal:
                return
            pending = asyncio.ensure_future(_next_event(events))
    finally:
        pending.cancel()
        with suppress(BaseException):
            await pending
        await events.aclose()


def create_app(
    client_factory: ClientFactory = mjasync.Client,
    *,
    keep_alive: float = 15.0,
    simulator: FakeMidjourney | None = None,
) -> FastAPI:
    """The application; ``client_factory`` builds the client (default: from the environment).

    ``simulator``, if given, is started before the client and stopped after it.
    """
    jobs: OrderedDict[str, mjasync.Job] = OrderedDict()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if simulator is not None:
                await stack.enter_async_context(simulator)
            app.state.client = await stack.enter_async_context(client_factory())
            yield

    api = FastAPI(title="mjasync: progress in the browser", lifespan=lifespan)

    @api.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(PAGE)

    @api.post("/jobs", status_code=202)
    async def create_job(body: NewJob, request: Request) -> dict[str, str]:
        """Submit once; answer ``{"task_id": ...}``."""
        prompt = body.prompt.strip()
        if not prompt:
            raise HTTPException(400, "a prompt is required")
        client: mjasync.Client = request.app.state.client
        try:
            # Waits for a free slot first: at most `concurrency` jobs run on the account at once.
            job = await client.submit(mjasync.Imagine(prompt))
        except mjasync.BannedPromptError as exc:
            raise HTTPException(422, f"banned word: {exc.banned_word}") from exc
        except (ValueError, TypeError, mjasync.InvalidRequestError) as exc:
            raise HTTPException(422, str(exc)) from exc
        except mjasync.MjError as exc:  # includes SubmissionUncertainError: never resent blindly
            raise HTTPException(502, str(exc)) from exc
        jobs[job.id] = job
        while len(jobs) > MAX_JOBS:
            jobs.popitem(last=False)
        return {"task_id": job.id}

    @api.get("/jobs/{task_id}/events")
    async def job_events(task_id: str) -> StreamingResponse:
        """The job's progress as Server-Sent Events."""
        job = jobs.get(task_id)
        if job is None:  # only jobs this app submitted: not a window onto every task id
            raise HTTPException(404, "no such job here")
        return StreamingResponse(
            sse_messages(job, keep_alive=keep_alive),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @api.exception_handler(HTTPException)
    async def error_as_json(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    return api


def simulated_app() -> FastAPI:
    """The app against an in-process simulator whose jobs take a few seconds."""
    fake = FakeMidjourney(job_duration=8.0, start_delay=1.0, progress_steps=8)
    return create_app(
        lambda: mjasync.Client(fake.base_url, "sk-test", poll_interval=0.5), simulator=fake
    )


if __name__ == "__main__":
    import uvicorn

    parser = argparse.ArgumentParser(description="Progress in the browser (FastAPI).")
    parser.add_argument("--real", action="store_true", help="use MJ_BASE_URL / MJ_API_KEY")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    uvicorn.run(create_app() if args.real else simulated_app(), host=args.host, port=args.port)
