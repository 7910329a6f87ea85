"""Options of the simulator: server accent, auth, accounts, time scale and fault injection.

Everything here is a frozen value object validated at construction, so a typo in a test fails
before any server starts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

__all__ = [
    "ACCENTS",
    "AUTH_SCHEMES",
    "FEATURES",
    "Accent",
    "AuthScheme",
    "FaultRates",
    "Faults",
    "SimOptions",
]

Accent = Literal["java", "csharp", "relay"]
#: Features an operator can switch off (C) or not sell (new-api): see ``SimOptions.disabled``.
FEATURES = ("video", "upload", "face_swap", "video_swap")
AuthScheme = Literal["any", "bearer", "mj-api-secret", "accent"]
ACCENTS: tuple[str, ...] = get_args(Accent)
AUTH_SCHEMES: tuple[str, ...] = get_args(AuthScheme)


def _check_probability(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a probability between 0 and 1, got {value!r}")


def _check_seconds(name: str, value: float, *, allow_zero: bool = True) -> None:
    ok = isinstance(value, int | float) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class FaultRates:
    """Fault probabilities for one kind of route (submits, or polls: fetch/list/image-seed).

    At most one of the exclusive faults hits a request (one draw decides), so the rates must
    add up to at most 1. ``latency`` is added to every request of the kind, uniformly drawn
    from the ``(low, high)`` range in seconds, before anything else happens.

    Attributes:
        html_502: a front proxy's HTML "502 Bad Gateway" page; the request never arrives.
        rate_limit: HTTP 429 with an empty body and ``Retry-After``; the request never arrives.
        retry_after: the ``Retry-After`` value in whole seconds.
        retry_after_http_date: probability that a 429 states ``Retry-After`` as an HTTP-date
            instead of seconds.
        connection_reset: the TCP connection is reset before the request is handled.
        truncated_json: the request is handled, then the JSON body is cut in half (a submit
            therefore creates its task).
        response_lost: submits only: the task IS created, then the connection is reset
            instead of answering.
        blocked: C's rate limiter blocking the client: HTTP 403 with an empty body
            (trueai-org/midjourney-proxy ``RateLimitingMiddleware.cs:100-145``); the request
            never arrives.
        upstream_error: on the relay accent, new-api's code 5 ("do_request_failed": its
            upstream could not be reached) as HTTP 400; a 502 page on the others.
        latency: ``(low, high)`` seconds added to every request of the kind.
    """

    html_502: float = 0.0
    rate_limit: float = 0.0
    retry_after: int = 1
    retry_after_http_date: float = 0.0
    connection_reset: float = 0.0
    truncated_json: float = 0.0
    response_lost: float = 0.0
    blocked: float = 0.0
    upstream_error: float = 0.0
    latency: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        for name in _EXCLUSIVE:
            _check_probability(name, getattr(self, name))
        _check_probability("retry_after_http_date", self.retry_after_http_date)
        if sum(getattr(self, name) for name in _EXCLUSIVE) > 1.0 + 1e-9:
            raise ValueError("the fault probabilities of one route kind add up to more than 1")
        if not isinstance(self.retry_after, int) or self.retry_after < 0:
            raise ValueError(f"retry_after must be whole seconds >= 0, got {self.retry_after!r}")
        low, high = self.latency
        _check_seconds("latency low", low)
        _check_seconds("latency high", high)
        if high < low:
            raise ValueError(f"latency range is reversed: {self.latency!r}")

    @property
    def any(self) -> bool:
        """``True`` if this kind of route is faulted at all."""
        return self.latency[1] > 0 or any(getattr(self, name) > 0 for name in _EXCLUSIVE)


#: The faults of which at most one hits a request, in the order one draw is matched against.
_EXCLUSIVE: tuple[str, ...] = (
    "html_502",
    "rate_limit",
    "connection_reset",
    "truncated_json",
    "response_lost",
    "blocked",
    "upstream_error",
)


@dataclass(frozen=True, slots=True)
class Faults:
    """Which faults the simulator injects, per route kind. All off by default.

    ``Faults(submit=FaultRates(html_502=0.2), poll=FaultRates(truncated_json=0.1))`` faults
    submits and polls separately; ``Faults.everywhere(rate_limit=0.1)`` uses the same rates for
    both (``response_lost`` only ever applies to submits). Webhook knobs drop or duplicate
    ``notifyHook`` posts.
    """

    submit: FaultRates = field(default_factory=FaultRates)
    poll: FaultRates = field(default_factory=FaultRates)
    webhook_drop: float = 0.0
    webhook_duplicate: float = 0.0

    def __post_init__(self) -> None:
        _check_probability("webhook_drop", self.webhook_drop)
        _check_probability("webhook_duplicate", self.webhook_duplicate)

    @classmethod
    def everywhere(
        cls, *, webhook_drop: float = 0.0, webhook_duplicate: float = 0.0, **rates: Any
    ) -> Faults:
        """The same :class:`FaultRates` (given as keyword arguments) for submits and polls."""
        spec = FaultRates(**rates)
        return cls(
            submit=spec,
            poll=spec,
            webhook_drop=webhook_drop,
            webhook_duplicate=webhook_duplicate,
        )

    def for_kind(self, kind: str) -> FaultRates:
        """The rates for ``"submit"`` or ``"poll"``."""
        return self.submit if kind == "submit" else self.poll


NO_FAULTS = Faults()


@dataclass(frozen=True, slots=True)
class SimOptions:
    """Everything that shapes the simulator's behaviour (see :class:`FakeMidjourney`)."""

    accent: Accent = "csharp"
    api_keys: tuple[str, ...] = ("sk-test",)
    auth: AuthScheme = "any"
    modes: tuple[str, ...] = ("fast", "relax", "turbo")
    core_size: int = 3
    queue_size: int = 10
    job_duration: float = 0.05
    start_delay: float = 0.0
    progress_steps: int = 3
    seed: int = 0
    failure_rate: float = 0.0
    banned_words: tuple[str, ...] = ("nude", "gore")
    remix: bool = False
    list_by_condition: bool = True
    task_timeout: float | None = None
    image_seed_delay: float = 0.0
    relay_blank_status: float = 0.0
    relay_refresh: float = 0.0
    relay_notify_hook: bool = False
    numeric_ids: bool = False
    faults: Faults = NO_FAULTS
    admin_keys: tuple[str, ...] | None = None
    disabled: tuple[str, ...] = ()
    relay_legacy: bool = False
    server_version: str | None = None
    user_core_size: int | None = None
    user_queue_size: int | None = None

    def __post_init__(self) -> None:
        if self.accent not in ACCENTS:
            raise ValueError(f"accent must be one of {', '.join(ACCENTS)}; got {self.accent!r}")
        if self.auth not in AUTH_SCHEMES:
            raise ValueError(f"auth must be one of {', '.join(AUTH_SCHEMES)}; got {self.auth!r}")
        for name in ("core_size", "queue_size", "progress_steps", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        if self.core_size < 1:
            raise ValueError("core_size must be at least 1")
        _check_seconds("job_duration", self.job_duration)
        _check_seconds("start_delay", self.start_delay)
        _check_seconds("image_seed_delay", self.image_seed_delay)
        _check_seconds("relay_blank_status", self.relay_blank_status)
        _check_seconds("relay_refresh", self.relay_refresh)
        if self.relay_refresh and self.accent != "relay":
            raise ValueError("relay_refresh models a relay (new-api): it needs accent='relay'")
        if self.task_timeout is not None:
            _check_seconds("task_timeout", self.task_timeout, allow_zero=False)
        _check_probability("failure_rate", self.failure_rate)
        for mode in self.modes:
            if not mode or not mode.isalnum() or mode != mode.lower():
                raise ValueError(f"a mode is a lower-case word such as 'fast'; got {mode!r}")
        if not isinstance(self.faults, Faults):
            raise TypeError("faults must be a mjasync.testing.Faults")
        unknown = set(self.disabled) - set(FEATURES)
        if unknown:
            raise ValueError(f"disabled takes {', '.join(FEATURES)}; got {sorted(unknown)!r}")
        for name in ("user_core_size", "user_queue_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be an int >= 0 or None, got {value!r}")

    @property
    def version(self) -> str | None:
        """The version the server reports (C's ``/mj/home``, new-api's ``/api/status``)."""
        if self.server_version is not None:
            return self.server_version
        return {"csharp": "v11.10.3", "relay": "v0.9.0"}.get(self.accent)

    def is_admin(self, key: str | None) -> bool:
        """C: whether the caller is an admin user (``None``: every key is)."""
        return self.admin_keys is None or key in self.admin_keys

    @property
    def account_modes(self) -> tuple[str, ...]:
        """Every account: ``fast`` (the unprefixed route's account) plus the listed modes."""
        return tuple(dict.fromkeys(("fast", *self.modes)))

    @property
    def auth_scheme(self) -> str:
        """The effective scheme, with ``"accent"`` resolved to the accent's natural one."""
        if self.auth != "accent":
            return self.auth
        return "relay" if self.accent == "relay" else "mj-api-secret"


def key_tuple(api_keys: str | Iterable[str] | None) -> tuple[str, ...]:
    """Normalise the ``api_keys`` option: a string, an iterable of strings, or None/empty."""
    if api_keys is None:
        return ()
    if isinstance(api_keys, str):
        return (api_keys,) if api_keys else ()
    keys = tuple(api_keys)
    if not all(isinstance(key, str) and key for key in keys):
        raise TypeError("api_keys must be non-empty strings")
    return keys
