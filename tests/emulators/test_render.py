"""render_animation writes real H.264 MP4s: checked by decoding them with PyAV."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import pytest
from PIL import Image

from vidgate.emulators.render import render_animation


@dataclass
class Probe:
    codec: str
    pix_fmt: str | None
    width: int
    height: int
    fps: Fraction
    frames: int
    duration: float


def probe(path: Path) -> Probe:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert stream.duration is not None and stream.time_base is not None
        assert stream.average_rate is not None
        return Probe(
            codec=stream.codec_context.name,
            pix_fmt=stream.codec_context.pix_fmt,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            fps=stream.average_rate,
            frames=frames,
            duration=float(stream.duration * stream.time_base),
        )


@pytest.fixture
def portrait_png(tmp_path: Path) -> Path:
    path = tmp_path / "character.png"
    image = Image.new("RGB", (300, 500), (40, 120, 200))
    image.paste((240, 200, 60), (100, 80, 200, 400))  # something to pan across
    image.save(path)
    return path


@pytest.mark.parametrize(("fps", "seconds"), [(15, 2.0), (25, 1.3)])
def test_with_image(portrait_png: Path, tmp_path: Path, fps: int, seconds: float) -> None:
    out = tmp_path / "out.mp4"
    returned = render_animation(
        portrait_png, out, seconds=seconds, fps=fps, width=192, height=108, caption="move wan-std"
    )
    got = probe(out)
    assert got.codec == "h264" and got.pix_fmt == "yuv420p"
    assert (got.width, got.height) == (192, 108)
    assert got.fps == fps
    assert abs(got.duration - seconds) <= 1 / fps
    assert returned == pytest.approx(got.duration)
    assert got.frames == round(seconds * fps)


def test_without_image_portrait(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "gradient.mp4"
    returned = render_animation(
        None, out, seconds=1.0, fps=15, width=90, height=160, caption="no image"
    )
    got = probe(out)
    assert (got.width, got.height) == (90, 160)
    assert got.fps == 15
    assert abs(returned - 1.0) <= 1 / 15


def test_frames_move(portrait_png: Path, tmp_path: Path) -> None:
    """The picture is animated, not a still: first and last frames differ outside the caption."""
    out = tmp_path / "out.mp4"
    render_animation(portrait_png, out, seconds=1.0, fps=15, width=160, height=160, caption="x")
    with av.open(str(out)) as container:
        frames = [f.to_image() for f in container.decode(video=0)]  # type: ignore[no-untyped-call]
    box = (0, 100, 160, 160)  # below the text block
    assert frames[0].crop(box).tobytes() != frames[-1].crop(box).tobytes()


def test_rejects_nonsense(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        render_animation(
            None, tmp_path / "x.mp4", seconds=0, fps=15, width=64, height=64, caption=""
        )
