"""Processes that read untrusted media: started bare, limited by the kernel, answered by a line.

Decoding a file a client or a vendor sent runs C code (FFmpeg, Pillow, the C2PA library) that a
crafted file may crash or hang. vidgate runs that work in a fresh interpreter (`python -m
<module>`) that the calling process watches: the upload probe sandbox (`media.sandbox`) and the
labelling process (`labels.run`). Both halves they share live here:

- the caller starts the process with pipes for stdin and stdout only, no other descriptor of its
  own (close_fds), in a session of its own (a terminal's Ctrl-C reaches the caller, which stops
  it), and without vidgate's settings in its environment (`VIDGATE_*`: keys, database URL):
  what the process needs it is told on stdin;
- the caller reads its answer, one JSON line, with a wall-clock deadline (`read_line`) and names
  the limit a process that died without answering hit (`exit_reason`);
- the process keeps stdout for its answers (`answer_pipe`), then caps its address space
  (`limit_memory`) and its CPU time (`allow_cpu`).
"""

from __future__ import annotations

import math
import os
import resource
import selectors
import signal
import subprocess
import sys
import time
from typing import BinaryIO

# A process's exit status after an allocation failed (the caller reports "too much memory").
OUT_OF_MEMORY = 75


class NoAnswer(Exception):
    """The process gave no answer line."""


class AnswerLate(NoAnswer):
    """The deadline passed before the line came."""


class AnswerMissing(NoAnswer):
    """The process closed its stdout (it died, most likely) or wrote more than allowed."""


def start(module: str, *args: str) -> subprocess.Popen[bytes]:
    """`python -m module args…` with piped stdin and stdout, inheriting stderr (its messages go
    to the caller's log) and nothing else of the caller's."""
    environment = {name: value for name, value in os.environ.items() if not _vidgate(name)}
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        close_fds=True,
        start_new_session=True,
        env=environment,
    )


def _vidgate(name: str) -> bool:
    return name.upper().startswith("VIDGATE_")


def read_line(fd: int, buffer: bytes, deadline: float, limit: int) -> tuple[bytes, bytes]:
    """The next line from `fd` (without its newline) and what was read after it, `buffer` being
    what was read before. AnswerLate when `deadline` (time.monotonic) passes first,
    AnswerMissing when the pipe closes or more than `limit` bytes come without a newline."""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while b"\n" not in buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                raise AnswerLate
            chunk = os.read(fd, limit)
            if not chunk or len(buffer) + len(chunk) > limit:
                raise AnswerMissing
            buffer += chunk
    line, _, rest = buffer.partition(b"\n")
    return line, rest


def exit_reason(code: int) -> str | None:
    """The limit an exit status says the process hit, in words; None for any other end."""
    if code == -signal.SIGXCPU:
        return "it used too much CPU time"
    if code == OUT_OF_MEMORY:
        return "it needed too much memory"
    return None


# --- in the confined process ---------------------------------------------------------------


def answer_pipe() -> BinaryIO:
    """stdout, kept for the answers; whatever else writes to fd 1 (a decoder's messages) goes to
    stderr from now on. SIGINT is ignored: the caller stops the process itself."""
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return answers


def limit_memory(memory_bytes: int) -> None:
    """Cap the address space (an allocation beyond it fails) and write no core dumps."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))


def allow_cpu(seconds: int) -> None:
    """RLIMIT_CPU counts the process's whole life: allow `seconds` more than used so far (past
    them the kernel kills it with SIGXCPU)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = math.ceil(usage.ru_utime + usage.ru_stime)
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    soft = used + seconds if hard == resource.RLIM_INFINITY else min(used + seconds, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
