"""Labelling benchmark, remux only (`make bench`): the AIGC metadata and the C2PA manifest.

For a 5 s 720p and a 10 s 1080p result (H.264 with AAC, made here with PyAV) prints the time of
each remux step and of both as the worker runs them, per second of output (target: <= 0.05 s
per output second), and the size the labels add. The visible mark (a re-encode) is measured
apart. Median of 5 rounds after one warm-up; prints figures, asserts nothing.
"""

from __future__ import annotations

import math
import shutil
import statistics
import tempfile
import time
from array import array
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image

from vidgate.config import Settings
from vidgate.labels import implicit, pipeline, provenance
from vidgate.labels.job import LabelJob

ROUNDS = 5
CASES = (("5 s 720p", 5, 1280, 720), ("10 s 1080p", 10, 1920, 1080))
JOB = LabelJob("00000000-0000-4000-8000-000000000000", "sora-2", "Sora 2", None)


def make_result(path: Path, seconds: int, width: int, height: int, fps: int = 24) -> None:
    """A vendor-like result: a moving noise texture (H.264) with a stereo AAC tone."""
    texture = Image.effect_noise((width + fps * seconds * 4, height), 48).convert("RGB")
    tone = array("f", (math.sin(n / 20.0) * 0.1 for n in range(1024))).tobytes()
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "ultrafast", "crf": "26"}
        audio = out.add_stream("aac", rate=48000)
        audio.layout = "stereo"
        for i in range(seconds * fps):
            crop = texture.crop((i * 4, 0, i * 4 + width, height))
            out.mux(video.encode(av.VideoFrame.from_image(crop)))
        for i in range(seconds * 48000 // 1024):
            frame = av.AudioFrame(format="fltp", layout="stereo", samples=1024)
            for plane in frame.planes:
                plane.update(tone)
            frame.sample_rate, frame.pts = 48000, i * 1024
            frame.time_base = Fraction(1, 48000)
            out.mux(audio.encode(frame))
        out.mux(video.encode())
        out.mux(audio.encode())


def one_round(settings: Settings, root: Path, source: Path) -> tuple[float, float, float, int]:
    """Each remux step alone, then the pipeline as the worker runs it: times and bytes added."""
    work = root / "result-1.part"
    shutil.copyfile(source, work)
    marked, signed = root / "aigc.mp4", root / "signed.mp4"
    parties = implicit.Parties("bench", JOB.task_id, "bench", JOB.task_id)
    start = time.perf_counter()
    implicit.write(work, marked, parties, settings.secret_key)
    aigc = time.perf_counter() - start
    start = time.perf_counter()
    provenance.sign(settings, marked, signed, JOB, None)
    c2pa = time.perf_counter() - start
    start = time.perf_counter()
    pipeline.label(settings, work, JOB)
    both = time.perf_counter() - start
    return aigc, c2pa, both, work.stat().st_size - source.stat().st_size


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = Settings(
            env="development",
            data_dir=root / "data",
            secret_key="b" * 48,
            label_explicit=False,
            label_producer="bench",
        )
        provenance.signing_files(settings)  # the development certificate, made once
        print(f"Labels, remux only (AIGC metadata + C2PA), median of {ROUNDS} rounds")
        print(
            f"{'result':<12}{'MB':>7}{'aigc s':>9}{'c2pa s':>9}{'both s':>9}"
            f"{'s/out s':>10}{'added KB':>10}"
        )
        for name, seconds, width, height in CASES:
            source = root / f"{height}p.mp4"
            make_result(source, seconds, width, height)
            rounds = [one_round(settings, root, source) for _ in range(ROUNDS + 1)][1:]
            aigc, c2pa, both, added = zip(*rounds, strict=True)
            median = statistics.median(both)
            print(
                f"{name:<12}{source.stat().st_size / 1e6:>7.1f}"
                f"{statistics.median(aigc):>9.3f}{statistics.median(c2pa):>9.3f}"
                f"{median:>9.3f}{median / seconds:>10.4f}{added[-1] / 1024:>10.1f}"
            )
        print("target: <= 0.05 s per output second")


if __name__ == "__main__":
    main()
