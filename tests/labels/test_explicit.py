"""The explicit label: the mark is where and as large as GB 45438-2025 asks, for as long as set,
and the rest of the result (size, frame rate, duration, audio, tags, the picture outside the mark)
is kept."""

from __future__ import annotations

import math
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import ImageFont

from tests.fixtures.videos import synthetic_video
from vidgate.labels import explicit
from vidgate.labels.explicit import (
    BurnInError,
    ExplicitLabel,
    burn_in,
    label_box,
    label_text_height,
)

SECONDS = 3.0
FPS = 24


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("small")
    return synthetic_video(folder / "small.mp4", width=320, height=240, seconds=SECONDS, fps=FPS)


@pytest.fixture(scope="module")
def hd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hd")
    return synthetic_video(
        folder / "hd.mp4", width=1280, height=720, seconds=SECONDS, fps=FPS, audio=False
    )


def luma_frames(path: Path) -> list[np.ndarray]:
    """Every frame's Y plane, in presentation order."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [
            frame.to_ndarray(format="gray").astype(np.float64) for frame in container.decode(stream)
        ]


def audio_packets(path: Path) -> list[tuple[int | None, int | None, bytes]]:
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return []
        return [
            (packet.pts, packet.dts, bytes(packet))
            for packet in container.demux(container.streams.audio[0])
            if packet.size
        ]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def outside(plane: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = box
    mask = np.ones(plane.shape, dtype=bool)
    mask[y : y + h, x : x + w] = False
    return plane[mask]


def inside(plane: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = box
    return plane[y : y + h, x : x + w]


@pytest.mark.parametrize("source_name", ["small", "hd"])
def test_keeps_size_rate_duration_audio_and_tags(
    source_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    source: Path = request.getfixturevalue(source_name)
    target = tmp_path / "labelled.mp4"
    report = burn_in(source, target, ExplicitLabel())

    with av.open(str(source)) as before, av.open(str(target)) as after:
        old, new = before.streams.video[0], after.streams.video[0]
        assert (new.codec_context.width, new.codec_context.height) == (
            old.codec_context.width,
            old.codec_context.height,
        )
        assert new.codec_context.name == "h264"
        assert new.codec_context.pix_fmt == "yuv420p"
        assert new.average_rate == old.average_rate == FPS
        assert abs(new.frames - old.frames) <= 1
        assert old.duration is not None and new.duration is not None
        assert old.time_base is not None and new.time_base is not None
        frame = 1 / FPS
        assert abs(float(new.duration * new.time_base) - float(old.duration * old.time_base)) <= (
            frame + 1e-6
        )
        assert after.metadata["title"] == "synthetic result"
        assert len(after.streams.audio) == len(before.streams.audio)
    assert audio_packets(target) == audio_packets(source)
    assert report.input_frames == report.output_frames == report.labelled_frames
    assert report.input_frames == round(SECONDS * FPS)
    assert report.input_bytes == source.stat().st_size
    assert report.output_bytes == target.stat().st_size
    assert report.seconds > 0


def test_small_source_has_audio_to_compare(small: Path) -> None:
    assert len(audio_packets(small)) > 100  # the audio assertions above compare real packets


@pytest.mark.parametrize("corner", explicit.CORNERS)
def test_mark_in_box_for_its_seconds_and_nothing_else_changes(
    corner: explicit.Corner, small: Path, tmp_path: Path
) -> None:
    label = ExplicitLabel(text="AI生成", corner=corner, seconds=2.0)
    target = tmp_path / "labelled.mp4"
    report = burn_in(small, target, label)
    assert report.labelled_frames == 2 * FPS

    box = label_box(320, 240, label)
    before, after = luma_frames(small), luma_frames(target)
    assert len(before) == len(after)
    for index, (old, new) in enumerate(zip(before, after, strict=True)):
        assert psnr(outside(old, box), outside(new, box)) > 35, f"frame {index} outside the box"
        box_psnr = psnr(inside(old, box), inside(new, box))
        if index < 2 * FPS:  # within the first 2 s: the mark is there
            assert np.mean(np.abs(inside(old, box) - inside(new, box))) > 25, f"frame {index}"
            assert box_psnr < 20
        else:  # after it: the box is the source again, up to re-encoding
            assert box_psnr > 35, f"frame {index} still marked"


def test_whole_video_by_default(small: Path, tmp_path: Path) -> None:
    target = tmp_path / "labelled.mp4"
    burn_in(small, target, ExplicitLabel())
    box = label_box(320, 240, ExplicitLabel())
    last_before, last_after = luma_frames(small)[-1], luma_frames(target)[-1]
    assert np.mean(np.abs(inside(last_before, box) - inside(last_after, box))) > 25


def text_rows(plane: np.ndarray, box: tuple[int, int, int, int]) -> int:
    """The height of the white text inside the box: the rows holding pixels brighter than the
    dark box ever is (Y at most 0.45 * 235 + 9 = 115 there) and at least halfway to the text's
    white (235) from the box's typical Y (~70)."""
    rows = np.nonzero((inside(plane, box) > 150).any(axis=1))[0]
    return int(rows[-1] - rows[0] + 1) if rows.size else 0


@pytest.mark.parametrize(("source_name", "size"), [("small", (320, 240)), ("hd", (1280, 720))])
def test_rendered_text_is_at_least_5_percent_of_the_shortest_side(
    source_name: str, size: tuple[int, int], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    source: Path = request.getfixturevalue(source_name)
    target = tmp_path / "labelled.mp4"
    label = ExplicitLabel(text="AI生成", seconds=2.0)
    burn_in(source, target, label)
    first = luma_frames(target)[0]
    box = label_box(*size, label)
    assert text_rows(first, box) >= 0.05 * min(size)
    assert label_text_height(*size, label) >= 0.05 * min(size)


@pytest.mark.parametrize("size", [(720, 1280), (1920, 1080), (480, 480), (3840, 2160)])
@pytest.mark.parametrize("corner", explicit.CORNERS)
def test_box_in_its_corner_inside_the_frame(size: tuple[int, int], corner: str) -> None:
    width, height = size
    label = ExplicitLabel(text="AI生成 · AI-generated", corner=corner)  # type: ignore[arg-type]
    x, y, w, h = label_box(width, height, label)
    assert x > 0 and y > 0
    assert x + w < width and y + h < height
    assert (x + w / 2 < width / 2) == corner.endswith("left")
    assert (y + h / 2 < height / 2) == corner.startswith("top")
    assert label_text_height(width, height, label) >= 0.05 * min(size)
    assert h < 0.15 * min(size)  # a label, not a banner


@pytest.mark.parametrize("seconds", [0.5, 1.99, -1.0, math.nan, math.inf])
def test_seconds_below_the_minimum_refused(seconds: float) -> None:
    with pytest.raises(ValueError, match="at least 2"):
        ExplicitLabel(seconds=seconds)


@pytest.mark.parametrize("seconds", [0.0, 2.0, 5.5])
def test_seconds_allowed(seconds: float) -> None:
    assert ExplicitLabel(seconds=seconds).seconds == seconds


@pytest.mark.parametrize("text", ["生成视频", "AI video", "人工 智能生成", "合 成AI"])
def test_text_without_the_required_words_refused(text: str) -> None:
    with pytest.raises(ValueError, match="must contain"):
        ExplicitLabel(text=text)


@pytest.mark.parametrize("text", ["AI生成", "人工智能合成", "AI生成 · AI-generated", "AI合成内容"])
def test_text_with_the_required_words_allowed(text: str) -> None:
    assert ExplicitLabel(text=text).text == text


def test_text_the_font_cannot_render_refused() -> None:
    with pytest.raises(ValueError, match="font lacks: 😀"):
        ExplicitLabel(text="AI生成😀")
    with pytest.raises(ValueError, match="empty"):
        ExplicitLabel(text="   ")


def test_unknown_corner_refused() -> None:
    with pytest.raises(ValueError, match="corner"):
        ExplicitLabel(corner="middle")  # type: ignore[arg-type]


def test_text_too_wide_for_the_frame_refused_and_nothing_written(
    small: Path, tmp_path: Path
) -> None:
    label = ExplicitLabel(text="AI生成 · AI-generated · AI-generated · AI-generated")
    with pytest.raises(ValueError, match="does not fit a 320x240 frame"):
        label_box(320, 240, label)
    target = tmp_path / "labelled.mp4"
    with pytest.raises(ValueError, match="does not fit"):
        burn_in(small, target, label)
    assert not target.exists()


def test_not_a_video_refused_and_nothing_written(tmp_path: Path) -> None:
    source = tmp_path / "notes.mp4"
    source.write_bytes(b"not a video at all" * 100)
    target = tmp_path / "labelled.mp4"
    with pytest.raises(BurnInError):
        burn_in(source, target, ExplicitLabel())
    assert not target.exists()


def test_bundled_font_draws_every_allowed_character() -> None:
    """The font ships in the package (no system font is looked up) and has a real glyph, not the
    missing-glyph box, for every character a label may use."""
    package = Path(explicit.__file__).resolve().parent
    assert explicit.FONT_PATH.is_relative_to(package) and explicit.FONT_PATH.is_file()
    font = ImageFont.truetype(str(explicit.FONT_PATH), 48)
    missing = bytes(font.getmask("\ue000"))  # a private-use character: the font's .notdef
    for character in sorted(explicit.LABEL_CHARACTERS - {" "}):
        mask = font.getmask(character)
        assert mask.getbbox() is not None, f"{character!r} draws nothing"
        assert bytes(mask) != missing, f"{character!r} draws the missing-glyph box"
