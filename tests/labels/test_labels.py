"""Labelling a file: the AIGC metadata as PyAV reads it back, the C2PA manifest as the C2PA
library's Reader validates it, tampering caught by both, and labels turned off."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import av
import pytest

from vidgate.config import Settings
from vidgate.labels import implicit, pipeline, provenance
from vidgate.labels.job import LabelJob
from vidgate.labels.verify import verify

from ..fixtures.samples import mp4_bytes

JOB = LabelJob(
    task_id="7d1c0ab2-0000-4000-8000-000000000001",
    model_id="sora-2",
    model_name="Sora 2",
    channel="kie-sora",
)
SECRET = "s" * 48


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        env="development",
        data_dir=tmp_path / "data",
        secret_key=SECRET,
        label_explicit=False,
        label_producer="Example Video Co. (filing 110108-0001)",
    )


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "result-1.part"
    path.write_bytes(mp4_bytes(seconds=1.5, fps=10, size=(128, 96)))
    return path


def _packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.video) if p.dts is not None]


def _flip_in_mdat(path: Path, target: Path) -> None:
    data = bytearray(path.read_bytes())
    at = data.index(b"mdat") + 64
    data[at] ^= 0xFF
    target.write_bytes(data)


def test_the_aigc_fields_read_back_with_pyav(settings: Settings, video: Path) -> None:
    frames = _packets(video)
    report = pipeline.label(settings, video, JOB)
    with av.open(str(video)) as container:
        fields = json.loads(container.metadata["AIGC"])
    assert list(fields) == list(implicit.FIELDS)
    assert fields["Label"] == "1"
    assert fields["ContentProducer"] == "Example Video Co. (filing 110108-0001)"
    assert fields["ProduceID"] == JOB.task_id
    assert fields["ContentPropagator"] == fields["ContentProducer"]  # vidgate also hands it out
    assert fields["PropagateID"] == JOB.task_id
    assert len(fields["ReservedCode1"]) == len(fields["ReservedCode2"]) == 64
    assert fields["ReservedCode1"] != fields["ReservedCode2"]
    assert report["implicit"] == fields
    assert _packets(video) == frames  # remuxed: not one frame re-encoded
    assert implicit.check(video, SECRET).valid
    assert not implicit.check(video, "another server's secret" * 2).valid


def test_ffprobe_reads_the_aigc_tag_when_installed(settings: Settings, video: Path) -> None:
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        pytest.skip("ffprobe is not installed")
    pipeline.label(settings, video, JOB)
    out = subprocess.run(
        [ffprobe, "-v", "error", "-show_format", "-of", "json", str(video)],
        check=True,
        capture_output=True,
        text=True,
    )
    tags = json.loads(out.stdout)["format"]["tags"]
    assert json.loads(tags["AIGC"])["ProduceID"] == JOB.task_id


def test_the_c2pa_manifest_validates_and_names_the_model(settings: Settings, video: Path) -> None:
    pipeline.label(settings, video, JOB)
    manifest = provenance.check(settings, video)
    assert manifest.present and manifest.valid, manifest.problems
    assert manifest.state == "Trusted"  # the development CA is this server's own
    assert manifest.digital_source_type == (
        "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
    )
    assert manifest.model == "Sora 2"
    assert manifest.claim_generator == "vidgate"
    assert (settings.data_dir / "c2pa" / "signer-chain.pem").exists()
    report = verify(settings, video)
    assert report.ok and report.implicit.valid and report.c2pa.valid


def test_changed_media_bytes_fail_both_labels(
    settings: Settings, video: Path, tmp_path: Path
) -> None:
    pipeline.label(settings, video, JOB)
    tampered = tmp_path / "tampered.mp4"
    _flip_in_mdat(video, tampered)
    report = verify(settings, tampered)
    assert not report.ok
    assert not report.c2pa.valid and report.c2pa.state == "Invalid"
    assert any("mismatch" in problem for problem in report.c2pa.problems)
    assert not report.implicit.valid and "altered" in (report.implicit.problem or "")


def test_an_altered_manifest_fails(settings: Settings, video: Path, tmp_path: Path) -> None:
    pipeline.label(settings, video, JOB)
    data = video.read_bytes()
    at = data.index(b"c2pa.created")
    tampered = tmp_path / "tampered.mp4"
    tampered.write_bytes(data[:at] + b"c2pa.opened." + data[at + 12 :])
    manifest = provenance.check(settings, tampered)
    assert manifest.present and not manifest.valid
    assert manifest.problems


def test_an_altered_aigc_field_fails(settings: Settings, video: Path, tmp_path: Path) -> None:
    pipeline.label(settings, video, JOB)
    data = video.read_bytes()
    tampered = tmp_path / "tampered.mp4"
    tampered.write_bytes(data.replace(b'"Label": "1"', b'"Label": "3"'))
    check = implicit.check(tampered, SECRET)
    assert check.fields is not None and check.fields["Label"] == "3"
    assert not check.valid


def test_an_unlabelled_file_reports_nothing(settings: Settings, video: Path) -> None:
    report = verify(settings, video)
    assert not report.ok
    assert (report.implicit.present, report.c2pa.present) == (False, False)
    assert report.c2pa.problems == ["no C2PA manifest"]


def test_labels_off_leave_the_file_alone(settings: Settings, video: Path) -> None:
    before = video.read_bytes()
    off = settings.model_copy(update={"label_implicit": False, "label_c2pa": False})
    assert not pipeline.enabled(off)
    report = pipeline.label(off, video, JOB)
    assert video.read_bytes() == before
    assert report["implicit"] is None and report["c2pa"] is None
    assert verify(off, video).ok  # nothing is required of it


def test_the_visible_mark_is_recorded_in_the_manifest(settings: Settings, video: Path) -> None:
    """A channel whose vendor draws the mark: vidgate burns nothing in and says so."""
    vendor = settings.model_copy(
        update={"label_explicit": True, "label_vendor_mark_channels": [JOB.channel]}
    )
    report = pipeline.label(vendor, video, JOB)
    assert report["explicit"] == {"by": "vendor"}
    checked = verify(vendor, video)
    assert checked.ok and checked.explicit.recorded == {"by": "vendor"}


def test_a_failing_step_leaves_the_source_untouched(
    settings: Settings, video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = video.read_bytes()

    def broken(*args: object) -> None:
        raise provenance.ProvenanceError("the signer is gone")

    monkeypatch.setattr(provenance, "sign", broken)
    with pytest.raises(provenance.ProvenanceError):
        pipeline.label(settings, video, JOB)
    assert video.read_bytes() == before
    assert sorted(p.name for p in video.parent.iterdir() if p.is_file()) == [video.name]


def test_production_requires_a_producer_and_a_certificate() -> None:
    problems = Settings(env="production").production_problems()
    assert any("VIDGATE_LABEL_PRODUCER" in p for p in problems)
    assert any("VIDGATE_LABEL_C2PA_CERT" in p for p in problems)
    quiet = Settings(env="production", label_implicit=False, label_c2pa=False)
    assert not any("VIDGATE_LABEL" in p for p in quiet.production_problems())


def test_a_file_that_is_no_video_is_reported_as_such(settings: Settings, tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n")
    report = verify(settings, text)
    assert not report.ok
    assert (report.implicit.present, report.c2pa.present) == (False, False)
    assert (report.implicit.problem or "").startswith("not a video vidgate can read")


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"label_explicit_text": "made by a machine"}, "人工智能"),
        ({"label_explicit_seconds": 1.0}, "seconds"),
    ],
)
def test_a_visible_mark_the_rules_refuse_stops_the_start(
    settings: Settings, update: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        pipeline.check_settings(settings.model_copy(update={**update, "label_explicit": True}))
    pipeline.check_settings(settings.model_copy(update={**update, "label_explicit": False}))
    whole_video = {"label_explicit": True, "label_explicit_seconds": 0.0}
    pipeline.check_settings(settings.model_copy(update=whole_video))
