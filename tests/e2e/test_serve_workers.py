"""End to end: `vidgate serve --workers 2`, two API processes on one port.

The test tells the processes apart without asking them (nothing in a response says which process
answered): it holds its own keep-alive connections and asks the operating system which process
owns the other end of each.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import httpx
import psutil
import pytest

from ..fixtures.served import (
    VIDGATE,
    ServeProcess,
    emulators_process,
    free_port,
    serve_process,
    server_env,
)
from ..fixtures.signin import random_phone

pytestmark = pytest.mark.e2e

# How long a change made through one process may take to reach the other: far below the
# caches' 60 s time to live, so only the NOTIFY that evicts can make it in time.
PROPAGATION_LIMIT = 10.0
# How long the parent may take to bring a killed process back (a fresh interpreter, the app).
RESTART_LIMIT = 60.0
# Connections opened at once: enough that all of them landing on one process means the port does
# not spread its connections (with two processes sharing them out evenly, a chance of 2 in 2^32).
BURST = 32


class Connection:
    """One keep-alive HTTP/1.1 connection, served by whichever process accepted it."""

    def __init__(self, port: int) -> None:
        self.port = port
        # A connection may wait for a process being replaced to accept it.
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=RESTART_LIMIT)

    @property
    def local_port(self) -> int:
        port: int = self.sock.getsockname()[1]
        return port

    def request(self, method: str, path: str, token: str | None = None) -> tuple[int, bytes]:
        head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}", "Content-Length: 0"]
        if token is not None:
            head.append(f"Authorization: Bearer {token}")
        self.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += self._recv()
        header, body = data.split(b"\r\n\r\n", 1)
        length = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", header)
        assert length, header
        while len(body) < int(length.group(1)):
            body += self._recv()
        return int(header.split(b" ", 2)[1]), body

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        assert chunk, "the server closed the connection"
        return chunk

    def close(self) -> None:
        self.sock.close()


def api_processes(served: ServeProcess) -> set[int]:
    """The parent's children that hold the listening socket."""
    found = set()
    for child in psutil.Process(served.proc.pid).children():
        with suppress(psutil.Error):
            for conn in child.net_connections("tcp"):
                if conn.status == psutil.CONN_LISTEN and conn.laddr.port == served.port:
                    found.add(child.pid)
    return found


def owner(conn: Connection, pids: set[int]) -> int | None:
    """The process holding the server's end of `conn`."""
    for pid in pids:
        with suppress(psutil.Error):
            for theirs in psutil.Process(pid).net_connections("tcp"):
                if theirs.raddr and theirs.raddr.port == conn.local_port:
                    return pid
    return None


def connection_to_each(served: ServeProcess, pids: set[int]) -> dict[int, Connection]:
    """A burst of connections opened at once, which must be spread over every one of `pids`;
    one connection served by each of them (the others closed)."""
    burst = [Connection(served.port) for _ in range(BURST)]
    owners: dict[int, list[Connection]] = {}
    for conn in burst:
        status, _ = conn.request("GET", "/healthz")
        assert status == 200
        pid = owner(conn, pids)
        assert pid is not None, f"no process of {sorted(pids)} holds connection {conn.local_port}"
        owners.setdefault(pid, []).append(conn)
    assert set(owners) == pids, {pid: len(held) for pid, held in owners.items()}
    pinned = {pid: held[0] for pid, held in owners.items()}
    for conn in burst:
        if conn not in pinned.values():
            conn.close()
    return pinned


def eventually(check: Callable[[], bool], within: float) -> bool:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def sign_in(client: httpx.Client, phone: str) -> str:
    sent = client.post("/api/auth/sms/send", json={"phone_number": phone})
    assert sent.status_code == 200, sent.text
    outbox = client.get("/api/_dev/sms/outbox", params={"phone_number": phone})
    code = outbox.json()["messages"][0]["code"]
    login = client.post("/api/auth/sms/login", json={"phone_number": phone, "code": code})
    assert login.status_code == 200, login.text
    token: str = login.json()["access_token"]
    return token


def me(conn: Connection, token: str) -> int:
    return conn.request("GET", "/api/auth/me", token)[0]


def test_two_api_processes_share_one_port_and_stay_in_step(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    with (
        emulators_process(data_dir, tmp_path / "emulate.log", port) as emulated,
        serve_process(
            data_dir, tmp_path / "serve.log", "--workers", "2", port=port, settings=emulated
        ) as served,
    ):
        banner = re.search(
            r"processes: 2 API processes sharing the port \(pids (\d+), (\d+)\)", served.stdout
        )
        assert banner, served.stdout
        first, second = int(banner.group(1)), int(banner.group(2))
        assert "worker:    in the first API process" in served.stdout
        assert api_processes(served) == {first, second}

        # Both processes answer on the one port, and share out the connections of a burst.
        pinned = connection_to_each(served, {first, second})

        # Another server started on the same port is refused, not let in to share it.
        again = subprocess.run(
            [str(VIDGATE), "serve", "--port", str(served.port), "--workers", "2"],
            env={**server_env(data_dir), **emulated},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert again.returncode == 1, again.stdout + again.stderr
        assert f"cannot listen on 127.0.0.1:{served.port}" in again.stderr
        with httpx.Client(base_url=f"http://127.0.0.1:{served.port}", timeout=15) as client:
            # A sign-out through one process ends the session in the other at once, although
            # the other had the session in its cache.
            token = sign_in(client, random_phone())
            for conn in pinned.values():
                assert [me(conn, token), me(conn, token)] == [200, 200]
            assert pinned[first].request("POST", "/api/auth/logout", token)[0] == 200
            assert me(pinned[first], token) == 401
            assert eventually(lambda: me(pinned[second], token) == 401, PROPAGATION_LIMIT)

            # A suspension by an operator command (a process of its own) reaches both.
            phone = random_phone()
            suspended = sign_in(client, phone)
            for conn in pinned.values():
                assert me(conn, suspended) == 200
            command = subprocess.run(
                [str(VIDGATE), "user", "suspend", phone, "--reason", "fraud check"],
                env={**server_env(data_dir), **emulated, "VIDGATE_LOG_LEVEL": "WARNING"},
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert command.returncode == 0, command.stdout + command.stderr
            for conn in pinned.values():
                assert eventually(lambda c=conn: me(c, suspended) == 401, PROPAGATION_LIMIT)

        # A process that dies is replaced, and the port answers all the while (a connection
        # meant for it waits for its successor). The first one runs the job worker: its
        # replacement runs it again.
        for conn in pinned.values():
            conn.close()
        os.kill(first, signal.SIGKILL)
        answers: list[int] = []

        def replaced() -> bool:
            url = f"http://127.0.0.1:{served.port}/healthz"
            answers.append(httpx.get(url, timeout=RESTART_LIMIT).status_code)
            now = api_processes(served)
            return len(now) == 2 and first not in now

        assert eventually(replaced, RESTART_LIMIT), served.diagnostics()
        assert set(answers) == {200}, answers
        (newcomer,) = api_processes(served) - {second}
        pinned = connection_to_each(served, {newcomer, second})
        for conn in pinned.values():
            ready = eventually(lambda c=conn: c.request("GET", "/readyz")[0] == 200, RESTART_LIMIT)
            _, body = conn.request("GET", "/readyz")
            assert ready and b'"worker":"ok"' in body, body
            conn.close()
        assert "serve.process_died" in served.log_path.read_text()

        # SIGTERM stops every process it started, and the embedded database after them.
        family = psutil.Process(served.proc.pid).children(recursive=True)
        assert served.stop() == 0, served.diagnostics()
        _, alive = psutil.wait_procs(family, timeout=10)
        assert not alive, alive
    assert not (data_dir / "pgdata" / "postmaster.pid").exists(), "PostgreSQL left running"
