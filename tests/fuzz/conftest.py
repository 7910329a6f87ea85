"""Hypothesis settings for the fuzz suite.

The ``ci`` profile keeps the whole directory to a few seconds; ``deep`` is for a local hunt
(``MJASYNC_FUZZ_PROFILE=deep .venv/bin/python -m pytest tests/fuzz``). The profile is applied
to these tests only (see :data:`FUZZ`), so other suites' hypothesis settings are untouched.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,  # CI machines are shared: wall-clock limits would only add flakes
    "suppress_health_check": (HealthCheck.too_slow, HealthCheck.data_too_large),
}
settings.register_profile("ci", max_examples=300, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("deep", max_examples=20_000, **_COMMON)  # type: ignore[arg-type]

#: The settings every fuzz test runs with.
FUZZ = settings(settings.get_profile(os.environ.get("MJASYNC_FUZZ_PROFILE", "ci")))
