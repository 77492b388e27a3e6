"""Labelling benchmark (`make bench`): what labelling a result costs in time and size.

For a 5 s 720p and a 10 s 1080p synthetic result (a moving gradient under drifting grain, with an
AAC track, encoded like a vendor's file at CRF 20), each row runs one labelling step and prints
its wall-clock and CPU seconds per second of output video and the labelled file's size as a ratio
to the source's. Targets: burn-in (the explicit label) <= 1 s per output second on one core at
720p; remux-only steps (implicit metadata, C2PA) <= 0.05 s per output second. The CPU figure is
this process's CPU time (x264 may spread its work over the cores it finds; the sum is what one
core would take). Prints figures; asserts nothing.

Each labelling step is a row of `STEPS`: a name, the target in seconds per output second, and a
function that writes a labelled copy of a source to a target path. Remux-only rows go there too.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fixtures.videos import synthetic_video

from vidgate.labels.explicit import CRF, PRESET, ExplicitLabel, burn_in


@dataclass(frozen=True)
class Step:
    name: str
    target: float  # seconds of labelling per second of output video
    run: Callable[[Path, Path], None]


@dataclass(frozen=True)
class Source:
    name: str
    width: int
    height: int
    seconds: float


def _burn_in(source: Path, target: Path) -> None:
    burn_in(source, target, ExplicitLabel(text="AI生成 · AI-generated", seconds=0.0))


def _burn_in_start(source: Path, target: Path) -> None:
    burn_in(source, target, ExplicitLabel(seconds=2.0))


# The labelling steps measured; remux-only steps (implicit label, C2PA manifest) are added here.
STEPS: list[Step] = [
    Step("burn-in, whole video", 1.0, _burn_in),
    Step("burn-in, first 2 s", 1.0, _burn_in_start),
]

SOURCES = [Source("720p 5 s", 1280, 720, 5.0), Source("1080p 10 s", 1920, 1080, 10.0)]
FPS = 24


def measure(step: Step, source: Path, target: Path) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one run of `step`."""
    wall, cpu = time.perf_counter(), time.process_time()
    step.run(source, target)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    print(f"labelling: x264 CRF {CRF}, preset {PRESET}; sources at {FPS} fps with AAC audio")
    header = f"{'step':<24}{'source':<12}{'wall s/s':>10}{'CPU s/s':>10}{'size':>8}{'target':>9}"
    print(header)
    with tempfile.TemporaryDirectory(prefix="vidgate-bench-labels-") as folder:
        for spec in SOURCES:
            source = synthetic_video(
                Path(folder) / f"{spec.height}p.mp4",
                width=spec.width,
                height=spec.height,
                seconds=spec.seconds,
                fps=FPS,
                preset="veryfast",
            )
            for step in STEPS:
                target = Path(folder) / "labelled.mp4"
                wall, cpu = measure(step, source, target)
                ratio = target.stat().st_size / source.stat().st_size
                print(
                    f"{step.name:<24}{spec.name:<12}{wall / spec.seconds:>10.3f}"
                    f"{cpu / spec.seconds:>10.3f}{ratio:>8.3f}{'<= ' + str(step.target):>9}"
                )
                target.unlink()


if __name__ == "__main__":
    main()
