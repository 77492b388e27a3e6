"""Who may open the console: every `/api/admin` route, enumerated from the app, answers 401 to
an anonymous caller, 403 to a plain user (and to an API key alone), 403 to support on admin-only
routes; and where the second factor is asked for, 403 until the session has passed TOTP."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pyotp
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from vidgate.admin.models import AuditEntry
from vidgate.app import create_app
from vidgate.config import Settings
from vidgate.runtime import Runtime

from ..fixtures.app import DEV_CLIENT_KEY
from ..fixtures.databases import database_of_its_own
from ..fixtures.operators import operator
from ..fixtures.signin import sign_in

ADMIN_PREFIX = "/api/admin"
# Routes an operator uses to pass the second factor: guarded by role, not by the factor.
SIGNING_IN = {
    "/api/admin/me",
    "/api/admin/totp/enroll",
    "/api/admin/totp/confirm",
    "/api/admin/totp/verify",
}


def admin_routes(app: FastAPI) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(method, path with ids filled in, the OpenAPI operation) of every console route."""
    for path, operations in app.openapi()["paths"].items():
        if path.startswith(ADMIN_PREFIX):
            for method, operation in operations.items():
                yield method.upper(), re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path), operation


def test_there_are_console_routes(app_and_runtime: tuple[object, Runtime]) -> None:
    app = app_and_runtime[0]
    assert isinstance(app, FastAPI)
    assert len(list(admin_routes(app))) >= 5


async def test_every_console_route_refuses_anonymous_callers_users_and_keys(
    client: httpx.AsyncClient, app_and_runtime: tuple[object, Runtime]
) -> None:
    app, runtime = app_and_runtime
    assert isinstance(app, FastAPI)
    user = await sign_in(client)
    support = await operator(client, runtime, "support")
    for method, path, operation in admin_routes(app):
        anonymous = await client.request(method, path, json={})
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        assert isinstance(anonymous.json()["detail"], str)
        keyed = await client.request(method, path, json={}, headers={"X-API-Key": DEV_CLIENT_KEY})
        assert keyed.status_code == 401, (method, path, keyed.text)
        plain = await client.request(method, path, json={}, headers=user.headers)
        assert plain.status_code == 403, (method, path, plain.text)
        assert plain.json() == {"detail": "Operators only"}
        as_support = await client.request(method, path, json={}, headers=support.headers)
        if as_support.status_code == 403:
            # Only admin routes refuse support, and they say so.
            assert as_support.json() == {"detail": "Admins only"}, (method, path)
            assert "needs the admin role" in str(operation["responses"]), (method, path)
        else:
            assert as_support.status_code not in (401, 403), (method, path, as_support.text)


async def test_the_console_says_who_the_operator_is(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    admin = await operator(client, runtime, "admin")
    me = await client.get("/api/admin/me", headers=admin.headers)
    assert me.status_code == 200, me.text
    body = me.json()
    assert (body["id"], body["role"]) == (str(admin.user_id), "admin")
    assert body["second_factor_required"] is False  # development
    assert body["second_factor_passed"] is True


@pytest.fixture
async def factor_server(
    settings: Settings, database_url: str
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    """An app that asks operators for TOTP, on a database of its own."""
    async with database_of_its_own(database_url, "vidgate_totp") as url:
        app = create_app(
            settings.model_copy(
                update={"console_second_factor": True, "sms_resend_interval_seconds": 0}
            ),
            url,
        )
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield client, app.state.runtime


async def test_totp_enrolment_and_verification_guard_the_console(
    factor_server: tuple[httpx.AsyncClient, Runtime],
) -> None:
    client, runtime = factor_server
    admin = await operator(client, runtime, "admin")
    audit = "/api/admin/audit"
    refused = await client.get(audit, headers=admin.headers)
    assert refused.status_code == 403
    assert refused.json()["detail"].startswith("Second factor required")
    me = (await client.get("/api/admin/me", headers=admin.headers)).json()
    assert (me["second_factor_enrolled"], me["second_factor_passed"]) == (False, False)
    # Verifying before enrolling is refused.
    early = await client.post(
        "/api/admin/totp/verify", json={"code": "123456"}, headers=admin.headers
    )
    assert early.status_code == 409

    enrolled = await client.post("/api/admin/totp/enroll", headers=admin.headers)
    assert enrolled.status_code == 200, enrolled.text
    body = enrolled.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/vidgate:")
    assert "issuer=vidgate" in body["otpauth_uri"]
    assert body["qr_svg"].startswith("<svg")
    totp = pyotp.TOTP(body["secret"])
    wrong = await client.post(
        "/api/admin/totp/confirm", json={"code": "000000"}, headers=admin.headers
    )
    if totp.now() != "000000":
        assert wrong.status_code == 400
        assert wrong.json() == {"detail": "Invalid or already used code"}
    confirmed = await client.post(
        "/api/admin/totp/confirm", json={"code": totp.now()}, headers=admin.headers
    )
    assert confirmed.status_code == 200, confirmed.text
    recovery = confirmed.json()["recovery_codes"]
    assert len(recovery) == 10 and len(set(recovery)) == 10
    # This session has passed; a new enrolment is refused while one is confirmed.
    assert (await client.get(audit, headers=admin.headers)).status_code == 200
    again = await client.post("/api/admin/totp/enroll", headers=admin.headers)
    assert again.status_code == 409

    # A second session of the same operator must pass it again; a code is not taken twice.
    second = await sign_in(client, admin.signed.phone)
    second_headers = second.headers
    assert (await client.get(audit, headers=second_headers)).status_code == 403
    reused = await client.post(
        "/api/admin/totp/verify", json={"code": totp.now()}, headers=second_headers
    )
    assert reused.status_code == 400  # the step confirm used
    by_recovery = await client.post(
        "/api/admin/totp/verify", json={"code": recovery[0]}, headers=second_headers
    )
    assert by_recovery.status_code == 200, by_recovery.text
    assert by_recovery.json() == {"verified": True, "recovery_codes_left": 9}
    assert (await client.get(audit, headers=second_headers)).status_code == 200
    third = await sign_in(client, admin.signed.phone)
    spent = await client.post(
        "/api/admin/totp/verify", json={"code": recovery[0]}, headers=third.headers
    )
    assert spent.status_code == 400

    # Guessing is cut short.
    statuses = []
    for _ in range(10):
        guess = await client.post(
            "/api/admin/totp/verify", json={"code": "999999"}, headers=third.headers
        )
        statuses.append(guess.status_code)
    assert statuses[-1] == 429 and set(statuses) == {400, 429}
    async with runtime.db.session() as session:
        actions = list(
            await session.scalars(
                select(AuditEntry.action).where(AuditEntry.actor_id == admin.user_id)
            )
        )
    assert actions == ["totp.enrolled"]
