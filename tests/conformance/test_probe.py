"""``client.probe()``: family, key, auth, modes and endpoints from cheap, unpaid requests.

The pure readers are checked on the answers the families' source documents; the whole probe runs
against the simulator in each accent (and with features switched off), and must leave no task.
"""

from __future__ import annotations

import json

import pytest

import mjasync
from mjasync._wire.probe import (
    ProbeAnswer,
    ServerProfile,
    c_endpoints,
    c_switch,
    classify_fetch,
    family_from_docs,
    family_from_home,
    family_from_status,
    relay_switch,
)
from mjasync.testing import FakeMidjourney

from ._sim import KEY
from .sources import c, j, n

pytestmark = pytest.mark.anyio


def answer(status: int, body: object = b"", content_type: str = "", **kw: str) -> ProbeAnswer:
    data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    if not isinstance(body, bytes):
        content_type = content_type or "application/json"
    return ProbeAnswer(status, content_type, data, **kw)  # type: ignore[arg-type]


# -- the readers, on documented answers --------------------------------------------------------


def test_family_pages() -> None:
    # N: controller/misc.go:42,52,86 (public /api/status); middleware/cors.go:18-23.
    assert family_from_status(answer(200, {"success": True, "data": {"version": "v0.9"}})) == (
        "relay",
        "v0.9",
    )
    assert family_from_status(answer(404, new_api_version="v1.0")) == ("relay", "v1.0")
    assert family_from_status(answer(200, b"<html>", "text/html")) is None
    # C: Controllers/HomeController.cs:36-39,58-59,230 (anonymous /mj/home).
    home = family_from_home(
        answer(200, {"success": True, "data": {"version": "v11.1.0", "isGuest": True}})
    )
    assert home is not None and home.version == "v11.1.0" and home.guest and not home.demo
    assert family_from_home(answer(200, b"<html>", "text/html")) is None
    # J: spring/config/WebMvcConfig.java:21-23 (/mj/ -> doc.html).
    assert family_from_docs(answer(302, location="/mj/doc.html"))
    assert not family_from_docs(answer(200, b"<html>", "text/html"))


@pytest.mark.parametrize(
    ("source", "reply", "family", "key_ok", "route_ok"),
    [
        (j("controller/TaskController.java:37-42"), answer(200), "java", True, True),
        (j("support/ApiAuthorizeInterceptor.java:20-30"), answer(401), "java", False, True),
        (c("Controllers/TaskController.cs:75-79"), answer(204), "csharp", True, True),
        (
            c("SimpleAuthMiddleware.cs:116-121"),
            answer(401, b"Authorization header missing."),
            "csharp",
            False,
            True,
        ),
        (
            c("SimpleAuthMiddleware.cs:94-99"),
            answer(403, "账号不可用".encode()),
            "csharp",
            False,
            True,
        ),
        (c("RateLimitingMiddleware.cs:100-145"), answer(403), "csharp", None, True),
        (
            n("relay/mjproxy_handler.go:318-331"),
            answer(400, {"description": "task_no_found ", "type": "upstream_error", "code": 4}),
            "relay",
            True,
            True,
        ),
        (
            n("middleware/utils.go:12-27"),
            answer(401, {"error": {"message": "bad", "type": "new_api_error"}}),
            "relay",
            False,
            True,
        ),
        (n("router/web-router.go:16-30"), answer(200, b"<html/>", "text/html"), None, None, False),
        ("any server without the API at this base", answer(404), None, None, False),
    ],
)
def test_classify_fetch(
    source: str, reply: ProbeAnswer, family: str | None, key_ok: bool | None, route_ok: bool
) -> None:
    verdict = classify_fetch(reply)
    assert (verdict.family, verdict.key_ok, verdict.route_ok) == (family, key_ok, route_ok), source


def test_switches() -> None:
    # C: SubmitController.cs:926-934 (video), :213-273 (upload), FaceSwapService.cs (swap).
    assert c_switch(answer(200, {"code": 4, "description": "视频功能未启用"})) == "disabled"
    assert c_switch(answer(200, {"code": 4, "description": "Prompt 不能为空"})) == "available"
    assert c_switch(answer(200, {"code": 4, "description": "禁止上传"})) == "disabled"
    assert c_switch(answer(404)) == "absent"
    # N: middleware/distributor.go (503), relay/mjproxy_handler.go:447-477 (task_not_found).
    assert relay_switch(answer(200, b"<html/>", "text/html")) == "absent"
    assert relay_switch(answer(503, {"error": {"code": "model_not_found"}})) == "disabled"
    assert relay_switch(answer(400, {"code": 4, "description": "task_not_found"})) == "available"


def test_c_endpoints_by_release() -> None:
    assert c_endpoints("v11.10.3")["change"] == "absent"
    old = c_endpoints("v8.5.0")
    assert old["change"] == "available" and old["video"] == "absent" and old["edits"] == "absent"
    assert c_endpoints(None)["change"] == "unknown"


def test_profile_arguments() -> None:
    profile = ServerProfile("https://mj.example", "csharp", auth="mj-api-secret", mode="fast")
    assert profile.client_arguments() == {
        "base_url": "https://mj.example",
        "auth": "mj-api-secret",
        "mode": "fast",
    }
    assert profile.client_code() == (
        "mjasync.Client('https://mj.example', os.environ[\"MJ_API_KEY\"], "
        "auth='mj-api-secret', mode='fast')"
    )
    assert profile.cli_flags() == [
        "--base-url",
        "https://mj.example",
        "--auth",
        "mj-api-secret",
        "--mode",
        "fast",
    ]


# -- the whole probe, against the simulator -----------------------------------------------------


async def probe(fake: FakeMidjourney, key: str | None = KEY, **options: object) -> ServerProfile:
    client = mjasync.Client(fake.base_url, key, mode="fast", **options)  # type: ignore[arg-type]
    try:
        return await client.probe()  # an unopened client: no job machinery needed
    finally:
        await client.aclose()


async def test_java() -> None:
    async with FakeMidjourney(accent="java", api_keys=(KEY,), auth="accent") as fake:
        profile = await probe(fake)  # the default auth, bearer: J refuses it
        assert fake.stats().accepted == 0 and fake.stats().tasks == 0
    assert (profile.family, profile.key_accepted, profile.auth) == ("java", True, "mj-api-secret")
    assert profile.mode is None and profile.modes == ()
    assert profile.available("change") and profile.endpoints["video"] == "absent"
    assert profile.endpoints["action"] == "absent"
    assert any("auth='mj-api-secret'" in w for w in profile.warnings)
    assert any("mode=None" in w for w in profile.warnings)
    assert "mode=None" in profile.client_code()


async def test_csharp() -> None:
    async with FakeMidjourney(accent="csharp", api_keys=(KEY,), auth="accent") as fake:
        profile = await probe(fake, auth="mj-api-secret")
        assert fake.stats().accepted == 0 and fake.stats().tasks == 0
    assert (profile.family, profile.version, profile.key_accepted) == ("csharp", "v11.10.3", True)
    assert profile.auth == "mj-api-secret" and profile.mode == "fast"
    assert profile.modes == ("fast", "relax", "turbo")
    for name in ("video", "edits", "retexture", "upload", "swap_face", "cancel", "action"):
        assert profile.available(name), name
    assert profile.endpoints["change"] == "absent"
    assert profile.endpoints["swap_video_face"] == "unknown"  # whitelisted users only
    assert profile.warnings == ()


async def test_csharp_with_features_off_and_no_admin() -> None:
    async with FakeMidjourney(
        accent="csharp",
        api_keys=(KEY,),
        admin_keys=("root",),
        disabled=("video", "upload", "face_swap"),
    ) as fake:
        profile = await probe(fake, auth="mj-api-secret")
        assert fake.stats().tasks == 0
    for name in ("video", "upload", "edits", "retexture", "swap_face", "cancel"):
        assert profile.endpoints[name] == "disabled", name
    assert any("admin" in w for w in profile.warnings)
    assert any("uploads off" in w for w in profile.warnings)


async def test_relay() -> None:
    async with FakeMidjourney(accent="relay", api_keys=(KEY,), auth="accent") as fake:
        profile = await probe(fake)
        assert fake.stats().accepted == 0 and fake.stats().tasks == 0
    assert (profile.family, profile.version, profile.key_accepted) == ("relay", "v0.9.0", True)
    assert profile.auth == "bearer" and profile.mode is None
    assert profile.available("video") and profile.available("swap_face")
    assert profile.endpoints["edits"] == "unknown"  # its route is there; sold or not, unknown
    for name in ("retexture", "swap_video_face", "cancel"):
        assert profile.endpoints[name] == "absent", name
    assert any("notifyHook" in w for w in profile.warnings)


async def test_old_relay_and_unsold_features() -> None:
    async with FakeMidjourney(accent="relay", api_keys=(KEY,), relay_legacy=True) as fake:
        legacy = await probe(fake)
    assert legacy.family == "relay" and legacy.version == "v0.9.0"
    assert legacy.endpoints["video"] == legacy.endpoints["edits"] == "absent"
    async with FakeMidjourney(
        accent="relay", api_keys=(KEY,), disabled=("video", "face_swap")
    ) as fake:
        unsold = await probe(fake)
    assert unsold.endpoints["video"] == unsold.endpoints["swap_face"] == "disabled"


@pytest.mark.parametrize("accent", ["java", "csharp", "relay"])
async def test_a_wrong_key_is_reported(accent: str) -> None:
    async with FakeMidjourney(accent=accent, api_keys=(KEY,), auth="accent") as fake:  # type: ignore[arg-type]
        profile = await probe(fake, key="sk-wrong-0123456789")
    assert profile.family == accent and profile.key_accepted is False
    assert any("check the API key" in w for w in profile.warnings)


async def test_a_base_url_with_the_api_path_in_it() -> None:
    async with FakeMidjourney(accent="csharp", api_keys=(KEY,)) as fake:
        client = mjasync.Client(fake.base_url + "/mj", KEY, auth="mj-api-secret")
        try:
            profile = await client.probe()
        finally:
            await client.aclose()
    assert profile.family is None
    assert any("without /mj" in w for w in profile.warnings)
