"""Push updates: an HTTP endpoint for the ``notifyHook`` callbacks of midjourney-proxy servers.

A server POSTs the whole task JSON to the hook on every status or progress change, with no
signature and no retries, possibly twice or out of order. So the receiver authenticates by an
unguessable secret in the URL, checks size and shape, and hands each task payload to the
client's job engine (``JobEngine.observe(payload, "push")``), which already collapses duplicates and
ignores regressions. Polling stays on as the fallback for every post that never arrives.

Three ways to serve the same logic:

* its own aiohttp site (``WebhookReceiver(host, port)``; started by the first client that
  attaches, or explicitly with ``async with receiver:``);
* routes mounted into your aiohttp application (:meth:`WebhookReceiver.mount` /
  :meth:`WebhookReceiver.app`);
* an ASGI callable for Starlette/FastAPI and friends (:meth:`WebhookReceiver.asgi_app`), or
  your own route calling :meth:`WebhookReceiver.handle_payload`.

Every path goes through :func:`validate_push`, a pure function.

Several workers behind one URL: give each receiver the same ``secret`` and a
:class:`~mjasync.RedisPushBus` (``bus=``); a post that reaches any worker is then published to
all of them (see :mod:`mjasync._integrations.redis_bus`).
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

import anyio
import attrs
from aiohttp import web
from yarl import URL

from .._converter import parse_status, parse_task_id
from .._json import nested_deeper_than
from .._validation import is_task_id

if TYPE_CHECKING:
    from .._jobs.engine import JobEngine
    from .redis_bus import RedisPushBus

__all__ = [
    "ASGIApp",
    "PushVerdict",
    "WebhookReceiver",
    "WebhookStatistics",
    "check_push_secret",
    "decode_push_body",
    "validate_push",
]

log = logging.getLogger("mjasync")

#: midjourney-proxy refuses a ``notifyHook`` longer than this.
MAX_NOTIFY_URL: Final = 2000
#: How many task ids that received pushes are remembered, so that a late duplicate of a
#: terminal post (the task is no longer watched) is answered 200 rather than 404.
_REMEMBERED_IDS: Final = 10_000
#: A sender that trickles its body this slowly is cut off; a real server posts in one go.
_READ_TIMEOUT: Final = 10.0
_CHUNK: Final = 64 * 1024
_WILDCARD_HOSTS: Final = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "[::1]"}

ASGIReceive = Callable[[], Awaitable[MutableMapping[str, Any]]]
ASGISend = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], ASGIReceive, ASGISend], Awaitable[None]]


@attrs.frozen(slots=True)
class PushVerdict:
    """What became of one posted body: the HTTP status to answer and why.

    Attributes:
        status: 200, 400, 401, 404, 405, 408 or 413 (500 only if delivering hit a bug).
        reason: ``"valid"`` (passed :func:`validate_push`, not yet routed), ``"accepted"``
            (delivered to a client), ``"late"`` (a task that already ended: answered 200,
            nothing to do), ``"relayed"`` (no client here follows it; published to the other
            workers on the bus, answered 200), or a rejection: ``"method"``, ``"missing_secret"``,
            ``"bad_secret"``, ``"too_large"``, ``"timeout"``, ``"bad_json"``,
            ``"not_object"``, ``"no_id"``, ``"unknown_task"``, ``"internal_error"``.
        task_id: the task id of the payload, once known.
        payload: the decoded task JSON, once known.
    """

    status: int
    reason: str
    task_id: str | None = None
    payload: Mapping[str, Any] | None = attrs.field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """``True`` for a 200 answer."""
        return self.status == 200


@attrs.frozen(slots=True)
class WebhookStatistics:
    """A snapshot of what a :class:`WebhookReceiver` received and what it led to.

    ``received == accepted + late + relayed + rejected`` always holds.

    Attributes:
        received: posts (any method) that reached the handler.
        accepted: posts delivered to an attached client (answered 200).
        late: posts for a task that already ended (answered 200, ignored).
        relayed: posts for tasks no client here follows, published on the bus for the other
            workers (answered 200). Every valid post is published, these included.
        rejected_by_reason: non-200 answers by reason (see :class:`PushVerdict`); includes
            ``unknown_task``.
        unknown_task: posts for task ids no attached client watches (answered 404). A few
            are normal: a server may post a task's first change before its submit answer
            reaches the client; polling and the next post cover it.
        pushes_applied: pushed payloads the clients applied (duplicates included; they
            collapse into no event).
        completed_by_push, completed_by_poll: jobs whose terminal state came from a push /
            from polling, in the clients attached now or earlier.
        attached: clients attached now.
    """

    received: int
    accepted: int
    late: int
    rejected_by_reason: Mapping[str, int]
    unknown_task: int
    pushes_applied: int
    completed_by_push: int
    completed_by_poll: int
    attached: int
    relayed: int = 0

    @property
    def rejected(self) -> int:
        """Every post answered with something other than 200."""
        return sum(self.rejected_by_reason.values())


def check_push_secret(given: str | None, expected: str) -> bool:
    """Constant-time comparison of the secret a post carried with the receiver's own.

    >>> check_push_secret("abc", "abc"), check_push_secret(None, "abc")
    (True, False)
    """
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


def validate_push(
    given_secret: str | None, body: bytes, *, secret: str, max_body_bytes: int
) -> PushVerdict:
    """Check one posted body (pure): secret, size, JSON object, task id.

    Args:
        given_secret: the secret from the request URL (``None`` if it had none).
        body: the request body as received.
        secret: the receiver's secret.
        max_body_bytes: the largest body accepted.

    Returns:
        a 401/413/400 :class:`PushVerdict`, or status 200 with reason ``"valid"`` and the
        decoded ``payload`` and ``task_id`` (whether a client watches it is decided later).

    Example::

        verdict = validate_push(secret, await request.body(), secret=mine, max_body_bytes=10**6)
        if verdict.ok:
            ...
    """
    if not given_secret:
        return PushVerdict(401, "missing_secret")
    if not check_push_secret(given_secret, secret):
        return PushVerdict(401, "bad_secret")
    return decode_push_body(body, max_body_bytes=max_body_bytes)


def decode_push_body(body: bytes, *, max_body_bytes: int) -> PushVerdict:
    """Check a pushed body's size and shape (pure): a JSON object with a task id.

    The part of :func:`validate_push` after the secret, also applied to every payload that
    arrives over a :class:`~mjasync.RedisPushBus`: the bus carries nothing this refuses.

    Returns:
        a 413/400 :class:`PushVerdict`, or status 200 with reason ``"valid"``, the decoded
        ``payload`` and its ``task_id``.
    """
    if len(body) > max_body_bytes:
        return PushVerdict(413, "too_large")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # bad UTF-8 and bad JSON are both ValueErrors
        return PushVerdict(400, "bad_json")
    if not isinstance(payload, dict):
        return PushVerdict(400, "not_object")
    if nested_deeper_than(payload):  # no task is; every later repr or compare would recurse
        return PushVerdict(400, "bad_json")
    task_id = parse_task_id(payload.get("id"))
    if task_id is None or not is_task_id(task_id):
        return PushVerdict(400, "no_id")
    return PushVerdict(200, "valid", task_id=task_id, payload=payload)


def _check_path(path: str) -> str:
    if not isinstance(path, str):
        raise TypeError(f"path must be a str, not {type(path).__name__}")
    cleaned = "/" + path.strip().strip("/")
    if cleaned == "/" or any(c in cleaned for c in "{}?#% "):
        raise ValueError(
            f"path must be a URL path like '/mjasync/hooks' (not the root), not {path!r}"
        )
    return cleaned


def _check_secret(secret: str | None) -> str:
    if secret is None:
        return secrets.token_urlsafe(24)
    if not isinstance(secret, str):
        raise TypeError(f"secret must be a str, not {type(secret).__name__}")
    if len(secret) < 16 or not all(c.isascii() and (c.isalnum() or c in "-_") for c in secret):
        # Not echoing the value: it is a secret even when it is a bad one.
        raise ValueError(
            "secret must be at least 16 characters of letters, digits, '-' and '_' "
            "(or leave it out for a random one)"
        )
    return secret


def _check_public_url(public_url: str | None) -> str | None:
    if public_url is None:
        return None
    if not isinstance(public_url, str):
        raise TypeError(f"public_url must be a str, not {type(public_url).__name__}")
    text = public_url.strip().rstrip("/")
    url = URL(text)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(
            f"public_url must be an http(s) URL like 'https://me.example', not {text!r}"
        )
    if url.query_string or url.fragment:
        raise ValueError(f"public_url must not carry a query or fragment: {text!r}")
    return text


class WebhookReceiver:
    """Receives ``notifyHook`` posts and feeds them into the clients' job events.

    Give it to a client (``mjasync.Client(..., webhook=receiver)``): every submit then carries
    ``notifyHook`` = :attr:`notify_url`, and pushed task changes reach ``job.events()`` the
    moment the server sends them. Polling goes on, much slower for jobs that receive pushes,
    so a lost or stripped callback never loses a job.

    Lifecycle: a receiver that is not mounted into your application runs its own aiohttp
    site. Either the first client that attaches starts it and the last one to close stops it,
    or you run it yourself with ``async with receiver:`` (or :meth:`start` / :meth:`aclose`)
    and clients come and go inside. A mounted receiver (:meth:`mount`, :meth:`app`,
    :meth:`asgi_app`, or ``host=None`` for a route of your own calling
    :meth:`handle_payload`) never starts a site: your server serves it.

    One receiver can serve several clients at once: a post goes to every client that watches
    its task id.

    Args:
        host: the interface the own site listens on; ``None``: no own site at all (your
            server calls :meth:`handle_payload`; ``public_url`` is then required).
        port: its port; ``0`` picks a free one (see :attr:`port`).
        public_url: the base URL the server must call, when it is not the local site (a
            tunnel, a reverse proxy, or your own app when mounted): ``notify_url`` is
            ``public_url + path + "/" + secret``. Required when mounted.
        path: the route prefix; the secret is the last segment after it.
        secret: the URL secret (at least 16 of ``A-Za-z0-9-_``); default a random
            ``secrets.token_urlsafe(24)``. Never logged, hidden by ``repr``.
        max_body_bytes: larger bodies are refused with 413.
        bus: a :class:`~mjasync.RedisPushBus` shared by the workers of one deployment: every
            valid post is also published to the others, and theirs are applied here. Needs
            ``secret`` (the same in every worker: it authenticates the posts and the bus).

    Raises:
        ValueError, TypeError: a bad option.

    Example::

        receiver = mjasync.WebhookReceiver(port=8090, public_url="https://me.example")
        async with mjasync.Client(url, key, webhook=receiver) as client:
            task = await client.imagine("a black cat")   # finished by push, polled rarely
        print(receiver.statistics())
    """

    def __init__(
        self,
        host: str | None = "127.0.0.1",
        port: int = 0,
        *,
        public_url: str | None = None,
        path: str = "/mjasync/hooks",
        secret: str | None = None,
        max_body_bytes: int = 1_000_000,
        bus: RedisPushBus | None = None,
    ) -> None:
        if host is not None and not isinstance(host, str):
            raise TypeError(f"host must be a str or None, not {type(host).__name__}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an int within 0..65535, not {port!r}")
        if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int):
            raise TypeError("max_body_bytes must be an int")
        if max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be positive, not {max_body_bytes}")
        self.host = host
        self._bind_port = port
        self.path = _check_path(path)
        self.max_body_bytes = max_body_bytes
        self._secret = _check_secret(secret)
        self._public_url: str | None = None
        self.public_url = public_url  # validated by the setter
        self._engines: list[JobEngine] = []
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._auto_started = False
        # Served by someone else's server: never start a site of our own.
        self._mounted = host is None
        self._lock = anyio.Lock()
        self._counts: Counter[str] = Counter()
        self._received = 0
        self._known: OrderedDict[str, None] = OrderedDict()
        self._retired = Counter[str]()
        self._bus = bus
        if bus is not None:
            if secret is None:
                raise ValueError(
                    "a WebhookReceiver with a bus needs secret= (the same in every worker: the "
                    "server posts to one URL, and the bus is sealed with it)"
                )
            bus.bind(
                secret=self._secret,
                max_body_bytes=max_body_bytes,
                deliver=self._deliver_remote,
                followed=self._followed_ids,
            )

    def __repr__(self) -> str:
        where = self._local_url() or ("mounted" if self._mounted else "not started")
        bus = f", bus={self._bus!r}" if self._bus is not None else ""
        return (
            f"WebhookReceiver({where}, path={self.path!r}, public_url={self._public_url!r}, "
            f"secret='***', attached={len(self._engines)}{bus})"
        )

    @property
    def bus(self) -> RedisPushBus | None:
        """The push bus shared with the other workers, if any."""
        return self._bus

    # -- addresses -------------------------------------------------------------------------

    @property
    def public_url(self) -> str | None:
        """The externally reachable base URL, if one was given (settable before use)."""
        return self._public_url

    @public_url.setter
    def public_url(self, value: str | None) -> None:
        checked = _check_public_url(value)
        if checked is not None:
            length = len(checked) + len(self.path) + 1 + len(self._secret)
            if length > MAX_NOTIFY_URL:
                raise ValueError(
                    f"the notify URL would be {length} characters; servers accept at most "
                    f"{MAX_NOTIFY_URL} (shorten public_url or path)"
                )
        self._public_url = checked

    @property
    def port(self) -> int | None:
        """The port the own site listens on (``None`` while it is not running)."""
        return self._port

    @property
    def running(self) -> bool:
        """``True`` while the own site is serving."""
        return self._runner is not None

    def _local_url(self) -> str | None:
        if self._port is None:
            return None
        host = _WILDCARD_HOSTS.get(self.host or "", self.host or "")
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self._port}"

    @property
    def url(self) -> str:
        """The own site's base URL, e.g. ``http://127.0.0.1:8090`` (no path, no secret).

        Raises:
            RuntimeError: the site is not running.
        """
        local = self._local_url()
        if local is None:
            raise RuntimeError("the receiver's site is not running (start() or attach a client)")
        return local

    @property
    def notify_url(self) -> str:
        """The URL servers POST task changes to: ``{public_url or url}{path}/{secret}``.

        It carries the secret: treat it like a password (do not log it).

        Raises:
            RuntimeError: no public URL was given and the own site is not running.
        """
        base = self._public_url or self._local_url()
        if base is None:
            hint = "set public_url" if self._mounted else "start() it, or attach a client"
            raise RuntimeError(f"the receiver has no URL yet: {hint}")
        return f"{base}{self.path}/{self._secret}"

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Start the own site and keep it until :meth:`aclose` (idempotent).

        Clients detaching do not stop a site started this way.

        Raises:
            RuntimeError: the receiver was made with ``host=None`` (served by your app).
            OSError: the address could not be bound.
        """
        if self.host is None:
            raise RuntimeError("this receiver has host=None: your own server serves it")
        await self._start()
        self._auto_started = False
        if self._bus is not None:
            await self._bus.start()

    async def _start(self) -> None:
        assert self.host is not None
        async with self._lock:
            if self._runner is not None:
                return
            app = web.Application()
            app.router.add_routes(self._routes())
            # access_log=None: the request path carries the secret, so no access log here.
            runner = web.AppRunner(
                app, access_log=None, handle_signals=False, shutdown_timeout=0.25
            )
            await runner.setup()
            try:
                await web.TCPSite(runner, self.host, self._bind_port).start()
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await runner.cleanup()
                raise
            self._runner = runner
            self._port = int(runner.addresses[0][1])
        if self._public_url is None and self.host in _WILDCARD_HOSTS:
            log.warning(
                "webhook receiver listens on %r without public_url: servers are told a "
                "loopback address, which only a server on this machine can reach",
                self.host,
            )
        log.info("webhook receiver listening on %s%s/***", self._local_url(), self.path)

    async def aclose(self) -> None:
        """Stop the own site, if it runs (idempotent; never raises).

        Attached clients are not closed: they keep polling, and detach when they close.
        Posts still being handled get a short grace period. The bus stops once no client is
        attached either.
        """
        if self._bus is not None and not self._engines:
            await self._bus.aclose()
        async with self._lock:
            runner, self._runner = self._runner, None
            self._port = None
            self._auto_started = False
            if runner is None:
                return
            with anyio.CancelScope(shield=True):
                try:
                    await runner.cleanup()
                except Exception as exc:  # closing must not break the client's aclose
                    log.warning("webhook receiver: error while stopping its site: %r", exc)

    async def attach(self, engine: JobEngine) -> None:
        """Deliver pushed tasks to a client's ``engine`` (called by the client when it opens).

        Starts the own site if the receiver is neither mounted nor running yet; that site then
        stops when the last engine detaches.

        Raises:
            ValueError: a mounted receiver without ``public_url``.
            OSError: the own site could not be bound.
        """
        if self._mounted and self._public_url is None:
            raise ValueError(
                "a mounted WebhookReceiver needs public_url= (the URL your app is reached at)"
            )
        if any(e is engine for e in self._engines):
            return
        if not self._mounted and self._runner is None:
            await self._start()
            self._auto_started = True
        self._engines.append(engine)
        if self._bus is not None:
            await self._bus.start()  # idempotent; never fails the client (it falls back)

    async def detach(self, engine: JobEngine) -> None:
        """Stop delivering to ``engine`` (called by the client when it closes; never raises).

        The last detach stops a site that :meth:`attach` started.
        """
        for index, attached in enumerate(self._engines):
            if attached is engine:
                del self._engines[index]
                break
        else:
            return
        counters = engine.counters
        self._retired["pushes_applied"] += counters.pushes_applied
        self._retired["completed_by_push"] += counters.completed_by_push
        self._retired["completed_by_poll"] += counters.completed_by_poll
        if not self._engines:
            if self._auto_started:
                await self.aclose()
            elif self._bus is not None and not self.running:
                await self._bus.aclose()

    # -- mounting --------------------------------------------------------------------------

    def _routes(self) -> list[web.RouteDef]:
        return [
            web.route("*", self.path, self._handle_aiohttp),
            web.route("*", self.path + "/{secret}", self._handle_aiohttp),
        ]

    def mount(self, app: web.Application) -> None:
        """Add the hook routes (``{path}/{secret}``) to your aiohttp application.

        The receiver then never starts a site of its own; set ``public_url`` to where your app
        is reached. Mind your access log: the request path carries the secret.

        Example::

            app = web.Application()
            receiver = mjasync.WebhookReceiver(public_url="https://me.example")
            receiver.mount(app)
        """
        app.router.add_routes(self._routes())
        self._mounted = True

    def app(self) -> web.Application:
        """A new aiohttp application serving only the hook routes, for you to run or nest.

        Nested with ``parent.add_subapp("/prefix", receiver.app())``, the hook is at
        ``/prefix{path}/{secret}``: include the prefix in ``public_url``.
        """
        app = web.Application()
        self.mount(app)
        return app

    def asgi_app(self) -> ASGIApp:
        """An ASGI application feeding the same handler (Starlette, FastAPI, any ASGI server).

        The secret is the last segment of the request path below the mount point, so mount it
        at ``path``: ``fastapi_app.mount("/mjasync/hooks", receiver.asgi_app())``. It must run
        on the event loop of the clients it feeds. Marks the receiver as mounted.
        """
        self._mounted = True
        return self._asgi

    # -- handling --------------------------------------------------------------------------

    def handle_payload(self, secret: str | None, body: bytes) -> PushVerdict:
        """Validate one posted body and deliver it; return the verdict (and HTTP status).

        For your own route in any framework: make the receiver with ``host=None`` and
        ``public_url``, and call this on the event loop the clients run on. Cap the body at
        ``max_body_bytes`` while reading it, if your framework lets you.

        Example::

            @app.post("/mjasync/hooks/{secret}")
            async def hook(secret: str, request: Request) -> Response:
                verdict = receiver.handle_payload(secret, await request.body())
                return Response(verdict.reason, status_code=verdict.status)
        """
        verdict = validate_push(
            secret, body, secret=self._secret, max_body_bytes=self.max_body_bytes
        )
        if verdict.ok:
            routed = self._deliver(verdict)
            if self._bus is not None and routed.reason != "internal_error":
                assert verdict.task_id is not None
                assert verdict.payload is not None
                terminal = parse_status(verdict.payload.get("status")).is_terminal
                published = self._bus.publish(verdict.task_id, body, terminal=terminal)
                if published and routed.reason == "unknown_task":
                    routed = PushVerdict(200, "relayed", task_id=routed.task_id)
            verdict = routed
        return self._count(verdict)

    def _count(self, verdict: PushVerdict) -> PushVerdict:
        self._received += 1
        self._counts[verdict.reason] += 1
        if not verdict.ok:
            log.debug("webhook post rejected: %s (HTTP %d)", verdict.reason, verdict.status)
        return verdict

    def _apply(self, task_id: str, payload: Mapping[str, Any]) -> bool:
        """Apply a payload to every attached client that follows the task."""
        delivered = False
        for engine in tuple(self._engines):
            watch = engine.find(task_id)
            if watch is not None and not watch.retired:
                engine.observe(payload, "push")
                delivered = True
        return delivered

    def _deliver_remote(self, task_id: str, payload: Mapping[str, Any]) -> bool:
        """A push another worker received, from the bus (already checked like a post)."""
        return self._apply(task_id, payload)

    def _followed_ids(self) -> list[str]:
        """The task ids the attached clients follow (the bus catches up on these)."""
        return [
            watch.task_id
            for engine in tuple(self._engines)
            for watch in engine.watches()
            if not watch.retired
        ]

    def _deliver(self, verdict: PushVerdict) -> PushVerdict:
        task_id, payload = verdict.task_id, verdict.payload
        assert task_id is not None
        assert payload is not None
        try:
            delivered = self._apply(task_id, payload)
        except Exception:  # a bug in the engine must not become a crashed handler
            log.exception("task %s: applying a pushed payload failed", task_id)
            return PushVerdict(500, "internal_error", task_id=task_id)
        if delivered:
            self._known[task_id] = None
            self._known.move_to_end(task_id)
            if len(self._known) > _REMEMBERED_IDS:
                self._known.popitem(last=False)
            return PushVerdict(200, "accepted", task_id=task_id, payload=payload)
        if task_id in self._known:
            return PushVerdict(200, "late", task_id=task_id, payload=payload)
        return PushVerdict(404, "unknown_task", task_id=task_id)

    def _precheck(self, method: str, secret: str | None, length: int | None) -> PushVerdict | None:
        """Refusals decided before reading the body (so no stranger makes us read it)."""
        if method != "POST":
            return PushVerdict(405, "method")
        if not secret:
            return PushVerdict(401, "missing_secret")
        if not check_push_secret(secret, self._secret):
            return PushVerdict(401, "bad_secret")
        if length is not None and length > self.max_body_bytes:
            return PushVerdict(413, "too_large")
        return None

    async def _handle_aiohttp(self, request: web.Request) -> web.Response:
        secret = request.match_info.get("secret")
        early = self._precheck(request.method, secret, request.content_length)
        if early is not None:
            return _aiohttp_answer(self._count(early))
        body = bytearray()
        with anyio.move_on_after(_READ_TIMEOUT) as scope:
            while chunk := await request.content.read(_CHUNK):
                body += chunk
                if len(body) > self.max_body_bytes:
                    return _aiohttp_answer(self._count(PushVerdict(413, "too_large")))
        if scope.cancelled_caught:
            return _aiohttp_answer(self._count(PushVerdict(408, "timeout")))
        return _aiohttp_answer(self.handle_payload(secret, bytes(body)))

    async def _asgi(
        self, scope: MutableMapping[str, Any], receive: ASGIReceive, send: ASGISend
    ) -> None:
        if scope["type"] == "lifespan":
            await _asgi_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # websockets and the like: not ours; closing without a word refuses them
        secret = self._asgi_secret(scope)
        length = _asgi_content_length(scope)
        early = self._precheck(str(scope.get("method", "")), secret, length)
        if early is not None:
            await _asgi_answer(send, self._count(early))
            return
        body = bytearray()
        with anyio.move_on_after(_READ_TIMEOUT) as timer:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return  # the sender left; nobody to answer
                body += message.get("body", b"")
                if len(body) > self.max_body_bytes:
                    await _asgi_answer(send, self._count(PushVerdict(413, "too_large")))
                    return
                if not message.get("more_body", False):
                    break
        if timer.cancelled_caught:
            await _asgi_answer(send, self._count(PushVerdict(408, "timeout")))
            return
        await _asgi_answer(send, self.handle_payload(secret, bytes(body)))

    def _asgi_secret(self, scope: Mapping[str, Any]) -> str | None:
        path = str(scope.get("path", ""))
        root = str(scope.get("root_path", ""))
        # Starlette passes the full path (with root_path set to the mount point) in newer
        # versions and only the remainder in older ones: accept both.
        if root and path.startswith(root):
            path = path[len(root) :]
        rest = path.strip("/")
        if not rest or rest == self.path.strip("/"):
            return None
        return rest.rsplit("/", 1)[-1]

    # -- observability ---------------------------------------------------------------------

    def statistics(self) -> WebhookStatistics:
        """A frozen snapshot of the receiver's counters and of its clients' push outcomes."""
        client = Counter(self._retired)
        for engine in self._engines:
            counters = engine.counters
            client["pushes_applied"] += counters.pushes_applied
            client["completed_by_push"] += counters.completed_by_push
            client["completed_by_poll"] += counters.completed_by_poll
        rejected = {
            reason: count
            for reason, count in sorted(self._counts.items())
            if reason not in ("accepted", "late", "relayed") and count
        }
        return WebhookStatistics(
            received=self._received,
            accepted=self._counts["accepted"],
            late=self._counts["late"],
            rejected_by_reason=MappingProxyType(rejected),
            unknown_task=self._counts["unknown_task"],
            relayed=self._counts["relayed"],
            pushes_applied=client["pushes_applied"],
            completed_by_push=client["completed_by_push"],
            completed_by_poll=client["completed_by_poll"],
            attached=len(self._engines),
        )


def _aiohttp_answer(verdict: PushVerdict) -> web.Response:
    return web.Response(status=verdict.status, text=verdict.reason)


def _asgi_content_length(scope: Mapping[str, Any]) -> int | None:
    for name, value in scope.get("headers", ()):
        if bytes(name).lower() == b"content-length":
            try:
                return int(bytes(value))
            except ValueError:
                return None
    return None


async def _asgi_answer(send: ASGISend, verdict: PushVerdict) -> None:
    body = verdict.reason.encode()
    await send(
        {
            "type": "http.response.start",
            "status": verdict.status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _asgi_lifespan(receive: ASGIReceive, send: ASGISend) -> None:
    # Served alone by an ASGI server, the app must acknowledge startup and shutdown.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
