"""The click group every sub-command hangs off."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from ._secrets import redact, remember, secrets_in

__all__ = ["app"]

# click 8.2+ raises this for a bare group call (and prints the help); older clicks exit 0.
_NO_ARGS_IS_HELP: tuple[type[click.ClickException], ...] = tuple(
    kind
    for kind in (getattr(click.exceptions, "NoArgsIsHelpError", None),)
    if isinstance(kind, type) and issubclass(kind, click.ClickException)
)


class _Group(click.Group):
    """A group whose errors are one line on stderr: ``mjasync batch: <what is wrong>``.

    Usage and configuration errors (exit code 2) end with where the help is.

    Click's own format (usage, a hint, a blank line, then the error) is four lines; in a
    script's log the one line that matters is easier to find alone. ``--help`` is unchanged.
    """

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> NoReturn:
        # Known before parsing, so even a usage error quoting an argument cannot show a key.
        remember(secrets_in(list(args) if args is not None else sys.argv[1:], os.environ))
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:
            if isinstance(exc, _NO_ARGS_IS_HELP):
                exc.show()  # a bare `mjasync`: the help is the useful answer
                sys.exit(exc.exit_code)
            ctx = getattr(exc, "ctx", None)
            where = ctx.command_path if ctx is not None else (prog_name or "mjasync")
            message = redact(" ".join(exc.format_message().split()))
            if exc.exit_code == 2:  # a usage or configuration error: the help says how
                message += f" (see '{where} --help')"
            click.echo(f"{where}: {message}", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("mjasync: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mjasync", prog_name="mjasync")
def app() -> None:
    """Midjourney task API client: batch generation, single jobs and a local simulator."""


def _register() -> None:
    # Sub-command modules import click themselves; importing them here keeps `app` complete.
    from . import _batch_cmd, _commands, _doctor, _simulate

    app.add_command(_simulate.simulate)
    app.add_command(_batch_cmd.batch)
    app.add_command(_commands.imagine)
    app.add_command(_commands.describe)
    app.add_command(_commands.video)
    app.add_command(_commands.fetch)
    app.add_command(_commands.action)
    app.add_command(_doctor.doctor)


_register()
