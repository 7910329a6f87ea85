"""A FastAPI endpoint that awaits one Midjourney image.

The lifespan handler owns one :class:`mjasync.Client` for the application's whole life, so
all requests share one connection pool and one in-flight budget.

Run (needs ``pip install 'mjasync[fastapi]'``: FastAPI and uvicorn)::

    MJ_BASE_URL=https://relay.example.com MJ_API_KEY=sk-... \\
        uvicorn examples.fastapi_endpoint:app

then::

    curl -X POST localhost:8000/imagine -H 'content-type: application/json' \\
        -d '{"prompt": "a red fox"}'

It writes nothing to disk: the answers carry the image URLs the server gave.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel

import mjasync

ClientFactory = Callable[[], mjasync.Client]


class ImagineIn(BaseModel):
    """The request body."""

    prompt: str


class ImagineOut(BaseModel):
    """The answer: the finished grid."""

    task_id: str
    image_url: str | None
    buttons: list[str]


def create_app(client_factory: ClientFactory = mjasync.Client) -> FastAPI:
    """The application; ``client_factory`` builds the client (default: from the environment)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with client_factory() as client:
            app.state.client = client
            yield

    api = FastAPI(title="mjasync example", lifespan=lifespan)

    @api.post("/imagine")
    async def imagine(body: ImagineIn, request: Request) -> ImagineOut:
        """Generate one grid from a prompt and return it once finished."""
        client: mjasync.Client = request.app.state.client
        try:
            task = await client.imagine(body.prompt, timeout=600)
        except mjasync.BannedPromptError as exc:
            raise HTTPException(422, f"banned prompt (word: {exc.banned_word})") from exc
        except (ValueError, mjasync.InvalidRequestError) as exc:
            raise HTTPException(422, str(exc)) from exc
        except mjasync.TaskFailedError as exc:
            raise HTTPException(502, f"task {exc.task_id} failed: {exc.fail_reason}") from exc
        except mjasync.MjError as exc:
            raise HTTPException(502, str(exc)) from exc
        return ImagineOut(
            task_id=task.id,
            image_url=task.image_url,
            buttons=[button.name for button in task.buttons],
        )

    return api


app = create_app()
