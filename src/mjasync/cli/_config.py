"""What every sub-command shares: connection options, the client (or a simulator), errors.

Configuration comes from flags first, then the environment (``MJ_BASE_URL``, ``MJ_API_KEY``,
``MJ_MODE``). Every error a user can cause ends as one line on stderr and an exit code:
1 for failed work, 2 for usage and configuration errors (bad option, no server, refused key).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Literal, TypeVar, cast

import attrs
import click

from .._batch.download import DEFAULT_READ_TIMEOUT
from .._client import Client
from .._errors import AuthenticationError, JournalError, MjError, TransportError
from ..testing import FakeMidjourney
from ._secrets import remember

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
    "image_options",
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

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> Connection:
        """Build from the keyword arguments click passes (and pop them)."""
        base_url = (options.pop("base_url", None) or "").strip() or None
        api_key = (options.pop("api_key", None) or "").strip() or None
        remember([api_key])  # whatever is printed from now on masks it
        mode = str(options.pop("mode", None) or "fast").lower()
        simulate = bool(options.pop("simulate", False))
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
        )

    @property
    def where(self) -> str:
        """A short description of the server for headers and messages."""
        return "the built-in simulator" if self.simulate else (self.base_url or "?")


def connection_options(*, simulate: bool = False, concurrency: bool = False) -> Callable[[F], F]:
    """The shared flags: server, key, mode, auth, poll interval (and --simulate/--concurrency)."""

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
                "--poll-interval",
                type=click.FloatRange(min=0, min_open=True, max=600),
                metavar="S",
                help="Seconds between polls (adapts around it) [default: 2; 0.25 simulated].",
            ),
        ]
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
                    help="Run against a built-in simulated server (no account needed).",
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

    Raises:
        ConfigError: no base URL, or the client refused an option.
    """
    async with contextlib.AsyncExitStack() as stack:
        base_url, api_key = conn.base_url, conn.api_key
        poll = conn.poll_interval
        concurrency = conn.concurrency
        if conn.simulate:
            speed = conn.simulate_speed
            api_key = api_key or SIM_KEY
            fake = FakeMidjourney(
                api_keys=(api_key,),
                job_duration=SIM_JOB_SECONDS / speed,
                start_delay=SIM_START_DELAY / speed,
                progress_steps=4,
                core_size=SIM_CORE_SIZE,
                queue_size=SIM_QUEUE_SIZE,
                # A fresh seed per run: task ids from an earlier simulated run in the same
                # journal must not collide with this run's ids.
                seed=random.SystemRandom().randrange(2**31),
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


def _sole(error: BaseException) -> BaseException:
    """The one exception inside nested single-member groups (task groups wrap what they see)."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Turn the library's errors into one-line CLI errors with the right exit code."""
    try:
        yield
    except BaseExceptionGroup as group:
        error = _sole(group)
        if error is group or not isinstance(error, Exception):
            raise
        with translate_errors():
            raise error from None
    except click.ClickException:
        raise
    except AuthenticationError as exc:
        raise ConfigError(
            f"the server refused the API key ({exc.description}); "
            "check --api-key / MJ_API_KEY and --auth (`mjasync doctor` tells which it takes)"
        ) from None
    except JournalError as exc:
        raise ConfigError(str(exc)) from None
    except TransportError as exc:
        raise CliError(f"cannot reach the server: {exc}") from None
    except MjError as exc:
        raise CliError(str(exc)) from None
    except (ValueError, TypeError, ImportError) as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        raise ConfigError(f"{exc.strerror or exc}{where}") from None
