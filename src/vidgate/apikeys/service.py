"""Client and personal API keys: random `vg_` secrets shown once, stored as SHA-256."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Literal

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from vidgate.apikeys.errors import KeyOwnerDeleted, TooManyApiKeys
from vidgate.apikeys.models import ApiKey
from vidgate.auth.tokens import sha256_hex
from vidgate.db.session import Session
from vidgate.users.models import User

if TYPE_CHECKING:
    from vidgate.auth.principal_cache import PrincipalCache

KEY_PREFIX = "vg_"
DISPLAY_PREFIX_LENGTH = 10  # "vg_" + 7 characters: enough to tell keys apart in a list
MAX_ACTIVE_PERSONAL_KEYS = 25  # per user; revoked keys do not count

KeyKind = Literal["client", "personal"]


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    secret: str


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


async def create_key(
    session: AsyncSession,
    *,
    kind: KeyKind,
    name: str,
    user_id: uuid.UUID | None = None,
    secret: str | None = None,
) -> CreatedKey:
    """Store a new key; the secret is returned here and nowhere else, ever."""
    secret = secret or new_secret()
    key = ApiKey(
        id=uuid.uuid4(),
        kind=kind,
        user_id=user_id,
        name=name,
        prefix=secret[:DISPLAY_PREFIX_LENGTH],
        key_hash=sha256_hex(secret),
        created_at=datetime.now(UTC),
    )
    session.add(key)
    await session.flush()
    return CreatedKey(key, secret)


async def create_personal_key(session: AsyncSession, user_id: uuid.UUID, name: str) -> CreatedKey:
    """A user's new personal key, within their limit of active keys.

    The user's row is locked before the keys are counted, and stays locked until the caller's
    transaction ends: parallel creates of one user count one after another, each seeing the keys
    of those that committed before it, so the limit cannot be raced past. (`FOR NO KEY UPDATE`
    serialises creates and account deletion without blocking other rows that reference the
    user.) An account deleted meanwhile gets no key: its sessions have ended.
    """
    locked = await session.scalar(
        select(User.id)
        .where(User.id == user_id, User.deleted_at.is_(None))
        .with_for_update(key_share=True)
    )
    if locked is None:
        raise KeyOwnerDeleted()
    active = await session.scalar(
        select(func.count())
        .select_from(ApiKey)
        .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
    )
    if (active or 0) >= MAX_ACTIVE_PERSONAL_KEYS:
        raise TooManyApiKeys(MAX_ACTIVE_PERSONAL_KEYS)
    return await create_key(session, kind="personal", name=name, user_id=user_id)


async def ensure_client_key(session: AsyncSession, secret: str, name: str) -> bool:
    """Make sure a client key with this secret exists (development start-up); True if created.

    API processes started together on a new database all run this at once: the insert skips a
    key another one has just added (the hash is unique) instead of failing that process's start.
    """
    created = await session.scalar(
        insert(ApiKey)
        .values(
            id=uuid.uuid4(),
            kind="client",
            name=name,
            prefix=secret[:DISPLAY_PREFIX_LENGTH],
            key_hash=sha256_hex(secret),
            created_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing(index_elements=[ApiKey.key_hash])
        .returning(ApiKey.id)
    )
    return created is not None


async def list_keys(
    session: AsyncSession, *, user_id: uuid.UUID | None = None, include_revoked: bool = False
) -> list[ApiKey]:
    """A user's personal keys, or every key when `user_id` is None (operators)."""
    query = select(ApiKey).order_by(ApiKey.created_at.desc())
    if user_id is not None:
        query = query.where(ApiKey.user_id == user_id, ApiKey.kind == "personal")
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return list(await session.scalars(query))


async def revoke_key(
    session: Session,
    principals: PrincipalCache,
    key_id: uuid.UUID,
    *,
    user_id: uuid.UUID | None = None,
) -> bool:
    """Revoke a key (only the owner's own when `user_id` is given); False if there was none.
    Once this commits the key stops working: this process drops it from its cache at once, the
    others when the database tells them."""
    session.after_commit(partial(principals.evict_key, key_id))
    query = (
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
        .returning(ApiKey.id)
    )
    if user_id is not None:
        query = query.where(ApiKey.user_id == user_id)
    return (await session.execute(query)).first() is not None
