"""Push updates with the receiver's own site: jobs finish the moment the server says so.

    python examples/webhook_own_site.py                 # against the built-in simulator
    MJ_BASE_URL=https://... MJ_API_KEY=sk-... python examples/webhook_own_site.py \
        --public-url https://my-tunnel.example          # a real server must reach you

The receiver listens on 127.0.0.1 (a free port) unless told otherwise; a remote server needs
``--public-url`` (a tunnel or reverse proxy in front of this machine) and ``--host 0.0.0.0``.
Polling stays on as the fallback (relays usually strip ``notifyHook``), just much slower for
jobs that receive pushes.

It writes nothing to disk.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from contextlib import AsyncExitStack

import mjasync
from mjasync import WebhookReceiver
from mjasync.testing import FakeMidjourney


async def main() -> None:
    parser = argparse.ArgumentParser(description="imagine a few prompts with push updates")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--public-url", default=None)
    args = parser.parse_args()

    async with AsyncExitStack() as stack:
        base_url, key = os.environ.get("MJ_BASE_URL"), os.environ.get("MJ_API_KEY")
        if base_url is None:
            fake = await stack.enter_async_context(FakeMidjourney(job_duration=1.0))
            base_url, key = fake.base_url, "sk-test"
        receiver = WebhookReceiver(args.host, args.port, public_url=args.public_url)
        # A long poll interval makes the point: every event below arrives by push.
        client = await stack.enter_async_context(
            mjasync.Client(base_url, key, webhook=receiver, poll_interval=10.0)
        )
        print(f"receiver: {receiver!r}")  # the secret is never shown
        prompts = ["a lighthouse at dusk", "a fox in the snow", "a paper boat"]
        async for event in client.stream(mjasync.Imagine(p) for p in prompts):
            progress = "-" if event.progress is None else f"{event.progress}%"
            print(f"{event.task_id} {event.status.value:<12} {progress:>4} via {event.source}")
        print(client.statistics())
    print(receiver.statistics())


if __name__ == "__main__":
    asyncio.run(main())
