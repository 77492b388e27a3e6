"""What an uploaded file really is: magic bytes first, then a real decode or probe."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import filetype
from PIL import Image, UnidentifiedImageError

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

# Pillow's guard against decompression bombs, set explicitly: 50 megapixels is plenty for a photo.
Image.MAX_IMAGE_PIXELS = 50_000_000


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


def probe_image(path: Path, content_type: str, extension: str) -> MediaInfo:
    """Decode the whole image (a header alone proves little)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise MediaRejected("The image could not be decoded (corrupt or truncated)") from exc
    except Image.DecompressionBombError as exc:
        raise MediaRejected("The image is too large (more than 50 megapixels)") from exc
    return MediaInfo(content_type, extension, width, height)


def probe_video(path: Path, content_type: str, extension: str) -> MediaInfo:
    """Container duration, size, codec and frame rate; a video must have a decodable frame."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaRejected("The file has no video stream")
            stream = container.streams.video[0]
            duration = None
            if container.duration:
                duration = container.duration / av.time_base
            elif stream.duration and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            codec = stream.codec_context.name
            fps = float(stream.average_rate) if stream.average_rate else None
            frame = next(container.decode(stream), None)
            if frame is None:
                raise MediaRejected("The video has no decodable frames")
            width, height = frame.width, frame.height
    except MediaRejected:
        raise
    except (av.FFmpegError, StopIteration, ValueError, IndexError) as exc:
        raise MediaRejected(
            "The video could not be read (corrupt, truncated or unsupported)"
        ) from exc
    if not duration or duration <= 0:
        raise MediaRejected("The video has no duration")
    return MediaInfo(content_type, extension, width, height, round(duration, 3), codec, fps)


def probe(path: Path, head: bytes, file_type: FileType) -> MediaInfo:
    content_type, extension = sniff(head, file_type)
    if file_type == "image":
        return probe_image(path, content_type, extension)
    return probe_video(path, content_type, extension)
