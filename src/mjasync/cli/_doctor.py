"""``mjasync doctor``: which server answers at the base URL, and how to talk to it."""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
from typing import Any

import click

from .._wire.endpoints import ENDPOINTS
from .._wire.probe import ServerProfile
from ._config import EXIT_INTERRUPTED, Connection, connect, connection_options, translate_errors
from ._secrets import redact

__all__ = ["doctor", "render_profile"]

_STATE_TEXT = {
    "available": "yes",
    "absent": "no",
    "disabled": "off (switched off, or no channel sells it)",
    "unknown": "unknown",
}


def render_profile(profile: ServerProfile, *, show_notes: bool = False) -> list[str]:
    """The profile as lines of text: verdict, arguments, endpoints, warnings."""
    lines = [f"server: {profile.base_url}"]
    version = f" {profile.version}" if profile.version else ""
    lines.append(f"family: {profile.family_name}{version}")
    key = {True: "accepted", False: "REFUSED", None: "not verified"}[profile.key_accepted]
    lines.append(f"api key: {key}")
    lines.append(f"auth: {profile.auth}")
    modes = ", ".join(profile.modes) if profile.modes else "none"
    lines.append(f"mode: {profile.mode or 'none'} (mode prefixes that work: {modes})")
    lines.append("")
    lines.append("use it from Python:")
    lines.append(f"    {profile.client_code()}")
    lines.append("or from the command line:")
    lines.append(f"    mjasync <command> {shlex.join(profile.cli_flags())}")
    lines.append("")
    lines.append("endpoints:")
    width = max(len(endpoint.name) for endpoint in ENDPOINTS)
    for endpoint in ENDPOINTS:
        state = profile.endpoints.get(endpoint.name, "unknown")
        lines.append(f"    {endpoint.name:<{width}}  {_STATE_TEXT[state]}")
    if profile.warnings:
        lines.append("")
        lines.append("warnings:")
        lines.extend(f"    - {warning}" for warning in profile.warnings)
    if show_notes:
        lines.append("")
        lines.append("requests sent (none creates a task or costs anything):")
        lines.extend(f"    {note}" for note in profile.notes)
    return lines


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the profile as JSON.")
@click.option("--verbose", "-v", is_flag=True, help="Also list the requests sent and answers.")
@connection_options(simulate=True)
def doctor(as_json: bool, verbose: bool, **options: Any) -> None:
    """Find out which server answers at --base-url and how to talk to it.

    Sends a few cheap requests that create nothing and cost nothing (status pages, a fetch
    of a task id that cannot exist, submits refused before any job is made) and prints the
    server family (the Java proxy, the C# fork or a new-api relay), whether the key works,
    the --auth and --mode to use, and which endpoints exist.
    """
    conn = Connection.from_options(options)

    async def main() -> ServerProfile:
        async with connect(conn) as client:
            return await client.probe()

    try:
        with translate_errors():
            profile = asyncio.run(main())
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if as_json:
        payload = {
            "base_url": profile.base_url,
            "family": profile.family,
            "version": profile.version,
            "key_accepted": profile.key_accepted,
            "client_arguments": profile.client_arguments(),
            "cli_flags": profile.cli_flags(),
            "modes": list(profile.modes),
            "endpoints": dict(profile.endpoints),
            "warnings": list(profile.warnings),
            "notes": list(profile.notes),
        }
        click.echo(redact(json.dumps(payload, indent=2, ensure_ascii=False)))
        return
    for line in render_profile(profile, show_notes=verbose):
        click.echo(redact(line))
