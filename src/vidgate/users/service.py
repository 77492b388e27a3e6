"""Accounts: creation with the signup bonus, profile changes, deletion and restoration."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from vidgate.apikeys.models import ApiKey
from vidgate.auth.models import AuthSession
from vidgate.auth.phones import e164, normalize_phone
from vidgate.credits import service as ledger
from vidgate.db.session import Session
from vidgate.kit import parse_uuid
from vidgate.users.models import User

if TYPE_CHECKING:
    from vidgate.auth.principal_cache import PrincipalCache

DELETED_USERNAME = "deleted user"


def signup_bonus_key(user_id: uuid.UUID) -> str:
    return f"user:{user_id}:signup_bonus"


async def _grant_signup_bonus(session: AsyncSession, user_id: uuid.UUID, amount: int) -> None:
    if amount > 0:
        await ledger.grant(
            session,
            user_id,
            amount,
            key=signup_bonus_key(user_id),
            kind=ledger.LedgerKind.SIGNUP_BONUS,
            note="Welcome credits",
        )


async def _create_with_bonus(
    session: AsyncSession, unique: Any, signup_bonus: int, **values: Any
) -> User | None:
    """A new account with its signup bonus, or None if `unique` already names one.

    The unique column decides between racing first sign-ins: exactly one insert wins.
    """
    new_id = await session.scalar(
        insert(User)
        .values(id=uuid.uuid4(), **values)
        .on_conflict_do_nothing(index_elements=[unique])
        .returning(User.id)
    )
    if new_id is None:
        return None
    await _grant_signup_bonus(session, new_id, signup_bonus)
    return await session.get_one(User, new_id)


async def sign_in_by_phone(
    session: AsyncSession,
    phone: str,
    *,
    username: str,
    region: str,
    signup_bonus: int,
) -> tuple[User, bool]:
    """The account for `phone`, created (with the bonus) if there is none; `(user, created)`.

    Two first sign-ins racing on one number end with one account: the unique phone decides.
    A deleted account that has not been anonymised yet is restored.
    """
    now = datetime.now(UTC)
    created = await _create_with_bonus(
        session,
        User.phone,
        signup_bonus,
        phone=phone,
        username=username,
        region=region,
        last_login_at=now,
    )
    if created is not None:
        return created, True
    user = await _lock_by(session, User.phone == phone)
    assert user is not None
    _note_sign_in(user, now)
    await session.flush()
    return user, False


async def sign_in_by_google(
    session: AsyncSession,
    *,
    sub: str,
    email: str | None,
    name: str | None,
    picture: str | None,
    region: str,
    signup_bonus: int,
) -> tuple[User, bool]:
    """The account for a Google identity (`sub`), linked or created; `(user, created)`.

    Only called with a verified email. An existing account with that email and no Google
    identity yet is linked once; otherwise a new account gets the bonus. Two first sign-ins
    racing end with one account: the unique `google_sub` decides.
    """
    now = datetime.now(UTC)
    user = await _lock_by(session, User.google_sub == sub)
    if user is None and email:
        user = await _lock_by(
            session,
            func.lower(User.email) == email.lower(),
            User.google_sub.is_(None),
            User.anonymized_at.is_(None),
        )
        if user is not None:
            user.google_sub = sub
    if user is None:
        created = await _create_with_bonus(
            session,
            User.google_sub,
            signup_bonus,
            google_sub=sub,
            email=email,
            username=_username_from(name, email),
            avatar_url=picture,
            region=region,
            last_login_at=now,
        )
        if created is not None:
            return created, True
        user = await _lock_by(session, User.google_sub == sub)
        assert user is not None
    _note_sign_in(user, now)
    await session.flush()
    return user, False


def _username_from(name: str | None, email: str | None) -> str:
    candidate = (name or "").replace("\x00", "").strip() or (email or "").split("@")[0]
    return candidate[:50] or "google user"


async def _lock_by(session: AsyncSession, *conditions: Any) -> User | None:
    return await session.scalar(
        select(User)
        .where(*conditions)
        .order_by(User.created_at)
        .limit(1)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def _note_sign_in(user: User, now: datetime) -> None:
    """Record a sign-in; one within the deletion grace period restores the account."""
    user.last_login_at = now
    if user.deleted_at is not None:
        user.deleted_at = None
        user.purge_after = None


async def account(session: AsyncSession, user_id: uuid.UUID) -> User:
    """The signed-in user's row, as it stands now."""
    return await session.get_one(User, user_id)


async def update_profile(
    session: Session, principals: PrincipalCache, user_id: uuid.UUID, *, changes: dict[str, object]
) -> User:
    """Change the fields given; the cached principal (which carries the username) is dropped once
    the change commits."""
    user = await session.get_one(User, user_id, with_for_update=True)
    for field in ("username", "avatar_url"):
        if field in changes:
            setattr(user, field, changes[field])
    await session.flush()
    session.after_commit(partial(principals.evict_user, user_id))
    return user


async def request_deletion(
    session: Session, principals: PrincipalCache, user_id: uuid.UUID, purge_days: int
) -> None:
    """Soft-delete: sessions and personal keys stop once this commits (in this process's cache
    too); the data goes after `purge_days`."""
    session.after_commit(partial(principals.evict_user, user_id))
    now = datetime.now(UTC)
    await session.execute(
        update(User)
        .where(User.id == user_id, User.deleted_at.is_(None))
        .values(deleted_at=now, purge_after=now + timedelta(days=purge_days))
    )
    await session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason="account_deleted")
    )
    await session.execute(
        update(ApiKey)
        .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def anonymize_due_accounts(session: AsyncSession) -> int:
    """Strip personal data from accounts past their grace period; the ledger stays."""
    now = datetime.now(UTC)
    result = await session.execute(
        update(User)
        .where(User.purge_after <= now, User.anonymized_at.is_(None), User.deleted_at.is_not(None))
        .values(
            phone=None,
            email=None,
            google_sub=None,
            avatar_url=None,
            username=DELETED_USERNAME,
            anonymized_at=now,
        )
        .returning(User.id)
    )
    return len(result.all())


async def find_user(session: AsyncSession, phone_or_id: str) -> User | None:
    """Look an account up by id or by phone number in any accepted form (for operators)."""
    user_id = parse_uuid(phone_or_id)
    if user_id is not None:
        return await session.get(User, user_id)
    return await session.scalar(
        select(User).where(User.phone == e164(normalize_phone(phone_or_id)))
    )
