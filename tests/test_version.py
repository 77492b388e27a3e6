"""One version: pyproject.toml's, as `vidgate --version`, `vidgate.__version__` and the OpenAPI
document give it, and the newest release the changelog describes."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import vidgate
from vidgate.app import openapi_document

ROOT = Path(__file__).resolve().parents[1]
VIDGATE = Path(sys.executable).with_name("vidgate")
VERSION: str = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["version"]


def test_the_command_line_prints_pyprojects_version() -> None:
    done = subprocess.run(
        [str(VIDGATE), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout) == (0, f"vidgate {VERSION}\n"), done.stderr


def test_the_package_and_the_api_document_carry_the_same_version() -> None:
    assert vidgate.__version__ == VERSION
    assert openapi_document()["info"]["version"] == VERSION


def test_the_changelog_describes_this_version_as_its_newest_release() -> None:
    headings = re.findall(r"^## \[([^\]]+)\]", (ROOT / "CHANGELOG.md").read_text("utf-8"), re.M)
    assert headings[:2] == ["Unreleased", VERSION], (
        f"CHANGELOG.md's first headings are {headings[:2]}: keep [Unreleased] on top and a"
        f" section for {VERSION}, the version in pyproject.toml"
    )
