"""DashScope Wan text-to-video and image-to-video: the two body dialects of `video-synthesis`.

`DashScopeAdapter` (providers/dashscope.py) sends these bodies to
`POST /api/v1/services/aigc/video-generation/video-synthesis` with the same key, async header and
task API as animate. The dialect follows the channel's model id (`VideoRequest.model`):

- legacy (wan2.6 and older: `wan2.6-*`, `wan2.5-*`, `wan2.2-*`, `wanx2.1-*`): text-to-video asks
  for an exact `parameters.size` ("W*H"), image-to-video sends `input.img_url` and a
  `parameters.resolution` tier;
- wan2.7 (`wan2.7-*`, snapshots included): text-to-video sends `resolution` + `ratio`,
  image-to-video sends `input.media=[{"type": "first_frame", "url": ...}]` and `resolution`.

Protocol facts: docs/vendors.md §1.4–1.6. Only libraries and `providers.base` are imported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from .base import Rejected, VideoRequest

__all__ = [
    "DEFAULT_SECONDS",
    "DEFAULT_VIDEO_MODELS",
    "VIDEO_KINDS",
    "VIDEO_PATH",
    "ChannelModelError",
    "build_video_body",
    "channel_rejection",
    "dialect_of",
]

VIDEO_PATH = "/api/v1/services/aigc/video-generation/video-synthesis"
VIDEO_KINDS: frozenset[str] = frozenset({"text-to-video", "image-to-video"})
# The model used when a request names none (the catalog normally always names one).
DEFAULT_VIDEO_MODELS: dict[str, str] = {
    "text-to-video": "wan2.7-t2v",
    "image-to-video": "wan2.7-i2v",
}
DEFAULT_SECONDS = 5

Dialect = Literal["legacy", "wan2.7"]

_LEGACY_PREFIXES = ("wan2.6", "wan2.5", "wan2.2", "wan2.1", "wanx2.1")
# Legacy text-to-video sizes for vidgate's quality × aspect (DashScope's 720P and 1080P tiers).
_LEGACY_SIZES: dict[tuple[str, str], str] = {
    ("standard", "landscape"): "1280*720",
    ("standard", "portrait"): "720*1280",
    ("hd", "landscape"): "1920*1080",
    ("hd", "portrait"): "1080*1920",
}
_RESOLUTIONS = {"standard": "720P", "hd": "1080P"}
_RATIOS = {"landscape": "16:9", "portrait": "9:16"}
# Fields of `parameters` in either dialect: a channel's `extra` key with one of these names goes
# there; any other key goes into `input` (nested "input"/"parameters" objects merge into theirs).
_PARAMETER_FIELDS = frozenset(
    {
        "size",
        "resolution",
        "ratio",
        "duration",
        "prompt_extend",
        "shot_type",
        "audio",
        "watermark",
        "seed",
    }
)
_KIND_TOKEN = {"text-to-video": "t2v", "image-to-video": "i2v"}


class ChannelModelError(ValueError):
    """The channel's model id cannot serve the request's kind: a catalog mistake, not a user's."""


def dialect_of(model: str) -> Dialect:
    """Which body dialect `model` speaks; `ChannelModelError` for a family this adapter lacks."""
    name = model.lower()
    if name.startswith("wan2.7"):
        return "wan2.7"
    if name.startswith(_LEGACY_PREFIXES):
        return "legacy"
    raise ChannelModelError(f"DashScope model {model!r} is not a Wan 2.1–2.7 video model")


def build_video_body(request: VideoRequest) -> dict[str, Any]:
    """The create-task body for text- or image-to-video.

    Raises `ChannelModelError` when the model cannot do the kind and `ValueError` when the
    request lacks what the kind needs (a prompt; an image).
    """
    kind = request.kind
    if kind not in VIDEO_KINDS:
        raise ValueError(f"DashScope video-synthesis cannot do {kind!r}")
    model = request.model or DEFAULT_VIDEO_MODELS[kind]
    dialect = dialect_of(model)
    if _KIND_TOKEN[kind] not in model.lower():
        raise ChannelModelError(f"DashScope model {model!r} does not do {kind}")
    inputs: dict[str, Any] = {}
    params: dict[str, Any] = {}
    prompt = request.prompt if request.prompt and request.prompt.strip() else None
    if kind == "text-to-video":
        if prompt is None:
            raise ValueError("text-to-video needs a prompt")
        inputs["prompt"] = prompt
        if dialect == "legacy":
            params["size"] = _LEGACY_SIZES[(request.quality, request.aspect_ratio)]
        else:
            params["resolution"] = _RESOLUTIONS[request.quality]
            params["ratio"] = _RATIOS[request.aspect_ratio]
    else:
        image = request.image_urls[0] if request.image_urls else request.image_url
        if not image:
            raise ValueError("image-to-video needs an image")
        if prompt is not None:
            inputs["prompt"] = prompt
        # The output follows the image's aspect: there is no aspect field for image-to-video.
        if dialect == "legacy":
            inputs["img_url"] = image
        else:
            inputs["media"] = [{"type": "first_frame", "url": image}]
        params["resolution"] = _RESOLUTIONS[request.quality]
    params["duration"] = request.duration if request.duration is not None else DEFAULT_SECONDS
    params["watermark"] = request.watermark
    for key, value in request.extra.items():
        if key in ("input", "parameters") and isinstance(value, Mapping):
            (inputs if key == "input" else params).update(value)
        elif key in _PARAMETER_FIELDS:
            params[key] = value
        else:
            inputs[key] = value
    return {"model": model, "input": inputs, "parameters": params}


def channel_rejection(exc: Rejected) -> Rejected:
    """A submit refusal that is about the channel (key, model access, account), recoded `channel_…`.

    DashScope answers 401 `InvalidApiKey` for a wrong key or region, 403 `AccessDenied…` when the
    account may not use the model (`AccessDenied.Unpurchased`: not enabled) or the call, 400
    `Arrearage` when the account is overdue, and 400 `InvalidParameter` "Model not exist." for a
    model id it does not know. Anything else is returned unchanged. The vendor's code stays in the
    message.
    """
    code = exc.code or ""
    status = exc.status
    channel: str | None = None
    if status == 401 or code.startswith("InvalidApiKey"):
        channel = "channel_auth"
    elif code.startswith("Arrearage"):
        channel = "channel_credits"
    elif status in (403, 404) or code.startswith("AccessDenied"):
        # 404: the submit path itself does not exist at this base URL.
        channel = "channel_unavailable"
    elif code == "InvalidParameter" and "model not exist" in str(exc).lower():
        channel = "channel_unavailable"
    if channel is None:
        return exc
    return Rejected(str(exc), code=channel, status=status)
