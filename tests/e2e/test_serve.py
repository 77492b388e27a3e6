"""End to end: `vidgate serve` as a real process on its embedded PostgreSQL.

Starts the command the way a developer would (worker included, no database URL), drives the HTTP
API with httpx, stops it with SIGTERM and starts it again on the same data dir: users, sessions and
the generated secrets must survive the restart, and the embedded database must stop with the
server. A failing test never leaves a server (or its PostgreSQL) running.
"""

from __future__ import annotations

import asyncio
import html
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import av
import httpx
import pytest

from vidgate.config import Settings
from vidgate.providers.base import TaskState, UpstreamStatus, VideoRequest
from vidgate.providers.dashscope import DashScopeAdapter
from vidgate.providers.registry import emulator_api_key

from ..fixtures.samples import mp4_bytes, png_bytes
from ..fixtures.served import free_port, server_env, stop_postmaster
from ..fixtures.signin import random_phone

pytestmark = pytest.mark.e2e

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0

VIDGATE = Path(sys.executable).with_name("vidgate")
_READY = re.compile(r"ready in (\d+(?:\.\d+)?) s")
_CLIENT_KEY = re.compile(r"client API key \(X-API-Key\): (vg_\S+)")


def _ready(client: httpx.Client, within: float = 10.0) -> httpx.Response:
    """/readyz once it says ready (the worker registers a moment after the banner), or as it
    last answered."""
    deadline = time.monotonic() + within
    while True:
        ready = client.get("/readyz")
        if ready.status_code == 200 or time.monotonic() > deadline:
            return ready
        time.sleep(0.05)


@dataclass
class Served:
    proc: subprocess.Popen[str]
    port: int
    data_dir: Path
    log_path: Path
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    reader: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stdout(self) -> str:
        return "".join(self.lines)

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    def ready_seconds(self) -> float:
        match = _READY.search(self.stdout)
        assert match, self.stdout
        return float(match.group(1))

    def client_key(self) -> str:
        match = _CLIENT_KEY.search(self.stdout)
        assert match, f"banner has no client API key:\n{self.stdout}"
        return match.group(1)

    def diagnostics(self) -> str:
        log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return f"--- stdout ---\n{self.stdout}\n--- stderr (tail) ---\n{log[-4000:]}"


def _read_stdout(served: Served) -> None:
    assert served.proc.stdout is not None
    for line in served.proc.stdout:
        served.lines.append(line)
        if "ready in" in line:
            served.ready.set()


def _start(data_dir: Path, log_path: Path) -> Served:
    port = free_port()
    log = log_path.open("w")
    try:
        proc = subprocess.Popen(
            [str(VIDGATE), "serve", "--host", "127.0.0.1", "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            env=server_env(data_dir),
            text=True,
            start_new_session=True,
        )
    finally:
        log.close()  # the child holds its own copy
    served = Served(proc=proc, port=port, data_dir=data_dir, log_path=log_path)
    served.reader = threading.Thread(target=_read_stdout, args=(served,), daemon=True)
    served.reader.start()
    return served


def _wait_ready(served: Served) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not served.ready.wait(0.1):
        if served.proc.poll() is not None:
            if served.reader is not None:
                served.reader.join(2)
            pytest.fail(
                f"vidgate serve exited with {served.proc.returncode} before it was ready\n"
                + served.diagnostics()
            )
        if time.monotonic() > deadline:
            pytest.fail(f"vidgate serve not ready in {READY_TIMEOUT:.0f} s\n{served.diagnostics()}")


def _ensure_stopped(served: Served) -> None:
    """SIGTERM, then SIGKILL the whole process group; then the embedded database if left."""
    if served.proc.poll() is None:
        with suppress(ProcessLookupError):
            served.proc.send_signal(signal.SIGTERM)
        try:
            served.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(served.proc.pid, signal.SIGKILL)
            served.proc.wait(5)
    if served.reader is not None:
        served.reader.join(5)
    stop_postmaster(served.pgdata.resolve())


@contextmanager
def running_server(data_dir: Path, log_path: Path) -> Iterator[Served]:
    served = _start(data_dir, log_path)
    try:
        _wait_ready(served)
        yield served
    finally:
        _ensure_stopped(served)


def _sigterm_and_wait(served: Served) -> int:
    served.proc.send_signal(signal.SIGTERM)
    try:
        return served.proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"vidgate serve still running {STOP_TIMEOUT:.0f} s after SIGTERM")


# --- API steps --------------------------------------------------------------------------------


def _send_code(client: httpx.Client, phone: str) -> str:
    sent = client.post("/api/auth/sms/send", json={"phone_number": phone})
    assert sent.status_code == 200, sent.text
    outbox = client.get("/api/_dev/sms/outbox", params={"phone_number": phone})
    assert outbox.status_code == 200, outbox.text
    messages = outbox.json()["messages"]
    assert messages, outbox.text
    code: str = messages[0]["code"]
    return code


def _sign_in(client: httpx.Client, phone: str) -> dict[str, str]:
    code = _send_code(client, phone)
    login = client.post("/api/auth/sms/login", json={"phone_number": phone, "code": code})
    assert login.status_code == 200, login.text
    tokens: dict[str, str] = login.json()
    assert tokens["token_type"].lower() == "bearer"
    assert tokens["access_token"] and tokens["refresh_token"]
    assert int(tokens["expires_in"]) > 0
    return tokens


def _me(client: httpx.Client, access_token: str) -> httpx.Response:
    return client.get("/api/auth/me", headers={"Authorization": f"Bearer {access_token}"})


# --- tests ------------------------------------------------------------------------------------


def _upload_and_animate(
    client: httpx.Client, served: Served, access_token: str, client_key: str, data_dir: Path
) -> None:
    """Upload a photo and a clip, run animate-move on the emulator, play the result."""
    headers = {"Authorization": f"Bearer {access_token}", "X-API-Key": client_key}
    urls = {}
    for name, content, file_type in (
        ("face.png", png_bytes((240, 320)), "image"),
        ("dance.mp4", mp4_bytes(seconds=2.0, size=(240, 320)), "video"),
    ):
        r = client.post(
            "/api/videos/upload",
            headers=headers,
            files={"file": (name, content, "application/octet-stream")},
            data={"file_type": file_type},
        )
        assert r.status_code == 200, r.text
        assert r.json()["file_url"].startswith(served.base_url.replace("127.0.0.1", "localhost"))
        urls[file_type] = r.json()["file_url"]
    secret_key = json.loads((data_dir / "secrets.json").read_text())["secret_key"]
    settings = Settings(secret_key=secret_key, data_dir=data_dir)
    adapter = DashScopeAdapter(
        emulator_api_key(settings, "dashscope-emulator"), f"{served.base_url}/_emulator/dashscope"
    )

    async def run() -> TaskState:
        try:
            submitted = await adapter.submit(
                VideoRequest(kind="animate-move", image_url=urls["image"], video_url=urls["video"])
            )
            for _ in range(300):
                state = await adapter.fetch(submitted.upstream_id)
                if state.status in (UpstreamStatus.SUCCEEDED, UpstreamStatus.FAILED):
                    return state
                await asyncio.sleep(0.1)
            raise AssertionError("the emulated task never finished")
        finally:
            await adapter.aclose()

    state = asyncio.run(run())
    assert state.status == UpstreamStatus.SUCCEEDED, state
    assert state.billed_seconds == pytest.approx(2.0, abs=0.2)
    video = client.get(state.result_url or "")
    assert video.status_code == 200
    with av.open(io.BytesIO(video.content)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert float(stream.average_rate or 0) == pytest.approx(15, abs=0.5)  # wan-std


def _sign_in_with_emulated_google(client: httpx.Client, base_url: str) -> dict[str, str]:
    """authorize-url → the emulator's consent page → Approve → the development callback."""
    callback = f"{base_url}/api/_dev/google/callback"
    start = client.get("/api/auth/google/authorize-url", params={"redirect_uri": callback})
    assert start.status_code == 200, start.text
    page = client.get(start.json()["url"])
    assert page.status_code == 200 and "Approve" in page.text, page.text
    hidden = {
        name: html.unescape(value)
        for name, value in re.findall(
            r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text
        )
    }
    approved = client.post(
        start.json()["url"].split("?")[0],
        data={
            **hidden,
            "email": "newcomer@example.com",
            "name": "New Comer",
            "email_verified": "true",
            "action": "approve",
        },
    )
    assert approved.status_code == 302, approved.text
    landed = client.get(approved.headers["location"])
    assert landed.status_code == 200, landed.text
    tokens: dict[str, str] = landed.json()
    return tokens


def _answers_after_idle(port: int, idle_seconds: float) -> list[bytes]:
    """Status lines of two requests on one connection, `idle_seconds` apart."""
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    lines = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for pause in (0.0, idle_seconds):
            time.sleep(pause)
            sock.sendall(request)
            lines.append(_read_response(sock).split(b"\r\n", 1)[0])
    return lines


def _read_response(sock: socket.socket) -> bytes:
    """One whole HTTP/1.1 response with a Content-Length body: TCP may split it anywhere."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += _recv_some(sock)
    head, body = data.split(b"\r\n\r\n", 1)
    length = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
    assert length, head
    while len(body) < int(length.group(1)):
        body += _recv_some(sock)
    return data


def _recv_some(sock: socket.socket) -> bytes:
    chunk = sock.recv(65536)
    assert chunk, "the server closed the connection"
    return chunk


def test_serve_http_surface_restart_and_persistence(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    phone_a, phone_b = random_phone(), random_phone()
    while phone_b == phone_a:
        phone_b = random_phone()

    # --- first start, on an empty data dir ----------------------------------------------------
    with running_server(data_dir, tmp_path / "serve-1.log") as first:
        first_ready = first.ready_seconds()
        client_key = first.client_key()
        with httpx.Client(base_url=first.base_url, timeout=15) as client:
            health = client.get("/healthz")
            assert health.status_code == 200, health.text

            ready = _ready(client)
            assert ready.status_code == 200, ready.text
            assert ready.json()["status"] == "ready"

            echoed = client.get("/healthz", headers={"X-Request-ID": "e2e-request-42"})
            assert echoed.headers["x-request-id"] == "e2e-request-42"
            generated = client.get("/healthz").headers["x-request-id"]
            assert re.fullmatch(r"[0-9a-f]{32}", generated), generated

            metrics = client.get("/metrics")
            assert metrics.status_code == 200
            assert "vidgate_http_requests_total" in metrics.text

            # An idle connection outlives clients' own idle timeouts (uvicorn's default of 5 s
            # would close it while a client reuses it: a reset on the client's side).
            assert _answers_after_idle(first.port, 6.0) == [b"HTTP/1.1 200 OK"] * 2

            openapi = client.get("/openapi.json")
            assert openapi.status_code == 200
            assert "/api/auth/sms/send" in openapi.json()["paths"]

            # User A: signed in and kept (never logged out) for the restart check.
            tokens_a = _sign_in(client, phone_a)
            me_a = _me(client, tokens_a["access_token"])
            assert me_a.status_code == 200, me_a.text
            assert me_a.json()["credits"] == 100

            # Uploads, then an animate task on the emulated DashScope mounted in the server.
            _upload_and_animate(client, first, tokens_a["access_token"], client_key, data_dir)

            # User B: the whole session lifecycle.
            tokens_b = _sign_in(client, phone_b)
            me_b = _me(client, tokens_b["access_token"])
            assert me_b.status_code == 200, me_b.text
            assert me_b.json()["credits"] == 100
            user_b = me_b.json()["id"]
            assert user_b != me_a.json()["id"]

            refreshed = client.post(
                "/api/auth/refresh", json={"refresh_token": tokens_b["refresh_token"]}
            )
            assert refreshed.status_code == 200, refreshed.text
            new_b = refreshed.json()
            assert new_b["refresh_token"] != tokens_b["refresh_token"]
            assert _me(client, new_b["access_token"]).json()["id"] == user_b

            # Google sign-in through the built-in emulated Google, as a newcomer does it.
            google_tokens = _sign_in_with_emulated_google(client, first.base_url)
            me_g = _me(client, google_tokens["access_token"])
            assert me_g.status_code == 200, me_g.text
            assert me_g.json()["email"] == "newcomer@example.com"
            assert me_g.json()["credits"] == 100

            out = client.post(
                "/api/auth/logout", headers={"Authorization": f"Bearer {new_b['access_token']}"}
            )
            assert out.status_code == 200, out.text
            assert _me(client, new_b["access_token"]).status_code == 401

        # --- SIGTERM: clean exit, embedded PostgreSQL stopped ---------------------------------
        assert _sigterm_and_wait(first) == 0, first.diagnostics()
    assert (data_dir / "pgdata" / "PG_VERSION").exists()
    assert not (data_dir / "pgdata" / "postmaster.pid").exists(), "PostgreSQL left running"

    # --- second start, same data dir -----------------------------------------------------------
    with running_server(data_dir, tmp_path / "serve-2.log") as second:
        second_ready = second.ready_seconds()
        print(
            f"\nvidgate serve ready in {first_ready:.2f} s (empty), {second_ready:.2f} s (restart)"
        )
        assert second.client_key() == client_key, "generated client key not kept in the data dir"
        with httpx.Client(base_url=second.base_url, timeout=15) as client:
            ready = _ready(client)
            assert ready.status_code == 200 and ready.json()["status"] == "ready", ready.text

            # A's token was signed before the restart: the secret key and the session persisted.
            again = _me(client, tokens_a["access_token"])
            assert again.status_code == 200, again.text
            assert again.json()["id"] == me_a.json()["id"]
            assert again.json()["credits"] == me_a.json()["credits"] == 100

            refreshed = client.post(
                "/api/auth/refresh", json={"refresh_token": tokens_a["refresh_token"]}
            )
            assert refreshed.status_code == 200, refreshed.text

            # B's ended session stays ended; B signs in again to the same account (no new bonus).
            assert _me(client, new_b["access_token"]).status_code == 401
            relogin = _sign_in(client, phone_b)
            me_b_again = _me(client, relogin["access_token"])
            assert me_b_again.status_code == 200, me_b_again.text
            assert me_b_again.json()["id"] == user_b
            assert me_b_again.json()["credits"] == 100

        assert _sigterm_and_wait(second) == 0, second.diagnostics()
    assert not (data_dir / "pgdata" / "postmaster.pid").exists(), "PostgreSQL left running"
