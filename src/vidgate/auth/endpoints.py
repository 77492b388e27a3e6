"""`/api/auth/*`: SMS sign-in, token refresh, logout, the current user (docs/api.md §2)."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Header, Query

from vidgate.auth import flows, service
from vidgate.auth.dependencies import CurrentUser
from vidgate.auth.errors import (
    AccountSuspended,
    CodeResendTooSoon,
    GoogleStateUnknown,
    RedirectUriMismatch,
    RefreshTokenInvalid,
    RefreshTokenReused,
    SessionEnded,
    SmsCodeRejected,
    SmsCountryNotAllowed,
    SmsNotSent,
    TooManyCodesForNumber,
    TooManyRequestsFromAddress,
)
from vidgate.auth.google import (
    GoogleCodeRejected,
    GoogleNotConfigured,
    GoogleTokenInvalid,
    GoogleUnavailable,
    pkce_challenge,
)
from vidgate.auth.phones import InvalidPhoneNumber, e164, normalize_phone
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
from vidgate.deps import ClientIp, DbSession, RuntimeDep
from vidgate.errors import documented

logger = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/auth", tags=["auth"])
dev_router = APIRouter(prefix="/api/_dev", tags=["development"])


def _tokens(pair: service.TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        token_type=pair.token_type,
        expires_in=pair.expires_in,
    )


@router.post(
    "/sms/send",
    response_model=SmsSendResponse,
    responses=documented(
        SmsCountryNotAllowed,
        InvalidPhoneNumber,
        TooManyCodesForNumber,
        CodeResendTooSoon,
        TooManyRequestsFromAddress,
        SmsNotSent,
    ),
)
async def send_sms_code(
    body: SmsSendRequest, runtime: RuntimeDep, session: DbSession, ip: ClientIp
) -> SmsSendResponse:
    """Send a 6-digit code. The answer is the same whether or not the number has an account."""
    issued = await flows.send_sms_code(runtime, session, body.phone_number, ip)
    return SmsSendResponse(
        phone_number=issued.phone,
        expires_in=issued.expires_in,
        remaining_requests=issued.remaining_requests,
    )


@router.post(
    "/sms/login",
    response_model=TokenResponse,
    responses=documented(
        SmsCodeRejected, InvalidPhoneNumber, TooManyRequestsFromAddress, AccountSuspended
    ),
)
async def sms_login(
    body: SmsLoginRequest,
    runtime: RuntimeDep,
    session: DbSession,
    ip: ClientIp,
    user_agent: str | None = Header(default=None, include_in_schema=False),
) -> TokenResponse:
    """Check the code; sign in, or register a new account with the signup bonus."""
    pair = await flows.sign_in_with_sms(
        runtime,
        session,
        phone_number=body.phone_number,
        code=body.code,
        username=body.username,
        ip=ip,
        user_agent=user_agent,
    )
    return _tokens(pair)


@router.get(
    "/google/authorize-url",
    response_model=AuthorizeUrlResponse,
    responses=documented(GoogleNotConfigured),
)
async def google_authorize_url(
    runtime: RuntimeDep,
    session: DbSession,
    redirect_uri: Annotated[str, Query(max_length=2048, pattern=HTTP_URL_PATTERN)],
) -> AuthorizeUrlResponse:
    """Start the redirect flow: Google's consent URL (with PKCE and a nonce) and its `state`.

    After Google redirects back with `code` and `state`, post both to `/api/auth/google/login`.
    """
    google = flows.google_of(runtime)
    flow = await service.begin_redirect_flow(session, redirect_uri)
    url = google.authorization_url(
        redirect_uri=redirect_uri,
        state=flow.state,
        code_challenge=pkce_challenge(flow.code_verifier),
        nonce=flow.nonce,
    )
    return AuthorizeUrlResponse(url=url, state=flow.state)


@router.post(
    "/google/login",
    response_model=TokenResponse,
    responses=documented(
        GoogleStateUnknown,
        RedirectUriMismatch,
        GoogleCodeRejected,
        GoogleTokenInvalid,
        TooManyRequestsFromAddress,
        GoogleNotConfigured,
        GoogleUnavailable,
        AccountSuspended,
    ),
)
async def google_login(
    body: GoogleLoginRequest,
    runtime: RuntimeDep,
    session: DbSession,
    ip: ClientIp,
    user_agent: str | None = Header(default=None, include_in_schema=False),
) -> TokenResponse:
    """Sign in with a Google authorization code (popup flow, or redirect flow with `state`)."""
    pair = await flows.sign_in_with_google_code(
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


@router.post(
    "/refresh",
    response_model=TokenResponse,
    responses=documented(RefreshTokenInvalid, RefreshTokenReused, SessionEnded, AccountSuspended),
)
async def refresh(body: RefreshRequest, runtime: RuntimeDep, session: DbSession) -> TokenResponse:
    """Rotate the refresh token and issue a new access token."""
    return _tokens(await flows.refresh(runtime, session, body.refresh_token))


@router.post("/logout", response_model=MessageResponse)
async def logout(user: CurrentUser, session: DbSession, runtime: RuntimeDep) -> MessageResponse:
    """End this session: its access and refresh tokens stop working at once."""
    assert user.session_id is not None
    await flows.sign_out(runtime, session, user.session_id)
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


@dev_router.get(
    "/sms/outbox", response_model=OutboxResponse, responses=documented(InvalidPhoneNumber)
)
async def sms_outbox(
    session: DbSession,
    phone_number: str = Query(description="Any accepted phone form"),
    limit: int = Query(default=20, ge=1, le=100),
) -> OutboxResponse:
    """Codes the console sender "sent" to a number, newest first (development mode only)."""
    phone = e164(normalize_phone(phone_number))
    rows = await service.dev_outbox(session, phone, limit)
    return OutboxResponse(
        messages=[OutboxMessage(phone_number=m.phone, code=m.code, sent_at=m.sent_at) for m in rows]
    )


@dev_router.get(
    "/google/callback",
    response_model=TokenResponse,
    responses=documented(
        GoogleStateUnknown,
        GoogleCodeRejected,
        GoogleTokenInvalid,
        TooManyRequestsFromAddress,
        GoogleNotConfigured,
        GoogleUnavailable,
    ),
)
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
    pair = await flows.sign_in_with_google_code(
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
