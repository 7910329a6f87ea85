"""Buttons, actions, MODAL and /submit/modal, describe, shorten, blend, validation."""

from __future__ import annotations

import re

import pytest

from ._helpers import DATA_URL, wait_until

pytestmark = pytest.mark.anyio

GRID_IDS = [
    r"MJ::JOB::upsample::1::{h}",
    r"MJ::JOB::upsample::2::{h}",
    r"MJ::JOB::upsample::3::{h}",
    r"MJ::JOB::upsample::4::{h}",
    r"MJ::JOB::reroll::0::{h}::SOLO",
    r"MJ::JOB::variation::1::{h}",
    r"MJ::JOB::variation::2::{h}",
    r"MJ::JOB::variation::3::{h}",
    r"MJ::JOB::variation::4::{h}",
]
UPSCALE_IDS = [
    "MJ::JOB::upsample_v6_2x_subtle::1::{h}::SOLO",
    "MJ::JOB::low_variation::1::{h}::SOLO",
    "MJ::JOB::high_variation::1::{h}::SOLO",
    "MJ::Inpaint::1::{h}::SOLO",
    "MJ::Outpaint::50::1::{h}::SOLO",
    "MJ::Outpaint::75::1::{h}::SOLO",
    "MJ::CustomZoom::1::{h}",
    "MJ::JOB::pan_left::1::{h}::SOLO",
    "MJ::JOB::pan_right::1::{h}::SOLO",
    "MJ::JOB::pan_up::1::{h}::SOLO",
    "MJ::JOB::pan_down::1::{h}::SOLO",
]


def _button(task, prefix):
    return next(b["customId"] for b in task["buttons"] if b["customId"].startswith(prefix))


async def _press(api, task, prefix, **extra):
    return await api.submit(
        "action", {"taskId": task["id"], "customId": _button(task, prefix), **extra}
    )


async def test_grid_and_upscale_buttons_like_the_fixture(sim):
    _, api = sim
    grid = await api.run()
    h = grid["properties"]["messageHash"]
    assert [b["customId"] for b in grid["buttons"]] == [p.format(h=h) for p in GRID_IDS]
    assert [b["label"] for b in grid["buttons"]][:4] == ["U1", "U2", "U3", "U4"]
    assert grid["buttons"][4]["emoji"] == "🔄"
    assert all(re.fullmatch(r"[0-9a-f-]{36}", h) for h in [h])

    answer = await _press(api, grid, "MJ::JOB::upsample::2::")
    assert answer["code"] == 1
    upscale = await api.wait_status(answer["result"], "SUCCESS")
    assert upscale["action"] == "UPSCALE"
    h2 = upscale["properties"]["messageHash"]
    assert [b["customId"] for b in upscale["buttons"]] == [p.format(h=h2) for p in UPSCALE_IDS]
    # U2's image is the grid's second split image.
    assert upscale["imageUrl"] == grid["imageUrls"][1]["url"]


@pytest.mark.parametrize(
    ("prefix", "action"),
    [
        ("MJ::JOB::variation::3::", "VARIATION"),
        ("MJ::JOB::reroll::", "REROLL"),
    ],
)
async def test_grid_actions_produce_grids(sim, prefix, action):
    _, api = sim
    grid = await api.run()
    answer = await _press(api, grid, prefix, state="mine")
    task = await api.wait_status(answer["result"], "SUCCESS")
    assert task["action"] == action and len(task["buttons"]) == 9 and task["state"] == "mine"


@pytest.mark.parametrize(
    ("prefix", "action"),
    [
        ("MJ::JOB::pan_left::", "PAN"),
        ("MJ::Outpaint::50::", "ZOOM"),
        ("MJ::JOB::high_variation::", "VARIATION"),
        ("MJ::JOB::upsample_v6_2x_subtle::", "UPSCALE"),
    ],
)
async def test_upscale_actions(sim, prefix, action):
    _, api = sim
    grid = await api.run()
    upscale = await api.wait_status((await _press(api, grid, "MJ::JOB::upsample::1::"))["result"])
    answer = await _press(api, upscale, prefix)
    assert answer["code"] == 1
    task = await api.wait_status(answer["result"])
    assert (task["status"], task["action"]) == ("SUCCESS", action)


async def test_action_validation(make_sim):
    _, api = await make_sim(job_duration=0.01)
    grid = await api.run()
    running = await api.imagine("later --stall")
    cases = [
        ({"taskId": "999", "customId": grid["buttons"][0]["customId"]}, 3),
        ({"taskId": running, "customId": grid["buttons"][0]["customId"]}, 4),
        ({"taskId": grid["id"], "customId": "MJ::JOB::upsample::1::not-this-task"}, 4),
        ({"taskId": grid["id"]}, 4),
        ({"customId": grid["buttons"][0]["customId"]}, 4),
    ]
    for body, code in cases:
        status, answer, _ = await api.request("POST", "/mj/submit/action", body)
        # C: a missing parent is HTTP 404 with a code-3 body (SubmitController.cs:498-501).
        assert status == (404 if code == 3 else 200), (body, answer)
        assert answer["code"] == code, (body, answer)
        assert not answer.get("result")


async def test_relay_action_validation_is_relay_error_json(make_sim):
    _, api = await make_sim(accent="relay", job_duration=0.01)
    status, body, _ = await api.request(
        "POST", "/mj/submit/action", {"taskId": "999", "customId": "MJ::JOB::upsample::1::x"}
    )
    assert status == 400
    assert body["type"] == "upstream_error" and body["code"] == 4 and body["description"]


async def test_custom_zoom_waits_in_modal_until_modal_submit(sim):
    fake, api = sim
    grid = await api.run()
    upscale = await api.wait_status((await _press(api, grid, "MJ::JOB::upsample::1::"))["result"])
    answer = await _press(api, upscale, "MJ::CustomZoom::")
    assert answer["code"] == 21
    assert answer["properties"]["finalPrompt"] == "a cat"
    modal_id = answer["result"]
    task = await api.fetch(modal_id)
    assert task["status"] == "MODAL" and task["action"] == "CUSTOM_ZOOM"
    assert fake.stats().active["fast"] == 0  # MODAL holds no slot

    done = await api.submit("modal", {"taskId": modal_id, "prompt": "a cat --zoom 1.8"})
    assert (done["code"], done["result"]) == (1, modal_id)
    finished = await api.wait_status(modal_id, "SUCCESS")
    assert finished["prompt"] == "a cat --zoom 1.8"
    # Not MODAL any more: a second modal submit is a validation error.
    assert (await api.submit("modal", {"taskId": modal_id}))["code"] == 4


async def test_vary_region_needs_a_valid_mask(sim):
    _, api = sim
    grid = await api.run()
    upscale = await api.wait_status((await _press(api, grid, "MJ::JOB::upsample::3::"))["result"])
    modal_id = (await _press(api, upscale, "MJ::Inpaint::"))["result"]
    assert (await api.fetch(modal_id))["action"] == "INPAINT"
    assert (await api.submit("modal", {"taskId": modal_id, "prompt": "hat"}))["code"] == 4
    bad = {"taskId": modal_id, "maskBase64": "data:image/png;base64,@@@"}
    assert (await api.submit("modal", bad))["code"] == 4
    good = {"taskId": modal_id, "prompt": "a hat", "maskBase64": DATA_URL}
    assert (await api.submit("modal", good))["code"] == 1
    assert (await api.wait_status(modal_id))["status"] == "SUCCESS"
    assert (await api.submit("modal", {"taskId": "404"}))["code"] == 3


async def test_remix_sends_variations_to_modal(make_sim):
    _, api = await make_sim(remix=True, job_duration=0.01)
    grid = await api.run()
    answer = await _press(api, grid, "MJ::JOB::variation::1::")
    assert answer["code"] == 21
    assert (await api.fetch(answer["result"]))["status"] == "MODAL"
    # Upscales never go through remix.
    assert (await _press(api, grid, "MJ::JOB::upsample::1::"))["code"] == 1


async def test_relay_keeps_code_21_only_for_custom_zoom_and_vary_region(make_sim):
    # new-api rewrites 21 to 1 except for INPAINT and CUSTOM_ZOOM
    # (QuantumNous/new-api 65b1654, relay/mjproxy_handler.go:582-637).
    _, api = await make_sim(accent="relay", job_duration=0.01, remix=True)
    grid = await api.run()
    assert (await _press(api, grid, "MJ::JOB::variation::1::"))["code"] == 1
    upscale = await api.wait_status((await _press(api, grid, "MJ::JOB::upsample::1::"))["result"])
    answer = await _press(api, upscale, "MJ::CustomZoom::")
    assert answer["code"] == 21
    task = await api.fetch(answer["result"])
    assert task["status"] == "MODAL" and task["customId"].startswith("MJ::CustomZoom::")


async def test_java_change_is_the_legacy_action(make_sim):
    _, api = await make_sim(accent="java", job_duration=0.01)
    grid = await api.run()
    answer = await api.submit("change", {"taskId": grid["id"], "action": "UPSCALE", "index": 4})
    upscale = await api.wait_status(answer["result"], "SUCCESS")
    assert upscale["action"] == "UPSCALE" and upscale["imageUrl"].endswith("-u4.png")
    reroll = await api.submit("change", {"taskId": grid["id"], "action": "REROLL"})
    assert reroll["code"] == 1
    for body in (
        {"taskId": upscale["id"], "action": "VARIATION", "index": 1},  # no V buttons on it
        {"taskId": grid["id"], "action": "UPSCALE", "index": 5},
        {"taskId": grid["id"], "action": "ZOOM", "index": 1},
    ):
        assert (await api.submit("change", body))["code"] == 4
    assert (await api.submit("change", {"taskId": "1", "action": "REROLL"}))["code"] == 3


async def test_describe_returns_four_numbered_descriptions(sim):
    _, api = sim
    assert (await api.submit("describe", {"base64": "not a data url"}))["code"] == 4
    answer = await api.submit("describe", {"base64": DATA_URL})
    task = await api.wait_status(answer["result"], "SUCCESS")
    assert task["action"] == "DESCRIBE"
    text = task["properties"]["finalPrompt"]
    assert task["prompt"] == text
    assert [line[:3] for line in text.split("\n\n")] == ["1️⃣", "2️⃣", "3️⃣", "4️⃣"]
    # Pressing 2️⃣ imagines the second description.
    pick = await _press(api, task, "MJ::Job::PicReader::2::")
    imagined = await api.wait_status(pick["result"], "SUCCESS")
    assert imagined["action"] == "IMAGINE"
    assert imagined["prompt"] == text.split("\n\n")[1].split(" ", 1)[1]


async def test_describe_link_only_on_csharp(make_sim):
    _, csharp = await make_sim(accent="csharp")
    _, java = await make_sim(accent="java")
    body = {"link": "https://example.invalid/cat.png"}
    assert (await csharp.submit("describe", body))["code"] == 1
    assert (await java.submit("describe", body))["code"] == 4


async def test_shorten_result_in_final_prompt(sim):
    _, api = sim
    prompt = "a very detailed portrait of an old fisherman in the rain, cinematic lighting"
    task = await api.wait_status((await api.submit("shorten", {"prompt": prompt}))["result"])
    assert task["action"] == "SHORTEN" and task["prompt"] == prompt
    options = task["properties"]["finalPrompt"].split("\n\n")
    assert len(options) == 5 and options[0].startswith("1️⃣")


async def test_blend_validation(sim):
    _, api = sim
    assert (await api.submit("blend", {"base64Array": [DATA_URL]}))["code"] == 4
    assert (await api.submit("blend", {"base64Array": [DATA_URL] * 6}))["code"] == 4
    bad_dims = {"base64Array": [DATA_URL] * 2, "dimensions": "ROUND"}
    assert (await api.submit("blend", bad_dims))["code"] == 4
    ok = await api.submit("blend", {"base64Array": [DATA_URL] * 3, "dimensions": "PORTRAIT"})
    task = await api.wait_status(ok["result"], "SUCCESS")
    assert task["action"] == "BLEND" and "--ar 2:3" in task["properties"]["finalPrompt"]


@pytest.mark.parametrize("accent", ["java", "csharp", "relay"])
async def test_banned_word_is_code_24(make_sim, accent):
    fake, api = await make_sim(accent=accent)
    answer = await api.submit("imagine", {"prompt": "Nude body study"})
    assert answer["code"] == 24
    assert answer["properties"] == {"promptEn": "Nude body study", "bannedWord": "nude"}
    assert fake.stats().refused["banned"] == 1 and fake.stats().tasks == 0


async def test_imagine_validation(make_sim):
    fake, api = await make_sim(accent="csharp")
    for body in (
        {"prompt": "   "},
        {},
        {"prompt": ["x"]},
        {"prompt": "x", "base64Array": ["data:image/png;base64,!!"]},
        {"prompt": "x", "botType": "DALL_E"},
        {"prompt": "x", "state": "s" * 256},
        {"prompt": "x", "notifyHook": "ftp://nope"},
    ):
        answer = await api.submit("imagine", body)
        assert answer["code"] == 4, body
    assert fake.stats().refused["invalid"] == 7 and fake.stats().tasks == 0
    niji = await api.submit("imagine", {"prompt": "x", "botType": "NIJI_JOURNEY"})
    assert niji["code"] == 1


async def test_relay_validation_error_json(make_sim):
    _, api = await make_sim(accent="relay")
    status, body, _ = await api.request("POST", "/mj/submit/imagine", {"prompt": ""})
    assert status == 400
    assert body == {"description": "prompt_is_required", "type": "upstream_error", "code": 4}


async def test_list_by_condition_omits_missing_and_shuffles(make_sim):
    orders = []
    for _ in range(2):
        fake, api = await make_sim(job_duration=0.01, core_size=20)
        ids = [await api.imagine(f"p{n}") for n in range(20)]
        await wait_until(lambda fake=fake: fake.stats().finished.get("SUCCESS") == 20)
        status, tasks, _ = await api.request(
            "POST", "/mj/task/list-by-condition", {"ids": [*ids, "missing", ids[0]]}
        )
        assert status == 200 and isinstance(tasks, list)
        got = [t["id"] for t in tasks]
        assert sorted(got) == sorted(ids)  # missing omitted, duplicates collapsed
        assert got != ids  # order not preserved
        orders.append(got)
    assert orders[0] == orders[1]  # but deterministic for a seed
    status, empty, _ = await api.request("POST", "/mj/task/list-by-condition", {"ids": []})
    assert (status, empty) == (200, [])


async def test_image_seed(make_sim):
    # C: unfinished -> 400 code 4, unknown -> 404 code 3 (TaskController.cs:132-160).
    _, api = await make_sim(accent="csharp", job_duration=0.01)
    running = await api.imagine("a --stall")
    status, body, _ = await api.request("GET", f"/mj/task/{running}/image-seed")
    assert status == 400 and body["code"] == 4
    done = await api.run()
    status, body, _ = await api.request("GET", f"/mj/task/{done['id']}/image-seed")
    assert body["code"] == 1 and body["result"].isdigit()
    status, body, _ = await api.request("GET", "/mj/task/nope/image-seed")
    assert status == 404 and body["code"] == 3
    _, relay = await make_sim(accent="relay")
    status, body, _ = await relay.request("GET", "/mj/task/nope/image-seed")
    assert status == 400 and body["description"] == "task_no_found "
