"""What an uploaded file really is: magic bytes first, then a real decode or probe, every decoder
within explicit limits.

A small file can declare a huge picture: a 385 KB PNG of zeros unpacks to 9000×11000 pixels
(nearly 400 MB), and a video frame the same way. So sizes are read from headers and checked
before anything is decoded, and the decoders themselves are told the limits, so a file whose
headers lie is stopped by the decoder before it allocates the picture.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import filetype
from av.stream import Discard
from PIL import Image, PngImagePlugin, UnidentifiedImageError

FileType = Literal["image", "video"]

# The contract's extensions per file_type.
EXTENSIONS: dict[FileType, frozenset[str]] = {
    "image": frozenset({".jpg", ".jpeg", ".png", ".webp"}),
    "video": frozenset({".mp4", ".mov", ".avi", ".webm"}),
}

# Sniffed MIME type → the extension the stored copy gets.
SNIFFED: dict[FileType, dict[str, str]] = {
    "image": {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"},
    "video": {
        "video/mp4": ".mp4",
        "video/quicktime": ".mov",
        "video/x-msvideo": ".avi",
        "video/webm": ".webm",
        "video/x-matroska": ".webm",  # WebM is a Matroska profile; some files sniff as the parent
    },
}

# The one decoder each sniffed type may reach: a file is never handed to whichever decoder or
# demuxer guesses it best (FFmpeg's playlist and concat demuxers open other files and URLs).
PILLOW_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
FFMPEG_DEMUXERS = {
    "video/mp4": "mov",
    "video/quicktime": "mov",
    "video/x-msvideo": "avi",
    "video/webm": "matroska",
}

# 50 megapixels is plenty for a photo, and decoding one takes up to 200 MB (RGBA).
MAX_IMAGE_PIXELS = 50_000_000
# Pillow's own checks (in Image.open and in plugins: GIF frames, TIFF tiles, WebP) read this
# global; it is set to vidgate's limit so they agree, but probe_image checks the limit itself.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
# Pillow only warns between MAX_IMAGE_PIXELS and twice that; in vidgate the warning is an error.
# A process-wide filter, because `warnings.catch_warnings` is not thread-safe before Python 3.14
# and probes run in worker threads. Whoever records warnings (pytest does) turns it back into a
# warning, so probe_image compares the size with the limit itself too.
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
# PNG text chunks are decompressed by Image.open (up to 64 MB in all by default); vidgate reads
# none of them, so a few kilobytes of zTXt may not cost more than this.
PngImagePlugin.MAX_TEXT_CHUNK = 256 * 1024
PngImagePlugin.MAX_TEXT_MEMORY = 1024 * 1024

# Frames up to 8K UHD (what cameras record): about 50 MB for the first frame in 4:2:0.
MAX_VIDEO_WIDTH, MAX_VIDEO_HEIGHT = 7680, 4320
MAX_VIDEO_PIXELS = MAX_VIDEO_WIDTH * MAX_VIDEO_HEIGHT
# Video, audio and a few metadata tracks; every stream costs a decoder while FFmpeg probes.
MAX_VIDEO_STREAMS = 32
# Anything longer is a lying header, not a clip for this service (vendors take 2–30 s).
MAX_VIDEO_SECONDS = 24 * 3600
# What FFmpeg may read and decode to learn the streams' parameters (its defaults, made explicit).
PROBE_BYTES = 5_000_000
PROBE_MICROSECONDS = 5_000_000
# Reading the first frame stops after this many packets or bytes of the video stream.
FIRST_FRAME_PACKETS = 64
FIRST_FRAME_BYTES = 64 * 1024 * 1024

# Options of every decoder FFmpeg opens for this file, its own probing decoders included: a
# frame above the limit fails in the decoder before its buffer is allocated; one thread, so
# frame-threaded decoders do not hold a picture per core.
_DECODER_OPTIONS = {"max_pixels": str(MAX_VIDEO_PIXELS), "threads": "1"}
_DEMUXER_OPTIONS = {
    "probesize": str(PROBE_BYTES),
    "analyzeduration": str(PROBE_MICROSECONDS),
    "max_streams": str(MAX_VIDEO_STREAMS),
    "protocol_whitelist": "file",
}


class MediaRejected(Exception):
    """The bytes are not acceptable media of the claimed kind; the message says why."""


@dataclass(frozen=True)
class MediaInfo:
    content_type: str
    extension: str
    width: int
    height: int
    duration_seconds: float | None = None
    codec: str | None = None
    fps: float | None = None


# How many leading bytes `sniff` is given: enough for every magic-byte signature accepted.
SNIFF_BYTES = 8192


def read_head(path: Path) -> bytes:
    """The first `SNIFF_BYTES` of a file, for `sniff` and `probe`."""
    with path.open("rb") as file:
        return file.read(SNIFF_BYTES)


def sniff(head: bytes, file_type: FileType) -> tuple[str, str]:
    """`(content_type, extension)` from the first bytes, if they are an accepted kind."""
    kind = filetype.guess(head)
    accepted = SNIFFED[file_type]
    if kind is None or kind.mime not in accepted:
        found = f"looks like {kind.mime}" if kind else "is not a recognised media type"
        wanted = ", ".join(sorted(EXTENSIONS[file_type]))
        raise MediaRejected(f"The file {found}; expected a {file_type} ({wanted})")
    mime = "video/webm" if kind.mime == "video/x-matroska" else kind.mime
    return mime, accepted[kind.mime]


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1_000_000:.1f}".removesuffix(".0")


IMAGE_LIMIT = f"the limit is {_megapixels(MAX_IMAGE_PIXELS)} megapixels"
VIDEO_LIMIT = (
    f"the limit is {MAX_VIDEO_WIDTH}×{MAX_VIDEO_HEIGHT} "
    f"({_megapixels(MAX_VIDEO_PIXELS)} megapixels) per frame"
)


def probe_image(path: Path, content_type: str, extension: str) -> MediaInfo:
    """Read the size from the header, refuse it above the limit, then decode the whole image
    (a header alone proves little)."""
    try:
        # Image.open reads the header only; the pixels are decoded by load().
        with Image.open(path, formats=[PILLOW_FORMATS[content_type]]) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise MediaRejected(
                    f"The image is too large ({width}×{height}, "
                    f"{_megapixels(width * height)} megapixels): {IMAGE_LIMIT}"
                )
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaRejected(f"The image is too large: {IMAGE_LIMIT}") from exc
    except MediaRejected:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise MediaRejected("The image could not be decoded (corrupt or truncated)") from exc
    return MediaInfo(content_type, extension, width, height)


def probe_video(path: Path, content_type: str, extension: str) -> MediaInfo:
    """Container duration, size, codec and frame rate from the headers, checked against the
    limits; then the first frame of the video stream is decoded (a video must have one)."""
    try:
        container = av.open(
            str(path),
            format=FFMPEG_DEMUXERS[content_type],
            options=_DECODER_OPTIONS,
            container_options=_DEMUXER_OPTIONS,
        )
    except av.error.MemoryError as exc:
        # FFmpeg refuses a stream beyond max_streams as an allocation failure.
        raise MediaRejected(
            f"The video could not be opened within the limits (at most {MAX_VIDEO_STREAMS} streams)"
        ) from exc
    except (av.FFmpegError, ValueError, IndexError) as exc:
        raise MediaRejected(
            "The video could not be read (corrupt, truncated or unsupported)"
        ) from exc
    with container:
        if not container.streams.video:
            raise MediaRejected("The file has no video stream")
        stream = container.streams.video[0]
        context = stream.codec_context
        if context.width * context.height > MAX_VIDEO_PIXELS:
            raise MediaRejected(
                f"The video is too large: its frames are {context.width}×{context.height}; "
                f"{VIDEO_LIMIT}"
            )
        duration = None
        if container.duration:
            duration = container.duration / av.time_base
        elif stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        if not duration or duration <= 0 or not math.isfinite(duration):
            raise MediaRejected("The video has no duration")
        if duration > MAX_VIDEO_SECONDS:
            raise MediaRejected(
                f"The video claims to last {duration:.0f} seconds; the limit is "
                f"{MAX_VIDEO_SECONDS // 3600} hours"
            )
        codec = context.name
        fps = float(stream.average_rate) if stream.average_rate else None
        width, height = _first_frame_size(container, stream)
    return MediaInfo(content_type, extension, width, height, round(duration, 3), codec, fps)


def _first_frame_size(
    container: av.container.InputContainer, stream: av.VideoStream
) -> tuple[int, int]:
    """Decode the first frame of `stream`, reading no other stream and at most
    FIRST_FRAME_PACKETS packets (FIRST_FRAME_BYTES) of this one."""
    for other in container.streams:
        if other.index != stream.index:
            other.discard = Discard.all
    context = stream.codec_context
    context.options = dict(_DECODER_OPTIONS)
    context.thread_count = 1
    packets = size = 0
    try:
        frames: list[av.VideoFrame] = []
        for packet in container.demux(stream):
            packets += 1
            size += packet.size
            if packets > FIRST_FRAME_PACKETS or size > FIRST_FRAME_BYTES:
                break
            frames = [f for f in context.decode(packet) if isinstance(f, av.VideoFrame)]
            if frames:
                break
        if not frames:
            # Decoders that reorder frames hand the first one over only when drained.
            frames = [f for f in context.decode(None) if isinstance(f, av.VideoFrame)]
    except av.error.ArgumentError as exc:
        # What a decoder answers for a frame above max_pixels (headers may understate it).
        raise MediaRejected(f"The video's frames are invalid or too large: {VIDEO_LIMIT}") from exc
    except (av.FFmpegError, ValueError, IndexError) as exc:
        raise MediaRejected(
            "The video could not be read (corrupt, truncated or unsupported)"
        ) from exc
    if not frames:
        raise MediaRejected("The video has no decodable frames")
    frame = frames[0]
    if frame.width * frame.height > MAX_VIDEO_PIXELS:
        raise MediaRejected(
            f"The video is too large: its frames are {frame.width}×{frame.height}; {VIDEO_LIMIT}"
        )
    return frame.width, frame.height


def probe(path: Path, head: bytes, file_type: FileType) -> MediaInfo:
    content_type, extension = sniff(head, file_type)
    if file_type == "image":
        return probe_image(path, content_type, extension)
    return probe_video(path, content_type, extension)
