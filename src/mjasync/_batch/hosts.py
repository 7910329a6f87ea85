"""Where image downloads may connect: public addresses, the API server itself, or opted-in hosts.

Image URLs come from the server's answers, so a hostile or compromised server can aim them
(or their redirects) at addresses only this machine can reach: ``127.0.0.1:6379``, a router's
admin page, the cloud metadata service at ``169.254.169.254``. Even when the answer is not an
image, the request itself has done the harm (a blind SSRF). So every address a download is
about to connect to is checked first:

* a **public** (globally routable, unicast) address is fine;
* a loopback, private, link-local, multicast, reserved, unspecified or otherwise non-public
  address is refused, **unless** it is the API server's own socket address — the same IP
  *and* port that the API base URL resolves to (the simulator and self-hosted proxies serve
  images from themselves; a hostile server gains nothing by making us fetch from itself, but
  another port of the same host is another service and stays refused) — **or** the caller
  opted in with ``allow_private`` (``allow_private_image_hosts=True`` on a batch).

The check runs on **resolved** addresses, so a name that resolves to ``127.0.0.1`` is refused
like the literal. Sessions made by :func:`image_session` resolve every connection through
:class:`GuardedResolver`, which checks the addresses actually connected to (a name whose
answer changes between a check and the connection — DNS rebinding — gains nothing). IP
literals never reach a resolver in aiohttp; :meth:`AddressGate.check_url` checks them (and,
for sessions made elsewhere, resolves names once itself) before each request and each
redirect hop.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import aiohttp
import attrs
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

__all__ = [
    "AddressGate",
    "AddressRefused",
    "GuardedResolver",
    "ImageHostPolicy",
    "address_kind",
    "image_session",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

OPT_IN_HINT = "allow it with allow_private_image_hosts=True (CLI: --allow-private-image-hosts)"


def _plain(ip: IPAddress) -> IPAddress:
    # ::ffff:127.0.0.1 is 127.0.0.1 on the wire; judge (and compare) it as the IPv4 address.
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def parse_ip(text: str) -> IPAddress | None:
    """``text`` as an IP address (IPv6 scope and IPv4-mapped forms normalised), else ``None``."""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        ip = ipaddress.IPv6Address(text.split("%", 1)[0])
    return _plain(ip)


def address_kind(ip: IPAddress) -> str | None:
    """What makes ``ip`` non-public (``"loopback"``, ``"private"``, ...), or ``None``. Pure.

    Example:
        >>> address_kind(ipaddress.ip_address("169.254.169.254"))
        'link-local'
        >>> address_kind(ipaddress.ip_address("93.184.216.34")) is None
        True
    """
    ip = _plain(ip)
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),  # before private: Python counts 240/4 as both
        ("private", ip.is_private),
        ("site-local", isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local),
        # Shared (100.64/10), benchmarking, documentation ranges: not private, not public.
        ("non-public", not ip.is_global),
    )
    for kind, applies in checks:
        if applies:
            return kind
    return None


@attrs.frozen(slots=True)
class ImageHostPolicy:
    """Which hosts image downloads may reach.

    Attributes:
        allow_private: allow every address (loopback, private, link-local, ...).
        api_server: the API's base URL; its own IP and port are allowed even when private.
    """

    allow_private: bool = False
    api_server: str | None = None


def _naming(host: str, reason: str) -> str:
    return reason if parse_ip(host) is not None else f"{host} resolves to {reason}"


class AddressRefused(OSError):
    """Raised inside aiohttp's connector when every address of a host is refused."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AddressGate:
    """Applies an :class:`ImageHostPolicy` to addresses and URLs.

    Args:
        policy: what is allowed.
        resolver: resolves names for the checks made before a request and for the API
            server's own address (default: aiohttp's threaded ``getaddrinfo`` resolver).
    """

    def __init__(self, policy: ImageHostPolicy, resolver: AbstractResolver | None = None) -> None:
        self.policy = policy
        self._resolver = resolver
        self._api: frozenset[tuple[IPAddress, int]] | None = None

    def _inner(self) -> AbstractResolver:
        if self._resolver is None:
            self._resolver = aiohttp.ThreadedResolver()
        return self._resolver

    async def resolve(self, host: str, port: int) -> list[ResolveResult]:
        """``host``'s addresses, from the gate's resolver (an IP literal is its own answer)."""
        if parse_ip(host) is not None:
            return [
                {"hostname": host, "host": host, "port": port, "family": 0, "proto": 0, "flags": 0}
            ]
        return await self._inner().resolve(host, port, socket.AF_UNSPEC)

    async def close(self) -> None:
        """Release the resolver."""
        if self._resolver is not None:
            await self._resolver.close()

    async def _api_endpoints(self) -> frozenset[tuple[IPAddress, int]]:
        # Resolved once, and only when a non-public address shows up: a public CDN never
        # needs the API server's addresses.
        if self._api is None:
            found: set[tuple[IPAddress, int]] = set()
            api = self.policy.api_server
            url = URL(api) if api else None
            if url is not None and url.host and url.port is not None:
                try:
                    results = await self.resolve(url.host, url.port)
                except OSError:
                    results = []
                for result in results:
                    ip = parse_ip(result["host"])
                    if ip is not None:
                        found.add((ip, url.port))
            self._api = frozenset(found)
        return self._api

    async def refusal(self, address: str, port: int) -> str | None:
        """Why connecting to ``address:port`` is refused, or ``None`` when it is allowed."""
        ip = parse_ip(address)
        if ip is None:
            return f"{address!r} is not an IP address"
        kind = address_kind(ip)
        if kind is None or self.policy.allow_private:
            return None
        if (ip, port) in await self._api_endpoints():
            return None
        article = "an" if kind[0] in "aeiou" else "a"
        return f"{ip} ({article} {kind} address, not the API server)"

    async def allowed(
        self, host: str, results: list[ResolveResult], port: int
    ) -> list[ResolveResult]:
        """The allowed ones of ``results`` (the addresses of ``host``).

        Raises:
            AddressRefused: none is allowed.
        """
        kept = []
        first: str | None = None
        for result in results:
            reason = await self.refusal(result["host"], port)
            if reason is None:
                kept.append(result)
            elif first is None:
                first = reason
        if not kept:
            raise AddressRefused(_naming(host, first or "no address"))
        return kept

    async def check_url(self, url: URL, *, resolve_names: bool) -> None:
        """Check where a request to ``url`` would connect, before it is sent.

        IP literals are always checked here (aiohttp never passes them to a resolver).
        Names are resolved and checked only with ``resolve_names`` (a session whose
        connector checks them itself does not need it); then *every* address must be
        allowed, since the connection may use any of them.

        Raises:
            AddressRefused: the host is refused.
            OSError: the name does not resolve.
        """
        host, port = url.host, url.port
        if not host or port is None:
            raise AddressRefused(f"{str(url)!r} has no host")
        if parse_ip(host) is not None:
            await self.allowed(host, await self.resolve(host, port), port)
        elif resolve_names:
            results = await self.resolve(host, port)
            for result in results:
                reason = await self.refusal(result["host"], port)
                if reason is not None:
                    raise AddressRefused(_naming(host, reason))


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver that only returns addresses its :class:`AddressGate` allows.

    Raises :class:`AddressRefused` (an ``OSError``; aiohttp wraps it in
    ``ClientConnectorDNSError``) when none is allowed, so nothing is ever sent there.
    """

    def __init__(self, gate: AddressGate) -> None:
        self.gate = gate

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.gate.resolve(host, port)
        return await self.gate.allowed(host.rstrip("."), results, port)

    async def close(self) -> None:
        await self.gate.close()


class GuardedConnector(aiohttp.TCPConnector):
    """A TCP connector whose every connection goes through a :class:`GuardedResolver`."""

    def __init__(self, gate: AddressGate, **kwargs: Any) -> None:
        super().__init__(resolver=GuardedResolver(gate), **kwargs)
        self.gate = gate


def image_session(
    policy: ImageHostPolicy | None = None,
    *,
    resolver: AbstractResolver | None = None,
    **kwargs: Any,
) -> aiohttp.ClientSession:
    """An aiohttp session for image downloads that connects only where ``policy`` allows.

    It carries no API key and ignores proxy environment variables (a proxy would resolve
    names where we cannot check them). Use it as ``async with image_session(...) as s``.

    Args:
        policy: the hosts allowed (default: public addresses only).
        resolver: the name resolver to check (default: aiohttp's threaded resolver).
        kwargs: passed to :class:`aiohttp.ClientSession` (not ``connector``).
    """
    gate = AddressGate(policy or ImageHostPolicy(), resolver)
    kwargs.setdefault("trust_env", False)
    return aiohttp.ClientSession(connector=GuardedConnector(gate), **kwargs)
