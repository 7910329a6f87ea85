"""The browser tests' summary line: where the screenshots are (CI keeps them)."""

from __future__ import annotations

import pytest

from ._pages import SAVED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SAVED:
        terminalreporter.write_sep("-", "browser screenshots (CI artifacts)")
        for path in SAVED:
            terminalreporter.write_line(f"screenshot: {path}")
