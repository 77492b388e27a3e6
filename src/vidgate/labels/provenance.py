"""The C2PA manifest: signed provenance saying a generative model made the video, and which.

One `c2pa.created` action with the IPTC digital source type `trainedAlgorithmicMedia`, naming
the catalog model as its software agent, vidgate as the claim generator, and a vidgate assertion
with how the visible mark was made. The manifest is signed (ES256) with the operator's
certificate and key from settings, or in development with a test CA and signer made in the data
dir on first use (`certificates`). Signing writes a new file: the manifest goes into the MP4 and
binds a hash of every other byte, so a changed frame or a changed manifest fails validation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import c2pa

from vidgate import __version__
from vidgate.config import Settings
from vidgate.labels.certificates import SigningFiles, development_files
from vidgate.labels.job import LabelJob

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
VIDGATE_ASSERTION = "org.vidgate.labels"
MP4 = "video/mp4"


class ProvenanceError(Exception):
    """The C2PA manifest could not be made (settings, certificate or file)."""


def signing_files(settings: Settings) -> SigningFiles:
    """The operator's chain and key, or the development pair (made on first use)."""
    if settings.label_c2pa_cert and settings.label_c2pa_key:
        return SigningFiles(settings.label_c2pa_cert, settings.label_c2pa_key, None)
    if not settings.is_development:
        raise ProvenanceError("VIDGATE_LABEL_C2PA_CERT and VIDGATE_LABEL_C2PA_KEY are not set")
    return development_files(settings.data_dir)


def _context(files: SigningFiles) -> c2pa.Context:
    """Offline validation (no remote manifests, no OCSP), trusting the development CA when it
    is the signer's: a server's own test files then validate as they will with a real chain."""
    verify: dict[str, Any] = {"remote_manifest_fetch": False, "ocsp_fetch": False}
    config: dict[str, Any] = {"verify": verify}
    if files.root is not None:
        config["trust"] = {"trust_anchors": files.root.read_text()}
    return c2pa.Context.from_dict(config)


def manifest_definition(job: LabelJob, explicit: dict[str, Any] | None) -> dict[str, Any]:
    """The manifest vidgate signs for one result."""
    return {
        "claim_generator_info": [{"name": "vidgate", "version": __version__}],
        "title": f"{job.task_id}.mp4",
        "format": MP4,
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                            "softwareAgent": {"name": job.model_name},
                            "parameters": {"model": job.model_id, "task": job.task_id},
                        }
                    ]
                },
            },
            {
                "label": VIDGATE_ASSERTION,
                "data": {"task": job.task_id, "model": job.model_id, "explicit": explicit},
            },
        ],
    }


def sign(
    settings: Settings,
    source: Path,
    target: Path,
    job: LabelJob,
    explicit: dict[str, Any] | None,
) -> dict[str, Any]:
    """Write `source` with a signed manifest to `target`; what the manifest says."""
    files = signing_files(settings)
    try:
        chain = files.chain.read_bytes()
        key = files.key.read_bytes()
    except OSError as exc:
        raise ProvenanceError(f"the C2PA certificate or key cannot be read: {exc}") from exc
    definition = manifest_definition(job, explicit)
    info = c2pa.C2paSignerInfo(b"es256", chain, key, None)
    with (
        _context(files) as context,
        c2pa.Signer.from_info(info) as signer,
        c2pa.Builder.from_json(json.dumps(definition), context) as builder,
        source.open("rb") as src,
        target.open("w+b") as dest,
    ):
        builder.sign(signer, MP4, src, dest)
    return {
        "digital_source_type": TRAINED_ALGORITHMIC_MEDIA,
        "model": job.model_name,
        "claim_generator": "vidgate",
    }


@dataclass(frozen=True)
class ManifestCheck:
    """Whether a file carries a C2PA manifest, whether it validates, and what it says."""

    present: bool
    valid: bool
    state: str | None
    problems: list[str]
    digital_source_type: str | None
    model: str | None
    claim_generator: str | None
    explicit: dict[str, Any] | None


def check(settings: Settings, path: Path) -> ManifestCheck:
    """Read the file's manifest with the C2PA library's Reader and report its validation."""
    try:
        files: SigningFiles | None = signing_files(settings)
    except ProvenanceError:
        files = None
    context = _context(files) if files is not None else c2pa.Context()
    try:
        with context, path.open("rb") as stream:
            reader = c2pa.Reader.try_create(MP4, stream, None, context)
            if reader is None:
                return ManifestCheck(False, False, None, ["no C2PA manifest"], *_NOTHING)
            with reader:
                state = reader.get_validation_state()
                report = json.loads(reader.json())
    except c2pa.C2paError as exc:
        return ManifestCheck(True, False, None, [f"unreadable manifest: {exc}"], *_NOTHING)
    problems = _failures(report)
    manifest = report.get("manifests", {}).get(report.get("active_manifest"), {})
    created = _created_action(manifest)
    agent = created.get("softwareAgent") if created else None
    ours = _assertion(manifest, VIDGATE_ASSERTION) or {}
    generator = (manifest.get("claim_generator_info") or [{}])[0].get("name")
    return ManifestCheck(
        present=True,
        valid=state in ("Valid", "Trusted") and not problems,
        state=state,
        problems=problems,
        digital_source_type=created.get("digitalSourceType") if created else None,
        model=agent.get("name") if isinstance(agent, dict) else agent,
        claim_generator=generator,
        explicit=ours.get("explicit"),
    )


_NOTHING = (None, None, None, None)


def _failures(report: dict[str, Any]) -> list[str]:
    """The validation failures the Reader found in the active manifest."""
    results = report.get("validation_results", {}).get("activeManifest", {})
    failures = results.get("failure", []) if isinstance(results, dict) else []
    statuses = failures or report.get("validation_status", [])
    return [f"{s.get('code')}: {s.get('explanation', '')}".strip() for s in statuses]


def _assertion(manifest: dict[str, Any], label: str) -> dict[str, Any] | None:
    for assertion in manifest.get("assertions", []):
        if assertion.get("label", "").split(".v")[0] == label.split(".v")[0]:
            data = assertion.get("data")
            return data if isinstance(data, dict) else None
    return None


def _created_action(manifest: dict[str, Any]) -> dict[str, Any] | None:
    actions = _assertion(manifest, "c2pa.actions") or {}
    for action in actions.get("actions", []):
        if action.get("action") == "c2pa.created":
            return dict(action)
    return None
