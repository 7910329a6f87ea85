"""What every sub-command shares: connection options, the client (or a simulator), errors.

Configuration comes from flags first, then the environment (``MJ_BASE_URL``, ``MJ_API_KEY``,
``MJ_MODE``). Every error a user can cause ends as one line on stderr and an exit code:
1 for failed work, 2 for usage and configuration errors (bad option, no server, refused key).
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

import anyio.to_thread
import attrs
import click

from .._batch.download import DEFAULT_READ_TIMEOUT
from .._batch.lock import BatchLock
from .._client import Client
from .._errors import (
    APIError,
    AuthenticationError,
    JournalError,
    MjError,
    TaskError,
    TaskFailedError,
    TransportError,
)
from .._wire.messages import in_english
from ..testing import FakeMidjourney
from ._secrets import redact, remember

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "CliError",
    "ConfigError",
    "Connection",
    "ImageOptions",
    "connect",
    "connection_options",
    "default_simulator_state",
    "describe_error",
    "image_options",
    "server_text",
    "translate_errors",
]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

#: The simulator ``--simulate`` starts: slow enough to watch, fast enough not to bore.
SIM_JOB_SECONDS = 2.0
SIM_START_DELAY = 0.4
SIM_CORE_SIZE = 6
SIM_QUEUE_SIZE = 20
SIM_KEY = "sk-mjasync-simulator"
#: Where the single-job commands keep the simulated account between commands.
SIM_STATE_ENV = "MJASYNC_SIMULATOR_STATE"

F = TypeVar("F", bound=Callable[..., Any])


class CliError(click.ClickException):
    """One line on stderr and exit code 1: the work failed."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        # Remembered so the one-line message can name the sub-command (`mjasync batch: ...`).
        self.ctx = click.get_current_context(silent=True)


class ConfigError(CliError):
    """One line on stderr and exit code 2: a usage or configuration error."""

    exit_code = EXIT_USAGE


class ConcurrencyType(click.ParamType[int | Literal["auto"]]):
    """``--concurrency``: a positive number of jobs, or ``auto``."""

    name = "N|auto"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> int | Literal["auto"]:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        text = str(value).strip().lower()
        if text == "auto":
            return "auto"
        if text.isdigit() and 1 <= int(text) <= 256:
            return int(text)
        return self.fail(f"{value!r} is not a number of jobs (1-256) or 'auto'", param, ctx)


@attrs.frozen(slots=True)
class Connection:
    """Where and how to connect, as the flags and environment said."""

    base_url: str | None = None
    api_key: str | None = None
    mode: str | None = "fast"
    auth: Literal["bearer", "mj-api-secret"] = "bearer"
    poll_interval: float | None = None
    concurrency: int | Literal["auto"] | None = None
    simulate: bool = False
    simulate_speed: float = 1.0
    #: the simulator's state file (its tasks outlive the command); ``None``: in memory only
    simulate_state: Path | None = None
    verbose: bool = False

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> Connection:
        """Build from the keyword arguments click passes (and pop them)."""
        base_url = (options.pop("base_url", None) or "").strip() or None
        api_key = (options.pop("api_key", None) or "").strip() or None
        remember([api_key])  # whatever is printed from now on masks it
        mode = str(options.pop("mode", None) or "fast").lower()
        simulate = bool(options.pop("simulate", False))
        verbose = bool(options.pop("verbose", False))
        ctx = click.get_current_context()
        source = ctx.get_parameter_source("base_url")
        if simulate and base_url and source is click.core.ParameterSource.COMMANDLINE:
            raise click.UsageError("--simulate and --base-url exclude each other", ctx)
        return cls(
            base_url=None if simulate else base_url,
            api_key=api_key,
            mode=None if mode == "none" else mode,
            auth=cast(Literal["bearer", "mj-api-secret"], options.pop("auth", "bearer")),
            poll_interval=options.pop("poll_interval", None),
            concurrency=options.pop("concurrency", None),
            simulate=simulate,
            simulate_speed=float(options.pop("simulate_speed", 1.0) or 1.0),
            simulate_state=default_simulator_state() if simulate else None,
            verbose=verbose,
        )

    @property
    def where(self) -> str:
        """A short description of the server for headers and messages."""
        return "the built-in simulator" if self.simulate else (self.base_url or "?")


def default_simulator_state(environ: Mapping[str, str] | None = None) -> Path:
    """Where ``--simulate`` keeps the simulated account of the single-job commands.

    ``$MJASYNC_SIMULATOR_STATE`` if set, else ``mjasync/simulator.jsonl`` in the user's state
    directory (``$XDG_STATE_HOME``, ``~/.local/state``; ``%LOCALAPPDATA%`` on Windows).
    """
    env = os.environ if environ is None else environ
    explicit = env.get(SIM_STATE_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    base = env.get("XDG_STATE_HOME", "").strip()
    if not base and os.name == "nt":
        base = env.get("LOCALAPPDATA", "").strip()
    root = Path(base) if base else Path.home() / ".local" / "state"
    return root / "mjasync" / "simulator.jsonl"


def connection_options(
    *, simulate: bool = False, concurrency: bool = False, poll: bool = True
) -> Callable[[F], F]:
    """The shared flags: server, key, mode, auth, poll interval, --verbose (and --simulate,
    --concurrency). ``poll=False`` for commands that never wait for a job."""

    def decorate(func: F) -> F:
        options = [
            click.option(
                "--base-url",
                envvar="MJ_BASE_URL",
                metavar="URL",
                help="Server root, e.g. https://relay.example.com [env: MJ_BASE_URL].",
            ),
            click.option(
                "--api-key",
                envvar="MJ_API_KEY",
                metavar="KEY",
                help="API key [env: MJ_API_KEY].",
            ),
            click.option(
                "--mode",
                envvar="MJ_MODE",
                type=click.Choice(["fast", "relax", "turbo", "none"], case_sensitive=False),
                default="fast",
                show_default=True,
                help="Mode segment of the URL; 'none' for servers without one [env: MJ_MODE].",
            ),
            click.option(
                "--auth",
                type=click.Choice(["bearer", "mj-api-secret"]),
                default="bearer",
                show_default=True,
                help="How the key is sent: Authorization: Bearer (relays) or mj-api-secret.",
            ),
            click.option(
                "-v",
                "--verbose",
                is_flag=True,
                help="Show the server's own words (often Chinese) beside the English, and "
                "where each error came from.",
            ),
        ]
        # Commands that never wait still accept it (scripts pass one set of flags to every
        # command), without advertising a setting they do not use.
        options.append(
            click.option(
                "--poll-interval",
                type=click.FloatRange(min=0, min_open=True, max=600),
                metavar="S",
                hidden=not poll,
                help="Seconds between polls (adapts around it) [default: 2; 0.25 simulated].",
            )
        )
        if concurrency:
            options.append(
                click.option(
                    "--concurrency",
                    type=ConcurrencyType(),
                    help="Jobs in flight on the account, or 'auto' [default: 3; 6 simulated].",
                )
            )
        if simulate:
            options += [
                click.option(
                    "--simulate",
                    is_flag=True,
                    help="Run against a built-in simulated server (no account needed). Its "
                    "tasks are kept between commands (batch: beside the journal; others: in "
                    f"${SIM_STATE_ENV} or ~/.local/state/mjasync/simulator.jsonl).",
                ),
                # Tests run the simulated server faster; not worth a line of --help.
                click.option("--simulate-speed", type=click.FloatRange(min=0.01), hidden=True),
            ]
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


@attrs.frozen(slots=True)
class ImageOptions:
    """How images are downloaded, as the flags said."""

    allow_private_hosts: bool = False
    read_timeout: float = DEFAULT_READ_TIMEOUT

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> ImageOptions:
        """Build from the keyword arguments click passes (and pop them)."""
        return cls(
            allow_private_hosts=bool(options.pop("allow_private_image_hosts", False)),
            read_timeout=float(options.pop("image_read_timeout", None) or DEFAULT_READ_TIMEOUT),
        )


def image_options(func: F) -> F:
    """The download flags: --allow-private-image-hosts and --image-read-timeout."""
    options = [
        click.option(
            "--allow-private-image-hosts",
            is_flag=True,
            help="Also download images from loopback, private and link-local addresses "
            "(by default only public hosts and the API server itself).",
        ),
        click.option(
            "--image-read-timeout",
            type=click.FloatRange(min=0, min_open=True, max=3600),
            metavar="S",
            help=f"Seconds an image download may go without data [default: "
            f"{DEFAULT_READ_TIMEOUT:g}].",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@contextlib.asynccontextmanager
async def connect(conn: Connection) -> AsyncIterator[Client]:
    """An open client for ``conn``: a real server, or a simulator started for the occasion.

    The simulator keeps its tasks in ``conn.simulate_state`` (locked while the command runs),
    so what one command submitted is still there for the next: a resumed batch, or an
    ``action`` on the task an earlier ``imagine`` made.

    Raises:
        ConfigError: no base URL, or the client refused an option.
        JournalLockedError: another command is using the simulator's state file.
    """
    async with contextlib.AsyncExitStack() as stack:
        base_url, api_key = conn.base_url, conn.api_key
        poll = conn.poll_interval
        concurrency = conn.concurrency
        if conn.simulate:
            state = conn.simulate_state
            if state is not None:
                lock = BatchLock(
                    state.with_name(state.name + ".lock"),
                    f"the simulator's state {str(state)!r}",
                    holder_kind="another mjasync command",
                )
                stack.callback(lock.release)  # before acquiring: see Batch._lock
                await anyio.to_thread.run_sync(_locked, lock)
            speed = conn.simulate_speed
            api_key = api_key or SIM_KEY
            fake = FakeMidjourney(
                api_keys=(api_key,),
                job_duration=SIM_JOB_SECONDS / speed,
                start_delay=SIM_START_DELAY / speed,
                progress_steps=4,
                core_size=SIM_CORE_SIZE,
                queue_size=SIM_QUEUE_SIZE,
                # A fresh seed per run: ids from an earlier run in the same journal must not
                # collide with this run's (restored tasks are skipped over as well).
                seed=random.SystemRandom().randrange(2**31),
                state_file=state,
            )
            await stack.enter_async_context(fake)
            base_url = fake.base_url
            poll = poll or max(0.02, 0.25 / speed)
            concurrency = concurrency or SIM_CORE_SIZE
        if not base_url:
            raise ConfigError(
                "no server: pass --base-url URL or set MJ_BASE_URL (or try --simulate)"
            )
        try:
            client = Client(
                base_url,
                api_key,
                mode=conn.mode,
                auth=conn.auth,
                concurrency=concurrency or 3,
                poll_interval=poll or 2.0,
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(str(exc)) from None
        yield await stack.enter_async_context(client)


def _locked(lock: BatchLock) -> None:
    lock.path.parent.mkdir(parents=True, exist_ok=True)
    lock.acquire()


def server_text(text: str | None, verbose: bool) -> str:
    """A server's text for the screen: English, plus the original words when ``verbose``."""
    if not text:
        return ""
    english = in_english(text)
    if verbose and english != text:
        return f"{english} (server said {text!r})"
    return english


def describe_error(exc: MjError, verbose: bool = False) -> str:
    """One line for a library error: the English message; everything with ``verbose``."""
    if verbose:
        text = str(exc)
        if isinstance(exc, TaskFailedError) and exc.fail_reason and exc.fail_reason not in text:
            text += f" (server said {exc.fail_reason!r})"
        return text
    if isinstance(exc, APIError):
        return exc.message
    if isinstance(exc, TaskError):
        return f"task {exc.task_id}: {exc.message}"
    return str(exc)


def _sole(error: BaseException) -> BaseException:
    """The one exception inside nested single-member groups (task groups wrap what they see)."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


@contextlib.contextmanager
def translate_errors(verbose: bool = False) -> Iterator[None]:
    """Turn the library's errors into one-line CLI errors with the right exit code.

    The line is in English; ``verbose`` adds the server's own words and the request.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        error = _sole(group)
        if error is group or not isinstance(error, Exception):
            raise
        with translate_errors(verbose):
            raise error from None
    except click.ClickException:
        raise
    except AuthenticationError as exc:
        raise ConfigError(
            f"the server refused the API key ({describe_error(exc, verbose)}); "
            "check --api-key / MJ_API_KEY and --auth (`mjasync doctor` tells which it takes)"
        ) from None
    except JournalError as exc:
        raise ConfigError(str(exc)) from None
    except TransportError as exc:
        raise CliError(f"cannot reach the server: {exc}") from None
    except MjError as exc:
        raise CliError(redact(describe_error(exc, verbose))) from None
    except (ValueError, TypeError, ImportError) as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        raise ConfigError(f"{exc.strerror or exc}{where}") from None
