"""The request bodies mjasync sends, field by field as each family's DTOs read them.

Every case is a request object, the exact body it must produce (cited: the DTO or handler that
reads it), and the accents whose simulator must accept it when a ``Client`` sends it (and show
the effect the source describes).
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import pytest

import mjasync
from mjasync import Describe, Edit, Retexture, SwapFace, SwapVideoFace, Video
from mjasync._requests import Change, upload_body
from mjasync.testing import FakeMidjourney
from mjasync.testing._sim_images import encode_png

from ._sim import KEY, PNG, started
from .sources import c, j, n

pytestmark = pytest.mark.anyio

PNG_BYTES = base64.b64decode(PNG.split(",", 1)[1])
OTHER_PNG = encode_png(1, 1, [b"\x00\x00\xff"])
OTHER = "data:image/png;base64," + base64.b64encode(OTHER_PNG).decode()
MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00\x00\x00\x08mdat"
URL = "https://images.example/face.png"
PARENT = "1700000000000000001"  # replaced by a finished task in the simulator runs


@attrs.frozen
class BodyCase:
    """A request, the body it must make, and where the simulator must accept it.

    ``effect`` checks the simulator's task after the submit (``None``: acceptance is enough).
    """

    id: str
    source: str
    make: Callable[[str], Any]  # parent task id -> request
    body: Callable[[str], dict[str, Any]]  # parent task id -> the exact body
    accents: tuple[str, ...]
    effect: Callable[[FakeMidjourney, str, mjasync.Submission], Awaitable[None]] | None = None
    sim: dict[str, Any] = attrs.field(factory=dict)


async def _video_prompt(fake: FakeMidjourney, parent: str, sub: mjasync.Submission) -> None:
    task = fake.task(sub.task_id or "")
    assert task is not None and task["action"] == "VIDEO"
    # C builds the prompt itself: loop wins, motion and --bs 2 appended (TaskService.cs:699-725).
    assert task["properties"]["finalPrompt"].endswith("--end loop --motion high --bs 2")


async def _extends(fake: FakeMidjourney, parent: str, sub: mjasync.Submission) -> None:
    task = fake.task(sub.task_id or "")
    assert task is not None and task["description"] == "/video extend"


async def _modal(fake: FakeMidjourney, parent: str, sub: mjasync.Submission) -> None:
    assert sub.code == 21 and sub.needs_modal
    assert (fake.task(sub.task_id or "") or {})["status"] == "MODAL"


CASES: tuple[BodyCase, ...] = (
    BodyCase(
        "reroll-through-change-sends-index-1",
        j("controller/SubmitController.java:116-118,148")
        + "; "
        + n("relay/mjproxy_handler.go:421-428"),
        lambda parent: Change(parent, "REROLL"),
        lambda parent: {"taskId": parent, "action": "REROLL", "index": 1},
        ("java", "relay"),
    ),
    BodyCase(
        "upscale-through-change",
        j("dto/SubmitChangeDTO.java") + "; " + n("relay/mjproxy_handler.go:421-428"),
        lambda parent: Change(parent, "UPSCALE", 2),
        lambda parent: {"taskId": parent, "action": "UPSCALE", "index": 2},
        ("java", "relay"),
    ),
    BodyCase(
        "video-animate",
        c("Dto/SubmitVideoDTO.cs:36-86") + "; " + c("TaskService.cs:699-725"),
        lambda parent: Video(
            "a cat walks", image=PNG_BYTES, motion="high", loop=True, batch_size=2
        ),
        lambda parent: {
            "prompt": "a cat walks",
            "image": PNG,
            "motion": "high",
            "loop": True,
            "batchSize": 2,
        },
        ("csharp", "relay"),
        effect=_video_prompt,
    ),
    BodyCase(
        "video-animate-by-url-with-an-end-frame",
        c("Dto/SubmitVideoDTO.cs:36-86") + "; " + c("Dto/DataUrl.cs:83-125"),
        lambda parent: Video("a cat walks", image=URL, end_image=PNG, video_type="vid_1.1_i2v_720"),
        lambda parent: {
            "prompt": "a cat walks",
            "image": URL,
            "endImage": PNG,
            "videoType": "vid_1.1_i2v_720",
        },
        ("csharp", "relay"),
    ),
    BodyCase(
        "video-extend-index-is-zero-based-on-the-wire",
        c("Dto/SubmitVideoDTO.cs:64-67") + "; " + c("Controllers/SubmitController.cs:992-1008"),
        lambda parent: Video.extend(parent, 2, prompt="and walks on"),
        lambda parent: {"prompt": "and walks on", "action": "extend", "taskId": parent, "index": 1},
        ("csharp", "relay"),
        effect=_extends,
    ),
    BodyCase(
        "edits",
        c("Dto/SubmitEditsDTO.cs:38,44,49") + "; " + n("router/relay-router.go:215"),
        lambda parent: Edit("add a red hat", PNG_BYTES),
        lambda parent: {"prompt": "add a red hat", "image": PNG},
        ("csharp", "relay"),
    ),
    BodyCase(
        "retexture",
        c("Controllers/SubmitController.cs:852-915") + "; " + c("Dto/SubmitEditsDTO.cs:38,44,49"),
        lambda parent: Retexture("made of wood", URL),
        lambda parent: {"prompt": "made of wood", "image": URL},
        ("csharp",),
    ),
    BodyCase(
        "face-swap-bytes-and-url",
        c("Dto/InsightFaceSwapDto.cs:34-54") + "; " + c("FaceSwapService.cs:86-96"),
        lambda parent: SwapFace(PNG_BYTES, URL),
        lambda parent: {"sourceBase64": PNG, "targetUrl": URL},
        ("csharp",),
    ),
    BodyCase(
        "face-swap-two-images",
        n("dto/midjourney.go:10-13") + "; " + n("relay/mjproxy_handler.go:182-283"),
        lambda parent: SwapFace(PNG_BYTES, OTHER_PNG),
        lambda parent: {"sourceBase64": PNG, "targetBase64": OTHER},
        ("csharp", "relay"),
    ),
    BodyCase(
        "video-face-swap-is-a-form",
        c("Dto/InsightVideoFaceSwapDto.cs:36-56")
        + "; "
        + c("Controllers/InsightFaceController.cs:140-175"),
        lambda parent: SwapVideoFace(URL, MP4),
        lambda parent: {
            "sourceUrl": URL,
            "targetFile": "data:video/mp4;base64," + base64.b64encode(MP4).decode(),
        },
        ("csharp",),
    ),
    BodyCase(
        "action-with-remix",
        c("Dto/SubmitActionDTO.cs:39-63") + "; " + c("TaskService.cs:1722-1755"),
        lambda parent: mjasync.Action(parent, "MJ::JOB::variation::1::HASH", enable_remix=True),
        lambda parent: {
            "taskId": parent,
            "customId": "MJ::JOB::variation::1::HASH",
            "enableRemix": True,
        },
        ("csharp",),
        effect=_modal,
        sim={"remix": True},
    ),
    BodyCase(
        "describe-with-a-language",
        c("Dto/SubmitDescribeDTO.cs:38-59") + "; " + c("Models/TaskInfo.cs:812-836"),
        lambda parent: Describe(PNG_BYTES, language="zh_cn"),
        lambda parent: {"base64": PNG, "language": "zh_cn"},
        ("csharp",),
    ),
)


def test_every_case_cites_its_source() -> None:
    for case in CASES:
        assert "midjourney-proxy@" in case.source or "new-api@" in case.source, case.id


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_pure(case: BodyCase) -> None:
    assert case.make(PARENT).to_body() == case.body(PARENT)


def test_upload_body() -> None:
    # trueai-org/midjourney-proxy ed32197 src/Midjourney.Base/Dto/SubmitUploadDiscordDto.cs:37,42
    assert upload_body([PNG_BYTES, URL]) == {"base64Array": [PNG, URL]}


SIMULATED = [(case, accent) for case in CASES for accent in case.accents]


@pytest.mark.parametrize(
    ("case", "accent"), SIMULATED, ids=[f"{case.id}-{accent}" for case, accent in SIMULATED]
)
async def test_simulator_accepts(case: BodyCase, accent: str) -> None:
    async with started(accent, **case.sim) as sim:
        parent = await sim.finished()
        request = case.make(parent)
        if isinstance(request, mjasync.Action):
            grid = sim.fake.task(parent) or {}
            custom_id = next(
                b["customId"] for b in grid["buttons"] if "variation::1" in b["customId"]
            )
            request = attrs.evolve(request, custom_id=custom_id)
        if isinstance(request, Video) and request.task_id is not None:
            video = await sim.submit("/mj/submit/video", {"prompt": "a cat", "image": PNG})
            await sim.wait(video, "SUCCESS")
            request = attrs.evolve(request, task_id=video)
        async with mjasync.Client(
            sim.fake.base_url,
            KEY,
            auth="bearer" if accent == "relay" else "mj-api-secret",
            mode=None,
        ) as client:
            submission = await client.submit_request(request)
        assert submission.task_id is not None
        if case.effect is not None:
            await case.effect(sim.fake, parent, submission)
