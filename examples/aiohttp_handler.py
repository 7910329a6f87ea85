"""An aiohttp web handler that awaits one Midjourney image.

The application owns one :class:`mjasync.Client` for its whole life: ``cleanup_ctx`` opens it
at startup and closes it at shutdown, so all requests share one connection pool and one
in-flight budget (``concurrency``), however many arrive at once.

Run against a real server (MJ_BASE_URL / MJ_API_KEY from the environment)::

    MJ_BASE_URL=https://relay.example.com MJ_API_KEY=sk-... python examples/aiohttp_handler.py

or against the built-in simulator::

    python examples/aiohttp_handler.py --simulate

then::

    curl 'http://127.0.0.1:8080/imagine?prompt=a+red+fox'

It writes nothing to disk: the answers carry the image URLs the server gave.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable

from aiohttp import web

import mjasync
from mjasync.testing import FakeMidjourney

CLIENT = web.AppKey("mjasync_client", mjasync.Client)
ClientFactory = Callable[[], mjasync.Client]


async def imagine(request: web.Request) -> web.Response:
    """``GET /imagine?prompt=...``: generate one grid and answer with its image URL."""
    prompt = request.query.get("prompt", "").strip()
    if not prompt:
        raise web.HTTPBadRequest(text="the query parameter ?prompt= is required")
    client = request.app[CLIENT]
    try:
        task = await client.imagine(prompt, timeout=600)
    except mjasync.BannedPromptError as exc:
        return web.json_response({"error": "banned prompt", "word": exc.banned_word}, status=422)
    except (ValueError, mjasync.InvalidRequestError) as exc:
        return web.json_response({"error": str(exc)}, status=422)
    except mjasync.TaskFailedError as exc:
        return web.json_response({"error": exc.fail_reason, "task_id": exc.task_id}, status=502)
    except mjasync.MjError as exc:
        return web.json_response({"error": str(exc)}, status=502)
    return web.json_response(
        {
            "task_id": task.id,
            "image_url": task.image_url,
            "buttons": [button.name for button in task.buttons],
        }
    )


def make_app(client_factory: ClientFactory = mjasync.Client) -> web.Application:
    """The application; ``client_factory`` builds the client (default: from the environment)."""

    async def client_context(app: web.Application) -> AsyncIterator[None]:
        async with client_factory() as client:
            app[CLIENT] = client
            yield

    app = web.Application()
    app.cleanup_ctx.append(client_context)
    app.router.add_get("/imagine", imagine)
    return app


def _simulated_app() -> web.Application:
    fake = FakeMidjourney(job_duration=2.0, progress_steps=4)

    async def simulator(app: web.Application) -> AsyncIterator[None]:
        async with fake:  # started before the client context below, closed after it
            yield

    app = make_app(lambda: mjasync.Client(fake.base_url, "sk-test", poll_interval=0.5))
    app.cleanup_ctx.insert(0, simulator)
    return app


if __name__ == "__main__":
    web.run_app(_simulated_app() if "--simulate" in sys.argv else make_app(), port=8080)
