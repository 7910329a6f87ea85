"""Fault injection: what a flaky network, a front proxy or a rate limiter does to requests.

Faults are drawn from their own seeded ``random.Random``, so a seeded run injects the same
faults into the same sequence of requests. Faults that happen "in front of" the server (502,
429, reset) stop the request before it is handled; truncation and a lost response happen
after it was handled, so a submit hit by them has created its task.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import socket
import struct
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from aiohttp import web

from ._sim_config import NO_FAULTS, FaultRates, Faults
from ._sim_stats import Counters

__all__ = ["FaultInjector", "reset_connection"]

_BAD_GATEWAY = """<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>nginx</center>
</body>
</html>
"""
_EXCLUSIVE = (
    "html_502",
    "rate_limit",
    "connection_reset",
    "truncated_json",
    "response_lost",
    "blocked",
    "upstream_error",
)
_AFTER = frozenset({"truncated_json", "response_lost"})


def reset_connection(request: web.BaseRequest) -> None:
    """Abort the request's TCP connection with an RST (the client sees ECONNRESET)."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            # Linger 0 turns close() into a reset instead of an orderly FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class FaultInjector:
    """Decides, per request, whether and how to misbehave; counts what it did."""

    def __init__(
        self, faults: Faults, seed: int, counters: Counters, accent: str = "csharp"
    ) -> None:
        self.faults = faults
        self.accent = accent
        self.counters = counters
        self.rng = random.Random(f"{seed}:faults")

    @property
    def enabled(self) -> bool:
        """``True`` unless every fault is off."""
        return self.faults != NO_FAULTS

    async def before(
        self, request: web.BaseRequest, kind: str
    ) -> tuple[web.StreamResponse | None, str | None]:
        """Apply latency and the "in front of the server" faults.

        Returns ``(response, None)`` when the request must not be handled, else
        ``(None, pending)`` where ``pending`` names a fault for :meth:`after` (or is ``None``).
        """
        rates = self.faults.for_kind(kind)
        if not rates.any:
            return None, None
        low, high = rates.latency
        if high > 0:
            self.counters.fault(kind, "latency")
            await asyncio.sleep(self.rng.uniform(low, high))
        picked = self._pick(rates)
        if picked is None or (picked == "response_lost" and kind != "submit"):
            return None, None
        if picked in _AFTER:
            return None, picked
        self.counters.fault(kind, picked)
        if picked == "blocked":
            return web.Response(status=403), None  # C's rate limiter: no body, no Retry-After
        if picked == "upstream_error" and self.accent == "relay":
            body = b'{"description":"do_request_failed ","type":"upstream_error","code":5}'
            return web.Response(status=400, body=body, content_type="application/json"), None
        if picked in ("html_502", "upstream_error"):
            return web.Response(status=502, text=_BAD_GATEWAY, content_type="text/html"), None
        if picked == "rate_limit":
            return web.Response(status=429, headers={"Retry-After": self._retry_after(rates)}), None
        reset_connection(request)
        return web.Response(status=500), None  # never written: the connection is gone

    def after(
        self,
        request: web.BaseRequest,
        kind: str,
        pending: str | None,
        response: web.StreamResponse,
    ) -> web.StreamResponse:
        """Apply a fault decided in :meth:`before` to a handled request's response."""
        if pending == "response_lost":
            self.counters.fault(kind, pending)
            reset_connection(request)
            return response
        if pending == "truncated_json" and isinstance(response, web.Response):
            body = response.body
            if isinstance(body, bytes) and len(body) > 1 and response.content_type.endswith("json"):
                self.counters.fault(kind, pending)
                return web.Response(
                    body=body[: len(body) // 2],
                    status=response.status,
                    content_type="application/json",
                    charset="utf-8",
                )
        return response

    def _pick(self, rates: FaultRates) -> str | None:
        draw = self.rng.random()
        for name in _EXCLUSIVE:
            probability: float = getattr(rates, name)
            if draw < probability:
                return name
            draw -= probability
        return None

    def _retry_after(self, rates: FaultRates) -> str:
        if self.rng.random() < rates.retry_after_http_date:
            # HTTP-dates have whole seconds: round up so the wait is never shorter than asked.
            now = datetime.now(UTC)
            when = now + timedelta(seconds=rates.retry_after)
            when = when.replace(microsecond=0) + timedelta(
                seconds=math.ceil(when.microsecond / 1e6)
            )
            return format_datetime(when, usegmt=True)
        return str(rates.retry_after)
