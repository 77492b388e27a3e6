"""SMS sign-in, refresh, logout and /me through the HTTP API (docs/api.md §2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import jwt
from sqlalchemy import select, update

from vidgate.auth.models import AuthSession, RefreshToken, SmsCode
from vidgate.credits.models import LedgerEntry
from vidgate.db.engine import Database
from vidgate.runtime import Runtime
from vidgate.users.models import User

from ..fixtures.signin import age_codes, e164, random_phone, send_code, sign_in


async def test_send_code_answers_with_contract_fields(client: httpx.AsyncClient) -> None:
    phone = random_phone()
    r = await client.post("/api/auth/sms/send", json={"phone_number": phone})
    assert r.status_code == 200
    assert r.json() == {
        "message": "Verification code sent successfully",
        "phone_number": e164(phone),
        "expires_in": 300,
        "remaining_requests": 4,
    }
    outbox = (await client.get("/api/_dev/sms/outbox", params={"phone_number": phone})).json()
    assert len(outbox["messages"]) == 1
    assert outbox["messages"][0]["phone_number"] == e164(phone)
    assert len(outbox["messages"][0]["code"]) == 6


async def test_phone_forms_are_one_number(client: httpx.AsyncClient) -> None:
    phone = random_phone()
    digits = phone.split("-")[1]
    spaced = f"+86 {digits[:3]} {digits[3:7]} {digits[7:]}"
    await send_code(client, phone)
    # Another form of the same number hits the same per-number cooldown.
    r = await client.post("/api/auth/sms/send", json={"phone_number": spaced})
    assert r.status_code == 429
    code = (await client.get("/api/_dev/sms/outbox", params={"phone_number": e164(phone)})).json()
    login = await client.post(
        "/api/auth/sms/login",
        json={"phone_number": e164(phone), "code": code["messages"][0]["code"]},
    )
    assert login.status_code == 200


async def test_login_registers_with_bonus_and_me_shows_the_user(
    client: httpx.AsyncClient, db: Database
) -> None:
    phone = random_phone()
    code = await send_code(client, phone)
    r = await client.post(
        "/api/auth/sms/login", json={"phone_number": phone, "code": code, "username": "张三"}
    )
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 86400
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert {"sub", "sid", "exp"} <= claims.keys()
    me = await client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200
    profile = me.json()
    assert profile["phone_number"] == e164(phone)
    assert profile["username"] == "张三"
    assert profile["credits"] == 100
    assert profile["region"] == "CN"
    assert profile["id"] == claims["sub"]
    async with db.session() as s:
        rows = (
            await s.scalars(select(LedgerEntry).where(LedgerEntry.user_id == claims["sub"]))
        ).all()
    assert [(r.kind, r.delta, r.balance_after) for r in rows] == [("signup_bonus", 100, 100)]


async def test_second_login_is_the_same_user_without_second_bonus(
    client: httpx.AsyncClient, db: Database
) -> None:
    phone = random_phone()
    first = await sign_in(client, phone, username="first")
    await age_codes(db, phone, 61)
    second = await sign_in(client, phone, username="ignored for an existing account")
    me1 = (await client.get("/api/auth/me", headers=first.headers)).json()
    me2 = (await client.get("/api/auth/me", headers=second.headers)).json()
    assert me1["id"] == me2["id"]
    assert me2["credits"] == 100
    assert me2["username"] == "first"


async def test_default_username_when_none_given(client: httpx.AsyncClient) -> None:
    user = await sign_in(client)
    me = (await client.get("/api/auth/me", headers=user.headers)).json()
    assert me["username"] == f"user_{user.phone[-4:]}"


async def test_wrong_code_counts_and_fifth_wrong_attempt_kills_the_code(
    client: httpx.AsyncClient, db: Database
) -> None:
    phone = random_phone()
    code = await send_code(client, phone)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(4):
        r = await client.post("/api/auth/sms/login", json={"phone_number": phone, "code": wrong})
        assert r.status_code == 400
        assert r.json() == {"detail": "Invalid or expired verification code"}
    r = await client.post("/api/auth/sms/login", json={"phone_number": phone, "code": wrong})
    assert r.status_code == 400
    assert "Too many wrong attempts" in r.json()["detail"]
    # Even the right code no longer works.
    r = await client.post("/api/auth/sms/login", json={"phone_number": phone, "code": code})
    assert r.status_code == 400
    async with db.session() as s:
        row = await s.scalar(select(SmsCode).where(SmsCode.phone == e164(phone)))
        assert row is not None and row.attempts == 5 and row.invalidated_at is not None
        assert await s.scalar(select(User).where(User.phone == e164(phone))) is None


async def test_code_is_single_use(client: httpx.AsyncClient) -> None:
    phone = random_phone()
    code = await send_code(client, phone)
    first = await client.post("/api/auth/sms/login", json={"phone_number": phone, "code": code})
    assert first.status_code == 200
    again = await client.post("/api/auth/sms/login", json={"phone_number": phone, "code": code})
    assert again.status_code == 400


async def test_expired_code_is_rejected(client: httpx.AsyncClient, db: Database) -> None:
    phone = random_phone()
    code = await send_code(client, phone)
    async with db.session() as s:
        await s.execute(
            update(SmsCode)
            .where(SmsCode.phone == e164(phone))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await s.commit()
    r = await client.post("/api/auth/sms/login", json={"phone_number": phone, "code": code})
    assert r.status_code == 400
    assert r.json()["detail"] == "Invalid or expired verification code"


async def test_resend_interval_and_hourly_limit(client: httpx.AsyncClient, db: Database) -> None:
    phone = random_phone()
    remaining = []
    for i in range(5):
        r = await client.post("/api/auth/sms/send", json={"phone_number": phone})
        if i > 0:
            assert r.status_code == 200, r.text
        remaining.append(r.json()["remaining_requests"])
        if i == 0:
            # Within 60 s the next send is refused, with Retry-After.
            again = await client.post("/api/auth/sms/send", json={"phone_number": phone})
            assert again.status_code == 429
            assert 1 <= int(again.headers["Retry-After"]) <= 60
        # Move the sends back in time past the resend interval (but not past the hour).
        await age_codes(db, phone, 61)
    assert remaining == [4, 3, 2, 1, 0]
    sixth = await client.post("/api/auth/sms/send", json={"phone_number": phone})
    assert sixth.status_code == 429
    retry_after = int(sixth.headers["Retry-After"])
    assert 3600 - 5 * 61 - 5 <= retry_after <= 3600
    # Only the newest code works.
    async with db.session() as s:
        live = (
            await s.scalars(
                select(SmsCode).where(
                    SmsCode.phone == e164(phone), SmsCode.invalidated_at.is_(None)
                )
            )
        ).all()
    assert len(live) == 1


async def test_per_ip_send_limit(client: httpx.AsyncClient, runtime: Runtime) -> None:
    original = runtime.settings.sms_send_per_ip_per_hour
    runtime.settings.sms_send_per_ip_per_hour = 0 + 1  # one send per hour from this address
    try:
        # Use a distinct client address so other tests' counters do not interfere.
        transport = httpx.ASGITransport(app=client._transport.app, client=("203.0.113.7", 1234))  # type: ignore[attr-defined]
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as other:
            ok = await other.post("/api/auth/sms/send", json={"phone_number": random_phone()})
            assert ok.status_code == 200
            blocked = await other.post("/api/auth/sms/send", json={"phone_number": random_phone()})
            assert blocked.status_code == 429
            assert "Retry-After" in blocked.headers
    finally:
        runtime.settings.sms_send_per_ip_per_hour = original


async def test_bad_input_gets_clear_errors(client: httpx.AsyncClient) -> None:
    cases = [
        ("/api/auth/sms/send", b"{not json", 422),
        ("/api/auth/sms/send", b'{"phone_number": 8613800138000}', 422),
        ("/api/auth/sms/send", b"{}", 422),
        ("/api/auth/sms/send", b'{"phone_number": "86-123"}', 422),
        ("/api/auth/sms/send", b'{"phone_number": "hello"}', 422),
        ("/api/auth/sms/login", b'{"phone_number": "86-13800138000", "code": "12ab56"}', 422),
        ("/api/auth/sms/login", b'{"phone_number": "86-13800138000", "code": 123456}', 422),
        ("/api/auth/sms/login", b'{"phone_number": "86-13800138000"}', 422),
        ("/api/auth/refresh", b'{"refresh_token": 5}', 422),
    ]
    for path, body, status in cases:
        r = await client.post(path, content=body, headers={"content-type": "application/json"})
        assert r.status_code == status, (path, body, r.text)
        assert "detail" in r.json()


async def test_invalid_phone_message(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/auth/sms/send", json={"phone_number": "86-123"})
    assert r.status_code == 422
    assert r.json()["detail"].startswith("Invalid phone number")


async def test_refresh_rotates_and_old_token_reuse_revokes_session(
    client: httpx.AsyncClient, db: Database, runtime: Runtime
) -> None:
    user = await sign_in(client)
    r = await client.post("/api/auth/refresh", json={"refresh_token": user.refresh_token})
    assert r.status_code == 200
    pair = r.json()
    assert pair["refresh_token"] != user.refresh_token
    new_headers = {"Authorization": f"Bearer {pair['access_token']}"}
    assert (await client.get("/api/auth/me", headers=new_headers)).status_code == 200
    # Reuse of the old token inside the grace window is tolerated (two tabs).
    again = await client.post("/api/auth/refresh", json={"refresh_token": user.refresh_token})
    assert again.status_code == 200
    # Outside the window: the session is revoked for everyone holding its tokens.
    async with db.session() as s:
        await s.execute(
            update(RefreshToken)
            .where(RefreshToken.rotated_at.is_not(None))
            .where(
                RefreshToken.session_id
                == select(AuthSession.id)
                .where(AuthSession.id == RefreshToken.session_id)
                .scalar_subquery()
            )
            .values(rotated_at=RefreshToken.rotated_at - timedelta(seconds=60))
        )
        await s.commit()
    stale = await client.post("/api/auth/refresh", json={"refresh_token": user.refresh_token})
    assert stale.status_code == 401
    assert stale.headers["WWW-Authenticate"] == "Bearer"
    assert (await client.get("/api/auth/me", headers=new_headers)).status_code == 401
    newest = await client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert newest.status_code == 401


async def test_unknown_refresh_token(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/auth/refresh", json={"refresh_token": "nope"})
    assert r.status_code == 401
    assert r.json() == {"detail": "Invalid refresh token"}


async def test_logout_ends_access_and_refresh_tokens(
    client: httpx.AsyncClient, db: Database
) -> None:
    user = await sign_in(client)
    await age_codes(db, user.phone, 61)
    other_device = await sign_in(client, user.phone)
    r = await client.post("/api/auth/logout", headers=user.headers)
    assert r.status_code == 200
    assert r.json() == {"message": "Successfully logged out"}
    assert (await client.get("/api/auth/me", headers=user.headers)).status_code == 401
    refresh = await client.post("/api/auth/refresh", json={"refresh_token": user.refresh_token})
    assert refresh.status_code == 401
    # Another session of the same user is untouched.
    assert (await client.get("/api/auth/me", headers=other_device.headers)).status_code == 200
    assert (await client.post("/api/auth/logout", headers=user.headers)).status_code == 401


async def test_bad_tokens_get_401_with_bearer_challenge(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user = await sign_in(client)
    claims = jwt.decode(user.access_token, options={"verify_signature": False})
    forged = jwt.encode(
        claims, "not-the-key-but-long-enough-for-hs256-0123456789", algorithm="HS256"
    )
    expired = runtime.tokens.issue.__self__  # type: ignore[attr-defined]
    expired_token = jwt.encode({**claims, "exp": 1_000_000_000}, expired._key, algorithm="HS256")
    wrong_alg = jwt.encode(claims, "", algorithm="none")
    for headers in (
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer garbage"},
        {"Authorization": f"Bearer {forged}"},
        {"Authorization": f"Bearer {expired_token}"},
        {"Authorization": f"Bearer {wrong_alg}"},
    ):
        r = await client.get("/api/auth/me", headers=headers)
        assert r.status_code == 401, headers
        assert r.headers.get("WWW-Authenticate") == "Bearer"
        assert "detail" in r.json()


async def test_per_ip_verify_limit_counts_failed_attempts(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    original = runtime.settings.sms_verify_per_ip_per_5min
    runtime.settings.sms_verify_per_ip_per_5min = 3
    try:
        app = client._transport.app  # type: ignore[attr-defined]
        transport = httpx.ASGITransport(app=app, client=("198.51.100.9", 4321))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as other:
            phone = random_phone()
            code = await send_code(other, phone)
            body = {"phone_number": phone, "code": "000000" if code != "000000" else "111111"}
            for _ in range(3):
                assert (await other.post("/api/auth/sms/login", json=body)).status_code == 400
            # The limit now applies even to the right code.
            blocked = await other.post(
                "/api/auth/sms/login", json={"phone_number": phone, "code": code}
            )
            assert blocked.status_code == 429
            assert int(blocked.headers["Retry-After"]) <= 300
    finally:
        runtime.settings.sms_verify_per_ip_per_5min = original
