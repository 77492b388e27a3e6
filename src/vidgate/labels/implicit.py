"""The implicit label: the AIGC metadata of GB 45438-2025 (annex E) in the MP4's own metadata.

The TC260 practice guide for video files places one `AIGC` key in the file's metadata whose value
is a JSON object of seven fields; for MP4 that is an entry of the `moov/udta/meta` key list
(`mdta` keys), which FFmpeg's muxer writes with `movflags=use_metadata_tags`. The file is remuxed
with PyAV: packets are copied, nothing is decoded or encoded.

`ReservedCode1` and `ReservedCode2` carry the producer's and the propagator's protection codes:
an HMAC-SHA256, keyed from the server's secret, of their fields and of a SHA-256 of every media
packet's bytes in file order. Changing a field or a frame then breaks the code, and only the
server that wrote it can tell (docs/labels.md says why a keyed hash rather than a signature).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from vidgate.auth.tokens import derive_key

AIGC_KEY = "AIGC"
LABEL_AI_GENERATED = "1"  # annex E: 1 generated, 2 possibly generated, 3 suspected
FIELDS = (
    "Label",
    "ContentProducer",
    "ProduceID",
    "ReservedCode1",
    "ContentPropagator",
    "PropagateID",
    "ReservedCode2",
)
# Container facts the demuxer reports as metadata; the muxer writes its own.
_NOT_COPIED = {"major_brand", "minor_version", "compatible_brands", "encoder", AIGC_KEY}


class ImplicitLabelError(Exception):
    """The file could not be remuxed with its AIGC metadata."""


@dataclass(frozen=True)
class Parties:
    """Who made the content and who hands it out, and the ids each gives it."""

    producer: str
    produce_id: str
    propagator: str
    propagate_id: str


def _codes_key(secret_key: str) -> bytes:
    return derive_key(secret_key, "aigc-implicit-label")


def _code(key: bytes, *parts: str) -> str:
    message = "\x1f".join(parts).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def fields_for(parties: Parties, media_digest: str, secret_key: str) -> dict[str, str]:
    """The seven AIGC fields, their codes bound to the media packets' digest."""
    key = _codes_key(secret_key)
    return {
        "Label": LABEL_AI_GENERATED,
        "ContentProducer": parties.producer,
        "ProduceID": parties.produce_id,
        "ReservedCode1": _code(
            key, "producer", LABEL_AI_GENERATED, parties.producer, parties.produce_id, media_digest
        ),
        "ContentPropagator": parties.propagator,
        "PropagateID": parties.propagate_id,
        "ReservedCode2": _code(
            key, "propagator", parties.propagator, parties.propagate_id, media_digest
        ),
    }


def write(source: Path, target: Path, parties: Parties, secret_key: str) -> dict[str, str]:
    """Remux `source` into `target` (MP4) with the AIGC metadata; the fields written.

    The packets are read twice (once for their digest, once to copy them): demuxing without
    decoding costs little next to the copy, and the metadata must be set before the header.
    """
    digest = media_digest(source)
    fields = fields_for(parties, digest, secret_key)
    try:
        with av.open(str(source)) as inp:
            streams = [s for s in inp.streams if s.type in ("video", "audio")]
            with av.open(
                str(target),
                "w",
                format="mp4",
                options={"movflags": "use_metadata_tags+faststart"},
            ) as out:
                for name, value in inp.metadata.items():
                    if name not in _NOT_COPIED:
                        out.metadata[name] = value
                out.metadata[AIGC_KEY] = json.dumps(fields, ensure_ascii=False)
                mapping = {s.index: out.add_stream_from_template(s) for s in streams}
                for packet in inp.demux(streams):
                    if packet.dts is None:  # the demuxer's end-of-stream marker
                        continue
                    packet.stream = mapping[packet.stream.index]
                    out.mux(packet)
    except av.FFmpegError as exc:
        raise ImplicitLabelError(f"the video could not be remuxed: {exc}") from exc
    return fields


def media_digest(path: Path) -> str:
    """SHA-256 of every audio and video packet's bytes, in file order: what remuxing keeps."""
    digest = hashlib.sha256()
    try:
        with av.open(str(path)) as container:
            streams = [s for s in container.streams if s.type in ("video", "audio")]
            for packet in container.demux(streams):
                if packet.dts is not None:
                    digest.update(bytes(packet))
    except av.FFmpegError as exc:
        raise ImplicitLabelError(f"the video could not be read: {exc}") from exc
    return digest.hexdigest()


def read(path: Path) -> dict[str, Any] | None:
    """The AIGC object in the file's metadata, as PyAV reads it; None when there is none."""
    with av.open(str(path)) as container:
        raw = container.metadata.get(AIGC_KEY)
    if raw is None:
        return None
    try:
        fields = json.loads(raw)
    except ValueError:
        return {"_unreadable": raw}
    return fields if isinstance(fields, dict) else {"_unreadable": raw}


@dataclass(frozen=True)
class ImplicitCheck:
    """What the implicit label of a file says, and whether it holds."""

    fields: dict[str, Any] | None
    valid: bool
    problem: str | None


def check(path: Path, secret_key: str) -> ImplicitCheck:
    """Read the AIGC fields and recompute both codes over the file's packets."""
    try:
        fields = read(path)
    except av.FFmpegError as exc:
        return ImplicitCheck(None, False, f"the file could not be read: {exc}")
    if fields is None:
        return ImplicitCheck(None, False, "no AIGC metadata")
    missing = [name for name in FIELDS if not isinstance(fields.get(name), str)]
    if missing:
        return ImplicitCheck(fields, False, f"fields missing: {', '.join(missing)}")
    parties = Parties(
        producer=fields["ContentProducer"],
        produce_id=fields["ProduceID"],
        propagator=fields["ContentPropagator"],
        propagate_id=fields["PropagateID"],
    )
    try:
        expected = fields_for(parties, media_digest(path), secret_key)
    except ImplicitLabelError as exc:
        return ImplicitCheck(fields, False, str(exc))
    if fields["Label"] != LABEL_AI_GENERATED:
        return ImplicitCheck(fields, False, f"Label is {fields['Label']!r}, not AI-generated")
    for name in ("ReservedCode1", "ReservedCode2"):
        if not hmac.compare_digest(fields[name], expected[name]):
            return ImplicitCheck(
                fields, False, f"{name} does not match the fields and the media (altered)"
            )
    return ImplicitCheck(fields, True, None)
