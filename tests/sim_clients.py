"""A client tuned for the time-scaled simulator, shared by the job and batch tests."""

from __future__ import annotations

from typing import Any

import mjasync
from mjasync.testing import FakeMidjourney


def fast_client(
    fake: FakeMidjourney, key: str, *, max_retries: int = 3, **options: Any
) -> mjasync.Client:
    """A client that polls every 20 ms and waits out refusals and retries in milliseconds."""
    options.setdefault("poll_interval", 0.02)
    options.setdefault(
        "retry",
        mjasync.RetryPolicy(
            max_retries=max_retries,
            base_delay=0.01,
            jitter=0.5,
            refusal_max_delay=0.05,
            refusal_wait=30.0,
        ),
    )
    return mjasync.Client(fake.base_url, key, **options)
