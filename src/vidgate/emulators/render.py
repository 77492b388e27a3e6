"""Real, small H.264 videos for the provider emulators.

Every frame says EMULATED, so an emulated result can never pass for a vendor's output. Rendering is
synchronous and CPU-bound; callers on an event loop run it in a thread.
"""

from __future__ import annotations

import math
import shutil
import threading
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image, ImageDraw, ImageFont, ImageOps

__all__ = ["render_animation"]

_ZOOM = 1.12  # how much larger than the frame the image is scaled, to leave room to pan


def _even(n: int) -> int:
    # yuv420p subsamples chroma 2x2, so libx264 needs even dimensions.
    return max(2, n - n % 2)


def _gradient(width: int, height: int) -> Image.Image:
    """A left-to-right two-colour gradient twice as wide as the frame, so it can scroll."""
    ramp = Image.linear_gradient("L").transpose(Image.Transpose.ROTATE_90)
    mask = ramp.resize((width * 2, height), Image.Resampling.BILINEAR)
    left = Image.new("RGB", mask.size, (32, 48, 96))
    right = Image.new("RGB", mask.size, (150, 60, 110))
    return Image.composite(right, left, mask)


def _cover(image: Image.Image, width: int, height: int) -> Image.Image:
    """The image scaled to cover a frame `_ZOOM` times the output size (cropped, not stretched)."""
    image = ImageOps.exif_transpose(image).convert("RGB")
    big = (math.ceil(width * _ZOOM), math.ceil(height * _ZOOM))
    return ImageOps.fit(image, big, Image.Resampling.BILINEAR)


def _font(height: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=max(10, height // 16))
    except (TypeError, OSError):  # Pillow built without FreeType: the fixed bitmap font
        return ImageFont.load_default()


# Renders without an input image depend only on their settings: each is made once per process and
# copied after that (a load test of a thousand text-to-video tasks renders a handful of files).
_RENDERED: dict[tuple[float, int, int, int, str], tuple[Path, float]] = {}
_RENDERED_LOCK = threading.Lock()


def render_animation(
    image_path: Path | None,
    out_path: Path,
    *,
    seconds: float,
    fps: int,
    width: int,
    height: int,
    caption: str,
) -> float:
    """Write an MP4 (H.264, yuv420p) of `seconds` at `fps`; return the written file's duration.

    With an image, the frames pan gently across it and bob up and down; without one, a gradient
    scrolls. Each frame carries "EMULATED", the caption and a frame counter. A render without an
    image is a copy of the first one made with the same settings, when that file is still there.
    """
    if fps <= 0 or seconds <= 0:
        raise ValueError("seconds and fps must be positive")
    if image_path is not None:
        return _render(image_path, out_path, seconds, fps, width, height, caption)
    key = (seconds, fps, width, height, caption)
    with _RENDERED_LOCK:
        made = _RENDERED.get(key)
    if made is not None and made[0].is_file():
        out_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(made[0], out_path)
        return made[1]
    duration = _render(None, out_path, seconds, fps, width, height, caption)
    keep = out_path.with_name(f".{out_path.name}.first")
    shutil.copyfile(out_path, keep)  # the result itself may be deleted when it expires
    with _RENDERED_LOCK:
        _RENDERED[key] = (keep, duration)
    return duration


def _render(
    image_path: Path | None,
    out_path: Path,
    seconds: float,
    fps: int,
    width: int,
    height: int,
    caption: str,
) -> float:
    width, height = _even(width), _even(height)
    frames = max(1, round(seconds * fps))
    font = _font(height)
    if image_path is not None:
        with Image.open(image_path) as src:
            backdrop = _cover(src, width, height)
    else:
        backdrop = _gradient(width, height)
    spare_x = backdrop.width - width
    spare_y = backdrop.height - height
    margin = max(4, height // 40)

    out_path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(out_path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        tick = Fraction(1, fps)
        stream.codec_context.time_base = tick  # one tick per frame; the muxer rescales
        # Fast settings: these files are test fixtures and demos, not deliverables.
        stream.options = {"preset": "ultrafast", "tune": "zerolatency", "crf": "30"}
        for i in range(frames):
            phase = i / max(1, frames - 1)
            # Pan left to right across the spare width; bob on a sine over the spare height.
            x = round(spare_x * phase)
            y = round(spare_y * (0.5 + 0.5 * math.sin(2 * math.pi * i / (fps * 2))))
            frame_img = backdrop.crop((x, y, x + width, y + height))
            draw = ImageDraw.Draw(frame_img)
            lines = ("EMULATED", caption, f"frame {i + 1}/{frames}")
            top: float = margin
            for line in lines:
                box = draw.textbbox((margin, top), line, font=font)
                draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill=(0, 0, 0))
                draw.text((margin, top), line, font=font, fill=(255, 255, 255))
                top = box[3] + margin
            frame = av.VideoFrame.from_image(frame_img)  # type: ignore[no-untyped-call]  # PyAV stub
            frame.pts = i
            frame.time_base = tick
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return probe_duration(out_path)


def probe_duration(path: Path) -> float:
    """The video stream's duration in seconds, as a player would see it."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        if container.duration is not None:
            return container.duration / av.time_base
        return 0.0
