"""Progress in the browser: an aiohttp app that streams one job's events as Server-Sent Events.

The page (``examples/sse_progress.html``) posts a prompt to ``POST /jobs``, which submits it
and answers with the task id; the page then opens ``GET /jobs/{id}/events``, a
``text/event-stream`` of the job's progress, and shows the image when the last event lands.

Why two routes: a browser's ``EventSource`` reconnects by itself whenever the stream drops. A
stream that submitted on ``GET`` would pay for a new job at every reconnect; here the job is
submitted once, and a reconnect follows the same job again. The stream *observes* the job
(``job.observe()``), so a closed tab never cancels it.

Run it against the built-in simulator (no account needed), then open http://127.0.0.1:8080/::

    python examples/sse_progress_aiohttp.py

or against your own server (``MJ_BASE_URL`` / ``MJ_API_KEY`` from the environment; this pays
for every prompt you submit)::

    MJ_BASE_URL=https://relay.example.com MJ_API_KEY=sk-... \\
        python examples/sse_progress_aiohttp.py --real

It writes nothing to disk: the page shows the image from the URL the server gave.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AsyncExitStack, aclosing, suppress
from pathlib import Path

from aiohttp import web

import mjasync
from mjasync.testing import FakeMidjourney

PAGE = Path(__file__).with_name("sse_progress.html")
ClientFactory = Callable[[], mjasync.Client]

CLIENT = web.AppKey("mjasync_client", mjasync.Client)
JOBS = web.AppKey("jobs", OrderedDict[str, mjasync.Job])
KEEP_ALIVE = web.AppKey("keep_alive", float)
#: Jobs remembered for their event streams; the oldest are forgotten first.
MAX_JOBS = 1000


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
    also finds out early that the browser has gone (the write fails). The pending read is not
    cancelled for the comment, so no event is lost.
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


async def page(request: web.Request) -> web.FileResponse:
    """``GET /``: the page."""
    return web.FileResponse(PAGE)


async def create_job(request: web.Request) -> web.Response:
    """``POST /jobs`` with ``{"prompt": ...}``: submit once, answer ``{"task_id": ...}``."""
    try:
        body = await request.json()
    except ValueError:
        return web.json_response({"error": 'send JSON: {"prompt": ...}'}, status=400)
    prompt = body.get("prompt") if isinstance(body, dict) else None
    if not isinstance(prompt, str) or not prompt.strip():
        return web.json_response({"error": "a prompt is required"}, status=400)
    try:
        # Waits for a free slot first: at most `concurrency` jobs run on the account at once.
        job = await request.app[CLIENT].submit(mjasync.Imagine(prompt.strip()))
    except mjasync.BannedPromptError as exc:
        return web.json_response({"error": f"banned word: {exc.banned_word}"}, status=422)
    except (ValueError, TypeError, mjasync.InvalidRequestError) as exc:
        return web.json_response({"error": str(exc)}, status=422)
    except mjasync.MjError as exc:  # includes SubmissionUncertainError: never resent blindly
        return web.json_response({"error": str(exc)}, status=502)
    jobs = request.app[JOBS]
    jobs[job.id] = job
    while len(jobs) > MAX_JOBS:
        jobs.popitem(last=False)
    return web.json_response({"task_id": job.id}, status=202)


async def job_events(request: web.Request) -> web.StreamResponse:
    """``GET /jobs/{id}/events``: the job's progress as Server-Sent Events."""
    job = request.app[JOBS].get(request.match_info["task_id"])
    if job is None:  # only jobs this app submitted: not a window onto every task id
        raise web.HTTPNotFound(text="no such job here")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # nginx: pass each event on at once
        }
    )
    await response.prepare(request)
    async with aclosing(sse_messages(job, keep_alive=request.app[KEEP_ALIVE])) as messages:
        async for message in messages:
            await response.write(message.encode())
    return response


def make_app(
    client_factory: ClientFactory = mjasync.Client,
    *,
    keep_alive: float = 15.0,
    simulator: FakeMidjourney | None = None,
) -> web.Application:
    """The application; ``client_factory`` builds the client (default: from the environment).

    ``simulator``, if given, is started before the client and stopped after it.
    """

    async def client_context(app: web.Application) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if simulator is not None:
                await stack.enter_async_context(simulator)
            app[CLIENT] = await stack.enter_async_context(client_factory())
            yield

    app = web.Application()
    app[JOBS] = OrderedDict()
    app[KEEP_ALIVE] = keep_alive
    app.cleanup_ctx.append(client_context)
    app.router.add_get("/", page)
    app.router.add_post("/jobs", create_job)
    app.router.add_get("/jobs/{task_id}/events", job_events)
    return app


def simulated_app() -> web.Application:
    """The app against an in-process simulator whose jobs take a few seconds."""
    fake = FakeMidjourney(job_duration=8.0, start_delay=1.0, progress_steps=8)
    return make_app(
        lambda: mjasync.Client(fake.base_url, "sk-test", poll_interval=0.5), simulator=fake
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Progress in the browser (aiohttp).")
    parser.add_argument("--real", action="store_true", help="use MJ_BASE_URL / MJ_API_KEY")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    web.run_app(make_app() if args.real else simulated_app(), host=args.host, port=args.port)
