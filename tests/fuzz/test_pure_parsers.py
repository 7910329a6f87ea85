"""The small parsers are total functions: any input gives a value in range, never an error."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from mjasync._converter import parse_epoch_millis, parse_progress, parse_task_id
from mjasync._wire.retry import parse_retry_after

from .conftest import FUZZ
from .strategies import EPOCH, JUNK, PROGRESS, RETRY_AFTER, TRICKY_TEXT


@FUZZ
@given(st.one_of(PROGRESS, JUNK, TRICKY_TEXT))
@example("²")
@example("9" * 5000 + "%")
@example(float("nan"))
@example(10**400)
def test_parse_progress_is_total(value: Any) -> None:
    result = parse_progress(value)
    assert result is None or (type(result) is int and 0 <= result <= 100)


@FUZZ
@given(st.one_of(EPOCH, JUNK, TRICKY_TEXT))
@example("²")
@example("9" * 5000)
@example(10**400)
@example(-1)
@example(float("inf"))
def test_parse_epoch_millis_is_total(value: Any) -> None:
    result = parse_epoch_millis(value)
    assert result is None or result.tzinfo is UTC


@FUZZ
@given(st.one_of(JUNK, TRICKY_TEXT))
@example(10**400)
@example(float("nan"))
@example(1e300)
def test_parse_task_id_is_total(value: Any) -> None:
    result = parse_task_id(value)
    assert result is None or (isinstance(result, str) and result and result == result.strip())


@FUZZ
@given(RETRY_AFTER)
def test_parse_retry_after_is_total(value: str | None) -> None:
    result = parse_retry_after(value)
    assert result is None or result >= 0


def test_known_values() -> None:
    assert parse_progress("45%") == 45
    assert parse_progress("") is None
    assert parse_progress("150%") == 100
    assert parse_epoch_millis(0) is None
    assert parse_epoch_millis("1700000000000").year == 2023  # type: ignore[union-attr]
    assert parse_task_id(1320098173412546) == "1320098173412546"
