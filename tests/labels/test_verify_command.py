"""`vidgate label verify FILE`, run as a real subprocess: what it prints and its exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vidgate.config import Settings
from vidgate.labels import pipeline
from vidgate.labels.job import LabelJob

from ..fixtures.samples import mp4_bytes

VIDGATE = Path(sys.executable).with_name("vidgate")
SECRET = "v" * 48
JOB = LabelJob("3f0e6d3c-0000-4000-8000-000000000002", "wan-animate", "Wan Animate", None)


@pytest.fixture
def labelled(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDGATE_")}
    env.update(
        VIDGATE_DATA_DIR=str(tmp_path / "data"),
        VIDGATE_SECRET_KEY=SECRET,
        VIDGATE_LABEL_EXPLICIT="false",
        VIDGATE_LABEL_PRODUCER="Example Video Co.",
        VIDGATE_LOG_LEVEL="WARNING",
    )
    settings = Settings(
        env="development",
        data_dir=tmp_path / "data",
        secret_key=SECRET,
        label_explicit=False,
        label_producer="Example Video Co.",
    )
    video = tmp_path / "result.mp4"
    video.write_bytes(mp4_bytes(seconds=1.0))
    pipeline.label(settings, video, JOB)
    return video, env


def _verify(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VIDGATE), "label", "verify", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_labelled_file_passes(labelled: tuple[Path, dict[str, str]]) -> None:
    video, env = labelled
    run = _verify(env, str(video))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Labels: OK" in run.stdout
    assert f"ProduceID: {JOB.task_id}" in run.stdout
    assert "ContentProducer: Example Video Co." in run.stdout
    assert "C2PA manifest: present, valid (state Trusted)" in run.stdout
    assert "created by model: Wan Animate" in run.stdout


def test_the_json_report(labelled: tuple[Path, dict[str, str]]) -> None:
    video, env = labelled
    run = _verify(env, "--json", str(video))
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["ok"] is True
    assert report["implicit"]["fields"]["Label"] == "1"
    assert report["c2pa"]["digital_source_type"].endswith("/trainedAlgorithmicMedia")


def test_a_tampered_file_fails(labelled: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    video, env = labelled
    data = bytearray(video.read_bytes())
    data[data.index(b"mdat") + 40] ^= 0x55
    tampered = tmp_path / "tampered.mp4"
    tampered.write_bytes(data)
    run = _verify(env, str(tampered))
    assert run.returncode == 1
    assert "Labels: NOT OK" in run.stdout
    assert "C2PA manifest: present, INVALID" in run.stdout


def test_an_unlabelled_file_fails_unless_labels_are_off(
    labelled: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    _, env = labelled
    plain = tmp_path / "plain.mp4"
    plain.write_bytes(mp4_bytes(seconds=1.0))
    run = _verify(env, str(plain))
    assert run.returncode == 1
    assert "Implicit AIGC metadata: absent" in run.stdout
    assert "C2PA manifest: absent" in run.stdout
    off = {**env, "VIDGATE_LABEL_IMPLICIT": "false", "VIDGATE_LABEL_C2PA": "false"}
    assert _verify(off, str(plain)).returncode == 0


def test_a_missing_file_is_a_usage_error(labelled: tuple[Path, dict[str, str]]) -> None:
    _, env = labelled
    run = _verify(env, "/nonexistent/video.mp4")
    assert run.returncode == 2
    assert "does not exist" in run.stderr
