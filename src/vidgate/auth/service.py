"""Sign-in by SMS code, sessions and refresh-token rotation. Nothing here commits.

Functions whose failure must still be recorded (a wrong code counts an attempt; a reused refresh
token revokes the session) return a rejection instead of raising, so the endpoint can commit
before it answers with the error.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from vidgate.auth.errors import (
    AccountSuspended,
    CodeResendTooSoon,
    RefreshTokenInvalid,
    SessionEnded,
    TooManyCodesForNumber,
)
from vidgate.auth.google import GoogleIdentity
from vidgate.auth.models import AuthSession, DevSmsMessage, OAuthState, RefreshToken, SmsCode
from vidgate.auth.tokens import AccessTokens, code_hmac, new_refresh_token, sha256_hex
from vidgate.config import Settings
from vidgate.users import service as users
from vidgate.users.models import User

INVALID_CODE = "Invalid or expired verification code"
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"


@dataclass(frozen=True)
class Rejection:
    """A refused sign-in or refresh whose bookkeeping must be committed before answering."""

    detail: str
    revoked_session: uuid.UUID | None = None


@dataclass(frozen=True)
class IssuedCode:
    id: int
    phone: str  # E.164
    code: str
    expires_in: int
    remaining_requests: int


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, int((moment - now).total_seconds() + 0.999))


async def issue_sms_code(
    session: AsyncSession, settings: Settings, phone: str, *, ip: str | None
) -> IssuedCode:
    """Create a new code for `phone` within its send limits; older codes stop working."""
    # One sender per phone at a time, so parallel sends cannot both pass the hourly count.
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"sms:{phone}"}
    )
    now = datetime.now(UTC)
    recent = list(
        await session.scalars(
            select(SmsCode.created_at)
            .where(SmsCode.phone == phone, SmsCode.created_at > now - HOUR)
            .order_by(SmsCode.created_at)
        )
    )
    limit = settings.sms_per_phone_per_hour
    if len(recent) >= limit:
        wait = _seconds_until(recent[-limit] + HOUR, now)
        raise TooManyCodesForNumber(wait)
    interval = timedelta(seconds=settings.sms_resend_interval_seconds)
    if recent and now - recent[-1] < interval:
        wait = _seconds_until(recent[-1] + interval, now)
        raise CodeResendTooSoon(wait)
    await session.execute(
        update(SmsCode)
        .where(
            SmsCode.phone == phone, SmsCode.consumed_at.is_(None), SmsCode.invalidated_at.is_(None)
        )
        .values(invalidated_at=now)
    )
    code = f"{secrets.randbelow(10**6):06d}"
    row = SmsCode(
        phone=phone,
        code_hmac=code_hmac(settings.secret_key, phone, code),
        created_at=now,
        expires_at=now + timedelta(seconds=settings.sms_code_ttl_seconds),
        ip=ip,
    )
    session.add(row)
    await session.flush()
    return IssuedCode(
        id=row.id,
        phone=phone,
        code=code,
        expires_in=settings.sms_code_ttl_seconds,
        remaining_requests=limit - len(recent) - 1,
    )


async def void_sms_code(session: AsyncSession, code_id: int) -> None:
    """A code whose message could not be sent must not work later (it still counts as a send)."""
    await session.execute(
        update(SmsCode).where(SmsCode.id == code_id).values(invalidated_at=func.now())
    )


async def consume_sms_code(
    session: AsyncSession, settings: Settings, phone: str, code: str
) -> Rejection | None:
    """Use up the phone's current code if `code` matches; count a wrong guess otherwise."""
    now = datetime.now(UTC)
    # The row lock makes concurrent attempts take turns: only the first can consume the code.
    row = await session.scalar(
        select(SmsCode)
        .where(
            SmsCode.phone == phone,
            SmsCode.consumed_at.is_(None),
            SmsCode.invalidated_at.is_(None),
            SmsCode.expires_at > now,
        )
        .order_by(SmsCode.created_at.desc())
        .limit(1)
        .with_for_update()
    )
    if row is None:
        return Rejection(INVALID_CODE)
    expected = code_hmac(settings.secret_key, phone, code)
    if not hmac.compare_digest(row.code_hmac, expected):
        row.attempts += 1
        if row.attempts >= settings.sms_max_attempts:
            row.invalidated_at = now
            return Rejection("Too many wrong attempts: request a new verification code")
        return Rejection(INVALID_CODE)
    row.consumed_at = now
    return None


async def start_session(
    session: AsyncSession,
    settings: Settings,
    tokens: AccessTokens,
    user: User,
    *,
    method: str,
    ip: str | None,
    user_agent: str | None,
) -> TokenPair:
    """Open a session for a user who has just proven who they are (not a suspended one)."""
    if user.suspended_at is not None:
        raise AccountSuspended()
    now = datetime.now(UTC)
    auth_session = AuthSession(
        id=uuid.uuid4(),
        user_id=user.id,
        method=method,
        created_at=now,
        expires_at=now + timedelta(days=settings.session_lifetime_days),
        ip=ip,
        user_agent=(user_agent or "")[:255] or None,
    )
    session.add(auth_session)
    refresh, refresh_hash = new_refresh_token()
    session.add(RefreshToken(session_id=auth_session.id, token_hash=refresh_hash, created_at=now))
    await session.flush()
    return TokenPair(tokens.issue(user.id, auth_session.id), refresh, tokens.expires_in)


def default_username(phone: str) -> str:
    return f"user_{phone[-4:]}"


async def sign_in_with_sms(
    session: AsyncSession,
    settings: Settings,
    tokens: AccessTokens,
    *,
    phone: str,
    region: str,
    code: str,
    username: str | None,
    ip: str | None,
    user_agent: str | None,
) -> TokenPair | Rejection:
    rejection = await consume_sms_code(session, settings, phone, code)
    if rejection is not None:
        return rejection
    user, _created = await users.sign_in_by_phone(
        session,
        phone,
        username=username or default_username(phone),
        region=region,
        signup_bonus=settings.signup_bonus_credits,
    )
    return await start_session(
        session, settings, tokens, user, method="sms", ip=ip, user_agent=user_agent
    )


async def refresh_session(
    session: AsyncSession, settings: Settings, tokens: AccessTokens, refresh_token: str
) -> TokenPair | Rejection:
    """Swap a refresh token for a new pair, rotating it.

    A token used again within the grace window (two tabs refreshing at once) gets a pair of its
    own; used again later, it is taken as stolen and the whole session is revoked.
    """
    now = datetime.now(UTC)
    found = (
        await session.execute(
            select(RefreshToken, AuthSession, User)
            .join(AuthSession, AuthSession.id == RefreshToken.session_id)
            .join(User, User.id == AuthSession.user_id)
            .where(RefreshToken.token_hash == sha256_hex(refresh_token))
            .with_for_update(of=[RefreshToken, AuthSession])
        )
    ).one_or_none()
    if found is None:
        raise RefreshTokenInvalid()
    token, auth_session, user = found
    if auth_session.revoked_at is not None or auth_session.expires_at <= now:
        raise SessionEnded()
    if user.deleted_at is not None:
        raise SessionEnded()
    if user.suspended_at is not None:
        raise AccountSuspended()
    if token.rotated_at is None:
        token.rotated_at = now
    elif now - token.rotated_at > timedelta(seconds=settings.refresh_reuse_grace_seconds):
        auth_session.revoked_at = now
        auth_session.revoked_reason = "refresh_token_reused"
        return Rejection(
            "Refresh token already used; the session has been revoked", auth_session.id
        )
    auth_session.last_refreshed_at = now
    new_token, new_hash = new_refresh_token()
    session.add(
        RefreshToken(
            session_id=auth_session.id, token_hash=new_hash, parent_id=token.id, created_at=now
        )
    )
    await session.flush()
    return TokenPair(tokens.issue(user.id, auth_session.id), new_token, tokens.expires_in)


async def end_session(session: AsyncSession, session_id: uuid.UUID) -> None:
    await session.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=func.now(), revoked_reason="logout")
    )


OAUTH_STATE_TTL = timedelta(minutes=10)


@dataclass(frozen=True)
class RedirectFlow:
    state: str
    code_verifier: str
    nonce: str
    redirect_uri: str


async def begin_redirect_flow(session: AsyncSession, redirect_uri: str) -> RedirectFlow:
    """Remember a new Google redirect-flow attempt (state, PKCE verifier, nonce)."""
    now = datetime.now(UTC)
    flow = RedirectFlow(
        state=secrets.token_urlsafe(32),
        code_verifier=secrets.token_urlsafe(48),
        nonce=secrets.token_urlsafe(16),
        redirect_uri=redirect_uri,
    )
    session.add(
        OAuthState(
            state=flow.state,
            code_verifier=flow.code_verifier,
            nonce=flow.nonce,
            redirect_uri=redirect_uri,
            created_at=now,
            expires_at=now + OAUTH_STATE_TTL,
        )
    )
    await session.flush()
    return flow


async def take_redirect_flow(session: AsyncSession, state: str) -> RedirectFlow | None:
    """Use up a live redirect-flow attempt; None if unknown, expired or already used."""
    row = (
        await session.execute(
            update(OAuthState)
            .where(
                OAuthState.state == state,
                OAuthState.used_at.is_(None),
                OAuthState.expires_at > func.now(),
            )
            .values(used_at=func.now())
            .returning(OAuthState.code_verifier, OAuthState.nonce, OAuthState.redirect_uri)
        )
    ).first()
    if row is None:
        return None
    return RedirectFlow(state, row.code_verifier, row.nonce, row.redirect_uri)


async def sign_in_with_google(
    session: AsyncSession,
    settings: Settings,
    tokens: AccessTokens,
    identity: GoogleIdentity,
    *,
    ip: str | None,
    user_agent: str | None,
) -> TokenPair:
    user, _created = await users.sign_in_by_google(
        session,
        sub=identity.sub,
        email=identity.email,
        name=identity.name,
        picture=identity.picture,
        region=settings.google_default_region,
        signup_bonus=settings.signup_bonus_credits,
    )
    return await start_session(
        session, settings, tokens, user, method="google", ip=ip, user_agent=user_agent
    )


async def dev_outbox(session: AsyncSession, phone: str, limit: int) -> list[DevSmsMessage]:
    """The codes the console sender "sent" to a number, newest first (development only)."""
    rows = await session.scalars(
        select(DevSmsMessage)
        .where(DevSmsMessage.phone == phone)
        .order_by(DevSmsMessage.id.desc())
        .limit(limit)
    )
    return list(rows)
