"""Push updates inside a FastAPI (or Starlette) application, through the ASGI adapter.

    pip install 'mjasync[fastapi]'   # FastAPI and uvicorn
    MJ_BASE_URL=https://... MJ_API_KEY=sk-... PUBLIC_URL=https://my-app.example \
        uvicorn examples.webhook_fastapi:app --host 0.0.0.0 --port 8000 --no-access-log

``--no-access-log``: the hook's path carries the secret, and an access log would keep it.

The app serves the hook itself, so the receiver is made with ``host=None`` (no site of its
own) and ``public_url`` = where the server reaches this app. The client lives as long as the
app (the lifespan below), on uvicorn's event loop: the receiver must run on the loop of the
clients it feeds.

Two equivalent ways to route the posts are shown: mounting ``receiver.asgi_app()`` (it checks
the secret, caps the body while reading it, counts every rejection), or, with
``HOOK_ROUTE=custom``, a route of your own calling ``receiver.handle_payload(secret, body)``.

It writes nothing to disk.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response

import mjasync
from mjasync import WebhookReceiver

receiver = WebhookReceiver(None, public_url=os.environ.get("PUBLIC_URL", "http://127.0.0.1:8000"))
state: dict[str, mjasync.Client] = {}


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    async with mjasync.Client(webhook=receiver) as client:  # MJ_BASE_URL, MJ_API_KEY
        state["client"] = client
        yield


app = FastAPI(lifespan=lifespan)

if os.environ.get("HOOK_ROUTE") != "custom":
    # Way 1: the adapter; the secret is the path segment after the mount point.
    app.mount(receiver.path, receiver.asgi_app())
else:
    # Way 2: a route of your own. request.body() reads the whole body before the size
    # check, so keep a body-size limit in front of the app (the adapter caps while reading).
    @app.post(receiver.path + "/{secret}")
    async def hook(secret: str, request: Request) -> Response:
        verdict = receiver.handle_payload(secret, await request.body())
        return Response(verdict.reason, status_code=verdict.status)


@app.post("/imagine")
async def imagine(prompt: str) -> dict[str, object]:
    task = await state["client"].imagine(prompt)
    return {"id": task.id, "image_url": task.image_url}


@app.get("/hooks/stats")
async def hook_stats() -> dict[str, object]:
    stats = receiver.statistics()
    return {
        "received": stats.received,
        "accepted": stats.accepted,
        "rejected": dict(stats.rejected_by_reason),
        "completed_by_push": stats.completed_by_push,
        "completed_by_poll": stats.completed_by_poll,
    }
