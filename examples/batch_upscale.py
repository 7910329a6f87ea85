"""A batch that upscales every grid: U1-U4 of each prompt, downloaded next to the grids.

Each upscale is its own journaled request, so rerunning this script after a crash finishes
the batch without pressing any button twice.

Against a real server (MJ_BASE_URL / MJ_API_KEY)::

    python examples/batch_upscale.py out/upscaled

against the built-in simulator::

    python examples/batch_upscale.py out/upscaled --simulate

It writes the grids, the upscales (``<prompt>_<task id>_U1.png`` ...), ``manifest.jsonl``,
``index.html`` and ``journal.sqlite`` into the directory given (default ``out/upscaled``,
relative to where you run it; ``out/`` is in the repository's ``.gitignore``).
"""

from __future__ import annotations

import sys

import anyio

import mjasync
from mjasync.testing import FakeMidjourney

PROMPTS = [
    "a red fox curled up asleep in fresh snow",
    "a brass robot reading a newspaper in a café",
    "a koi pond at night with paper lanterns",
]


async def upscale_all(client: mjasync.Client, out_dir: str) -> mjasync.BatchSummary:
    """Generate :data:`PROMPTS`, press U1-U4 on every grid, download everything."""
    summary = await mjasync.run_batch(client, PROMPTS, out_dir=out_dir, upscale="all")
    for result in summary.results:
        upscaled = [up.task_id for up in result.upscales if up.task_id]
        print(f"{result.prompt!r}: {result.outcome}, grid {result.task_id}, upscales {upscaled}")
    print(f"{len(summary.files)} files in {out_dir}; see {summary.index}")
    return summary


async def main(out_dir: str, simulate: bool) -> None:
    if not simulate:
        async with mjasync.Client() as client:
            await upscale_all(client, out_dir)
        return
    async with (
        FakeMidjourney(job_duration=1.0, progress_steps=4) as fake,
        mjasync.Client(fake.base_url, "sk-test", poll_interval=0.2) as client,
    ):
        await upscale_all(client, out_dir)


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if not a.startswith("--")]
    anyio.run(main, arguments[0] if arguments else "out/upscaled", "--simulate" in sys.argv)
