"""Probing uploads in worker processes, so that a file which crashes or hangs a decoder costs
that upload a 400 and nothing else.

`probe` decodes whatever a client sends with FFmpeg (PyAV) and Pillow, C code that a crafted
file may crash (a segfault kills the whole process, not one thread) or send into a loop (a thread
cannot be stopped from outside). So the API hands each probe to a small pool of worker processes
(`ProbeSandbox`), each one limited by the kernel and watched by the API:

- RLIMIT_AS caps its address space: an allocation beyond it fails (MemoryError, or FFmpeg's
  ENOMEM), the probe fails and the worker exits;
- RLIMIT_CPU caps the CPU time of each probe (the soft limit is raised before every probe to the
  time used so far plus the allowance): past it the kernel kills the worker with SIGXCPU;
- a wall-clock deadline is kept by the API, which kills the worker (SIGKILL) when it passes, so a
  worker blocked without using CPU is stopped too;
- no core dumps, and no descriptor of the API's (sockets, database connections, the listening
  port): a worker is a new interpreter (`subprocess`, close_fds) that has its stdin, stdout and
  stderr only, in a session of its own so that a terminal's Ctrl-C reaches the API, which stops
  its workers itself (`vidgate.confined`, shared with the labelling process).

Why not `concurrent.futures.ProcessPoolExecutor`: a task there cannot be given a deadline that
stops its process, and one worker that dies breaks the whole pool (BrokenProcessPool fails every
probe in flight, and the pool has to be rebuilt). Why not multiprocessing's fork or forkserver
workers: fork copies the API's threads' state and descriptors, and a forkserver child re-imports
the parent's `__main__` (the whole CLI). Here every worker is its own `python -m
vidgate.media.sandbox`: it imports the decoders once, says it is ready, then answers one probe
after another over a pipe, one JSON line in and one out (JSON, not pickle: a worker that a file
took over must not be able to run code in the API by its answer). A worker that fails in any way
is killed and replaced at once by a fresh one, which warms up while nothing waits on it; its
start-up is not counted against the next probe's deadline.

Each API process has its own pool (`vidgate serve --workers N` runs N), opened and closed with
its runtime; pools are started lazily, so only processes that probe pay for them. The job worker
probes through its runtime's pool too: task inputs fetched from URLs and vendors' results.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import importlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from vidgate import confined
from vidgate.media.probe import FileType, MediaInfo, MediaRejected

if TYPE_CHECKING:
    from vidgate.config import Settings

logger = structlog.get_logger(__name__)

# The function the workers run: `module:name`, called as probe(path, head, file_type).
PROBE = "vidgate.media.probe:probe"
# How long a new worker may take to import the decoders before it counts as failed.
START_SECONDS = 60.0
# No answer of a worker is longer than this (a MediaInfo or a message).
MAX_ANSWER_BYTES = 64 * 1024
_READY = b"ready\n"


@dataclass(frozen=True)
class ProbeLimits:
    """What one probe may use: wall-clock seconds, CPU seconds and address space (bytes)."""

    wall_seconds: float
    cpu_seconds: int
    memory_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ProbeLimits:
        return cls(
            wall_seconds=settings.probe_wall_seconds,
            cpu_seconds=settings.probe_cpu_seconds,
            memory_bytes=settings.probe_memory_mb * 1024 * 1024,
        )


class ProbeFailed(MediaRejected):
    """The probe did not finish within its limits (or its worker crashed): the file could not be
    checked, so it is refused like any file that is not what it claims to be."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"The file could not be checked within the limits ({reason})")
        self.reason = reason


class _Worker:
    """One worker process and its pipes; used by one probe at a time, from a thread."""

    def __init__(self, limits: ProbeLimits, target: str) -> None:
        self.process = confined.start(
            __name__, target, str(limits.cpu_seconds), str(limits.memory_bytes)
        )
        self.ready = False
        self._buffer = b""

    def ask(self, request: bytes, wall_seconds: float) -> dict[str, Any]:
        """Send one probe and wait for its answer; ProbeFailed (the worker killed) when it does
        not come within `wall_seconds` or the worker dies."""
        assert self.process.stdin is not None
        if not self.ready:
            self._read_line(time.monotonic() + START_SECONDS, "the checker did not start")
            self.ready = True
        try:
            self.process.stdin.write(request)
            self.process.stdin.flush()
        except OSError:
            self.kill()
            raise ProbeFailed(self._death()) from None
        line = self._read_line(time.monotonic() + wall_seconds, "it took too long")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def _read_line(self, deadline: float, too_late: str) -> bytes:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        try:
            line, self._buffer = confined.read_line(fd, self._buffer, deadline, MAX_ANSWER_BYTES)
        except confined.AnswerLate:
            self.kill()
            raise ProbeFailed(too_late) from None
        except confined.AnswerMissing:
            self.kill()
            raise ProbeFailed(self._death()) from None
        return line

    def _death(self) -> str:
        """Why the worker ended, in words for the client."""
        try:
            code = self.process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:  # it closed its answers' pipe but lives on
            self.kill()
            return "the checker stopped answering"
        return confined.exit_reason(code) or "the decoder crashed"

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait()
        self._close_pipes()

    def stop(self, grace: float) -> None:
        """End the worker: its stdin closed it leaves its loop; killed if it has not by then."""
        with contextlib.suppress(OSError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()
        self._close_pipes()

    def _close_pipes(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


class ProbeSandbox:
    """A pool of `processes` probe workers under `limits`. `probe` is `probe.probe` run in one
    of them: MediaRejected for a file that is not acceptable, ProbeFailed (a MediaRejected) for
    one that could not be checked within the limits. `target` names the function the workers
    run; it is vidgate's probe but for tests of the sandbox itself."""

    def __init__(self, limits: ProbeLimits, processes: int, *, target: str = PROBE) -> None:
        self.limits = limits
        self._target = target
        self._idle: list[_Worker | None] = [None] * processes  # None: not started yet
        self._busy: set[_Worker] = set()
        self._slots = asyncio.Semaphore(processes)
        self._closed = False

    def start(self) -> None:
        """Start every worker now, so that the first probes do not wait for their imports."""
        self._idle = [worker or self._new_worker() for worker in self._idle]

    async def probe(self, path: Path, head: bytes, file_type: FileType) -> MediaInfo:
        request = _encode_request(path, head, file_type)
        if self._closed:
            raise RuntimeError("the probe sandbox is closed")
        await self._slots.acquire()
        worker = self._idle.pop()
        if worker is None or not worker.alive:
            if worker is not None:
                worker.kill()  # died while idle (killed from outside): reap it
            try:
                worker = self._new_worker()
            except BaseException:
                self._idle.append(None)
                self._slots.release()
                raise
        self._busy.add(worker)
        exchange = asyncio.ensure_future(
            asyncio.to_thread(worker.ask, request, self.limits.wall_seconds)
        )
        # The worker goes back to the pool when its exchange is over, even if the upload that
        # asked is cancelled meanwhile (its answer must be read before the next request).
        exchange.add_done_callback(lambda _: self._release(worker))
        try:
            answer = await asyncio.shield(exchange)
        except ProbeFailed as failed:
            logger.warning("probe_failed", reason=failed.reason, file_type=file_type)
            raise
        return _decode_answer(answer)

    def _release(self, worker: _Worker) -> None:
        self._busy.discard(worker)
        if self._closed:
            worker.kill()
        elif not worker.alive:
            worker.kill()  # reaps it and closes its pipes
            self._idle.append(self._new_worker())
        else:
            self._idle.append(worker)
        self._slots.release()

    def _new_worker(self) -> _Worker:
        return _Worker(self.limits, self._target)

    async def aclose(self) -> None:
        """Stop every worker (those in the middle of a probe are killed)."""
        self._closed = True
        idle = [worker for worker in self._idle if worker is not None]
        self._idle = []
        for worker in list(self._busy):
            worker.process.kill()
        await asyncio.to_thread(_stop_all, idle)


def _stop_all(workers: list[_Worker]) -> None:
    for worker in workers:
        worker.stop(grace=2.0)


def _encode_request(path: Path, head: bytes, file_type: FileType) -> bytes:
    request = {"path": str(path), "head": base64.b64encode(head).decode(), "type": file_type}
    return json.dumps(request).encode() + b"\n"


def _decode_answer(answer: dict[str, Any]) -> MediaInfo:
    if "rejected" in answer:
        raise MediaRejected(str(answer["rejected"]))
    if "failed" in answer:
        raise ProbeFailed(str(answer["failed"]))
    return MediaInfo(**answer["info"])


# --- the worker process -------------------------------------------------------------------


def _serve(target: str, cpu_seconds: int, memory_bytes: int) -> None:
    """Answer probe requests read from stdin until it closes, one JSON line each on stdout."""
    answers = confined.answer_pipe()
    probe = _resolve(target)
    confined.limit_memory(memory_bytes)
    answers.write(_READY)
    answers.flush()
    for line in sys.stdin.buffer:
        request = json.loads(line)
        confined.allow_cpu(cpu_seconds)
        try:
            info = probe(Path(request["path"]), base64.b64decode(request["head"]), request["type"])
            answer: dict[str, Any] = {"info": dataclasses.asdict(info)}
        except MediaRejected as rejected:
            answer = {"rejected": str(rejected)}
        except MemoryError:  # nothing in this process can be trusted to allocate now
            os._exit(confined.OUT_OF_MEMORY)
        answers.write(json.dumps(answer).encode() + b"\n")
        answers.flush()


def _resolve(target: str) -> Callable[[Path, bytes, FileType], MediaInfo]:
    module, _, name = target.partition(":")
    function: Callable[[Path, bytes, FileType], MediaInfo] = getattr(
        importlib.import_module(module), name
    )
    return function


def _main(argv: list[str]) -> None:
    target, cpu_seconds, memory_bytes = argv
    _serve(target, int(cpu_seconds), int(memory_bytes))


if __name__ == "__main__":
    _main(sys.argv[1:])
