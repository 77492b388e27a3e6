"""Accounts: creation with the signup bonus, profile changes, deletion and restoration."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from vidgate.admin import service as audit
from vidgate.admin.service import Actor
from vidgate.apikeys.models import ApiKey
from vidgate.auth.models import AuthSession
from vidgate.auth.phones import e164, normalize_phone
from vidgate.credits import service as ledger
from vidgate.db.session import Session
from vidgate.kit import PageRequest, parse_uuid
from vidgate.media import retention
from vidgate.media.storage import Storage
from vidgate.users.errors import (
    AdjustmentOverSupportLimit,
    AlreadyInThatState,
    OwnRoleUnchangeable,
    UserNotFound,
)
from vidgate.users.models import User
from vidgate.users.roles import Role, at_least

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
    await _revoke_sessions(session, user_id, "account_deleted")
    await session.execute(
        update(ApiKey)
        .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def anonymize_due_accounts(session: AsyncSession, storage: Storage) -> int:
    """Strip personal data from accounts past their grace period, and delete their uploads and
    results from storage, in one transaction; the ledger stays."""
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
    anonymized = list(result.scalars())
    await retention.expire_media_of(session, storage, anonymized, now)
    return len(anonymized)


async def find_user(session: AsyncSession, phone_or_id: str) -> User | None:
    """Look an account up by id, email or phone number in any accepted form (for operators)."""
    user_id = parse_uuid(phone_or_id)
    if user_id is not None:
        return await session.get(User, user_id)
    if "@" in phone_or_id:
        return await session.scalar(
            select(User)
            .where(func.lower(User.email) == phone_or_id.strip().lower())
            .order_by(User.deleted_at.is_not(None), User.created_at)
            .limit(1)
        )
    return await session.scalar(
        select(User).where(User.phone == e164(normalize_phone(phone_or_id)))
    )


# --- operators' actions (the console and the command line; each one audited) ------------------


def _snapshot(user: User) -> dict[str, Any]:
    return {
        "role": user.role,
        "credits": user.credits,
        "credits_reserved": user.credits_reserved,
        "suspended_at": user.suspended_at.isoformat() if user.suspended_at else None,
        "deleted_at": user.deleted_at.isoformat() if user.deleted_at else None,
    }


async def _target(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id, with_for_update=True, populate_existing=True)
    if user is None:
        raise UserNotFound()
    return user


def _not_self(actor: Actor, user_id: uuid.UUID) -> None:
    if actor.id == user_id:
        raise OwnRoleUnchangeable()


async def find_account(session: AsyncSession, user_id: uuid.UUID) -> User:
    """Any account by id (for operators), or `UserNotFound`."""
    user = await session.get(User, user_id)
    if user is None:
        raise UserNotFound()
    return user


async def search(session: AsyncSession, query: str, page: PageRequest) -> tuple[list[User], int]:
    """Accounts whose id, phone, email or username matches `query` (newest first); all when
    empty. A phone matches by its digits, anywhere in the number."""
    query = query.strip()
    conditions: list[Any] = []
    if query:
        as_id = parse_uuid(query)
        digits = "".join(ch for ch in query if ch.isdigit())
        escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = f"%{escaped}%"
        options: list[Any] = [
            User.email.ilike(like, escape="\\"),
            User.username.ilike(like, escape="\\"),
        ]
        if as_id is not None:
            options.append(User.id == as_id)
        if len(digits) >= 4:
            options.append(User.phone.like(f"%{digits}%"))
        conditions.append(or_(*options))
    total = await session.scalar(select(func.count()).select_from(User).where(*conditions))
    rows = await session.scalars(
        page.apply(select(User).where(*conditions).order_by(User.created_at.desc(), User.id))
    )
    return list(rows), int(total or 0)


async def adjust_credits(
    session: AsyncSession,
    actor: Actor,
    user_id: uuid.UUID,
    amount: int,
    reason: str,
    *,
    support_limit: int,
    key: str | None = None,
    ledger_key: str | None = None,
) -> tuple[ledger.LedgerResult, User]:
    """Grant (`amount` > 0) or deduct (< 0) credits as an `adjustment` ledger row, never below
    what the user has available; support only up to `support_limit`. With `key` (or a whole
    `ledger_key`), the same adjustment is made once however often it is asked for."""
    if amount == 0:
        raise ValueError("amount must not be zero")
    if not at_least(actor.role, "admin") and abs(amount) > support_limit:
        raise AdjustmentOverSupportLimit()
    user = await _target(session, user_id)
    before = _snapshot(user)
    name = "grant" if amount > 0 else "deduct"
    ledger_key = ledger_key or f"operator-{name}:{user_id}:{key or uuid.uuid4()}"
    move = ledger.grant if amount > 0 else ledger.charge
    result = await move(
        session,
        user_id,
        abs(amount),
        key=ledger_key,
        kind=ledger.LedgerKind.ADJUSTMENT,
        note=reason,
    )
    await session.refresh(user)
    if result.applied:
        await audit.record(
            session,
            actor,
            f"credits.{name}",
            "user",
            user_id,
            reason=reason,
            before=before,
            after={**_snapshot(user), "amount": amount, "ledger_entry": result.entry.id},
        )
    return result, user


async def set_role(
    session: Session,
    principals: PrincipalCache,
    actor: Actor,
    user_id: uuid.UUID,
    role: Role,
    reason: str,
) -> User:
    _not_self(actor, user_id)
    user = await _target(session, user_id)
    before = _snapshot(user)
    user.role = role
    await session.flush()
    session.after_commit(partial(principals.evict_user, user_id))
    await audit.record(
        session,
        actor,
        "user.role",
        "user",
        user_id,
        reason=reason,
        before=before,
        after=_snapshot(user),
    )
    return user


async def _revoke_sessions(session: AsyncSession, user_id: uuid.UUID, why: str) -> int:
    result = await session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=func.now(), revoked_reason=why)
        .returning(AuthSession.id)
    )
    return len(result.all())


async def set_suspended(
    session: Session,
    principals: PrincipalCache,
    actor: Actor,
    user_id: uuid.UUID,
    suspended: bool,
    reason: str,
) -> User:
    """Suspend (every session ends, no token or personal key works from the commit on, sign-in
    is refused) or restore an account."""
    _not_self(actor, user_id)
    user = await _target(session, user_id)
    if (user.suspended_at is not None) == suspended:
        raise AlreadyInThatState()
    before = _snapshot(user)
    user.suspended_at = datetime.now(UTC) if suspended else None
    if suspended:
        await _revoke_sessions(session, user_id, "suspended")
    await session.flush()
    session.after_commit(partial(principals.evict_user, user_id))
    await audit.record(
        session,
        actor,
        "user.suspended" if suspended else "user.restored",
        "user",
        user_id,
        reason=reason,
        before=before,
        after=_snapshot(user),
    )
    return user


async def sign_out_everywhere(
    session: Session, principals: PrincipalCache, actor: Actor, user_id: uuid.UUID, reason: str
) -> int:
    """End every session of the account; how many were open."""
    await _target(session, user_id)
    ended = await _revoke_sessions(session, user_id, "signed_out_by_operator")
    session.after_commit(partial(principals.evict_user, user_id))
    await audit.record(
        session,
        actor,
        "user.signed_out",
        "user",
        user_id,
        reason=reason,
        after={"sessions_ended": ended},
    )
    return ended


async def delete_by_operator(
    session: Session,
    principals: PrincipalCache,
    actor: Actor,
    user_id: uuid.UUID,
    reason: str,
    purge_days: int,
) -> User:
    """Delete the account as the user could (soft, purged after `purge_days`)."""
    _not_self(actor, user_id)
    user = await _target(session, user_id)
    if user.deleted_at is not None:
        raise AlreadyInThatState()
    before = _snapshot(user)
    await request_deletion(session, principals, user_id, purge_days)
    await session.refresh(user)
    await audit.record(
        session,
        actor,
        "user.deleted",
        "user",
        user_id,
        reason=reason,
        before=before,
        after=_snapshot(user),
    )
    return user


async def open_sessions(session: AsyncSession, user_id: uuid.UUID) -> list[AuthSession]:
    """The account's sessions that are neither revoked nor expired, newest first."""
    rows = await session.scalars(
        select(AuthSession)
        .where(
            AuthSession.user_id == user_id,
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > func.now(),
        )
        .order_by(AuthSession.created_at.desc())
    )
    return list(rows)
