"""Early writeback is advisory: it never fails an upload, whatever the descriptor."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from vidgate.media import writeback
from vidgate.media.writeback import start_writeback


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range is Linux's")
def test_linux_uses_sync_file_range() -> None:
    assert writeback._sync_file_range is not None


def test_file_bytes_are_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "part"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        os.write(fd, b"a" * 300_000)
        start_writeback(fd, 0, 300_000)
        os.write(fd, b"b" * 10)
        start_writeback(fd, 300_000, 10)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"a" * 300_000 + b"b" * 10


def test_descriptors_it_cannot_flush_are_ignored() -> None:
    read_end, write_end = os.pipe()
    try:
        start_writeback(write_end, 0, 10)  # a pipe: ESPIPE
    finally:
        os.close(read_end)
        os.close(write_end)
    start_writeback(-1, 0, 10)  # no such descriptor: EBADF
