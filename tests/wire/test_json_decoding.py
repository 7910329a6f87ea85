"""The fast JSON decoder (orjson, the `speed` extra) answers exactly as the standard one."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mjasync import _json as _api

pytest.importorskip("orjson")

# Integers beyond 64 bits are the one known difference: orjson reads them as floats. mjasync
# referees the fields it reads as numbers (``id``, ``result``; see the cases below); elsewhere
# in a payload such integers do not occur (Discord ids and epoch milliseconds fit in 64 bits).
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _outcome(loads, body: bytes) -> object:
    try:
        return ("ok", loads(body))
    except (ValueError, RecursionError) as exc:
        return ("error", type(exc).__mro__[-3].__name__)  # ValueError or RecursionError


@given(json_values)
def test_same_values_as_the_standard_decoder(value):
    body = json.dumps(value, ensure_ascii=False).encode()
    assert _api._fast_or_stdlib_loads(body) == json.loads(body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"progress": NaN}',  # orjson refuses NaN; the standard decoder reads it
        b'{"id": 123456789012345678901234567890}',  # beyond 64 bits: orjson rounds it
        b'{"code": 1, "result": 123456789012345678901234567890}',
        b'[{"id": 123456789012345678901234567890, "status": "SUCCESS"}]',
        '{"id": "1"}'.encode("utf-16"),  # json.loads detects UTF-16; orjson does not
        b"[" * 100_000,  # too deep for both
        b'{"id": "1",}',  # invalid for both
        b"\xff\xfe\x00",  # not text
        b'{"a": 1, "a": 2}',  # duplicate keys: the last wins in both
    ],
)
def test_edge_bodies_match_the_standard_decoder(body):
    assert _outcome(_api._fast_or_stdlib_loads, body) == _outcome(json.loads, body)


def test_the_fast_decoder_is_used_when_installed():
    assert _api.loads is _api._fast_or_stdlib_loads


def test_everything_works_without_the_speed_extra(tmp_path):
    """With orjson absent, the standard library does all the JSON work (a fresh interpreter)."""
    script = tmp_path / "no_orjson.py"
    script.write_text(
        "import sys\n"
        "sys.modules['orjson'] = None  # as if not installed\n"
        "import json, math\n"
        "from mjasync import _json\n"
        "from mjasync._converter import parse_task\n"
        "assert _json.loads is _json._stdlib_loads\n"
        "payload = {'id': 12345678901234567890123, 'status': 'SUCCESS', 'x': math.inf,\n"
        "           'buttons': [{'customId': 'MJ::JOB::upsample::1::h', 'label': 'U1'}]}\n"
        "task = parse_task(payload)\n"
        "assert task.id == '12345678901234567890123' and task.buttons[0].label == 'U1'\n"
        "assert dict(task.raw) == payload\n"
        "assert _json.loads(json.dumps([payload]).encode()) == [payload]\n"
        "print('ok')\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
