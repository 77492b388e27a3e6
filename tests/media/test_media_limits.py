"""Uploads declaring more pixels, streams or seconds than vidgate accepts are refused from their
headers, before anything is decoded, and leave nothing behind."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

import vidgate
from vidgate.db.engine import Database
from vidgate.media.models import Upload
from vidgate.runtime import Runtime

from ..fixtures.app import DEV_CLIENT_KEY
from ..fixtures.hostile_media import (
    PNG_GRAY,
    PNG_RGBA,
    png_frames_avi,
    with_avi_frame_duration,
    zero_png,
)
from ..fixtures.samples import png_bytes
from ..fixtures.signin import sign_in

UPLOAD = "/api/videos/upload"

# The all-zero 9000×11000 PNG of the report: 385 KB that decode to 396 MB (RGBA).
BOMB_SIZE = (9000, 11000)


@functools.cache
def png_bomb() -> bytes:
    return zero_png(*BOMB_SIZE, color_type=PNG_RGBA)


@functools.cache
def huge_frame() -> bytes:
    """A 16000×16000 all-zero PNG (250 KB; 256 MB decoded), as a video frame."""
    return zero_png(16000, 16000, color_type=PNG_GRAY)


async def _upload(
    client: httpx.AsyncClient, content: bytes, filename: str, file_type: str
) -> httpx.Response:
    user = await sign_in(client)
    return await client.post(
        UPLOAD,
        headers={**user.headers, "X-API-Key": DEV_CLIENT_KEY},
        files={"file": (filename, content, "application/octet-stream")},
        data={"file_type": file_type},
    )


async def _count_uploads(db: Database) -> int:
    async with db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(Upload)) or 0)


def _files(runtime: Runtime) -> set[Path]:
    data_dir = runtime.settings.data_dir
    return {p for d in ("media", "tmp") for p in (data_dir / d).rglob("*") if p.is_file()}


async def _assert_refused(
    client: httpx.AsyncClient,
    runtime: Runtime,
    db: Database,
    content: bytes,
    filename: str,
    file_type: str,
    fragment: str,
) -> None:
    rows, files = await _count_uploads(db), _files(runtime)
    r = await _upload(client, content, filename, file_type)
    assert r.status_code == 400, r.text
    assert fragment in r.json()["detail"]
    assert await _count_uploads(db) == rows
    assert _files(runtime) == files


@pytest.mark.parametrize(
    "size",
    [
        BOMB_SIZE,  # 99 MP: Pillow only warned between 50 and 100 MP
        (7072, 7071),  # 50.006 MP: just over
        (20000, 20000),  # 400 MP: Pillow's own error
    ],
)
async def test_image_over_50_megapixels_is_refused_and_nothing_is_kept(
    client: httpx.AsyncClient, runtime: Runtime, db: Database, size: tuple[int, int]
) -> None:
    content = png_bomb() if size == BOMB_SIZE else zero_png(*size)
    await _assert_refused(
        client, runtime, db, content, "bomb.png", "image", "the limit is 50 megapixels"
    )


@pytest.mark.parametrize("size", [(7000, 7000), (10000, 5000)])
async def test_image_up_to_50_megapixels_is_accepted(
    client: httpx.AsyncClient, size: tuple[int, int]
) -> None:
    """49 MP and exactly 50 MP pass here; the vendors' own limits (4096 px a side for animate)
    are checked when a task is created."""
    r = await _upload(client, zero_png(*size), "big.png", "image")
    assert r.status_code == 200, r.text
    assert (r.json()["width"], r.json()["height"]) == size


async def test_video_whose_headers_declare_huge_frames_is_refused(
    client: httpx.AsyncClient, runtime: Runtime, db: Database
) -> None:
    video = png_frames_avi(huge_frame(), declared=(16000, 16000))
    await _assert_refused(client, runtime, db, video, "huge.avi", "video", "7680×4320")


async def test_video_whose_headers_understate_its_frames_is_refused(
    client: httpx.AsyncClient, runtime: Runtime, db: Database
) -> None:
    """The AVI says 64×48, the frames inside are 16000×16000: the decoder itself stops them."""
    video = png_frames_avi(huge_frame(), declared=(64, 48))
    await _assert_refused(client, runtime, db, video, "liar.avi", "video", "7680×4320")


async def test_video_with_too_many_streams_is_refused(
    client: httpx.AsyncClient, runtime: Runtime, db: Database
) -> None:
    video = png_frames_avi(zero_png(16, 16), declared=(16, 16), streams=40)
    await _assert_refused(client, runtime, db, video, "many.avi", "video", "32 streams")


async def test_video_with_absurd_duration_is_refused(
    client: httpx.AsyncClient, runtime: Runtime, db: Database
) -> None:
    small = png_frames_avi(zero_png(16, 16), declared=(16, 16))
    decades = with_avi_frame_duration(small, scale=1_000_000_000, rate=1)  # 1e9 s a frame
    await _assert_refused(client, runtime, db, decades, "long.avi", "video", "24 hours")


async def test_small_png_video_is_accepted(client: httpx.AsyncClient) -> None:
    """The builder of the hostile videos makes valid ones: only the sizes make them hostile."""
    video = png_frames_avi(zero_png(320, 240), declared=(320, 240))
    r = await _upload(client, video, "ok.avi", "video")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["width"], body["height"], body["duration_seconds"]) == (320, 240, 2.0)


_MEASURE = """
import json, resource, sys
from pathlib import Path
from vidgate.media.probe import MediaRejected, probe

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def run(path, kind):
    data = Path(path).read_bytes()
    try:
        probe(Path(path), data[:8192], kind)
        return "accepted"
    except MediaRejected as exc:
        return str(exc)

run(sys.argv[1], sys.argv[2])  # load the decoders' code first
before = peak_mb()
outcome = run(sys.argv[3], sys.argv[2])
print(json.dumps({"growth_mb": peak_mb() - before, "outcome": outcome}))
"""


def _probe_peak_growth(tmp_path: Path, kind: str, warm_up: bytes, hostile: bytes) -> float:
    """Peak RSS growth (MB) of probing `hostile`, in a fresh process (peaks never go down)."""
    (tmp_path / "warm").write_bytes(warm_up)
    (tmp_path / "hostile").write_bytes(hostile)
    src = str(Path(vidgate.__file__).parent.parent)
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(tmp_path / "warm"), kind, str(tmp_path / "hostile")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": src},
        check=True,
    )
    result = json.loads(done.stdout)
    assert result["outcome"] != "accepted"
    return float(result["growth_mb"])


def test_probing_the_png_bomb_takes_little_memory(tmp_path: Path) -> None:
    assert _probe_peak_growth(tmp_path, "image", png_bytes(), png_bomb()) < 20


def test_probing_a_video_of_huge_frames_takes_little_memory(tmp_path: Path) -> None:
    small = png_frames_avi(zero_png(64, 48), declared=(64, 48))
    liar = png_frames_avi(huge_frame(), declared=(64, 48))
    assert _probe_peak_growth(tmp_path, "video", small, liar) < 20
