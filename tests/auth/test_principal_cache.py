"""The per-process session cache never outlives a change made anywhere else."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
from sqlalchemy import update

from vidgate.auth.dependencies import Principal
from vidgate.auth.models import AuthSession
from vidgate.auth.principal_cache import PrincipalCache
from vidgate.credits import service as ledger
from vidgate.db.engine import Database
from vidgate.deps import Runtime

from ..helpers import sign_in


async def _me_until(
    client: httpx.AsyncClient, headers: dict[str, str], check: object
) -> httpx.Response:
    """Poll /me until `check(response)` holds (changes from other processes arrive by NOTIFY)."""
    assert callable(check)
    for _ in range(100):
        response = await client.get("/api/auth/me", headers=headers)
        if check(response):
            return response
        await asyncio.sleep(0.02)
    raise AssertionError(
        f"/me never satisfied the check; last: {response.status_code} {response.text}"
    )


async def test_session_revoked_by_another_process_stops_working(
    client: httpx.AsyncClient, db: Database, runtime: Runtime
) -> None:
    user = await sign_in(client)
    assert (await client.get("/api/auth/me", headers=user.headers)).status_code == 200
    sid = uuid.UUID(jwt.decode(user.access_token, options={"verify_signature": False})["sid"])
    assert runtime.principals.enabled
    assert runtime.principals.get(sid, datetime.now(UTC)) is not None  # it is cached
    # Another process (here: a separate connection, not the API) ends the session.
    async with db.session() as s:
        await s.execute(
            update(AuthSession).where(AuthSession.id == sid).values(revoked_at=datetime.now(UTC))
        )
        await s.commit()
    await _me_until(client, user.headers, lambda r: r.status_code == 401)


async def test_credits_changed_elsewhere_show_up(client: httpx.AsyncClient, db: Database) -> None:
    user = await sign_in(client)
    me = (await client.get("/api/auth/me", headers=user.headers)).json()
    async with db.session() as s:
        await ledger.charge(s, uuid.UUID(me["id"]), 30, key=f"test:{uuid.uuid4()}")
        await s.commit()
    response = await _me_until(client, user.headers, lambda r: r.json()["credits"] == 70)
    assert response.json()["available"] == 70


def _principal(user_id: uuid.UUID, session_id: uuid.UUID) -> Principal:
    now = datetime.now(UTC)
    return Principal(
        id=user_id,
        phone=None,
        email=None,
        username="u",
        avatar_url=None,
        region="CN",
        credits=1,
        credits_reserved=0,
        created_at=now,
        last_login_at=None,
        session_id=session_id,
    )


def test_a_read_that_raced_an_eviction_is_not_cached() -> None:
    cache = PrincipalCache()
    cache.enabled = True
    user_id, session_id = uuid.uuid4(), uuid.uuid4()
    expires = datetime.now(UTC) + timedelta(days=1)
    before = cache.generation
    cache.evict_user(user_id)  # a change arrives while the read is in flight
    cache.put(_principal(user_id, session_id), expires, before)
    assert cache.get(session_id, datetime.now(UTC)) is None
    cache.put(_principal(user_id, session_id), expires, cache.generation)
    assert cache.get(session_id, datetime.now(UTC)) is not None
    cache.apply_notification(f"u:{user_id}")
    assert cache.get(session_id, datetime.now(UTC)) is None


def test_disabled_cache_keeps_nothing_and_expired_sessions_drop_out() -> None:
    cache = PrincipalCache()
    user_id, session_id = uuid.uuid4(), uuid.uuid4()
    cache.put(_principal(user_id, session_id), datetime.now(UTC) + timedelta(days=1), 0)
    assert cache.get(session_id, datetime.now(UTC)) is None  # listener not connected: no caching
    cache.enabled = True
    cache.put(_principal(user_id, session_id), datetime.now(UTC) + timedelta(seconds=1), 0)
    assert cache.get(session_id, datetime.now(UTC) + timedelta(seconds=2)) is None
