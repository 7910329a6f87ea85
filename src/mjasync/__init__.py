"""mjasync: an asyncio-native client for the Midjourney task API.

See https://example.invalid/mjasync for the guide; the public names are listed in ``__all__``.
"""

from __future__ import annotations

import importlib.metadata as _metadata

from ._batch import Batch, run_batch
from ._batch_types import (
    BatchEvent,
    BatchEventKind,
    BatchOutcome,
    BatchSummary,
    PromptResult,
    RequestResult,
)
from ._client import Client, ClientStatistics, ModeStatistics
from ._download import Downloader, DownloadResult, split_grid
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
from ._journal import Journal, JournalEntry, JournalState, JournalStore, ResumePlan, request_key
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
from ._redis import RedisLimiter
from ._requests import Action, Blend, Change, Describe, Imagine, Modal, Request, Shorten
from ._retry import RetryPolicy
from ._scheduler import RefusalPolicy
from ._webhook import PushVerdict, WebhookReceiver, WebhookStatistics

try:
    __version__ = _metadata.version("mjasync")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

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
