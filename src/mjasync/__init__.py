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
    ClientClosedError,
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
from ._jobs.events import ProgressEvent
from ._jobs.job import Job
from ._jobs.limiter import Limiter, LimiterStatistics, LocalLimiter, Slot
from ._jobs.pacing import PollSettings
from ._models import (
    Button,
    ButtonKind,
    ImageRef,
    Submission,
    Task,
    TaskAction,
    TaskStatus,
    VideoRef,
)
from ._requests import (
    Action,
    Blend,
    Change,
    Describe,
    Edit,
    Imagine,
    Modal,
    Request,
    Retexture,
    Shorten,
    SwapFace,
    SwapVideoFace,
    Video,
)
from ._wire.probe import ServerProfile
from ._wire.retry import RefusalPolicy, RetryPolicy

if _typing.TYPE_CHECKING:
    from ._batch.batch import Batch, run_batch
    from ._batch.download import Downloader, DownloadResult, split_grid
    from ._batch.journal import (
        Journal,
        JournalEntry,
        JournalState,
        JournalStore,
        ResumePlan,
        request_key,
    )
    from ._batch.types import (
        BatchEvent,
        BatchEventKind,
        BatchOutcome,
        BatchSummary,
        PromptResult,
        RequestResult,
    )
    from ._integrations.redis_limiter import RedisLimiter
    from ._integrations.webhook import PushVerdict, WebhookReceiver, WebhookStatistics

# Batch, downloads, journal, Redis and webhook code (sqlite3, aiohttp.web, ...) load on first
# use: `import mjasync` stays cheap for a web app that only awaits images.
_LAZY = {
    "Batch": "._batch.batch",
    "run_batch": "._batch.batch",
    "BatchEvent": "._batch.types",
    "BatchEventKind": "._batch.types",
    "BatchOutcome": "._batch.types",
    "BatchSummary": "._batch.types",
    "PromptResult": "._batch.types",
    "RequestResult": "._batch.types",
    "Downloader": "._batch.download",
    "DownloadResult": "._batch.download",
    "split_grid": "._batch.download",
    "Journal": "._batch.journal",
    "JournalEntry": "._batch.journal",
    "JournalState": "._batch.journal",
    "JournalStore": "._batch.journal",
    "ResumePlan": "._batch.journal",
    "request_key": "._batch.journal",
    "RedisLimiter": "._integrations.redis_limiter",
    "PushVerdict": "._integrations.webhook",
    "WebhookReceiver": "._integrations.webhook",
    "WebhookStatistics": "._integrations.webhook",
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
    "ClientClosedError",
    "ClientStatistics",
    "Describe",
    "DownloadError",
    "DownloadResult",
    "Downloader",
    "Edit",
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
    "Retexture",
    "RetryPolicy",
    "ServerError",
    "ServerProfile",
    "Shorten",
    "Slot",
    "Submission",
    "SubmissionUncertainError",
    "SwapFace",
    "SwapVideoFace",
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
    "Video",
    "VideoRef",
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
