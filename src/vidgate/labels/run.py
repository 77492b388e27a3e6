"""Labelling one result in a process of its own, so that a vendor's file which crashes or hangs
FFmpeg costs that try of its task and nothing else.

`pipeline.label` decodes and re-encodes the vendor's video with PyAV and signs it with the C2PA
library: C code that a hostile file may crash (a segfault kills the whole process: the API with
its worker, by default) or send into a loop (a thread cannot be stopped). So the worker runs
every labelling as `python -m vidgate.labels.run` (`label`), one short-lived process each (it
takes seconds anyway, no pool is kept), started, limited and read as the probe sandbox's workers
are (`vidgate.confined`):

- it reads one JSON request on stdin: the file, the `LabelJob` and only the settings the
  pipeline uses (among them the secret key the implicit label's codes are keyed from: on stdin,
  never on the command line, which any local user can read);
- it caps its address space (`label_memory_mb`) and CPU time (`label_cpu_seconds`), and the
  worker kills it when `label_wall_seconds` pass;
- it writes one JSON answer on stdout: the labels, or the error that stopped them (JSON, not
  pickle: a process that a file took over must not be able to run code in the worker).

Any failure (an error, a crash, a limit, the deadline) raises `LabellingFailed` in the worker,
whose retry-then-fail-with-refund path handles it like any other labelling error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from vidgate import confined
from vidgate.config import Settings
from vidgate.labels import pipeline
from vidgate.labels.job import LabelJob

# The settings `pipeline.label` reads (the request carries these and no others).
PIPELINE_SETTINGS = frozenset(
    {
        "env",
        "data_dir",
        "secret_key",
        "label_implicit",
        "label_explicit",
        "label_explicit_text",
        "label_explicit_corner",
        "label_explicit_seconds",
        "label_vendor_mark_channels",
        "label_c2pa",
        "label_c2pa_cert",
        "label_c2pa_key",
        "label_producer",
        "label_propagator",
    }
)
# The labels (a few KB) or an error message; anything longer is a process gone wrong.
MAX_ANSWER_BYTES = 1024 * 1024
# How long the process may take to exit once it has answered.
EXIT_SECONDS = 5.0

# What a test makes the labelling process do instead of labelling: raise an error, crash
# (abort) or hang past its deadline.
Fault = Literal["raise", "abort", "hang"]
# Tests set this to make labelling fail on purpose (nothing else can break it at will): called in
# the worker with the job before each try, its answer goes into the request. None in every
# running server, whose requests never carry a fault.
fault_hook: Callable[[LabelJob], Fault | None] | None = None


class LabellingFailed(Exception):
    """The labelling process gave no labels: an error, a crash, a limit or the deadline."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"labelling failed: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class LabelLimits:
    """What one labelling may use: wall-clock seconds, CPU seconds and address space (bytes)."""

    wall_seconds: float
    cpu_seconds: int
    memory_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> LabelLimits:
        return cls(
            wall_seconds=settings.label_wall_seconds,
            cpu_seconds=settings.label_cpu_seconds,
            memory_bytes=settings.label_memory_mb * 1024 * 1024,
        )


def label(settings: Settings, source: Path, job: LabelJob) -> dict[str, Any]:
    """`pipeline.label(settings, source, job)` run in a labelling process: what was applied, or
    LabellingFailed. Blocking: the worker calls it in a thread."""
    limits = LabelLimits.from_settings(settings)
    request = _request(settings, source, job)
    process = confined.start(__name__, str(limits.cpu_seconds), str(limits.memory_bytes))
    try:
        answer = _exchange(process, request, time.monotonic() + limits.wall_seconds)
    finally:
        _end(process)
    if "error" in answer:
        raise LabellingFailed(str(answer["error"]))
    labels: dict[str, Any] = answer["labels"]
    return labels


def _request(settings: Settings, source: Path, job: LabelJob) -> bytes:
    request: dict[str, Any] = {
        "path": str(source),
        "job": dataclasses.asdict(job),
        "settings": settings.model_dump(mode="json", include=set(PIPELINE_SETTINGS)),
    }
    fault = fault_hook(job) if fault_hook is not None else None
    if fault is not None:
        request["fault"] = fault
    return json.dumps(request).encode() + b"\n"


def _exchange(process: subprocess.Popen[bytes], request: bytes, deadline: float) -> dict[str, Any]:
    """Send the request and read the answer line by `deadline`; the process killed otherwise."""
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(request)
        process.stdin.close()
        line, _ = confined.read_line(process.stdout.fileno(), b"", deadline, MAX_ANSWER_BYTES)
    except confined.AnswerLate:
        process.kill()
        raise LabellingFailed("it took too long") from None
    except (confined.AnswerMissing, OSError):
        raise LabellingFailed(_death(process)) from None
    answer: dict[str, Any] = json.loads(line)
    return answer


def _death(process: subprocess.Popen[bytes]) -> str:
    """Why the process ended without answering, in words for the log."""
    try:
        code = process.wait(timeout=EXIT_SECONDS)
    except subprocess.TimeoutExpired:  # it closed its stdout but lives on
        return "the labelling process stopped answering"
    return confined.exit_reason(code) or f"the labelling process crashed (exit status {code})"


def _end(process: subprocess.Popen[bytes]) -> None:
    """Reap the process (killed if it has not exited shortly after answering) and close its
    pipes."""
    try:
        process.wait(timeout=EXIT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


# --- the labelling process ------------------------------------------------------------------


def _serve(cpu_seconds: int, memory_bytes: int) -> None:
    """Label the file of the one request read from stdin; its answer, one JSON line, on stdout."""
    answers = confined.answer_pipe()
    request = json.loads(sys.stdin.buffer.readline())
    settings = Settings.model_validate(request["settings"])
    confined.limit_memory(memory_bytes)
    confined.allow_cpu(cpu_seconds)
    try:
        _fault(request.get("fault"))
        labels = pipeline.label(settings, Path(request["path"]), LabelJob(**request["job"]))
        answer: dict[str, Any] = {"labels": labels}
    except MemoryError:  # nothing in this process can be trusted to allocate now
        os._exit(confined.OUT_OF_MEMORY)
    except Exception as exc:
        answer = {"error": f"{type(exc).__name__}: {exc}"}
    answers.write(json.dumps(answer).encode() + b"\n")
    answers.flush()


def _fault(fault: Fault | None) -> None:
    """Fail the way a test asked (see `fault_hook`)."""
    if fault == "raise":
        raise RuntimeError("labelling failed on purpose (test)")
    if fault == "abort":
        os.abort()
    if fault == "hang":
        while True:
            time.sleep(3600)


def _main(argv: list[str]) -> None:
    cpu_seconds, memory_bytes = argv
    _serve(int(cpu_seconds), int(memory_bytes))


if __name__ == "__main__":
    _main(sys.argv[1:])
