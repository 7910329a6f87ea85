"""Test helpers for code that uses mjasync: a faithful fake midjourney-proxy server."""

from __future__ import annotations

__all__: list[str] = []
