"""mjasync: an asyncio-native client for the Midjourney task API.

The public names are listed in ``__all__`` (everything else is private and may change):

- the client and its jobs: :class:`Client`, :class:`Job`, :class:`ProgressEvent`;
- what servers return: :class:`Task`, :class:`TaskStatus`, :class:`TaskAction`,
  :class:`Button`, :class:`Submission`;
- requests: :data:`Request` and its kinds (:class:`Imagine`, :class:`Blend`, ..., and for the
  newer servers :class:`Video`, :class:`Edit`, :class:`Retexture`, :class:`SwapFace`,
  :class:`SwapVideoFace`);
- settings: :class:`RetryPolicy`, :class:`PollSettings`, and for several processes sharing
  one account :class:`RedisLimiter` (and :class:`RedisPushBus` for pushes);
- pushes and batches: :class:`WebhookReceiver`, :func:`run_batch`, :class:`Batch`,
  :class:`BatchEvent`, :class:`BatchSummary`;
- the error tree rooted at :class:`MjError` (drawn in ``mjasync._errors``).

The fake server for your tests is :mod:`mjasync.testing`.
"""

from __future__ import annotations

import typing as _typing

from ._client import Client
from ._errors import (
    APIError,
    AuthenticationError,
    BannedPromptError,
    InvalidRequestError,
    JournalError,
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
from ._jobs.pacing import PollSettings
from ._models import Button, Submission, Task, TaskAction, TaskStatus
from ._requests import (
    Action,
    Blend,
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
from ._wire.retry import RetryPolicy

if _typing.TYPE_CHECKING:
    from ._batch.batch import Batch, run_batch
    from ._batch.types import BatchEvent, BatchSummary
    from ._integrations.redis_bus import RedisPushBus
    from ._integrations.redis_limiter import RedisLimiter
    from ._integrations.webhook import WebhookReceiver

# Batch, journal, Redis and webhook code (sqlite3, aiohttp.web, ...) load on first use:
# `import mjasync` stays cheap for a web app that only awaits images.
_LAZY = {
    "Batch": "._batch.batch",
    "run_batch": "._batch.batch",
    "BatchEvent": "._batch.types",
    "BatchSummary": "._batch.types",
    "RedisLimiter": "._integrations.redis_limiter",
    "RedisPushBus": "._integrations.redis_bus",
    "WebhookReceiver": "._integrations.webhook",
}

__all__ = [
    "APIError",
    "Action",
    "AuthenticationError",
    "BannedPromptError",
    "Batch",
    "BatchEvent",
    "BatchSummary",
    "Blend",
    "Button",
    "Client",
    "Describe",
    "Edit",
    "Imagine",
    "InvalidRequestError",
    "Job",
    "JournalError",
    "LimiterError",
    "MjError",
    "Modal",
    "NotFoundError",
    "PollSettings",
    "ProgressEvent",
    "ProtocolError",
    "QueueFullError",
    "RateLimitError",
    "RedisLimiter",
    "RedisPushBus",
    "Request",
    "Retexture",
    "RetryPolicy",
    "ServerError",
    "Shorten",
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
    "WebhookReceiver",
    "__version__",
    "run_batch",
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
