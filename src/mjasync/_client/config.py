"""The client's settings: defaults from the environment, checks, and conflicting arguments.

Everything here runs in ``Client.__init__`` before any I/O, so a typo fails at construction
with a message that says how to fix it. Pairs of arguments that would silently override each
other (``concurrency`` / ``limiter``, ``poll_interval`` / ``poll_settings``, ``max_retries`` /
``retry``) raise ``TypeError`` naming both.
"""

from __future__ import annotations

import os
from typing import Literal, Protocol

import aiohttp
import attrs

from .._jobs.engine import JobEngine
from .._jobs.limiter import Limiter, LocalLimiter
from .._jobs.pacing import PollSettings
from .._validation import check_seconds
from .._wire.modes import check_mode
from .._wire.retry import RetryPolicy

__all__ = ["DEFAULT", "ClientConfig", "Default", "PushSource", "env"]


class Default:
    """Marks "use the client's mode" where ``None`` already means "no mode segment"."""

    def __repr__(self) -> str:
        return "<client default>"


DEFAULT = Default()

#: The documented defaults of the arguments that may conflict (``None`` means "not given").
DEFAULT_CONCURRENCY = 3
DEFAULT_POLL_INTERVAL = 2.0
DEFAULT_STALL_TIMEOUT = 900.0
DEFAULT_MAX_RETRIES = 3


class PushSource(Protocol):
    """What the client needs from a push receiver (``WebhookReceiver`` implements it)."""

    @property
    def notify_url(self) -> str:
        """The URL servers should POST task changes to (carries the receiver's secret)."""

    async def attach(self, engine: JobEngine, /) -> None:
        """Start delivering pushed task payloads to ``engine.observe(payload, "push")``."""

    async def detach(self, engine: JobEngine, /) -> None:
        """Stop delivering to ``engine``."""


def env(name: str) -> str | None:
    """An environment variable's value, stripped; ``None`` when unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or None


@attrs.frozen
class ClientConfig:
    """The checked settings a :class:`Client` is built from."""

    base_url: str
    api_key: str | None
    mode: str | None
    limiter: Limiter
    retry: RetryPolicy
    poll: PollSettings
    timeout: float
    image_seed_timeout: float
    max_image_bytes: int
    list_batch_size: int

    @classmethod
    def build(
        cls,
        *,
        base_url: str | None,
        api_key: str | None,
        mode: str | Default | None,
        concurrency: int | Literal["auto"] | None,
        limiter: Limiter | None,
        poll_interval: float | None,
        stall_timeout: float | None,
        poll_settings: PollSettings | None,
        max_retries: int | None,
        retry: RetryPolicy | None,
        timeout: float,
        image_seed_timeout: float,
        max_image_bytes: int,
        list_batch_size: int,
        session: aiohttp.ClientSession | None,
        webhook: object,
    ) -> ClientConfig:
        """Check every argument (see :class:`mjasync.Client` for their meaning).

        Raises:
            TypeError: a wrong type, or two arguments that would override each other.
            ValueError: a bad value, or no base URL at all.
        """
        base_url = base_url if base_url is not None else env("MJ_BASE_URL")
        if base_url is None:
            raise ValueError("no base URL: pass Client(base_url='https://...') or set MJ_BASE_URL")
        api_key = api_key if api_key is not None else env("MJ_API_KEY")
        if isinstance(mode, Default):
            env_mode = env("MJ_MODE")
            mode = env_mode if env_mode is not None else "fast"
        # Option objects are checked now, not when the first request trips over them.
        _check_option("session", session, aiohttp.ClientSession)
        _check_option("retry", retry, RetryPolicy)
        _check_option("limiter", limiter, Limiter)
        _check_option("poll_settings", poll_settings, PollSettings)
        if webhook is not None and not _is_push_source(webhook):
            raise TypeError(
                "webhook must be a push source such as mjasync.WebhookReceiver, not "
                f"{type(webhook).__name__}"
            )
        _conflict(
            "concurrency", concurrency, "limiter", limiter, "give the limiter its concurrency"
        )
        _conflict(
            "poll_interval", poll_interval, "poll_settings", poll_settings, "set its interval="
        )
        _conflict(
            "stall_timeout", stall_timeout, "poll_settings", poll_settings, "set its stall_timeout="
        )
        _conflict("max_retries", max_retries, "retry", retry, "set its max_retries=")
        if poll_settings is None:
            interval = check_seconds(
                DEFAULT_POLL_INTERVAL if poll_interval is None else poll_interval, "poll_interval"
            )
            stall = check_seconds(
                DEFAULT_STALL_TIMEOUT if stall_timeout is None else stall_timeout,
                "stall_timeout",
                allow_inf=True,
            )
            poll_settings = PollSettings.around(interval, stall)
        if retry is None:
            retry = RetryPolicy(
                max_retries=DEFAULT_MAX_RETRIES if max_retries is None else max_retries
            )
        if limiter is None:
            limiter = LocalLimiter(DEFAULT_CONCURRENCY if concurrency is None else concurrency)
        if not _is_int(max_image_bytes) or max_image_bytes <= 0:
            raise ValueError(f"max_image_bytes must be a positive int, not {max_image_bytes!r}")
        if not _is_int(list_batch_size) or not 1 <= list_batch_size <= 1000:
            raise ValueError(f"list_batch_size must be within 1..1000, not {list_batch_size!r}")
        return cls(
            base_url=base_url,
            api_key=api_key,
            mode=check_mode(mode),
            limiter=limiter,
            retry=retry,
            poll=poll_settings,
            timeout=check_seconds(timeout, "timeout"),
            image_seed_timeout=check_seconds(image_seed_timeout, "image_seed_timeout"),
            max_image_bytes=max_image_bytes,
            list_batch_size=list_batch_size,
        )


def _conflict(name: str, value: object, other: str, other_value: object, fix: str) -> None:
    if value is not None and other_value is not None:
        raise TypeError(f"pass {name}= or {other}=, not both ({fix} instead)")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_option(name: str, value: object, kind: type) -> None:
    if value is not None and not isinstance(value, kind):
        raise TypeError(f"{name} must be a {kind.__name__} or None, not {type(value).__name__}")


def _is_push_source(value: object) -> bool:
    # Looked up on the type: reading `notify_url` on an unstarted receiver would raise.
    kind = type(value)
    return (
        hasattr(kind, "notify_url")
        and callable(getattr(kind, "attach", None))
        and callable(getattr(kind, "detach", None))
    )
