"""Label a result before it is stored: visible mark, then AIGC metadata, then C2PA.

The worker runs this on its local copy of the vendor's file, after the download and before the
task is SUCCEEDED (`tasks.lifecycle._collect`), in a process of its own under limits
(`labels.run`). The order matters: burning in re-encodes the frames, the metadata remux keeps
them, and the C2PA manifest signs the final bytes, so it comes last. Each step writes a new file
beside the source; the source is replaced only when all have succeeded, so a failure leaves
nothing half labelled. What was applied is returned for the task's `labels` column, and the
visible mark's settings also go into the C2PA manifest, so a file can say how it was marked
without the database.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vidgate.config import Settings
from vidgate.labels import implicit, provenance
from vidgate.labels.job import LabelJob


def enabled(settings: Settings) -> bool:
    """Whether any label is on: with none, results are stored as the vendor made them."""
    return settings.label_implicit or settings.label_explicit or settings.label_c2pa


def vendor_marks(settings: Settings, channel: str | None) -> bool:
    """Whether the vendor of `channel` is asked to add the visible mark (vidgate does not)."""
    return settings.label_explicit and channel in settings.label_vendor_mark_channels


def explicit_record(settings: Settings, channel: str | None) -> dict[str, Any] | None:
    """How the visible mark is made for a result of `channel`; None when it is off."""
    if not settings.label_explicit:
        return None
    if vendor_marks(settings, channel):
        return {"by": "vendor"}
    return {
        "by": "vidgate",
        "text": settings.label_explicit_text,
        "corner": settings.label_explicit_corner,
        "seconds": settings.label_explicit_seconds,
    }


def label(settings: Settings, source: Path, job: LabelJob) -> dict[str, Any]:
    """Label `source` in place with every label the settings turn on; what was applied.

    Blocking, and decoding a vendor's file (PyAV and the C2PA library): the worker runs it in a
    labelling process of its own (`labels.run`).
    """
    made: list[Path] = []
    current = source
    try:
        explicit = explicit_record(settings, job.channel)
        if explicit is not None and explicit["by"] == "vidgate":
            previous, current = current, _step(current, ".marked.mp4", made)
            _burn_in(previous, current, explicit)
        fields = None
        if settings.label_implicit:
            previous, current = current, _step(current, ".aigc.mp4", made)
            fields = implicit.write(previous, current, _parties(settings, job), settings.secret_key)
        manifest = None
        if settings.label_c2pa:
            previous, current = current, _step(current, ".c2pa.mp4", made)
            manifest = provenance.sign(settings, previous, current, job, explicit)
        if current != source:
            os.replace(current, source)
    finally:
        for path in made:
            path.unlink(missing_ok=True)
    return {
        "labelled_at": datetime.now(UTC).isoformat(),
        "implicit": fields,
        "explicit": explicit,
        "c2pa": manifest,
    }


def _step(current: Path, suffix: str, made: list[Path]) -> Path:
    """The next step's output beside the source (removed when labelling ends, kept or not)."""
    target = current.with_name(current.name.split(".", 1)[0] + suffix)
    made.append(target)
    return target


def _parties(settings: Settings, job: LabelJob) -> implicit.Parties:
    """vidgate makes the video and hands it out: it is producer and propagator, the task id the
    content id for both (the guide leaves the propagation id to the platform's numbering)."""
    return implicit.Parties(
        producer=settings.label_producer,
        produce_id=job.task_id,
        propagator=settings.label_propagator or settings.label_producer,
        propagate_id=job.task_id,
    )


def check_settings(settings: Settings) -> None:
    """Refuse (ValueError, which stops the start) a visible mark the standard's rules or the
    label font cannot make, rather than failing every task's labelling later."""
    if settings.label_explicit:
        from vidgate.labels.explicit import ExplicitLabel

        ExplicitLabel(
            settings.label_explicit_text,
            settings.label_explicit_corner,
            settings.label_explicit_seconds,
        )


def _burn_in(source: Path, target: Path, record: dict[str, Any]) -> None:
    """The visible mark, drawn by `labels.explicit` (imported here, where it is used: it brings
    NumPy and the label font, which processes that never burn a mark in do not need)."""
    from vidgate.labels.explicit import ExplicitLabel, burn_in

    burn_in(source, target, ExplicitLabel(record["text"], record["corner"], record["seconds"]))
