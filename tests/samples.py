"""Small, real media files made on the fly for tests."""

from __future__ import annotations

import io
from fractions import Fraction

import av
from PIL import Image


def png_bytes(size: tuple[int, int] = (32, 24)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 200, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


def mp4_bytes(seconds: float = 1.0, fps: int = 10, size: tuple[int, int] = (64, 48)) -> bytes:
    """A real H.264 MP4 made with PyAV."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fps)
        for i in range(int(seconds * fps)):
            image = Image.new("RGB", size, (i * 20 % 255, 80, 160))
            frame = av.VideoFrame.from_image(image)
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()
