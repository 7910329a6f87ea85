"""Stream the progress of a few prompts, notebook style.

In a Jupyter cell (top-level ``await`` works there)::

    import mjasync
    from stream_progress import show_progress

    async with mjasync.Client() as client:          # MJ_BASE_URL / MJ_API_KEY
        summary = await show_progress(client, ["a red fox", "a blue whale"], "out")

As a script, against the built-in simulator::

    python examples/stream_progress.py

The script writes its images, ``manifest.jsonl``, ``index.html`` and ``journal.sqlite`` into
``out/stream`` (relative to where you run it; ``out/`` is in the repository's ``.gitignore``).
"""

from __future__ import annotations

from contextlib import aclosing

import anyio

import mjasync
from mjasync.testing import FakeMidjourney

PROMPTS = [
    "a lighthouse on a cliff at dusk, oil painting",
    "a paper boat on a puddle, macro photo",
    "a snowy mountain village, isometric pixel art",
]


async def show_progress(
    client: mjasync.Client, prompts: list[str], out_dir: str
) -> mjasync.BatchSummary:
    """Run ``prompts`` as a batch, printing each step as it happens; return the summary."""
    batch = mjasync.Batch(client, prompts, out_dir=out_dir)
    # aclosing: if the cell is interrupted, the batch stops cleanly and keeps its journal.
    async with aclosing(batch.events()) as events:
        async for event in events:
            where = f"#{event.index + 1}"
            if event.kind == "progress":
                print(f"{where} {event.status} {event.progress or 0}%")
            elif event.kind == "finished" and event.result is not None:
                print(f"{where} {event.result.outcome}: {', '.join(event.result.files)}")
            elif event.error:
                print(f"{where} {event.kind}: {event.error}")
    assert batch.summary is not None
    return batch.summary


async def main() -> None:
    async with (
        FakeMidjourney(job_duration=1.0, progress_steps=4) as fake,
        mjasync.Client(fake.base_url, "sk-test", poll_interval=0.2) as client,
    ):
        summary = await show_progress(client, PROMPTS, "out/stream")
    print(f"{summary.succeeded}/{summary.total} succeeded in {summary.wall_time:.1f}s")


if __name__ == "__main__":
    anyio.run(main)
