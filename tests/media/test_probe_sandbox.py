"""Uploads are probed in worker processes under CPU, memory and wall-clock limits: a file that
crashes, hangs or bloats the decoder is a clean 400 for that upload, stores nothing, and the API
and its probe pool go on serving."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy import func, select

from vidgate.media.models import Upload
from vidgate.media.probe import MediaRejected, read_head
from vidgate.media.sandbox import PROBE, ProbeFailed, ProbeLimits, ProbeSandbox
from vidgate.runtime import Runtime

from ..fixtures import hostile_probes
from ..fixtures.app import Live
from ..fixtures.hostile_media import PNG_RGBA, zero_png
from ..fixtures.samples import mp4_bytes, png_bytes
from ..fixtures.tasks import Caller, account, new_caller, text_to_video, wait_for

UPLOAD = "/api/videos/upload"
GENEROUS = ProbeLimits(wall_seconds=30.0, cpu_seconds=30, memory_bytes=512 * 1024 * 1024)
# A worker is ~150 MB of address space before it probes: this leaves it some 40 MB.
TIGHT_MEMORY = 192 * 1024 * 1024
# 4000×4000 RGBA: a 90 KB PNG that decodes to 64 MB.
BIG_PICTURE = (4000, 4000)


def hostile(name: str, limits: ProbeLimits = GENEROUS) -> ProbeSandbox:
    """A one-worker sandbox whose worker runs the misbehaving probe `name`."""
    return ProbeSandbox(limits, 1, target=f"{hostile_probes.MODULE}:{name}")


def sandbox_workers() -> set[int]:
    """The pids of this process's live (not zombie) probe workers."""
    return {
        child.pid
        for child in psutil.Process().children()
        if child.status() != psutil.STATUS_ZOMBIE and "vidgate.media.sandbox" in child.cmdline()
    }


@asynccontextmanager
async def probing_with(runtime: Runtime, sandbox: ProbeSandbox) -> AsyncIterator[ProbeSandbox]:
    """The live app probes its uploads in `sandbox` until the block ends."""
    previous, runtime.prober = runtime.prober, sandbox
    try:
        yield sandbox
    finally:
        runtime.prober = previous
        await sandbox.aclose()


async def post(
    http: httpx.AsyncClient, caller: Caller, data: bytes, filename: str, file_type: str
) -> httpx.Response:
    return await http.post(
        UPLOAD,
        headers=caller.headers,
        files={"file": (filename, data)},
        data={"file_type": file_type},
    )


async def upload_count(live: Live, user_id: uuid.UUID) -> int:
    async with live.runtime.db.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(Upload).where(Upload.user_id == user_id)
        )
    return int(count or 0)


def stored_files(live: Live) -> set[Path]:
    return {p for d in ("media", "tmp") for p in (live.settings.data_dir / d).rglob("*")}


@pytest.mark.parametrize(
    ("probe", "limits", "reason"),
    [
        ("crash", GENEROUS, "the decoder crashed"),
        ("spin", ProbeLimits(30.0, 1, GENEROUS.memory_bytes), "it used too much CPU time"),
        ("hang", ProbeLimits(0.5, 30, GENEROUS.memory_bytes), "it took too long"),
        ("hoard", ProbeLimits(30.0, 30, TIGHT_MEMORY), "it needed too much memory"),
    ],
)
async def test_a_probe_that_crashes_or_exceeds_a_limit_is_a_clean_400(
    live: Live, http: httpx.AsyncClient, probe: str, limits: ProbeLimits, reason: str
) -> None:
    caller = await new_caller(http)
    files = stored_files(live)
    async with probing_with(live.runtime, hostile(probe, limits)):
        refused = await post(http, caller, png_bytes(), "me.png", "image")
    assert refused.status_code == 400, refused.text
    detail = f"The file could not be checked within the limits ({reason})"
    assert refused.json() == {"detail": detail}
    assert await upload_count(live, caller.user_id) == 0
    assert stored_files(live) == files
    # The API serves the next upload as before.
    served = await post(http, caller, mp4_bytes(), "clip.mp4", "video")
    assert served.status_code == 200, served.text
    assert served.json()["width"] == 64
    assert await upload_count(live, caller.user_id) == 1


async def test_a_file_too_big_for_the_memory_limit_is_refused_and_the_pool_recovers(
    live: Live, http: httpx.AsyncClient
) -> None:
    """A real file and vidgate's own probe: the picture is within the pixel limit, but decoding
    it needs more memory than this pool's workers may have. The replaced worker then takes the
    next upload."""
    caller = await new_caller(http)
    files = stored_files(live)
    tight = ProbeLimits(wall_seconds=30.0, cpu_seconds=30, memory_bytes=TIGHT_MEMORY)
    async with probing_with(live.runtime, ProbeSandbox(tight, 1)) as sandbox:
        before = sandbox_workers()
        sandbox.start()
        (first,) = sandbox_workers() - before
        big = zero_png(*BIG_PICTURE, color_type=PNG_RGBA)
        refused = await post(http, caller, big, "big.png", "image")
        assert refused.status_code == 400, refused.text
        assert refused.json() == {
            "detail": "The file could not be checked within the limits (it needed too much memory)"
        }
        assert await upload_count(live, caller.user_id) == 0
        assert stored_files(live) == files
        (replacement,) = sandbox_workers() - before
        assert replacement != first
        served = await post(http, caller, png_bytes((320, 200)), "small.png", "image")
        assert served.status_code == 200, served.text
        assert (served.json()["width"], served.json()["height"]) == (320, 200)
    assert await upload_count(live, caller.user_id) == 1


async def test_the_pool_replaces_a_crashed_worker_and_answers_probes_in_flight(
    tmp_path: Path,
) -> None:
    """Three probes at once in a one-worker pool whose worker crashes every time: each gets its
    own clean failure (a crash does not poison the pool), and the pool keeps one worker."""
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(mp4_bytes())
    crashing = hostile("crash")
    before = sandbox_workers()
    try:
        answers = await asyncio.gather(
            *(crashing.probe(clip, read_head(clip), "video") for _ in range(3)),
            return_exceptions=True,
        )
        assert [str(answer) for answer in answers] == [
            "The file could not be checked within the limits (the decoder crashed)"
        ] * 3
        assert all(isinstance(answer, ProbeFailed) for answer in answers)
        assert len(sandbox_workers() - before) == 1
    finally:
        await crashing.aclose()
    assert sandbox_workers() == before


async def test_the_sandbox_answers_what_the_probe_answers(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(mp4_bytes(seconds=2.0, fps=10, size=(96, 64)))
    sandbox = ProbeSandbox(GENEROUS, 2, target=PROBE)
    try:
        info = await sandbox.probe(clip, read_head(clip), "video")
        assert (info.width, info.height, info.duration_seconds, info.codec) == (96, 64, 2.0, "h264")
        with pytest.raises(MediaRejected, match="looks like video/mp4; expected a image"):
            await sandbox.probe(clip, read_head(clip), "image")
    finally:
        await sandbox.aclose()


async def test_a_vendor_result_that_crashes_the_probe_fails_the_task_with_its_refund(
    live: Live, http: httpx.AsyncClient
) -> None:
    """The job worker probes what a vendor sends in the same sandbox: a result that crashes the
    decoder fails its task, refunded, and the worker goes on."""
    caller = await new_caller(http)
    async with probing_with(live.runtime, hostile("crash")):
        task_id = await text_to_video(http, caller, "a result the decoder dies on")
        done = await wait_for(http, caller, task_id)
    assert (done["status"], done["error_code"]) == ("FAILED", "bad_result"), done
    assert "could not be checked within the limits" in done["error_message"]
    credits, reserved, rows = await account(live.runtime.db, caller.user_id)
    assert (credits, reserved) == (100, 0)
    assert [kind for kind, _, _ in rows] == ["signup_bonus", "charge", "refund"]
    after = await text_to_video(http, caller, "the next one is fine")
    assert (await wait_for(http, caller, after))["status"] == "SUCCEEDED"
