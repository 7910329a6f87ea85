"""``mjasync simulate``: run the fake midjourney-proxy server standalone until interrupted.

The first line on stdout is the base URL (flushed at once), so a parent process can start
``mjasync simulate --port 0`` and read where to connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import cast

import click

from ..testing import FakeMidjourney, FaultRates, Faults
from ..testing._sim_config import FEATURES, Accent, AuthScheme

__all__ = ["simulate"]


def _latency(value: str | None) -> tuple[float, float]:
    if not value:
        return (0.0, 0.0)
    low, _, high = value.partition(":")
    try:
        return (float(low), float(high or low))
    except ValueError:
        raise click.BadParameter("use seconds as LOW:HIGH, e.g. 0.05:0.2") from None


def _build_faults(
    *,
    on: str,
    html_502: float,
    rate_limit: float,
    retry_after: int,
    retry_after_http_date: float,
    reset: float,
    truncate: float,
    lost: float,
    latency: str | None,
    webhook_drop: float,
    webhook_duplicate: float,
) -> Faults:
    try:
        rates = FaultRates(
            html_502=html_502,
            rate_limit=rate_limit,
            retry_after=retry_after,
            retry_after_http_date=retry_after_http_date,
            connection_reset=reset,
            truncated_json=truncate,
            response_lost=lost,
            latency=_latency(latency),
        )
        none = FaultRates()
        return Faults(
            submit=rates if on in ("submit", "both") else none,
            poll=rates if on in ("poll", "both") else none,
            webhook_drop=webhook_drop,
            webhook_duplicate=webhook_duplicate,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


async def _serve(fake: FakeMidjourney) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    async with fake:
        click.echo(fake.base_url)
        sys.stdout.flush()
        options = fake.options
        keys = ", ".join(options.api_keys) if options.api_keys else "none (auth off)"
        click.echo(
            f"mjasync simulator: accent={options.accent} modes={','.join(options.modes)} "
            f"core_size={options.core_size} queue_size={options.queue_size} "
            f"job_duration={options.job_duration}s keys={keys}; Ctrl-C stops it",
            err=True,
        )
        await stop.wait()


PROBABILITY = click.FloatRange(0.0, 1.0)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8080, show_default=True, help="Port; 0 picks a free one.")
@click.option(
    "--accent",
    type=click.Choice(["java", "csharp", "relay"]),
    default="csharp",
    show_default=True,
    help="Which server family to imitate.",
)
@click.option(
    "--api-key",
    "api_keys",
    multiple=True,
    help="Accepted key (repeatable). Default: sk-test.",
)
@click.option("--no-auth", is_flag=True, help="Accept requests without any key.")
@click.option(
    "--auth",
    type=click.Choice(["any", "bearer", "mj-api-secret", "accent"]),
    default="any",
    show_default=True,
    help="Which header carries the key ('accent': the accent's own rule).",
)
@click.option(
    "--mode",
    "modes",
    multiple=True,
    help="Mode prefix served, each its own account (repeatable). Default: fast, relax, turbo.",
)
@click.option("--core-size", default=3, show_default=True, help="Jobs running at once per mode.")
@click.option("--queue-size", default=10, show_default=True, help="Jobs waiting per mode.")
@click.option("--job-duration", default=5.0, show_default=True, help="Seconds a job runs.")
@click.option("--start-delay", default=0.5, show_default=True, help="Seconds SUBMITTED lasts.")
@click.option("--progress-steps", default=3, show_default=True, help="Progress updates per job.")
@click.option("--seed", default=0, show_default=True, help="Seed for every random choice.")
@click.option("--failure-rate", type=PROBABILITY, default=0.0, help="Share of jobs that fail.")
@click.option(
    "--banned-word",
    "banned_words",
    multiple=True,
    help="Banned word (repeatable). Default: nude, gore.",
)
@click.option("--remix", is_flag=True, help="Reroll/variation/pan actions wait in MODAL.")
@click.option(
    "--no-list-by-condition", is_flag=True, help="404 on list-by-condition like old servers."
)
@click.option("--task-timeout", type=float, default=None, help="Fail jobs running longer.")
@click.option(
    "--relay-blank-status", default=0.0, help="Seconds a relay shows status '' after submit."
)
@click.option(
    "--relay-refresh",
    default=0.0,
    help="Seconds between a relay's refreshes from upstream (new-api: 15); 0 answers live.",
)
@click.option(
    "--admin-key",
    "admin_keys",
    multiple=True,
    help="C: a key allowed to cancel (repeatable). Default: every key.",
)
@click.option(
    "--disable",
    "disabled",
    type=click.Choice(FEATURES),
    multiple=True,
    help="A feature the operator turned off or sells no channel for (repeatable).",
)
@click.option("--relay-legacy", is_flag=True, help="A new-api build without video or edits.")
@click.option("--server-version", default=None, help="The version the server reports.")
@click.option("--user-core-size", type=int, default=None, help="C: running jobs per user.")
@click.option("--user-queue-size", type=int, default=None, help="C: queued jobs per user.")
@click.option("--numeric-ids", is_flag=True, help="Send task ids as JSON numbers.")
@click.option(
    "--fault-on",
    type=click.Choice(["submit", "poll", "both"]),
    default="both",
    show_default=True,
    help="Which route kinds the --fault-* options hit.",
)
@click.option("--fault-502", type=PROBABILITY, default=0.0, help="Probability of an HTML 502.")
@click.option("--fault-429", type=PROBABILITY, default=0.0, help="Probability of a 429.")
@click.option("--retry-after", default=1, show_default=True, help="Retry-After seconds on 429.")
@click.option(
    "--retry-after-date",
    type=PROBABILITY,
    default=0.0,
    help="Share of 429s that give Retry-After as an HTTP-date.",
)
@click.option("--fault-reset", type=PROBABILITY, default=0.0, help="Probability of a TCP reset.")
@click.option(
    "--fault-truncate", type=PROBABILITY, default=0.0, help="Probability of a cut JSON body."
)
@click.option(
    "--fault-lost",
    type=PROBABILITY,
    default=0.0,
    help="Probability that a submit is accepted but its response lost.",
)
@click.option("--fault-latency", metavar="LOW:HIGH", help="Seconds of latency added.")
@click.option("--webhook-drop", type=PROBABILITY, default=0.0, help="Share of hooks dropped.")
@click.option(
    "--webhook-duplicate", type=PROBABILITY, default=0.0, help="Share of hooks sent twice."
)
@click.option(
    "--state-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Keep the tasks in this file (JSON lines) and take them back at the next start.",
)
def simulate(
    *,
    host: str,
    port: int,
    accent: str,
    api_keys: tuple[str, ...],
    no_auth: bool,
    auth: str,
    modes: tuple[str, ...],
    core_size: int,
    queue_size: int,
    job_duration: float,
    start_delay: float,
    progress_steps: int,
    seed: int,
    failure_rate: float,
    banned_words: tuple[str, ...],
    remix: bool,
    no_list_by_condition: bool,
    task_timeout: float | None,
    relay_blank_status: float,
    relay_refresh: float,
    admin_keys: tuple[str, ...],
    disabled: tuple[str, ...],
    relay_legacy: bool,
    server_version: str | None,
    user_core_size: int | None,
    user_queue_size: int | None,
    numeric_ids: bool,
    fault_on: str,
    fault_502: float,
    fault_429: float,
    retry_after: int,
    retry_after_date: float,
    fault_reset: float,
    fault_truncate: float,
    fault_lost: float,
    fault_latency: str | None,
    webhook_drop: float,
    webhook_duplicate: float,
    state_file: Path | None,
) -> None:
    """Run the local midjourney-proxy simulator; prints its base URL first.

    Jobs take --job-duration seconds (default 5, a slowed-down real server); prompts with
    --fail, --stall or --slow fail, freeze or take ten times as long. Stats are served at
    GET {base}/_sim/stats.
    """
    faults = _build_faults(
        on=fault_on,
        html_502=fault_502,
        rate_limit=fault_429,
        retry_after=retry_after,
        retry_after_http_date=retry_after_date,
        reset=fault_reset,
        truncate=fault_truncate,
        lost=fault_lost,
        latency=fault_latency,
        webhook_drop=webhook_drop,
        webhook_duplicate=webhook_duplicate,
    )
    try:
        fake = FakeMidjourney(
            host=host,
            port=port,
            accent=cast(Accent, accent),  # click.Choice guarantees the literal
            api_keys=() if no_auth else (api_keys or ("sk-test",)),
            auth=cast(AuthScheme, auth),
            modes=modes or ("fast", "relax", "turbo"),
            core_size=core_size,
            queue_size=queue_size,
            job_duration=job_duration,
            start_delay=start_delay,
            progress_steps=progress_steps,
            seed=seed,
            failure_rate=failure_rate,
            banned_words=banned_words or ("nude", "gore"),
            remix=remix,
            list_by_condition=not no_list_by_condition,
            task_timeout=task_timeout,
            relay_blank_status=relay_blank_status,
            relay_refresh=relay_refresh,
            admin_keys=admin_keys or None,
            disabled=disabled,
            relay_legacy=relay_legacy,
            server_version=server_version,
            user_core_size=user_core_size,
            user_queue_size=user_queue_size,
            numeric_ids=numeric_ids,
            faults=faults,
            state_file=state_file,
        )
    except (TypeError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    try:
        asyncio.run(_serve(fake))
    except KeyboardInterrupt:
        pass
    except OSError as exc:  # e.g. the port is taken
        raise click.ClickException(f"cannot serve on {host}:{port}: {exc}") from None
