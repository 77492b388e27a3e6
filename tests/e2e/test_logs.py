"""What `vidgate serve` writes while it runs, as a newcomer sees it on a terminal and as a log
collector reads it from a pipe.

Each server runs on a database of its own, so its worker's periodic jobs are all due at start
(procrastinate catches up on the last tick of each within ten minutes): the sweepers, the
reconciliation and the sign-in purge run while the test watches, with nothing to do.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from vidgate.db.engine import libpq_url
from vidgate.job_registry import build_job_app

from ..fixtures.app import TEST_CATALOG
from ..fixtures.databases import scratch_database
from ..fixtures.served import free_port, stop_process
from ..fixtures.signin import e164, random_phone

pytestmark = pytest.mark.e2e

VIDGATE = Path(sys.executable).with_name("vidgate")
READY_TIMEOUT = 60.0
RUNS_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# The periodic jobs whose last tick is always within procrastinate's catch-up at start (every
# 15 s, every minute, every 10 minutes); the hourly ones run only in part of each hour.
DUE_AT_START = (
    "tasks:sweep_tasks",
    "webhooks:sweep_webhooks",
    "payments:reconcile_payments",
    "auth:purge_sign_in_records",
)
BROKEN_JOB = "users:anonymize_deleted_accounts"
WORKER_START_AND_STOP = {
    "Starting worker on all queues",
    "Stop requested",
    "Stopped worker on all queues",
}


@pytest.fixture
def own_database(database_url: str) -> Iterator[str]:
    with scratch_database(database_url, "vidgate_logs") as url:
        yield url


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    output: bytearray = field(default_factory=bytearray)  # stdout (and stderr on a terminal)
    readers: list[threading.Thread] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def text(self) -> str:
        return self.output.decode(errors="replace").replace("\r\n", "\n")

    def wait_for(self, needle: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            if self.proc.poll() is not None:
                pytest.fail(f"vidgate serve exited with {self.proc.returncode}:\n{self.text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {needle!r} within {timeout:.0f} s:\n{self.text()}")
            time.sleep(0.05)


def _env(database_url: str, data_dir: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDGATE_")}
    env.pop("NO_COLOR", None)
    env.update(
        VIDGATE_ENV="development",
        VIDGATE_DATABASE_URL=database_url,
        VIDGATE_DATA_DIR=str(data_dir),
        VIDGATE_SECRET_KEY=secrets.token_urlsafe(48),
        VIDGATE_CATALOG=str(TEST_CATALOG),
        **settings,
    )
    return env


def _drain(fd: int, into: bytearray) -> None:
    """Read a pipe or a terminal until the other end closes (EOF, or EIO for a terminal)."""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            return
        if not chunk:
            return
        into.extend(chunk)


@contextmanager
def serving(env: dict[str, str], *, terminal: bool, stderr_path: Path) -> Iterator[Server]:
    """`vidgate serve` with stdout and stderr on a pseudo-terminal, or on a pipe and a file;
    stopped with SIGTERM (SIGKILL to its process group if it hangs)."""
    port = free_port()
    args = [str(VIDGATE), "serve", "--host", "127.0.0.1", "--port", str(port)]
    if terminal:
        import pty

        controller, child_end = pty.openpty()
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=child_end, stderr=child_end, env=env,
            start_new_session=True,
        )  # fmt: skip
        os.close(child_end)
        read_fd = controller
    else:
        with stderr_path.open("wb") as err:
            proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=env,
                start_new_session=True,
            )  # fmt: skip
        assert proc.stdout is not None
        read_fd = proc.stdout.fileno()
    server = Server(proc=proc, port=port)
    reader = threading.Thread(target=_drain, args=(read_fd, server.output), daemon=True)
    reader.start()
    server.readers.append(reader)
    try:
        server.wait_for("ready in", READY_TIMEOUT)
        yield server
    finally:
        stop_process(proc)
        reader.join(5)
        if terminal:
            os.close(read_fd)
        elif proc.stdout is not None:
            proc.stdout.close()


def _stop(server: Server) -> None:
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(STOP_TIMEOUT) == 0, server.text()
    for reader in server.readers:
        reader.join(5)


def _send_code(server: Server, phone: str) -> str:
    """Ask for a sign-in code as the web app does; the code, as the outbox tells it."""
    with httpx.Client(base_url=server.base_url, timeout=15) as client:
        sent = client.post("/api/auth/sms/send", json={"phone_number": phone})
        assert sent.status_code == 200, sent.text
        outbox = client.get("/api/_dev/sms/outbox", params={"phone_number": phone})
        assert outbox.status_code == 200, outbox.text
        code: str = outbox.json()["messages"][0]["code"]
        return code


def _wait_for_periodic_runs(database_url: str, server: Server) -> None:
    """Until the worker has queued and finished (deleted, as successful jobs are) a run of each
    periodic job that is due at start."""
    deadline = time.monotonic() + RUNS_TIMEOUT
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        while True:
            deferred = {
                row[0]
                for row in conn.execute(
                    "SELECT task_name FROM procrastinate_periodic_defers WHERE task_name = ANY(%s)",
                    (list(DUE_AT_START),),
                )
            }
            unfinished = conn.execute(
                "SELECT task_name, status FROM procrastinate_jobs WHERE task_name = ANY(%s)",
                (list(DUE_AT_START),),
            ).fetchall()
            if deferred == set(DUE_AT_START) and not unfinished:
                return
            if time.monotonic() > deadline:
                pytest.fail(f"ran {deferred}, unfinished {unfinished}\n{server.text()}")
            time.sleep(0.1)


def test_on_a_terminal_serve_writes_lines_for_people_and_no_job_chatter(
    own_database: str, tmp_path: Path
) -> None:
    """`make run` on a terminal: coloured, aligned lines, the SMS code as a sentence, and nothing
    from the periodic jobs that ran meanwhile with nothing to do."""
    phone = random_phone()
    env = _env(own_database, tmp_path / "data")  # VIDGATE_LOG_FORMAT unset: auto
    with serving(env, terminal=True, stderr_path=tmp_path / "unused.log") as server:
        _wait_for_periodic_runs(own_database, server)
        code = _send_code(server, phone)
        server.wait_for(code, 10)
        _stop(server)
    raw = server.text()
    text = ANSI.sub("", raw)
    lines = [line for line in text.splitlines() if line.strip()]

    assert "\x1b[" in raw, "a terminal gets colours"
    assert not [line for line in lines if line.lstrip().startswith("{")], text
    assert re.search(r"^\d\d:\d\d:\d\d \[info\s*\] Starting worker on all queues", text, re.M), text
    sms = [line for line in lines if code in line]
    assert len(sms) == 1, text
    assert f"SMS code {code} for {e164(phone)}" in sms[0]
    assert "[info" in sms[0]
    for job in DUE_AT_START:
        assert job.split(":")[1] not in text, text


def test_into_a_pipe_serve_writes_json_with_routine_runs_at_debug(
    own_database: str, tmp_path: Path
) -> None:
    """A log collector's view (stderr not a terminal): one JSON object a line. At DEBUG the
    periodic jobs' runs show, every one at debug, while a periodic job that fails is an error."""
    asyncio.run(_queue_a_broken_periodic_run(own_database))
    phone = random_phone()
    env = _env(own_database, tmp_path / "data", VIDGATE_LOG_LEVEL="DEBUG")
    stderr_path = tmp_path / "stderr.log"
    with serving(env, terminal=False, stderr_path=stderr_path) as server:
        _wait_for_periodic_runs(own_database, server)
        code = _send_code(server, phone)
        _wait_for_failed(own_database, BROKEN_JOB, server)
        _stop(server)
    lines = [line for line in stderr_path.read_text().splitlines() if line.strip()]
    assert not [line for line in lines if not line.startswith("{")], "\n".join(lines)
    records: list[dict[str, Any]] = [orjson.loads(line) for line in lines]

    sms = [r for r in records if r["event"] == "sms.console"]
    assert [(r["level"], r["code"], r["phone"]) for r in sms] == [("info", code, e164(phone))]
    for job in DUE_AT_START:
        about = [r for r in records if job in r["event"]]
        assert any("ended with status: Success" in r["event"] for r in about), job
        assert {r["level"] for r in about} == {"debug"}, about
    failed = [r for r in records if BROKEN_JOB in r["event"] and "status: Error" in r["event"]]
    assert [r["level"] for r in failed] == ["error"], records
    assert "unexpected keyword argument" in failed[0]["exception"]

    # Above debug: the server's and the worker's start and stop, the code and the failure only.
    expected = [*sms, *failed]
    loud = [
        r
        for r in records
        if r["level"] != "debug"
        and r["logger"] != "uvicorn.error"
        and r["event"] not in WORKER_START_AND_STOP
        and r not in expected
    ]
    assert loud == [], loud


async def _queue_a_broken_periodic_run(database_url: str) -> None:
    """A run of a periodic job that fails (an argument its function does not take)."""
    app = build_job_app(database_url)
    async with app.open_async():
        await app.configure_task(BROKEN_JOB).defer_async(timestamp=0, unexpected="x")


def _wait_for_failed(database_url: str, task_name: str, server: Server) -> None:
    deadline = time.monotonic() + RUNS_TIMEOUT
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        while not conn.execute(
            "SELECT 1 FROM procrastinate_jobs WHERE task_name = %s AND status = 'failed'",
            (task_name,),
        ).fetchone():
            if time.monotonic() > deadline:
                pytest.fail(f"{task_name} did not fail\n{server.text()}")
            time.sleep(0.1)
