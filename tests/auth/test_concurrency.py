"""Races on sign-in state: one code, one refresh token, one phone's send quota."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import jwt
from sqlalchemy import func, select

from vidgate.auth.models import AuthSession, RefreshToken, SmsCode
from vidgate.credits.models import LedgerEntry
from vidgate.db.engine import Database
from vidgate.users.models import User

from ..fixtures.signin import e164, random_phone, send_code, sign_in


async def test_twenty_parallel_logins_with_one_code_exactly_one_wins(
    client: httpx.AsyncClient, db: Database
) -> None:
    phone = random_phone()
    code = await send_code(client, phone)
    body = {"phone_number": phone, "code": code}
    results = await asyncio.gather(
        *(client.post("/api/auth/sms/login", json=body) for _ in range(20))
    )
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] + [400] * 19
    async with db.session() as s:
        users = (await s.scalars(select(User).where(User.phone == e164(phone)))).all()
        assert len(users) == 1
        sessions = await s.scalar(
            select(func.count()).select_from(AuthSession).where(AuthSession.user_id == users[0].id)
        )
        bonus = await s.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.user_id == users[0].id)
        )
    assert sessions == 1
    assert bonus == 1


async def test_parallel_refreshes_rotate_once_and_lose_no_session(
    client: httpx.AsyncClient, db: Database
) -> None:
    user = await sign_in(client)
    results = await asyncio.gather(
        *(
            client.post("/api/auth/refresh", json={"refresh_token": user.refresh_token})
            for _ in range(8)
        )
    )
    assert [r.status_code for r in results] == [200] * 8
    new_tokens = {r.json()["refresh_token"] for r in results}
    assert len(new_tokens) == 8
    # Every tab's new pair works, and the original token was rotated exactly once.
    for r in results:
        me = await client.get(
            "/api/auth/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}
        )
        assert me.status_code == 200
    sid = jwt.decode(user.access_token, options={"verify_signature": False})["sid"]
    async with db.session() as s:
        tokens = (
            await s.scalars(select(RefreshToken).where(RefreshToken.session_id == uuid.UUID(sid)))
        ).all()
    assert len(tokens) == 9  # the original and one per tab
    assert [t.parent_id for t in tokens if t.rotated_at is not None] == [None]  # rotated once
    follow_up = await client.post(
        "/api/auth/refresh", json={"refresh_token": results[0].json()["refresh_token"]}
    )
    assert follow_up.status_code == 200


async def test_parallel_sends_never_exceed_five_codes_per_hour(
    client: httpx.AsyncClient, db: Database, runtime: object
) -> None:
    from vidgate.runtime import Runtime

    assert isinstance(runtime, Runtime)
    original = runtime.settings.sms_resend_interval_seconds
    runtime.settings.sms_resend_interval_seconds = 0  # only the hourly cap is under test here
    try:
        phone = random_phone()
        results = await asyncio.gather(
            *(client.post("/api/auth/sms/send", json={"phone_number": phone}) for _ in range(15))
        )
    finally:
        runtime.settings.sms_resend_interval_seconds = original
    statuses = [r.status_code for r in results]
    assert statuses.count(200) == 5
    assert statuses.count(429) == 10
    remaining = sorted(r.json()["remaining_requests"] for r in results if r.status_code == 200)
    assert remaining == [0, 1, 2, 3, 4]
    async with db.session() as s:
        sent = await s.scalar(
            select(func.count()).select_from(SmsCode).where(SmsCode.phone == e164(phone))
        )
    assert sent == 5
