"""mjasync: an asyncio-native client for the Midjourney task API.

See https://example.invalid/mjasync for the guide; the public names are listed in ``__all__``.
"""

from __future__ import annotations

import typing as _typing

from ._client import Client, ClientStatistics, ModeStatistics
from ._errors import (
    APIError,
    AuthenticationError,
    BannedPromptError,
    DownloadError,
    InvalidRequestError,
    JournalError,
    JournalStateError,
    JournalVersionError,
    LimiterError,
    MjError,
    NotFoundError,
    ProtocolError,
    QueueFullError,
    RateLimitError,
    ServerError,
    SubmissionUncertainError,
    TaskError,
    TaskFailedError,
    TaskLostError,
    TaskStalledError,
    TaskTimeoutError,
    TransportError,
    UnsupportedEndpointError,
)
from ._events import ProgressEvent
from ._jobs import Job
from ._limiter import Limiter, LimiterStatistics, LocalLimiter, Slot
from ._models import (
    Button,
    ButtonKind,
    ImageRef,
    Submission,
    Task,
    TaskAction,
    TaskStatus,
)
from ._poller import PollSettings
from ._requests import Action, Blend, Change, Describe, Imagine, Modal, Request, Shorten
from ._retry import RetryPolicy
from ._scheduler import RefusalPolicy

if _typing.TYPE_CHECKING:
    from ._batch import Batch, run_batch
    from ._batch_types import (
        BatchEvent,
        BatchEventKind,
        BatchOutcome,
        BatchSummary,
        PromptResult,
        RequestResult,
    )
    from ._download import Downloader, DownloadResult, split_grid
    from ._journal import Journal, JournalEntry, JournalState, JournalStore, ResumePlan, request_key
    from ._redis import RedisLimiter
    from ._webhook import PushVerdict, WebhookReceiver, WebhookStatistics

# Batch, downloads, journal, Redis and webhook code (sqlite3, aiohttp.web, ...) load on first
# use: `import mjasync` stays cheap for a web app that only awaits images.
_LAZY = {
    "Batch": "._batch",
    "run_batch": "._batch",
    "BatchEvent": "._batch_types",
    "BatchEventKind": "._batch_types",
    "BatchOutcome": "._batch_types",
    "BatchSummary": "._batch_types",
    "PromptResult": "._batch_types",
    "RequestResult": "._batch_types",
    "Downloader": "._download",
    "DownloadResult": "._download",
    "split_grid": "._download",
    "Journal": "._journal",
    "JournalEntry": "._journal",
    "JournalState": "._journal",
    "JournalStore": "._journal",
    "ResumePlan": "._journal",
    "request_key": "._journal",
    "RedisLimiter": "._redis",
    "PushVerdict": "._webhook",
    "WebhookReceiver": "._webhook",
    "WebhookStatistics": "._webhook",
}

__all__ = [
    "APIError",
    "Action",
    "AuthenticationError",
    "BannedPromptError",
    "Batch",
    "BatchEvent",
    "BatchEventKind",
    "BatchOutcome",
    "BatchSummary",
    "Blend",
    "Button",
    "ButtonKind",
    "Change",
    "Client",
    "ClientStatistics",
    "Describe",
    "DownloadError",
    "DownloadResult",
    "Downloader",
    "ImageRef",
    "Imagine",
    "InvalidRequestError",
    "Job",
    "Journal",
    "JournalEntry",
    "JournalError",
    "JournalState",
    "JournalStateError",
    "JournalStore",
    "JournalVersionError",
    "Limiter",
    "LimiterError",
    "LimiterStatistics",
    "LocalLimiter",
    "MjError",
    "Modal",
    "ModeStatistics",
    "NotFoundError",
    "PollSettings",
    "ProgressEvent",
    "PromptResult",
    "ProtocolError",
    "PushVerdict",
    "QueueFullError",
    "RateLimitError",
    "RedisLimiter",
    "RefusalPolicy",
    "Request",
    "RequestResult",
    "ResumePlan",
    "RetryPolicy",
    "ServerError",
    "Shorten",
    "Slot",
    "Submission",
    "SubmissionUncertainError",
    "Task",
    "TaskAction",
    "TaskError",
    "TaskFailedError",
    "TaskLostError",
    "TaskStalledError",
    "TaskStatus",
    "TaskTimeoutError",
    "TransportError",
    "UnsupportedEndpointError",
    "WebhookReceiver",
    "WebhookStatistics",
    "__version__",
    "request_key",
    "run_batch",
    "split_grid",
]


def __getattr__(name: str) -> _typing.Any:
    if name == "__version__":
        import importlib.metadata

        try:
            value: _typing.Any = importlib.metadata.version("mjasync")
        except importlib.metadata.PackageNotFoundError:  # a source tree never installed
            value = "0+unknown"
    elif name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    else:
        raise AttributeError(f"module 'mjasync' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
