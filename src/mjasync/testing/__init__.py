"""Test helpers for code that uses mjasync: a faithful fake midjourney-proxy server.

>>> async with FakeMidjourney(accent="csharp", job_duration=0.01) as fake:
...     client = mjasync.Client(fake.base_url, "sk-test")

See :class:`FakeMidjourney` for the options, :class:`Faults` / :class:`FaultRates` for fault
injection and :class:`SimStats` for what it counts.
"""

from __future__ import annotations

from ._fake import FakeMidjourney
from ._sim_config import FaultRates, Faults
from ._sim_stats import SimStats

__all__ = ["FakeMidjourney", "FaultRates", "Faults", "SimStats"]
