"""Which log format a process picks, and what each looks like.

`vidgate serve` on a terminal and into a pipe, with its periodic jobs running, is tested in
tests/e2e/test_logs.py.
"""

from __future__ import annotations

import os
import pty
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import orjson
import pytest

from vidgate.logging import choose_format

from .fixtures.databases import scratch_database

VIDGATE = Path(sys.executable).with_name("vidgate")


@pytest.fixture
def terminal() -> Iterator[TextIO]:
    """A stream on a pseudo-terminal, as stderr is when a person runs `make run`."""
    controller, child_end = pty.openpty()
    with open(child_end, "w") as stream:
        yield stream
    os.close(controller)


@pytest.fixture
def pipe() -> Iterator[TextIO]:
    read_end, write_end = os.pipe()
    with open(write_end, "w") as stream:
        yield stream
    os.close(read_end)


def test_auto_reads_for_people_only_on_a_terminal_in_development(
    terminal: TextIO, pipe: TextIO
) -> None:
    assert choose_format("auto", development=True, stream=terminal) == "console"
    assert choose_format("auto", development=True, stream=pipe) == "json"
    assert choose_format("auto", development=False, stream=terminal) == "json"
    assert choose_format("json", development=True, stream=terminal) == "json"
    assert choose_format("console", development=False, stream=pipe) == "console"


def _migrate(database_url: str, tmp_path: Path, **settings: str) -> str:
    """`vidgate migrate` on `database_url` with its stderr in a pipe; what it wrote there."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDGATE_")}
    env.update(
        VIDGATE_DATABASE_URL=database_url,
        VIDGATE_DATA_DIR=str(tmp_path),
        VIDGATE_SECRET_KEY=secrets.token_urlsafe(48),
        **settings,
    )
    run = subprocess.run(
        [str(VIDGATE), "migrate"], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stderr


def test_piped_logs_are_json_unless_console_is_asked_for(database_url: str, tmp_path: Path) -> None:
    """Migrations write a line each at info: JSON by default into a pipe; with
    VIDGATE_LOG_FORMAT=console, aligned lines without colour codes. Alembic's preamble is
    debug either way."""
    with scratch_database(database_url, "vidgate_logfmt", migrated=False) as url:
        default = _migrate(url, tmp_path)
    with scratch_database(database_url, "vidgate_logfmt", migrated=False) as url:
        console = _migrate(url, tmp_path, VIDGATE_LOG_FORMAT="console")

    records = [orjson.loads(line) for line in default.splitlines()]
    upgrades = [r for r in records if r["event"].startswith("Running upgrade")]
    assert upgrades and {r["level"] for r in upgrades} == {"info"}, default
    assert not [r for r in records if r["event"].startswith("Context impl")], default

    assert "\x1b[" not in console and not console.startswith("{"), console
    # One line each (a migration's message may run on to a second line of its own).
    lines = re.findall(r"^\d\d:\d\d:\d\d \[info\s*\] (Running upgrade .*)$", console, re.M)
    assert len(lines) == len(upgrades), console
    assert re.fullmatch(r"Running upgrade  -> 0001, .* \[alembic\.runtime\.migration\]", lines[0])
