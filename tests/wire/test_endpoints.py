"""Every endpoint's URL and JSON body, mode prefixes, both auth headers, env-var fallbacks."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import mjasync
from mjasync import ProtocolError, UnsupportedEndpointError

from .conftest import GIF, JPEG, KEY, PNG, WEBP, LoopbackServer, reply

pytestmark = pytest.mark.anyio

TID = "1320098173412546"
CID = "MJ::JOB::upsample::1::0ddb91a0-af46-4ae9-8e8e-c271074eb6e6"
ACCEPTED = {"code": 1, "description": "成功", "result": "8498455807619990"}
NONCE = re.compile(r"^mjasync-[0-9a-f]{32}$")


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def accept_all_submits(server: LoopbackServer, prefix: str = "/mj-fast") -> None:
    server.script("POST", prefix + r"/mj/submit/\w+", reply(200, ACCEPTED))


# -- submit bodies ------------------------------------------------------------------------------


async def test_submit_imagine_body_and_url(
    server: LoopbackServer, client: mjasync.Client, tmp_path: Path
) -> None:
    accept_all_submits(server)
    jpeg_file = tmp_path / "ref.jpg"
    jpeg_file.write_bytes(JPEG)
    sub = await client.submit_imagine(
        "a black cat --ar 3:2",
        images=[PNG, jpeg_file, data_url(GIF, "image/gif"), bytearray(WEBP)],
        bot_type="niji_journey",
        state="my-state",
        notify_hook="https://me.example/hook?secret=1",
    )
    assert sub.task_id == "8498455807619990"
    assert sub.code == 1
    assert sub.description == "成功"
    [request] = server.requests
    assert request.method == "POST"
    assert request.path == "/mj-fast/mj/submit/imagine"
    assert request.headers["Content-Type"].startswith("application/json")
    assert request.json == {
        "prompt": "a black cat --ar 3:2",
        "base64Array": [
            data_url(PNG, "image/png"),
            data_url(JPEG, "image/jpeg"),
            data_url(GIF, "image/gif"),
            data_url(WEBP, "image/webp"),
        ],
        "botType": "NIJI_JOURNEY",
        "state": "my-state",
        "notifyHook": "https://me.example/hook?secret=1",
    }


async def test_submit_imagine_minimal_body_gets_a_state_nonce(
    server: LoopbackServer, client: mjasync.Client
) -> None:
    accept_all_submits(server)
    await client.submit_imagine("猫猫")
    await client.submit_imagine("猫猫")
    first, second = (r.json for r in server.requests)
    assert first["prompt"] == "猫猫"  # sent as UTF-8, not mangled
    assert first["base64Array"] == []
    assert "botType" not in first
    assert "notifyHook" not in first
    assert NONCE.match(first["state"])
    assert NONCE.match(second["state"])
    assert first["state"] != second["state"]


async def test_submit_blend_body(server: LoopbackServer, client: mjasync.Client) -> None:
    accept_all_submits(server)
    await client.submit_blend([PNG, JPEG], dimensions="portrait", state="b")
    await client.submit_blend([PNG, JPEG, GIF, WEBP, PNG])
    first, second = server.requests
    assert first.path == "/mj-fast/mj/submit/blend"
    assert first.json == {
        "base64Array": [data_url(PNG, "image/png"), data_url(JPEG, "image/jpeg")],
        "dimensions": "PORTRAIT",
        "state": "b",
    }
    assert second.json["dimensions"] == "SQUARE"  # the default
    assert len(second.json["base64Array"]) == 5


async def test_submit_describe_body(
    server: LoopbackServer, client: mjasync.Client, tmp_path: Path
) -> None:
    accept_all_submits(server)
    image = tmp_path / "in.png"
    image.write_bytes(PNG)
    await client.submit_describe(image, state="d")
    await client.submit_describe("https://cdn.example/cat.png", state="d2")
    first, second = server.requests
    assert first.path == "/mj-fast/mj/submit/describe"
    assert first.json == {"base64": data_url(PNG, "image/png"), "state": "d"}
    assert second.json == {"link": "https://cdn.example/cat.png", "state": "d2"}


async def test_submit_shorten_body(server: LoopbackServer, client: mjasync.Client) -> None:
    accept_all_submits(server)
    await client.submit_shorten("a very long prompt about a cat", bot_type="MID_JOURNEY")
    [request] = server.requests
    assert request.path == "/mj-fast/mj/submit/shorten"
    assert request.json["prompt"] == "a very long prompt about a cat"
    assert request.json["botType"] == "MID_JOURNEY"
    assert NONCE.match(request.json["state"])


async def test_submit_action_body(server: LoopbackServer, client: mjasync.Client) -> None:
    accept_all_submits(server)
    await client.submit_action(TID, CID, state="a", notify_hook="http://127.0.0.1:9/h")
    [request] = server.requests
    assert request.path == "/mj-fast/mj/submit/action"
    assert request.json == {
        "taskId": TID,
        "customId": CID,
        "state": "a",
        "notifyHook": "http://127.0.0.1:9/h",
    }


async def test_submit_modal_body(server: LoopbackServer, client: mjasync.Client) -> None:
    accept_all_submits(server)
    await client.submit_modal(TID, prompt="a cat --zoom 1.5", state="m")
    await client.submit_modal(TID, prompt="a red hat", mask=PNG, state="m2")
    first, second = server.requests
    assert first.path == "/mj-fast/mj/submit/modal"
    assert first.json == {"taskId": TID, "prompt": "a cat --zoom 1.5", "state": "m"}
    assert second.json == {
        "taskId": TID,
        "prompt": "a red hat",
        "maskBase64": data_url(PNG, "image/png"),
        "state": "m2",
    }


async def test_submission_queued_code_22(server: LoopbackServer, client: mjasync.Client) -> None:
    server.script(
        "POST",
        "/mj-fast/mj/submit/imagine",
        reply(200, {"code": 22, "description": "排队中", "result": 741798445574458,
                    "properties": {"numberOfQueues": 4}}),
    )  # fmt: skip
    sub = await client.submit_imagine("cat")
    assert sub.task_id == "741798445574458"  # a JSON number becomes a str
    assert sub.queued
    assert sub.queue_position == 4


# -- reads ------------------------------------------------------------------------------------


async def test_fetch_url_and_result(server: LoopbackServer, client: mjasync.Client) -> None:
    server.script(
        "GET", f"/mj-fast/mj/task/{TID}/fetch", reply(200, {"id": TID, "status": "SUCCESS"})
    )
    task = await client.fetch(TID)
    assert task.id == TID
    assert task.is_terminal
    [request] = server.requests
    assert (request.method, request.path, request.body) == (
        "GET",
        f"/mj-fast/mj/task/{TID}/fetch",
        b"",
    )


@pytest.mark.parametrize("payload", [{"id": None, "status": "SUCCESS"}, {"id": ""}])
async def test_fetch_of_a_task_without_id_names_the_request(
    server: LoopbackServer, client: mjasync.Client, payload: dict[str, Any]
) -> None:
    path = f"/mj-fast/mj/task/{TID}/fetch"
    server.script("GET", path, reply(200, payload))
    with pytest.raises(ProtocolError) as info:
        await client.fetch(TID)
    assert f"[GET {path}]" in str(info.value)
    assert info.value.body is not None


async def test_list_by_condition_body(server: LoopbackServer, client: mjasync.Client) -> None:
    server.script("POST", "/mj-fast/mj/task/list-by-condition", reply(200, [{"id": "1"}]))
    tasks = await client.fetch_many(["1", "2"])
    assert list(tasks) == ["1"]
    [request] = server.requests
    assert request.json == {"ids": ["1", "2"]}


@pytest.mark.parametrize("result", [1234567890, "1234567890"])
async def test_image_seed(server: LoopbackServer, client: mjasync.Client, result: object) -> None:
    server.script(
        "GET",
        f"/mj-fast/mj/task/{TID}/image-seed",
        reply(200, {"code": 1, "description": "成功", "result": result}),
    )
    seed = await client.image_seed(TID)
    assert seed == "1234567890"
    assert isinstance(seed, str)
    assert server.requests[0].method == "GET"


async def test_image_seed_without_result_names_the_request(
    server: LoopbackServer, client: mjasync.Client
) -> None:
    path = f"/mj-fast/mj/task/{TID}/image-seed"
    server.script("GET", path, reply(200, {"code": 1, "description": "成功", "result": None}))
    with pytest.raises(ProtocolError) as info:
        await client.image_seed(TID)
    assert f"[GET {path}]" in str(info.value)


async def test_cancel(server: LoopbackServer, client: mjasync.Client) -> None:
    server.script("POST", f"/mj-fast/mj/task/{TID}/cancel", reply(200, {"code": 1}))
    await client.cancel(TID)
    [request] = server.requests
    assert (request.method, request.path) == ("POST", f"/mj-fast/mj/task/{TID}/cancel")


async def test_cancel_404_is_unsupported(server: LoopbackServer, client: mjasync.Client) -> None:
    with pytest.raises(UnsupportedEndpointError) as info:
        await client.cancel(TID)
    assert info.value.http_status == 404
    assert f"/mj-fast/mj/task/{TID}/cancel" in str(info.value)


# -- modes and URL templates ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "prefix"),
    [
        ({}, "/mj-fast"),
        ({"mode": "fast"}, "/mj-fast"),
        ({"mode": "relax"}, "/mj-relax"),
        ({"mode": "turbo"}, "/mj-turbo"),
        ({"mode": "RELAX"}, "/mj-relax"),
        ({"mode": None}, ""),
        ({"mode": "relax", "mode_path": "/{mode}"}, "/relax"),
        ({"mode": "fast", "mode_path": "/api/{mode}/"}, "/api/fast"),
        ({"mode": None, "mode_path": "/{mode}"}, ""),
    ],
)
async def test_mode_prefixes(
    server: LoopbackServer,
    make_client: Callable[..., mjasync.Client],
    options: dict[str, Any],
    prefix: str,
) -> None:
    accept_all_submits(server, prefix)
    server.script("GET", prefix + r"/mj/task/\d+/fetch", reply(200, {"id": TID}))
    server.script("POST", prefix + "/mj/task/list-by-condition", reply(200, []))
    server.script("GET", prefix + r"/mj/task/\d+/image-seed", reply(200, {"code": 1, "result": 7}))
    async with make_client(**options) as client:
        await client.submit_imagine("cat")
        await client.submit_blend([PNG, PNG])
        await client.submit_describe(PNG)
        await client.submit_shorten("cat")
        await client.submit_action(TID, CID)
        await client.submit_modal(TID, prompt="x")
        await client.fetch(TID)
        await client.fetch_many([TID])
        await client.image_seed(TID)
    assert [r.path for r in server.requests] == [
        f"{prefix}/mj/submit/imagine",
        f"{prefix}/mj/submit/blend",
        f"{prefix}/mj/submit/describe",
        f"{prefix}/mj/submit/shorten",
        f"{prefix}/mj/submit/action",
        f"{prefix}/mj/submit/modal",
        f"{prefix}/mj/task/{TID}/fetch",
        f"{prefix}/mj/task/list-by-condition",
        f"{prefix}/mj/task/{TID}/image-seed",
    ]


async def test_per_call_mode_overrides_the_client_mode(
    server: LoopbackServer, client: mjasync.Client
) -> None:
    server.script("GET", r".*/fetch", reply(200, {"id": TID}))
    await client.fetch(TID, mode="relax")
    await client.fetch(TID, mode=None)
    await client.fetch(TID)
    assert [r.path for r in server.requests] == [
        f"/mj-relax/mj/task/{TID}/fetch",
        f"/mj/task/{TID}/fetch",
        f"/mj-fast/mj/task/{TID}/fetch",
    ]


async def test_base_url_with_a_path_and_trailing_slash(
    server: LoopbackServer, make_client: Callable[..., mjasync.Client]
) -> None:
    server.script("GET", r".*/fetch", reply(200, {"id": TID}))
    async with make_client(base_url=server.url + "/relay/v1/") as client:
        assert client.base_url == server.url + "/relay/v1"
        await client.fetch(TID)
    assert server.requests[0].path == f"/relay/v1/mj-fast/mj/task/{TID}/fetch"


@pytest.mark.parametrize("mode_path", ["/mj", "mj-{mode}", "/{mode}/{mode}", "/{other}"])
def test_bad_mode_path_is_refused(mode_path: str) -> None:
    with pytest.raises(ValueError, match="mode_path"):
        mjasync.Client("http://127.0.0.1:1", mode_path=mode_path)


# -- auth -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "authorization", "secret"),
    [
        ({}, f"Bearer {KEY}", None),
        ({"auth": "bearer"}, f"Bearer {KEY}", None),
        ({"auth": "mj-api-secret"}, None, KEY),
        ({"api_key": None}, None, None),
        ({"api_key": None, "auth": "mj-api-secret"}, None, None),
    ],
)
async def test_auth_headers(
    server: LoopbackServer,
    make_client: Callable[..., mjasync.Client],
    options: dict[str, Any],
    authorization: str | None,
    secret: str | None,
) -> None:
    accept_all_submits(server)
    server.script("GET", r".*/fetch", reply(200, {"id": TID}))
    async with make_client(**options) as client:
        await client.submit_imagine("cat")
        await client.fetch(TID)
    for request in server.requests:
        assert request.headers.get("Authorization") == authorization
        assert request.headers.get("mj-api-secret") == secret
        assert "application/json" in request.headers.get("Accept", "")


def test_bad_auth_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="auth"):
        mjasync.Client("http://127.0.0.1:1", "k", auth="basic")  # type: ignore[arg-type]


# -- environment fallbacks --------------------------------------------------------------------


async def test_env_vars_are_the_defaults(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MJ_BASE_URL", server.url)
    monkeypatch.setenv("MJ_API_KEY", "sk-from-env-0000000000wxyz")
    monkeypatch.setenv("MJ_MODE", "relax")
    server.script("GET", r".*/fetch", reply(200, {"id": TID}))
    async with mjasync.Client() as client:
        assert client.base_url == server.url
        assert client.mode == "relax"
        await client.fetch(TID)
    [request] = server.requests
    assert request.path == f"/mj-relax/mj/task/{TID}/fetch"
    assert request.headers["Authorization"] == "Bearer sk-from-env-0000000000wxyz"


async def test_arguments_win_over_env_vars(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MJ_BASE_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("MJ_API_KEY", "sk-from-env-0000000000wxyz")
    monkeypatch.setenv("MJ_MODE", "relax")
    server.script("GET", r".*/fetch", reply(200, {"id": TID}))
    async with mjasync.Client(server.url, KEY, mode="turbo") as client:
        await client.fetch(TID)
    [request] = server.requests
    assert request.path == f"/mj-turbo/mj/task/{TID}/fetch"
    assert request.headers["Authorization"] == f"Bearer {KEY}"


async def test_env_mode_none_means_no_prefix(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MJ_BASE_URL", server.url)
    monkeypatch.setenv("MJ_MODE", "none")
    server.script("GET", r".*/fetch", reply(200, {"id": TID}))
    async with mjasync.Client() as client:
        assert client.mode is None
        await client.fetch(TID)
    assert server.requests[0].path == f"/mj/task/{TID}/fetch"
    assert "Authorization" not in server.requests[0].headers


def test_bad_env_mode_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MJ_MODE", "slow")
    with pytest.raises(ValueError, match="mode"):
        mjasync.Client("http://127.0.0.1:1")


def test_missing_base_url_says_how_to_fix() -> None:
    with pytest.raises(ValueError, match="MJ_BASE_URL"):
        mjasync.Client()


# -- lifecycle --------------------------------------------------------------------------------


async def test_an_error_inside_async_with_propagates_as_itself(
    server: LoopbackServer, make_client: Callable[..., mjasync.Client]
) -> None:
    server.script("GET", r".*/fetch", reply(200))  # J: unknown id -> empty 200
    with pytest.raises(mjasync.NotFoundError):
        async with make_client() as client:
            await client.fetch(TID)


async def test_aclose_is_idempotent_and_a_closed_client_refuses_work(
    server: LoopbackServer, make_client: Callable[..., mjasync.Client]
) -> None:
    server.script("GET", r".*/fetch", reply(200, {"id": TID}))
    client = make_client()
    await client.fetch(TID)
    await client.aclose()
    await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await client.fetch(TID)
    assert len(server.requests) == 1


async def test_own_session_is_used_and_left_open(
    server: LoopbackServer, make_client: Callable[..., mjasync.Client]
) -> None:
    import aiohttp

    server.script("GET", r".*/fetch", reply(200, {"id": TID}))
    async with aiohttp.ClientSession(headers={"X-Mine": "yes"}) as session:
        async with make_client(session=session) as client:
            await client.fetch(TID)
        assert not session.closed
    [request] = server.requests
    assert request.headers["X-Mine"] == "yes"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
