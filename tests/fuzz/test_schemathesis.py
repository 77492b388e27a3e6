"""Schemathesis against the live app: every operation of its OpenAPI document, signed in, fuzzed
with valid and invalid input; any 5xx, undocumented status code, undocumented content type or body
that does not match its documented schema fails the build.

The app runs in a thread of its own (uvicorn on loopback, with its job worker) because
Schemathesis drives it synchronously: the session's `live` app runs on pytest-asyncio's loop,
which does not turn while a synchronous test waits for an answer. It uses a database of its own,
so what other tests left behind does not matter and nothing fuzzed leaks into them.

Repeatable: a fixed seed, derandomized Hypothesis, no example database; fresh users every run.
Bounded: a dozen generated cases per operation plus the examples and coverage phases' cases (the
documented examples, boundary values, wrong methods), each request capped; about two minutes.

No operation is left out: the development routes (`/api/_dev/*`) are in the document a development
server serves and are fuzzed like the rest, the emulators (`/_emulator/*`) are not in it, and an
event stream is read only up to a few events or the request timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import requests
import schemathesis
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from vidgate.app import create_app, openapi_document
from vidgate.config import Settings

from ..fixtures.app import DEV_CLIENT_KEY
from ..fixtures.databases import scratch_database
from ..fixtures.loopback import serve_on_loopback
from ..fixtures.signin import SignedIn, sign_in

pytestmark = pytest.mark.fuzz

T = TypeVar("T")

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Hypothesis examples per operation (the examples and coverage phases add their own cases);
# VIDGATE_FUZZ_EXAMPLES and VIDGATE_FUZZ_SEED dig deeper or elsewhere on a developer's machine.
MAX_EXAMPLES = int(os.environ.get("VIDGATE_FUZZ_EXAMPLES", "12"))
SEED = int(os.environ.get("VIDGATE_FUZZ_SEED", "20260611"))
REQUEST_TIMEOUT_SECONDS = 15
# An example that takes longer than this is a hang, whatever the machine.
EXAMPLE_DEADLINE = timedelta(seconds=30)

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
        "generation": {
            "mode": "all",  # valid input, and invalid input that must be refused with a 4xx
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",  # no replay of an earlier run's failures: CI runs the same cases
        },
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
        "request-timeout": REQUEST_TIMEOUT_SECONDS,
        # An event stream is read until its task ends, this many events, or the request timeout.
        "max-stream-events": 5,
    }
)

# Operations that end the caller's session or account: each call gets a user of its own, or
# every later call of the operation would only see 401.
SESSION_ENDING = frozenset({"POST /api/auth/logout", "DELETE /api/users/account"})


@dataclass
class FuzzApp:
    """The app under test, served from its own thread and event loop."""

    url: str
    loop: asyncio.AbstractEventLoop
    session: requests.Session = field(default_factory=requests.Session)
    users: dict[str, SignedIn] = field(default_factory=dict)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the app's loop (the test's thread has none) and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def sign_in(self) -> SignedIn:
        # Hypothesis seeds `random` for every example, so `random_phone` would give the same
        # number each time (and hit the resend interval): draw it from the OS instead.
        phone = f"86-{secrets.choice(('138', '139', '186'))}{secrets.randbelow(10**8):08d}"

        async def fresh_user() -> SignedIn:
            async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
                return await sign_in(client, phone)

        return self.run(fresh_user())

    def headers_for(self, operation: str) -> dict[str, str]:
        """Valid credentials: a user of the operation's own (a new one for each call that ends
        its session), with the development client key."""
        user = self.users.get(operation)
        if user is None or operation in SESSION_ENDING:
            user = self.users[operation] = self.sign_in()
        return {"Authorization": f"Bearer {user.access_token}", "X-API-Key": DEV_CLIENT_KEY}


@pytest.fixture(scope="module")
def fuzz_database(database_url: str) -> Iterator[str]:
    """A migrated database of the fuzzed app's own on the test server, dropped afterwards."""
    with scratch_database(database_url, "vidgate_fuzz") as url:
        yield url


@contextlib.contextmanager
def serve_in_thread(settings: Settings, database_url: str, data_dir: Path) -> Iterator[FuzzApp]:
    """Run the app (lifespan, uvicorn, worker) on a loop in another thread for the block."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app_settings = settings.model_copy(
        update={
            "data_dir": data_dir,
            "public_base_url": url,
            "dev_client_api_key": DEV_CLIENT_KEY,
            "task_poll_initial_seconds": 0.05,
            "task_poll_max_seconds": 0.3,
            "emulator_queue_seconds": 0.2,
            "emulator_run_seconds": 0.4,
            "emulator_render_height": 144,
            "emulator_sora_seconds": 2.0,
            "provider_timeout_seconds": 4.0,
            # Fuzzed input URLs name hosts that do not exist: give up on them quickly.
            "remote_media_timeout_seconds": 3.0,
        }
    )
    (data_dir / "tmp").mkdir(parents=True, exist_ok=True)
    started: Future[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = Future()

    async def serve() -> None:
        app = create_app(app_settings, database_url, run_worker=True)
        stop = asyncio.Event()
        async with app.router.lifespan_context(app), serve_on_loopback(app, sock):
            started.set_result((asyncio.get_running_loop(), stop))
            await stop.wait()

    def main() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
            raise

    thread = threading.Thread(target=main, name="fuzzed-app", daemon=True)
    thread.start()
    loop, stop = started.result(timeout=60)
    fuzz_app = FuzzApp(url, loop)
    try:
        yield fuzz_app
    finally:
        fuzz_app.session.close()
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=60)


@pytest.fixture(scope="module")
def fuzz_app(
    settings: Settings, fuzz_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzApp]:
    with serve_in_thread(settings, fuzz_database, tmp_path_factory.mktemp("fuzz")) as app:
        yield app


def served_document() -> dict[str, Any]:
    """The document the app serves: it depends on the code, not on settings or data (and the
    test checks the live app serves exactly this)."""
    return openapi_document()


# Built at collection so every operation is a test of its own; requests go to the live app.
schema = schemathesis.openapi.from_dict(served_document(), config=CONFIG)


def test_live_app_serves_the_fuzzed_document(fuzz_app: FuzzApp) -> None:
    assert fuzz_app.session.get(f"{fuzz_app.url}/openapi.json").json() == served_document()


@schema.parametrize()
@hypothesis_settings(deadline=EXAMPLE_DEADLINE)
def test_every_answer_is_documented(case: schemathesis.Case, fuzz_app: FuzzApp) -> None:
    case.call_and_validate(
        base_url=fuzz_app.url,
        session=fuzz_app.session,
        headers=fuzz_app.headers_for(case.operation.label),
        checks=CHECKS,
    )
