"""mjasync: an asyncio-native client for the Midjourney task API.

See https://example.invalid/mjasync for the guide; the public names are listed in ``__all__``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ._errors import (
    APIError,
    AuthenticationError,
    BannedPromptError,
    InvalidRequestError,
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
    TaskStalledError,
    TaskTimeoutError,
    TransportError,
    UnsupportedEndpointError,
)
from ._models import (
    Button,
    ButtonKind,
    ImageRef,
    Submission,
    Task,
    TaskAction,
    TaskStatus,
)

try:
    __version__ = version("mjasync")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "APIError",
    "AuthenticationError",
    "BannedPromptError",
    "Button",
    "ButtonKind",
    "ImageRef",
    "InvalidRequestError",
    "LimiterError",
    "MjError",
    "NotFoundError",
    "ProtocolError",
    "QueueFullError",
    "RateLimitError",
    "ServerError",
    "Submission",
    "SubmissionUncertainError",
    "Task",
    "TaskAction",
    "TaskError",
    "TaskFailedError",
    "TaskStalledError",
    "TaskStatus",
    "TaskTimeoutError",
    "TransportError",
    "UnsupportedEndpointError",
    "__version__",
]
