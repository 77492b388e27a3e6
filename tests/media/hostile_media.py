"""Small files that declare huge or absurd media, built without ever holding the pixels."""

from __future__ import annotations

import io
import struct
import zlib

import av

PNG_GRAY, PNG_RGB, PNG_RGBA = 0, 2, 6


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def zero_png(width: int, height: int, color_type: int = PNG_GRAY) -> bytes:
    """A valid PNG of all-zero pixels, compressed row by row (zlib shrinks zeros ~1000:1)."""
    channels = {PNG_GRAY: 1, PNG_RGB: 3, PNG_RGBA: 4}[color_type]
    row = b"\x00" * (1 + width * channels)  # filter byte 0, then the samples
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", data)
        + _png_chunk(b"IEND", b"")
    )


def png_frames_avi(
    frame: bytes, declared: tuple[int, int], *, streams: int = 1, frames: int = 2
) -> bytes:
    """An AVI whose video streams carry `frame` (a PNG) as every frame, one per second, while
    the AVI headers declare the size `declared` (which may understate the frames)."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="avi") as container:
        video = []
        for _ in range(streams):
            stream = container.add_stream("png", rate=1)
            stream.width, stream.height = declared
            stream.pix_fmt = "gray"
            video.append(stream)
        for index in range(frames):
            for stream in video:
                packet = av.Packet(frame)
                packet.stream = stream
                packet.pts = packet.dts = index
                packet.duration = 1
                packet.is_keyframe = True
                container.mux(packet)
    return buffer.getvalue()


def with_avi_frame_duration(avi: bytes, scale: int, rate: int) -> bytes:
    """The AVI with its first stream's frame duration set to `scale / rate` seconds."""
    patched = bytearray(avi)
    strh = patched.index(b"strh")
    # strh: fccType, fccHandler, dwFlags, wPriority, wLanguage, dwInitialFrames, dwScale, dwRate
    struct.pack_into("<II", patched, strh + 8 + 20, scale, rate)
    return bytes(patched)
