"""The per-process session cache never outlives a change made anywhere else."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
from sqlalchemy import func, update

from vidgate.apikeys.models import ApiKey
from vidgate.auth.models import AuthSession
from vidgate.auth.principal import Principal
from vidgate.auth.principal_cache import PrincipalCache
from vidgate.auth.tokens import sha256_hex
from vidgate.credits import service as ledger
from vidgate.db.engine import Database
from vidgate.runtime import Runtime
from vidgate.users.models import User

from ..fixtures.signin import sign_in


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
    sid = uuid.UUID(jwt.decode(user.access_token, options={"verify_signature": False})["sid"])
    assert runtime.principals.enabled
    # Cached by a read (a read that overlapped an unrelated eviction is not kept: try again).
    await _me_until(
        client,
        user.headers,
        lambda r: r.status_code == 200 and runtime.principals.get(sid, datetime.now(UTC)),
    )
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


async def _key_status_until(client: httpx.AsyncClient, key: str, status: int) -> None:
    """Poll a task-status read with this key until it answers `status` (a random task id: 404
    means the key was accepted, 401 that it was refused)."""
    path = f"/api/videos/tasks/{uuid.uuid4()}"
    for _ in range(100):
        response = await client.get(path, headers={"X-API-Key": key})
        if response.status_code == status:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never {status}; last: {response.status_code} {response.text}")


async def _personal_key(client: httpx.AsyncClient, headers: dict[str, str]) -> tuple[str, str]:
    created = await client.post("/api/users/api-keys", headers=headers, json={"name": "cache"})
    assert created.status_code == 201, created.text
    return created.json()["id"], created.json()["key"]


async def test_key_revoked_by_another_process_stops_working(
    client: httpx.AsyncClient, db: Database, runtime: Runtime
) -> None:
    user = await sign_in(client)
    key_id, key = await _personal_key(client, user.headers)
    await _key_status_until(client, key, 404)
    async with db.session() as s:
        await s.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(key_id))
            .values(revoked_at=datetime.now(UTC))
        )
        await s.commit()
    await _key_status_until(client, key, 401)


async def test_personal_key_of_a_user_deleted_elsewhere_stops_working(
    client: httpx.AsyncClient, db: Database
) -> None:
    user = await sign_in(client)
    _, key = await _personal_key(client, user.headers)
    me = (await client.get("/api/auth/me", headers=user.headers)).json()
    await _key_status_until(client, key, 404)
    async with db.session() as s:
        await s.execute(
            update(User).where(User.id == uuid.UUID(me["id"])).values(deleted_at=datetime.now(UTC))
        )
        await s.commit()
    await _key_status_until(client, key, 401)


async def test_using_a_key_does_not_evict_it(
    client: httpx.AsyncClient, db: Database, runtime: Runtime
) -> None:
    """`last_used_at` is written as keys are used; only changes that decide whether a key is
    live announce themselves, or every such write would empty the cache."""
    user = await sign_in(client)
    key_id, key = await _personal_key(client, user.headers)
    _, other = await _personal_key(client, user.headers)
    await _key_status_until(client, other, 404)
    for _ in range(100):  # cached by a read that no unrelated eviction overlapped
        await _key_status_until(client, key, 404)
        if runtime.principals.get_key(sha256_hex(key), datetime.now(UTC)) is not None:
            break
    async with db.session() as s:
        await s.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(key_id))
            .values(last_used_at=datetime.now(UTC))
        )
        await s.execute(
            update(ApiKey).where(ApiKey.key_hash == sha256_hex(other)).values(revoked_at=func.now())
        )
        await s.commit()
    # Notifications arrive in commit order: once the second key is refused, the first key's
    # update has been heard too, and it is still cached.
    await _key_status_until(client, other, 401)
    assert runtime.principals.get_key(sha256_hex(key), datetime.now(UTC)) is not None
