"""Server texts reach users in English; the original words stay on the exception.

The texts are the ones the three server families send (see ``mjasync._wire.messages`` for
where each comes from) and every Chinese text the simulator sends.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import mjasync
from mjasync._wire.messages import explain, in_english
from mjasync.testing import FakeMidjourney

pytestmark = pytest.mark.anyio

TESTING = Path(mjasync.__file__).parent / "testing"
CJK = re.compile(r"[\u4e00-\u9fff]")
# Texts the simulator sends on success, never as an error.
NOT_ERRORS = {"成功", "窗口等待", "提交成功"}  # success texts, no error to explain


def _simulator_texts() -> set[str]:
    """Every string literal with Chinese in it in the simulator's source (f-strings too)."""
    texts: set[str] = set()
    for path in TESTING.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        inside_fstrings = {
            id(value)
            for node in ast.walk(tree)
            if isinstance(node, ast.JoinedStr)
            for value in node.values
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):  # "{key}参数错误": a sample value in each hole
                text = "".join(
                    str(v.value) if isinstance(v, ast.Constant) else "7" for v in node.values
                )
            elif isinstance(node, ast.Constant) and id(node) not in inside_fstrings:
                text = node.value if isinstance(node.value, str) else ""
            else:
                continue
            if CJK.search(text):
                texts.add(text)
    return texts


def test_every_text_the_simulator_sends_has_an_english_sentence() -> None:
    texts = _simulator_texts() - NOT_ERRORS
    assert len(texts) >= 15, texts  # the scan found them
    missing = {t for t in texts if explain(t) is None}
    assert not missing, missing
    for text in texts:
        assert not CJK.search(explain(text) or ""), text


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("任务不存在", "no such task"),
        ("task_no_found ", "no such task"),  # new-api's, with its trailing space
        ("队列已满，请稍后尝试", "queue is full"),
        ("提交失败，队列已满，请稍后重试", "queue is full"),
        ("并发数已达上限", "at once"),
        ("队列数已达上限", "queued"),
        ("任务超时", "timed out"),
        ("任务提交超时", "timed out"),
        ("上游任务超时（超过1小时）", "within an hour"),
        ("取消任务", "cancelled"),
        ("关联任务不存在或已失效", "does not exist"),
        ("服务暂不可用，请联系管理员", "administrator"),
        ("用户今日绘图次数已达上限", "quota"),
        ("do_request_failed", "could not reach"),
        ("state长度不能超过255", "at most 255"),
        ("排队中，前面还有3个任务", "3 jobs ahead"),
    ],
)
def test_known_server_texts_become_english(text: str, words: str) -> None:
    sentence = explain(text)
    assert sentence is not None
    assert words in sentence


def test_a_banned_prompt_names_its_word() -> None:
    assert explain("可能包含敏感词", code=24, properties={"bannedWord": "gore"}) == (
        "the prompt contains a word the server bans: 'gore'"
    )
    assert "banned" not in (explain("可能包含敏感词") or "")  # no word known: no word invented
    assert "bans" in (explain("可能包含敏感词") or "")
    assert "bans" in (explain("", code=24) or "")


def test_unknown_and_english_texts_are_left_alone() -> None:
    assert explain("Request cancelled due to output filters") is None
    assert explain(None) is None
    assert explain("   ") is None
    assert in_english("[Invalid parameter] Invalid value") == "[Invalid parameter] Invalid value"


async def test_errors_speak_english_and_keep_the_server_words() -> None:
    async with (
        FakeMidjourney(api_keys=("sk-msg-test-0001",), task_timeout=0.1) as fake,
        mjasync.Client(fake.base_url, "sk-msg-test-0001", poll_interval=0.02) as client,
    ):
        with pytest.raises(mjasync.BannedPromptError) as banned:
            await client.imagine("some gore here")
        with pytest.raises(mjasync.NotFoundError) as missing:
            await client.fetch("123")
        with pytest.raises(mjasync.TaskFailedError) as timed_out:
            await client.imagine("a slow storm --stall")

    exc = banned.value
    assert exc.message == "the prompt contains a word the server bans: 'gore'"
    assert exc.description == "可能包含敏感词"
    assert exc.banned_word == "gore"
    assert str(exc).startswith(exc.message)
    assert "可能包含敏感词" in str(exc)  # still there for logs, after the English

    assert missing.value.message.startswith("no such task")
    # C answers an unknown id with 204 and no body (trueai-org/midjourney-proxy ed32197,
    # src/Midjourney.API/Controllers/TaskController.cs:75-79): no server words to keep.
    assert missing.value.http_status == 204

    failed = timed_out.value
    assert failed.message == "the job timed out on the server"
    assert failed.fail_reason == "任务超时"
