"""The click group every sub-command hangs off."""

from __future__ import annotations

import click

__all__ = ["app"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mjasync", prog_name="mjasync")
def app() -> None:
    """Midjourney task API client: batch generation, single jobs and a local simulator."""


def _register() -> None:
    # Sub-command modules import click themselves; importing them here keeps `app` complete.
    from . import _simulate

    app.add_command(_simulate.simulate)


_register()
