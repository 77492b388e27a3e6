"""`/api/auth/*`: SMS sign-in, token refresh, logout, the current user (docs/api.md §2)."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Header, Query
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vidgate.auth import service
from vidgate.auth.dependencies import CurrentUser
from vidgate.auth.google import GoogleNotConfigured, GoogleSignIn, pkce_challenge
from vidgate.auth.models import DevSmsMessage
from vidgate.auth.phones import e164, normalize_phone, region_for
from vidgate.auth.schemas import (
    HTTP_URL_PATTERN,
    AuthorizeUrlResponse,
    GoogleLoginRequest,
    MeResponse,
    MessageResponse,
    OutboxMessage,
    OutboxResponse,
    RefreshRequest,
    SmsLoginRequest,
    SmsSendRequest,
    SmsSendResponse,
    StateParam,
    TokenResponse,
)
from vidgate.auth.sms import SmsSendError
from vidgate.deps import ClientIp, DbSession, Runtime, RuntimeDep
from vidgate.errors import BadRequest, NotAuthenticated, ServiceUnavailable, TooManyRequests
from vidgate.ratelimit import hit

logger = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/auth", tags=["auth"])
dev_router = APIRouter(prefix="/api/_dev", tags=["development"])


async def _limit_ip(runtime: Runtime, action: str, ip: str | None, limit: int, window: int) -> None:
    """Per-address limits, counted in their own transaction so a failed request still counts."""
    async with runtime.db.autocommit_engine.connect() as conn:
        result = await hit(conn, f"{action}:{ip or '-'}", limit=limit, window_seconds=window)
    if not result.allowed:
        raise TooManyRequests(
            f"Too many requests from this address. Try again in {result.retry_after} seconds.",
            retry_after=result.retry_after,
        )


def _tokens(pair: service.TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        token_type=pair.token_type,
        expires_in=pair.expires_in,
    )


@router.post("/sms/send", response_model=SmsSendResponse)
async def send_sms_code(
    body: SmsSendRequest, runtime: RuntimeDep, session: DbSession, ip: ClientIp
) -> SmsSendResponse:
    """Send a 6-digit code. The answer is the same whether or not the number has an account."""
    settings = runtime.settings
    number = normalize_phone(body.phone_number)
    allowed = settings.sms_allowed_country_codes
    if allowed and number.country_code not in allowed:
        raise BadRequest("SMS sign-in is not available for this country")
    phone = e164(number)
    await _limit_ip(runtime, "sms-send", ip, settings.send_limit_per_ip, 3600)
    issued = await service.issue_sms_code(session, settings, phone, ip=ip)
    await session.commit()
    try:
        await runtime.sms_sender.send_code(phone, issued.code)
    except SmsSendError as exc:
        logger.error(
            "sms.send_failed",
            provider=runtime.sms_sender.name,
            vendor_code=exc.vendor_code,
            error=str(exc),
        )
        await service.void_sms_code(session, issued.id)
        await session.commit()
        raise ServiceUnavailable("Could not send the verification code; try again later") from exc
    return SmsSendResponse(
        phone_number=phone,
        expires_in=issued.expires_in,
        remaining_requests=issued.remaining_requests,
    )


@router.post("/sms/login", response_model=TokenResponse)
async def sms_login(
    body: SmsLoginRequest,
    runtime: RuntimeDep,
    session: DbSession,
    ip: ClientIp,
    user_agent: str | None = Header(default=None, include_in_schema=False),
) -> TokenResponse:
    """Check the code; sign in, or register a new account with the signup bonus."""
    settings = runtime.settings
    number = normalize_phone(body.phone_number)
    await _limit_ip(runtime, "sms-verify", ip, settings.verify_limit_per_ip, 300)
    outcome = await service.sign_in_with_sms(
        session,
        settings,
        runtime.tokens,
        phone=e164(number),
        region=region_for(number),
        code=body.code,
        username=body.username,
        ip=ip,
        user_agent=user_agent,
    )
    await session.commit()
    if isinstance(outcome, service.Rejection):
        raise BadRequest(outcome.detail)
    return _tokens(outcome)


def _google(runtime: Runtime) -> GoogleSignIn:
    if runtime.google is None:
        raise GoogleNotConfigured()
    return runtime.google


@router.get("/google/authorize-url", response_model=AuthorizeUrlResponse)
async def google_authorize_url(
    runtime: RuntimeDep,
    session: DbSession,
    redirect_uri: Annotated[str, Query(max_length=2048, pattern=HTTP_URL_PATTERN)],
) -> AuthorizeUrlResponse:
    """Start the redirect flow: Google's consent URL (with PKCE and a nonce) and its `state`.

    After Google redirects back with `code` and `state`, post both to `/api/auth/google/login`.
    """
    google = _google(runtime)
    flow = await service.begin_redirect_flow(session, redirect_uri)
    await session.commit()
    url = google.authorization_url(
        redirect_uri=redirect_uri,
        state=flow.state,
        code_challenge=pkce_challenge(flow.code_verifier),
        nonce=flow.nonce,
    )
    return AuthorizeUrlResponse(url=url, state=flow.state)


@router.post("/google/login", response_model=TokenResponse)
async def google_login(
    body: GoogleLoginRequest,
    runtime: RuntimeDep,
    session: DbSession,
    ip: ClientIp,
    user_agent: str | None = Header(default=None, include_in_schema=False),
) -> TokenResponse:
    """Sign in with a Google authorization code (popup flow, or redirect flow with `state`)."""
    pair = await _sign_in_with_google_code(
        runtime,
        session,
        code=body.code,
        redirect_uri=body.redirect_uri,
        state=body.state,
        code_verifier=body.code_verifier,
        ip=ip,
        user_agent=user_agent,
    )
    return _tokens(pair)


async def _sign_in_with_google_code(
    runtime: Runtime,
    session: AsyncSession,
    *,
    code: str,
    redirect_uri: str | None,
    state: str | None,
    code_verifier: str | None,
    ip: str | None,
    user_agent: str | None,
) -> service.TokenPair:
    google = _google(runtime)
    await _limit_ip(runtime, "google-login", ip, runtime.settings.verify_limit_per_ip, 300)
    nonce = None
    if state is not None:
        flow = await service.take_redirect_flow(session, state)
        await session.commit()  # a state is used up even if what follows fails
        if flow is None:
            raise BadRequest("Unknown, expired or already used state; start the sign-in again")
        if redirect_uri not in (None, flow.redirect_uri):
            raise BadRequest("redirect_uri does not match the one the sign-in started with")
        redirect_uri, nonce = flow.redirect_uri, flow.nonce
        code_verifier = code_verifier or flow.code_verifier
    id_token = await google.exchange_code(
        code,
        redirect_uri=redirect_uri or google.config.default_redirect_uri,
        code_verifier=code_verifier,
    )
    identity = await google.verify_id_token(id_token, nonce=nonce)
    pair = await service.sign_in_with_google(
        session, runtime.settings, runtime.tokens, identity, ip=ip, user_agent=user_agent
    )
    await session.commit()
    return pair


@router.post("/refresh", response_model=TokenResponse)
async def refresh(body: RefreshRequest, runtime: RuntimeDep, session: DbSession) -> TokenResponse:
    """Rotate the refresh token and issue a new access token."""
    outcome = await service.refresh_session(
        session, runtime.settings, runtime.tokens, body.refresh_token
    )
    await session.commit()
    if isinstance(outcome, service.Rejection):
        if outcome.revoked_session is not None:
            runtime.principals.evict_session(outcome.revoked_session)
        raise NotAuthenticated(outcome.detail)
    return _tokens(outcome)


@router.post("/logout", response_model=MessageResponse)
async def logout(user: CurrentUser, session: DbSession, runtime: RuntimeDep) -> MessageResponse:
    """End this session: its access and refresh tokens stop working at once."""
    assert user.session_id is not None
    await service.end_session(session, user.session_id)
    await session.commit()
    runtime.principals.evict_session(user.session_id)
    return MessageResponse(message="Successfully logged out")


@router.get("/me", response_model=MeResponse)
async def me(user: CurrentUser) -> MeResponse:
    return MeResponse(
        id=str(user.id),
        phone_number=user.phone,
        email=user.email,
        username=user.username,
        credits=user.credits,
        avatar_url=user.avatar_url,
        region=user.region,
        credits_reserved=user.credits_reserved,
        available=user.credits - user.credits_reserved,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
    )


@dev_router.get("/sms/outbox", response_model=OutboxResponse)
async def sms_outbox(
    session: DbSession,
    phone_number: str = Query(description="Any accepted phone form"),
    limit: int = Query(default=20, ge=1, le=100),
) -> OutboxResponse:
    """Codes the console sender "sent" to a number, newest first (development mode only)."""
    phone = e164(normalize_phone(phone_number))
    rows = await session.scalars(
        select(DevSmsMessage)
        .where(DevSmsMessage.phone == phone)
        .order_by(DevSmsMessage.id.desc())
        .limit(limit)
    )
    return OutboxResponse(
        messages=[OutboxMessage(phone_number=m.phone, code=m.code, sent_at=m.sent_at) for m in rows]
    )


@dev_router.get("/google/callback", response_model=TokenResponse)
async def google_dev_callback(
    runtime: RuntimeDep,
    session: DbSession,
    ip: ClientIp,
    code: Annotated[str, Query(min_length=1, max_length=2048)],
    state: Annotated[StateParam, Query()],
) -> TokenResponse:
    """A redirect target for trying Google sign-in without a front end (development only):
    start at /api/auth/google/authorize-url with this URL as redirect_uri, approve, and the
    browser lands here showing the new tokens."""
    pair = await _sign_in_with_google_code(
        runtime,
        session,
        code=code,
        redirect_uri=None,
        state=state,
        code_verifier=None,
        ip=ip,
        user_agent=None,
    )
    return _tokens(pair)
