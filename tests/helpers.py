"""Helpers for tests: random phone numbers, sign-in through the real endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import uvicorn
from sqlalchemy import update
from starlette.types import ASGIApp, Receive, Scope, Send

from vidgate.auth.models import SmsCode
from vidgate.db.engine import Database

DEV_CLIENT_KEY = "vg_test_client_key_0123456789abcdefghijklmnop"
# The origin of a web front end served apart from the API (test settings allow it).
FRONT_END_ORIGIN = "https://app.example"

# Mobile prefixes that phonenumbers accepts as valid Chinese mobile numbers.
_CN_PREFIXES = ("138", "139", "150", "151", "186", "187", "135", "136", "137", "188")


def random_phone() -> str:
    """A valid Chinese mobile number in the contract's `86-…` form, unique enough per test."""
    return f"86-{random.choice(_CN_PREFIXES)}{random.randrange(10**8):08d}"


def e164(contract_phone: str) -> str:
    return "+" + contract_phone.replace("-", "")


@dataclass
class SignedIn:
    phone: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def send_code(client: httpx.AsyncClient, phone: str) -> str:
    """Ask for a code and read it back from the development outbox."""
    sent = await client.post("/api/auth/sms/send", json={"phone_number": phone})
    assert sent.status_code == 200, sent.text
    outbox = await client.get("/api/_dev/sms/outbox", params={"phone_number": phone})
    assert outbox.status_code == 200, outbox.text
    code: str = outbox.json()["messages"][0]["code"]
    return code


async def sign_in(
    client: httpx.AsyncClient, phone: str | None = None, username: str | None = None
) -> SignedIn:
    phone = phone or random_phone()
    code = await send_code(client, phone)
    body = {"phone_number": phone, "code": code}
    if username is not None:
        body["username"] = username
    login = await client.post("/api/auth/sms/login", json=body)
    assert login.status_code == 200, login.text
    tokens = login.json()
    return SignedIn(phone, tokens["access_token"], tokens["refresh_token"])


async def age_codes(db: Database, phone: str, seconds: int) -> None:
    """Pretend the number's codes were sent `seconds` earlier (to step past the resend interval)."""
    async with db.session() as s:
        await s.execute(
            update(SmsCode)
            .where(SmsCode.phone == e164(phone))
            .values(created_at=SmsCode.created_at - timedelta(seconds=seconds))
        )
        await s.commit()


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Leave pytest's own Ctrl-C handling in place.
        yield


class Switch:
    """An ASGI app forwarding to whatever the current test installed, so that a (slow to stop)
    loopback server can be shared by a module while every test gets a fresh app behind it."""

    def __init__(self) -> None:
        self.target: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.target is not None
        await self.target(scope, receive, send)


@contextlib.asynccontextmanager
async def serve_on_loopback(app: ASGIApp, sock: socket.socket | None = None) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on a free 127.0.0.1 port (or on `sock`, bound already, when the
    app must know its URL before it exists) for the block; yields its base URL."""
    if sock is None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
    server = _QuietServer(uvicorn.Config(app, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def closed_port_url() -> str:
    """A loopback URL nothing listens on, so connecting is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


class FakeClock:
    """A clock tests move by hand (emulators take it instead of time.monotonic)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
