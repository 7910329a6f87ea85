"""Each server family's accent: routes, mode prefixes, auth, zero values and error shapes."""

from __future__ import annotations

import pytest

from ._helpers import KEY, wait_until

pytestmark = pytest.mark.anyio

IMAGINE = {"prompt": "a cat"}


# -- auth --------------------------------------------------------------------------------------


async def test_java_auth_reads_mj_api_secret_and_answers_401_empty(make_sim):
    fake, api = await make_sim(accent="java", auth="accent", headers={})
    ok = await api.request("POST", "/mj/submit/imagine", IMAGINE, headers={"mj-api-secret": KEY})
    assert ok[0] == 200 and ok[1]["code"] == 1
    for headers in ({"Authorization": f"Bearer {KEY}"}, {"mj-api-secret": "wrong"}, {}):
        status, body, _ = await api.request("POST", "/mj/submit/imagine", IMAGINE, headers=headers)
        assert (status, body) == (401, "")
    assert fake.stats().refused["auth"] == 3


async def test_csharp_compares_the_raw_header_and_answers_401_text(make_sim):
    # C: the raw Authorization header wins whenever present, else Mj-Api-Secret
    # (trueai-org/midjourney-proxy ed32197, src/Midjourney.API/WorkContext.cs:46-48).
    _, api = await make_sim(accent="csharp", auth="accent", headers={})
    ok = await api.request("GET", "/mj/task/1/fetch", headers={"mj-api-secret": KEY})
    assert ok[0] == 204  # authorised; the task just does not exist
    for headers in (
        {"mj-api-secret": f"Bearer {KEY}"},
        {"Authorization": f"Bearer {KEY}"},
        {"Authorization": "", "mj-api-secret": KEY},
    ):
        status, body, _ = await api.request("GET", "/mj/task/1/fetch", headers=headers)
        assert (status, body) == (401, "Authorization header missing."), headers
    assert (await api.request("GET", "/mj/task/1/fetch", headers={"Authorization": KEY}))[0] == 204


async def test_relay_takes_bearer_or_secret_when_authorization_is_empty(make_sim):
    _, api = await make_sim(accent="relay", auth="accent", headers={})
    for headers in ({"Authorization": f"Bearer {KEY}"}, {"mj-api-secret": KEY}):
        status, body, _ = await api.request("POST", "/mj/submit/imagine", IMAGINE, headers=headers)
        assert status == 200 and body["code"] == 1
    status, body, _ = await api.request(
        "POST",
        "/mj/submit/imagine",
        IMAGINE,
        headers={"Authorization": "Bearer sk-wrong", "mj-api-secret": KEY},
    )
    assert status == 401
    assert set(body["error"]) >= {"message", "type"}


@pytest.mark.parametrize(
    ("auth", "bearer_ok", "secret_ok"),
    [("any", True, True), ("bearer", True, False), ("mj-api-secret", False, True)],
)
async def test_auth_option_picks_the_header(make_sim, auth, bearer_ok, secret_ok):
    _, api = await make_sim(auth=auth, api_keys=["k1", "k2"], headers={})
    bearer = await api.request("GET", "/mj/task/x/fetch", headers={"Authorization": "Bearer k2"})
    secret = await api.request("GET", "/mj/task/x/fetch", headers={"mj-api-secret": "k1"})
    assert (bearer[0] != 401, secret[0] != 401) == (bearer_ok, secret_ok)


async def test_no_keys_means_no_auth(make_sim):
    _, api = await make_sim(api_keys=None, headers={})
    assert (await api.submit("imagine", IMAGINE))["code"] == 1


# -- routes and modes --------------------------------------------------------------------------


async def test_java_serves_no_mode_prefix_and_404s_like_spring(make_sim):
    _, api = await make_sim(accent="java")
    status, body, _ = await api.request("POST", "/mj-fast/mj/submit/imagine", IMAGINE)
    assert status == 404
    assert body["status"] == 404 and body["error"] == "Not Found"
    assert body["path"] == "/mj-fast/mj/submit/imagine" and "timestamp" in body
    assert (await api.submit("imagine", IMAGINE))["code"] == 1


@pytest.mark.parametrize(
    ("accent", "path", "served"),
    [
        ("csharp", "/mj-relax/mj/submit/imagine", True),
        ("csharp", "/relax/mj/submit/imagine", False),
        ("csharp", "/mj-slow/mj/submit/imagine", False),
        ("relay", "/mj-turbo/mj/submit/imagine", True),
        ("relay", "/fast/mj/submit/imagine", True),
        ("relay", "/relax/mj/submit/imagine", True),
        ("relay", "/slow/mj/submit/imagine", False),
    ],
)
async def test_mode_prefixes_per_accent(make_sim, accent, path, served):
    _, api = await make_sim(accent=accent)
    status, body, _ = await api.request("POST", path, IMAGINE)
    accepted = status == 200 and isinstance(body, dict) and body.get("code") == 1
    assert accepted is served


async def test_each_mode_is_its_own_account_and_unprefixed_is_fast(make_sim):
    fake, api = await make_sim(core_size=1, queue_size=0, job_duration=5)
    assert (await api.submit("imagine", IMAGINE))["code"] == 1
    assert (await api.submit("imagine", IMAGINE, prefix="/mj-fast"))["code"] == 9
    assert (await api.submit("imagine", IMAGINE, prefix="/mj-relax"))["code"] == 1
    assert (await api.submit("imagine", IMAGINE, prefix="/mj-turbo"))["code"] == 1
    stats = fake.stats()
    assert dict(stats.active) == {"fast": 1, "relax": 1, "turbo": 1}


@pytest.mark.parametrize(
    ("accent", "path", "method"),
    [
        ("java", "/mj/submit/action", "POST"),
        ("java", "/mj/submit/modal", "POST"),
        ("java", "/mj/submit/shorten", "POST"),
        ("java", "/mj/submit/video", "POST"),
        ("java", "/mj/task/1/cancel", "POST"),
        ("java", "/mj/task/1/image-seed", "GET"),
        ("csharp", "/mj/submit/change", "POST"),
        ("csharp", "/mj/submit/simple-change", "POST"),
    ],
)
async def test_missing_endpoints_404(make_sim, accent, path, method):
    _, api = await make_sim(accent=accent)
    status, body, _ = await api.request(method, path, {})
    assert status == 404
    if accent == "csharp":
        assert body == ""  # ASP.NET's own 404: no body (a known route's 404 has JSON)


@pytest.mark.parametrize(
    "path",
    ["/mj/task/1/cancel", "/mj/submit/retexture", "/mj/insight-face/video-swap", "/mj/nothing"],
)
async def test_relay_answers_missing_routes_with_its_web_ui(make_sim, path):
    # QuantumNous/new-api 65b1654, router/web-router.go:16-30: NoRoute serves the web UI.
    _, api = await make_sim(accent="relay")
    status, body, headers = await api.request("POST", path, {})
    assert status == 200 and headers["Content-Type"].startswith("text/html") and "<html" in body
    status, body, _ = await api.request("GET", "/v1/nothing")
    assert status == 404 and "error" in body


async def test_list_by_condition_can_be_absent(make_sim):
    _, api = await make_sim(list_by_condition=False)
    status, _, _ = await api.request("POST", "/mj/task/list-by-condition", {"ids": []})
    assert status == 404


async def test_wrong_method_is_405(make_sim):
    _, api = await make_sim(accent="java")
    status, body, _ = await api.request("GET", "/mj/submit/imagine")
    assert status == 405 and body["error"] == "Method Not Allowed"


# -- not found, bad bodies ---------------------------------------------------------------------


async def test_unknown_task_fetch_per_accent(make_sim):
    _, java = await make_sim(accent="java")
    _, csharp = await make_sim(accent="csharp")
    _, relay = await make_sim(accent="relay")
    status, body, _ = await java.request("GET", "/mj/task/404/fetch")
    assert (status, body) == (200, "")
    status, body, _ = await csharp.request("GET", "/mj/task/404/fetch")
    assert (status, body) == (204, "")  # ASP.NET's answer to a null ActionResult
    status, body, _ = await relay.request("GET", "/mj/task/404/fetch")
    assert status == 400
    assert body == {"description": "task_no_found ", "type": "upstream_error", "code": 4}


@pytest.mark.parametrize("accent", ["java", "csharp", "relay"])
async def test_body_that_is_not_json_is_400(make_sim, accent):
    fake, api = await make_sim(accent=accent)
    async with api.session.post(
        api.base + "/mj/submit/imagine",
        data=b"{not json",
        headers={**api.headers, "Content-Type": "application/json"},
    ) as resp:
        assert resp.status == 400
    assert fake.stats().refused["invalid"] == 1


# -- what each accent's task looks like -------------------------------------------------------


async def test_java_task_has_no_buttons_field(make_sim):
    _, api = await make_sim(accent="java", job_duration=0.01)
    task = await api.run()
    assert "buttons" not in task and "imageUrls" not in task
    assert task["properties"] == {"finalPrompt": "a cat"}
    assert set(task) >= {"id", "action", "status", "progress", "submitTime", "failReason"}


async def test_csharp_task_matches_the_fixture_shape(make_sim):
    _, api = await make_sim(accent="csharp", job_duration=0.01)
    task = await api.run()
    assert len(task["imageUrls"]) == 4 and task["imageUrls"][0]["url"].endswith("-u1.png")
    for key in ("notifyHook", "messageHash", "discordInstanceId", "finalPrompt", "messageId"):
        assert key in task["properties"]
    assert task["properties"]["messageHash"] in task["buttons"][0]["customId"]


async def test_relay_zero_values_image_rewrite_and_failed_progress(make_sim):
    _, api = await make_sim(accent="relay", job_duration=0.05, start_delay=0.05)
    task_id = await api.imagine("a cat --fail")
    submitted = await api.fetch(task_id)
    assert submitted["status"] == "SUBMITTED"
    assert submitted["startTime"] == 0 and submitted["finishTime"] == 0
    assert submitted["failReason"] == "" and submitted["state"] == ""
    assert submitted["imageUrl"] == "" and submitted["progress"] == ""
    failed = await api.wait_status(task_id, "FAILURE")
    assert failed["progress"] == "100%"
    task = await api.run("a dog")
    assert task["imageUrl"] == f"{api.base}/mj/image/{task['id']}"
    async with api.session.get(task["imageUrl"]) as resp:
        assert resp.status == 200 and resp.content_type == "image/png"


async def test_relay_rewrites_queued_to_code_1(make_sim):
    _, api = await make_sim(accent="relay", core_size=1, job_duration=5)
    await api.submit("imagine", IMAGINE)
    queued = await api.submit("imagine", {"prompt": "second"})
    assert queued["code"] == 1
    assert (await api.fetch(queued["result"]))["status"] == "NOT_START"


async def test_relay_blank_status_right_after_submit(make_sim):
    fake, api = await make_sim(accent="relay", relay_blank_status=0.1, job_duration=0.01)
    task_id = await api.imagine()
    assert (await api.fetch(task_id))["status"] == ""
    await wait_until(lambda: fake.task(task_id)["status"] == "SUCCESS")


async def test_numeric_ids_send_result_as_a_number(make_sim):
    _, api = await make_sim(numeric_ids=True)
    answer = await api.submit("imagine", IMAGINE)
    assert isinstance(answer["result"], int)
    assert (await api.fetch(str(answer["result"])))["id"] == str(answer["result"])
