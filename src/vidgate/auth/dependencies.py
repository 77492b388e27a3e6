"""Who is calling: typed dependencies for the API's three kinds of authentication
(docs/api.md §1.1).

- `CurrentUser`: a Bearer access token whose session is still live (one query, no transaction).
- `ApiKeyAuth`: an `X-API-Key`, client or personal.
- `UserWithKey` ("Bearer + key" in docs/api.md §1.1): a Bearer token plus any key, or a personal key
  on its own (docs/api.md §1.1).
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import and_, bindparam, func, or_, select, update

from vidgate.apikeys.models import ApiKey
from vidgate.auth.errors import (
    ApiKeyInvalid,
    ApiKeyMissing,
    ApiKeyOfAnotherUser,
    BearerTokenMissing,
    ClientKeyNeedsBearer,
    SessionEnded,
)
from vidgate.auth.models import AuthSession
from vidgate.auth.principal import USER_COLUMNS, KeyIdentity, Principal
from vidgate.auth.tokens import sha256_hex
from vidgate.deps import RuntimeDep
from vidgate.runtime import Runtime
from vidgate.users.models import User

_bearer = HTTPBearer(auto_error=False, description="Access token from sign-in")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="Client or personal key")

KEY_TOUCH_INTERVAL = 60.0


# Built once: compiling a statement per request would cost more than running it.
_LIVE_SESSION_USER = (
    select(*USER_COLUMNS, AuthSession.expires_at.label("session_expires_at"))
    .join(AuthSession, AuthSession.user_id == User.id)
    .where(
        AuthSession.id == bindparam("session_id"),
        User.id == bindparam("user_id"),
        AuthSession.revoked_at.is_(None),
        AuthSession.expires_at > func.now(),
        User.deleted_at.is_(None),
        User.suspended_at.is_(None),
    )
)


async def _user_for_access_token(runtime: Runtime, token: str) -> Principal:
    claims = runtime.tokens.verify(token)
    cache = runtime.principals
    cached = cache.get(claims.session_id, datetime.now(UTC))
    if cached is not None and cached.id == claims.user_id:
        return cached
    generation = cache.generation
    async with runtime.db.autocommit_engine.connect() as conn:
        result = await conn.execute(
            _LIVE_SESSION_USER, {"session_id": claims.session_id, "user_id": claims.user_id}
        )
        row = result.first()
    if row is None:
        raise SessionEnded()
    principal = Principal.from_row(row, session_id=claims.session_id)
    cache.put(principal, row.session_expires_at, generation)
    return principal


async def _touch_key(runtime: Runtime, key_id: uuid.UUID) -> None:
    """Record use of a key, at most once a minute per key and process (not a write per call)."""
    now = time.monotonic()
    last = runtime.key_touches.get(key_id)
    if last is not None and now - last < KEY_TOUCH_INTERVAL:
        return
    runtime.key_touches[key_id] = now
    async with runtime.db.autocommit_engine.connect() as conn:
        await conn.execute(
            update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=func.now())
        )


# Built once, like the session query: the key's hash is the only parameter.
_LIVE_KEY = (
    select(ApiKey.id.label("key_id"), ApiKey.kind, ApiKey.expires_at, *USER_COLUMNS)
    .select_from(ApiKey)
    .outerjoin(User, User.id == ApiKey.user_id)
    .where(
        ApiKey.key_hash == bindparam("key_hash"),
        ApiKey.revoked_at.is_(None),
        or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > func.now()),
        or_(ApiKey.kind == "client", and_(User.deleted_at.is_(None), User.suspended_at.is_(None))),
    )
)


async def _lookup_key(runtime: Runtime, secret: str) -> tuple[KeyIdentity, Principal | None]:
    """The live key with this secret and, for a personal key, its owner.

    Remembered per process like sessions are: revoking a key, or any change to a personal key's
    owner, evicts it everywhere through the same notifications.
    """
    key_hash = sha256_hex(secret)
    cache = runtime.principals
    cached = cache.get_key(key_hash, datetime.now(UTC))
    if cached is not None:
        await _touch_key(runtime, cached[0].id)
        return cached
    generation = cache.generation
    async with runtime.db.autocommit_engine.connect() as conn:
        row = (await conn.execute(_LIVE_KEY, {"key_hash": key_hash})).first()
    if row is None:
        raise ApiKeyInvalid()
    owner = None
    if row.kind == "personal":
        owner = Principal.from_row(row, api_key_id=row.key_id)
    identity = KeyIdentity(row.key_id, row.kind, owner.id if owner else None)
    cache.put_key(key_hash, identity, owner, row.expires_at, generation)
    await _touch_key(runtime, row.key_id)
    return identity, owner


async def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise BearerTokenMissing()
    # The runtime straight from the app: one dependency fewer on the hottest path.
    return await _user_for_access_token(request.app.state.runtime, credentials.credentials)


async def api_key(
    request: Request, secret: Annotated[str | None, Depends(_api_key)]
) -> KeyIdentity:
    if not secret:
        raise ApiKeyMissing()
    # The runtime straight from the app, as in current_user: task status is polled hard.
    identity, _owner = await _lookup_key(request.app.state.runtime, secret)
    return identity


async def user_with_key(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    secret: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    if not secret:
        raise ApiKeyMissing()
    key, owner = await _lookup_key(runtime, secret)
    if credentials is None:
        if owner is None:
            raise ClientKeyNeedsBearer()
        return owner
    user = await _user_for_access_token(runtime, credentials.credentials)
    if key.user_id is not None and key.user_id != user.id:
        raise ApiKeyOfAnotherUser()
    return user


user_for_access_token = _user_for_access_token

CurrentUser = Annotated[Principal, Depends(current_user)]
ApiKeyAuth = Annotated[KeyIdentity, Depends(api_key)]
UserWithKey = Annotated[Principal, Depends(user_with_key)]
# The Bearer credentials if sent (endpoints where a token narrows what a key may see).
OptionalBearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
