"""What labels a file carries and whether they hold: `vidgate label verify` and
`GET /api/tasks/{id}/provenance` give the same report.

A file passes when every label these settings turn on is present and valid: the AIGC metadata
with both protection codes matching its fields and media packets (this server's secret), the
C2PA manifest validating with the library's Reader, and, while both the visible mark and C2PA
are on, the mark's settings recorded in the manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from vidgate.config import Settings
from vidgate.labels import implicit, provenance
from vidgate.media.probe import MediaRejected, probe, read_head


class ImplicitReport(BaseModel):
    enabled: bool = Field(description="Whether this server writes the AIGC metadata")
    present: bool
    valid: bool
    fields: dict[str, Any] | None = Field(description="The AIGC object as read from the file")
    problem: str | None = None


class C2paReport(BaseModel):
    enabled: bool = Field(description="Whether this server signs C2PA manifests")
    present: bool
    valid: bool
    state: str | None = Field(description="The C2PA validation state (Valid, Trusted, Invalid)")
    problems: list[str]
    digital_source_type: str | None = None
    model: str | None = Field(default=None, description="The generative model the manifest names")
    claim_generator: str | None = None


class ExplicitReport(BaseModel):
    enabled: bool = Field(description="Whether this server shows the visible AI-generated mark")
    recorded: dict[str, Any] | None = Field(
        description="How the mark was made, as the C2PA manifest (or the task) records it"
    )


class ProvenanceReport(BaseModel):
    """The labels a video carries and whether each holds."""

    ok: bool = Field(description="Every label this server turns on is present and valid")
    implicit: ImplicitReport
    c2pa: C2paReport
    explicit: ExplicitReport


def verify(
    settings: Settings, path: Path, recorded: dict[str, Any] | None = None
) -> ProvenanceReport:
    """Check `path`; `recorded` is what the task row says of the visible mark, when known."""
    try:
        probe(path, read_head(path), "video")
    except MediaRejected as exc:  # nothing to read labels from: say so rather than guess
        return _not_a_video(settings, f"not a video vidgate can read: {exc}")
    aigc = implicit.check(path, settings.secret_key)
    manifest = provenance.check(settings, path)
    mark = manifest.explicit if manifest.present else None
    report = ProvenanceReport(
        ok=False,
        implicit=ImplicitReport(
            enabled=settings.label_implicit,
            present=aigc.fields is not None,
            valid=aigc.valid,
            fields=aigc.fields,
            problem=aigc.problem,
        ),
        c2pa=C2paReport(
            enabled=settings.label_c2pa,
            present=manifest.present,
            valid=manifest.valid,
            state=manifest.state,
            problems=manifest.problems,
            digital_source_type=manifest.digital_source_type,
            model=manifest.model,
            claim_generator=manifest.claim_generator,
        ),
        explicit=ExplicitReport(enabled=settings.label_explicit, recorded=mark or recorded),
    )
    report.ok = _passes(settings, report)
    return report


def _not_a_video(settings: Settings, problem: str) -> ProvenanceReport:
    return ProvenanceReport(
        ok=False,
        implicit=ImplicitReport(
            enabled=settings.label_implicit,
            present=False,
            valid=False,
            fields=None,
            problem=problem,
        ),
        c2pa=C2paReport(
            enabled=settings.label_c2pa, present=False, valid=False, state=None, problems=[problem]
        ),
        explicit=ExplicitReport(enabled=settings.label_explicit, recorded=None),
    )


def _passes(settings: Settings, report: ProvenanceReport) -> bool:
    if settings.label_implicit and not report.implicit.valid:
        return False
    if settings.label_c2pa and not report.c2pa.valid:
        return False
    # The mark's record travels in the manifest: checkable only while C2PA is on too.
    return not (settings.label_explicit and settings.label_c2pa and not report.explicit.recorded)


def describe(report: ProvenanceReport) -> list[str]:
    """The report as lines for people (the command line)."""
    lines = [f"Labels: {'OK' if report.ok else 'NOT OK'}"]
    aigc = report.implicit
    state = "valid" if aigc.valid else f"INVALID ({aigc.problem})"
    absent = f"absent ({aigc.problem})" if aigc.problem and not aigc.present else "absent"
    lines.append(f"Implicit AIGC metadata: {state if aigc.present else absent}")
    for name, value in (aigc.fields or {}).items():
        lines.append(f"  {name}: {value}")
    c2pa = report.c2pa
    if not c2pa.present:
        lines.append("C2PA manifest: absent")
    else:
        verdict = "valid" if c2pa.valid else "INVALID"
        lines.append(f"C2PA manifest: present, {verdict} (state {c2pa.state})")
        lines += [f"  problem: {problem}" for problem in c2pa.problems]
        lines.append(f"  created by model: {c2pa.model}; source type: {c2pa.digital_source_type}")
        lines.append(f"  claim generator: {c2pa.claim_generator}")
    mark = report.explicit.recorded
    lines.append(f"Visible mark: {mark if mark else 'not recorded'}")
    off = [n for n, on in (("implicit", aigc.enabled), ("C2PA", c2pa.enabled)) if not on]
    if off:
        lines.append(f"(not required here: {', '.join(off)} turned off in the settings)")
    return lines
