"""The mjasync exception tree.

Everything mjasync raises on purpose derives from :class:`MjError`::

    MjError
    ├── TransportError ............ no usable HTTP answer (connect, reset, timeout)
    ├── APIError .................. the server answered and said no
    │   ├── AuthenticationError ... 401/403: bad or missing key
    │   ├── NotFoundError ......... unknown task id (code 3, J's empty 200, relay code 4 on fetch)
    │   ├── InvalidRequestError ... code 4 and other 400s: fix the request
    │   ├── RateLimitError ........ HTTP 429, C's empty 403 block (``retry_after`` if said)
    │   ├── QueueFullError ........ code 23, C's code 9 / per-user limits: the account is busy
    │   ├── BannedPromptError ..... code 24 (``banned_word``); never retried
    │   ├── ServerError ........... 5xx, HTML error pages, code 9 failures
    │   └── UnsupportedEndpointError  a route the server lacks (404, or a relay's HTML page)
    ├── ProtocolError ............. a body we cannot read (truncated JSON, wrong shape)
    ├── SubmissionUncertainError .. a submit may have reached the server; we did not resend it
    ├── LimiterError .............. no slot could be had: the shared budget (e.g. Redis) is
    │   │                           unreachable, or ...
    │   └── ClientClosedError ..... ... the client closed while the request waited for one
    ├── JournalError .............. the batch journal cannot be used
    │   ├── JournalVersionError ... written by a newer mjasync
    │   ├── JournalStateError ..... a record contradicts the journal (also a ValueError)
    │   └── JournalLockedError .... another batch is using the journal or output directory
    ├── DownloadError ............. an image could not be fetched and stored
    │   └── DownloadRefusedError .. the URL leads to a private address or redirects too often
    └── TaskError ................. a task ended badly (``task_id``, ``task``)
        ├── TaskFailedError ....... status FAILURE or CANCEL (``fail_reason``)
        ├── TaskTimeoutError ...... the caller's overall timeout ran out
        ├── TaskStalledError ...... progress did not move for ``stall_timeout``
        └── TaskLostError ......... the server forgot the task (restart, relay expiry)

Misuse (bad arguments) raises :class:`ValueError` or :class:`TypeError` before any request.

Foreign exceptions (aiohttp, json, cattrs) are translated once, where they happen, and chained
with ``raise ... from exc``. Error messages carry the request (method and path, never the key).
A ``notifyHook`` the server echoed (its path holds the webhook secret) is taken out of an
error's ``properties``, ``description`` and ``body``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._json import hide_notify_hooks, strip_notify_hook

if TYPE_CHECKING:
    from ._models import Task

__all__ = [
    "APIError",
    "AuthenticationError",
    "BannedPromptError",
    "ClientClosedError",
    "DownloadError",
    "DownloadRefusedError",
    "InvalidRequestError",
    "JournalError",
    "JournalLockedError",
    "JournalStateError",
    "JournalVersionError",
    "LimiterError",
    "MjError",
    "NotFoundError",
    "ProtocolError",
    "QueueFullError",
    "RateLimitError",
    "ServerError",
    "SubmissionUncertainError",
    "TaskError",
    "TaskFailedError",
    "TaskLostError",
    "TaskStalledError",
    "TaskTimeoutError",
    "TransportError",
    "UnsupportedEndpointError",
]

_EMPTY: Mapping[str, Any] = {}


def _where(method: str | None, path: str | None) -> str:
    if method and path:
        return f" [{method} {path}]"
    return ""


class MjError(Exception):
    """Base class of every error mjasync raises on purpose."""


class TransportError(MjError):
    """No usable HTTP answer: the connection failed, was reset, or timed out.

    Attributes:
        method, path: the request that failed (the path includes the mode prefix).
        request_sent: ``False`` only when the request provably never reached the server
            (the connection could not be opened), so resending a submit is safe.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        path: str | None = None,
        request_sent: bool = True,
    ) -> None:
        super().__init__(message + _where(method, path))
        self.message = message
        self.method = method
        self.path = path
        self.request_sent = request_sent


class APIError(MjError):
    """The server answered, and the answer was an error.

    Attributes:
        http_status: the HTTP status (``200`` for proxies that report errors in the body).
        code: the proxy's body ``code`` (``None`` when the body had none).
        description: the server's own text; may be Chinese or English. Do not parse it.
        message: what went wrong in English: a sentence for a server text mjasync knows,
            else the description itself. ``str(exc)`` starts with it.
        properties: the body's ``properties`` mapping (empty when absent).
        method, path: the request (the path includes the mode prefix).
    """

    def __init__(
        self,
        description: str,
        *,
        http_status: int | None = None,
        code: int | None = None,
        properties: Mapping[str, Any] | None = None,
        method: str | None = None,
        path: str | None = None,
        message: str | None = None,
    ) -> None:
        description = hide_notify_hooks(description)
        self.description = description
        self.message = message or description
        self.http_status = http_status
        self.code = code
        self.properties: Mapping[str, Any] = (
            strip_notify_hook(properties) if properties is not None else _EMPTY
        )
        self.method = method
        self.path = path
        parts = []
        if http_status is not None:
            parts.append(f"HTTP {http_status}")
        if code is not None:
            parts.append(f"code {code}")
        if self.message != description:  # the server's own words stay in the text
            parts.append(f"server said {description!r}")
        detail = f" ({', '.join(parts)})" if parts else ""
        super().__init__(f"{self.message}{detail}{_where(method, path)}")


class AuthenticationError(APIError):
    """The server refused the API key (HTTP 401/403)."""


class NotFoundError(APIError):
    """The task (or the parent task of an action) does not exist on the server."""


class InvalidRequestError(APIError):
    """The server rejected the request as invalid (code 4, HTTP 400)."""


class RateLimitError(APIError):
    """Too many requests: HTTP 429, or C's rate limiter blocking a client (403, empty body).

    C blocks for some minutes and sends no ``Retry-After``; submits are waited out like
    queue-full refusals.

    Attributes:
        retry_after: seconds the server asked us to wait, or ``None``.
    """

    def __init__(self, description: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(description, **kw)
        self.retry_after = retry_after


class QueueFullError(APIError):
    """The upstream account's queue is full (code 23, or C's code 9 "队列已满").

    Also C's per-user limits ("并发数已达上限", "队列数已达上限": code -1, or 4 on imagine).
    The server refused the job, so resubmitting later is safe.

    Attributes:
        retry_after: seconds the server asked us to wait, or ``None``.
    """

    def __init__(self, description: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(description, **kw)
        self.retry_after = retry_after


class BannedPromptError(APIError):
    """Code 24: the prompt contains a banned word. Never retried.

    Attributes:
        banned_word: the word the server objected to, or ``None``.
        prompt_en: the (translated) prompt the server checked, or ``None``.
    """

    def __init__(self, description: str, **kw: Any) -> None:
        super().__init__(description, **kw)
        word = self.properties.get("bannedWord")
        self.banned_word: str | None = word if isinstance(word, str) else None
        prompt_en = self.properties.get("promptEn")
        self.prompt_en: str | None = prompt_en if isinstance(prompt_en, str) else None


class ServerError(APIError):
    """The server failed: HTTP 5xx, an HTML error page from a front proxy, or code 9."""


class UnsupportedEndpointError(APIError):
    """The server has no such route, or does not offer it to this key.

    Raised for optional endpoints a server family lacks (J has no action/modal/video; a
    404 without a JSON body, or new-api's web page, an HTML 200), for a relay that sells no
    channel for the endpoint (503 ``model_not_found``), for C's cancel to anyone but an admin
    user, and for a mode prefix the server does not serve (the original Java proxy has none,
    so the message suggests ``mode=None``). The message names the server families that do
    serve the endpoint. The client remembers it per mode: a second call fails at once,
    without a request or a slot.
    """


class ProtocolError(MjError):
    """The server's answer could not be read: truncated JSON, wrong shape, missing task id.

    Attributes:
        method, path: the request (``None`` when parsing a payload handed in directly).
        body: up to 200 characters of what was received, for diagnosis.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        path: str | None = None,
        body: str | None = None,
    ) -> None:
        message = hide_notify_hooks(message)
        super().__init__(message + _where(method, path))
        self.message = message
        self.method = method
        self.path = path
        self.body = hide_notify_hooks(body) if body is not None else None


class SubmissionUncertainError(MjError):
    """A submit may have reached the server, but no answer was read.

    mjasync never sends a second POST in this case: the first one may already be a paid job.
    Look the task up later (for example by ``state``), or resubmit if you accept paying twice.

    Attributes:
        endpoint: the submit route, e.g. ``"/mj/submit/imagine"``.
        body: the JSON body that was sent (images included).
        state: the ``state`` value sent with the job; servers echo it on the task.
        mode: the mode the job was sent to.
    """

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        body: Mapping[str, Any],
        state: str | None,
        mode: str | None,
    ) -> None:
        super().__init__(f"{message} [POST {endpoint}, state={state!r}]")
        self.message = message
        self.endpoint = endpoint
        self.body = body
        self.state = state
        self.mode = mode


class LimiterError(MjError):
    """The in-flight budget's backing store (e.g. Redis) could not be reached in time."""


class ClientClosedError(LimiterError):
    """The client was closed while this request waited for a slot (nothing was sent).

    Catch it as :class:`LimiterError`: either way the request never got a slot.
    """


class TaskError(MjError):
    """A task did not end in success.

    Attributes:
        task_id: the task's id (always known: you can fetch it later).
        task: the last :class:`~mjasync.Task` seen, or ``None`` if none was read yet.
    """

    def __init__(self, message: str, *, task_id: str, task: Task | None = None) -> None:
        super().__init__(f"task {task_id}: {message}")
        self.message = message
        self.task_id = task_id
        self.task = task


class TaskFailedError(TaskError):
    """The task ended with status FAILURE (or CANCEL).

    Attributes:
        fail_reason: the server's ``failReason``, or ``None``.
    """

    def __init__(self, message: str, *, task_id: str, task: Task | None = None) -> None:
        super().__init__(message, task_id=task_id, task=task)
        self.fail_reason: str | None = task.fail_reason if task is not None else None


class TaskTimeoutError(TaskError):
    """The overall timeout given by the caller ran out before the task ended."""


class TaskStalledError(TaskError):
    """The task's status and progress did not change for longer than ``stall_timeout``."""


class TaskLostError(TaskError):
    """The server no longer knows a task it accepted (it restarted, or a relay expired it)."""


class JournalError(MjError):
    """The journal file cannot be used: not a database, not a journal, unreadable."""


class JournalVersionError(JournalError):
    """The journal was written by a newer mjasync whose schema this version cannot read.

    Attributes:
        path: the journal file.
        found: the schema version in the file.
        supported: the newest schema version this mjasync understands.
    """

    def __init__(self, message: str, *, path: str, found: int, supported: int) -> None:
        super().__init__(message)
        self.path = path
        self.found = found
        self.supported = supported


class JournalStateError(JournalError, ValueError):
    """A record that contradicts what the journal already holds.

    For example a second task id for a request already accepted as another task, or a
    "refused" after the server accepted. Raising beats silently forgetting a paid task id.
    """


class JournalLockedError(JournalError):
    """Another batch holds the journal (or the output directory): two runs would pay twice.

    Raised before anything is sent. The lock belongs to the other process and ends with it,
    even when that process is killed, so running again once it is gone just works.

    Attributes:
        path: the lock file.
        holder: the process id written by the holder, when it could be read.
    """

    def __init__(self, message: str, *, path: str, holder: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.holder = holder


class DownloadError(MjError):
    """An image could not be downloaded and stored; nothing was left behind.

    Attributes:
        url: the URL that was requested.
        reason: what went wrong, in words (``"HTTP 404"``, ``"not an image"``, ...).
        http_status: the response status when there was one, else ``None``.
    """

    def __init__(self, reason: str, *, url: str, http_status: int | None = None) -> None:
        # Signed CDN URLs carry tokens in the query string: keep them out of messages/logs.
        shown = url.split("?", 1)[0].split("#", 1)[0] if url else "?"
        super().__init__(f"download failed: {reason} [{shown}]")
        self.url = url
        self.reason = reason
        self.http_status = http_status


class DownloadRefusedError(DownloadError):
    """mjasync would not fetch this image: nothing was sent to where it leads.

    The URL (or one of its redirects) leads to a loopback, private, link-local, multicast or
    otherwise non-public address that is not the API server itself, or it redirects too
    many times. Allow private hosts explicitly (``allow_private_image_hosts=True``,
    ``--allow-private-image-hosts``) when your images really live on such a host.
    """
