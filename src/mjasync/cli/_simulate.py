"""``mjasync simulate``: run the fake midjourney-proxy server standalone (placeholder)."""

from __future__ import annotations

import click

__all__ = ["simulate"]


@click.command()
def simulate() -> None:
    """Run the local midjourney-proxy simulator."""
    raise click.ClickException("the simulator is not built yet")
