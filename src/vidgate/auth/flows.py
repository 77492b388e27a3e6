"""Sign-in work that spans transactions or calls a vendor: sending a code, checking one, the
Google code exchange, refresh and sign-out.

These commit where a step must be kept whatever follows: an issued code before the SMS goes
out, a failed attempt before the error is answered (attempt limits count it), a Google `state`
as soon as it is used. Cache evictions run after the commit that makes them true.
"""

from __future__ import annotations

import uuid

import structlog

from vidgate.auth import service
from vidgate.auth.errors import (
    GoogleStateUnknown,
    RedirectUriMismatch,
    RefreshTokenReused,
    SmsCodeRejected,
    SmsCountryNotAllowed,
    SmsNotSent,
    TooManyRequestsFromAddress,
)
from vidgate.auth.google import GoogleNotConfigured, GoogleSignIn
from vidgate.auth.phones import e164, normalize_phone, region_for
from vidgate.auth.sms import SmsSendError
from vidgate.db.session import Session
from vidgate.ratelimit import over_limit
from vidgate.runtime import Runtime

logger = structlog.get_logger(__name__)


async def limit_ip(runtime: Runtime, action: str, ip: str | None, limit: int, window: int) -> None:
    """Per-address limits, counted in their own transaction so a failed request still counts."""
    wait = await over_limit(runtime.db, f"{action}:{ip or '-'}", limit=limit, window_seconds=window)
    if wait is not None:
        raise TooManyRequestsFromAddress(wait)


def google_of(runtime: Runtime) -> GoogleSignIn:
    if runtime.google is None:
        raise GoogleNotConfigured()
    return runtime.google


async def send_sms_code(
    runtime: Runtime, session: Session, phone_number: str, ip: str | None
) -> service.IssuedCode:
    """Issue a code (committed before it is sent) and send it; a code the SMS vendor did not take
    is voided again, and the caller hears 503."""
    settings = runtime.settings
    number = normalize_phone(phone_number)
    allowed = settings.sms_allowed_country_codes
    if allowed and number.country_code not in allowed:
        raise SmsCountryNotAllowed()
    phone = e164(number)
    await limit_ip(runtime, "sms-send", ip, settings.send_limit_per_ip, 3600)
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
        raise SmsNotSent() from exc
    return issued


async def sign_in_with_sms(
    runtime: Runtime,
    session: Session,
    *,
    phone_number: str,
    code: str,
    username: str | None,
    ip: str | None,
    user_agent: str | None,
) -> service.TokenPair:
    """Check the code; sign in, or register a new account with the signup bonus. A wrong code
    is committed as an attempt before the 400."""
    settings = runtime.settings
    number = normalize_phone(phone_number)
    await limit_ip(runtime, "sms-verify", ip, settings.verify_limit_per_ip, 300)
    outcome = await service.sign_in_with_sms(
        session,
        settings,
        runtime.tokens,
        phone=e164(number),
        region=region_for(number),
        code=code,
        username=username,
        ip=ip,
        user_agent=user_agent,
    )
    await session.commit()
    if isinstance(outcome, service.Rejection):
        raise SmsCodeRejected(outcome.detail)
    return outcome


async def sign_in_with_google_code(
    runtime: Runtime,
    session: Session,
    *,
    code: str,
    redirect_uri: str | None,
    state: str | None,
    code_verifier: str | None,
    ip: str | None,
    user_agent: str | None,
) -> service.TokenPair:
    google = google_of(runtime)
    await limit_ip(runtime, "google-login", ip, runtime.settings.verify_limit_per_ip, 300)
    nonce = None
    if state is not None:
        flow = await service.take_redirect_flow(session, state)
        await session.commit()  # a state is used up even if what follows fails
        if flow is None:
            raise GoogleStateUnknown()
        if redirect_uri not in (None, flow.redirect_uri):
            raise RedirectUriMismatch()
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


async def refresh(runtime: Runtime, session: Session, refresh_token: str) -> service.TokenPair:
    """Rotate the refresh token. A reused one ends its whole session (committed, and evicted from
    this process's cache at once) before the 401."""
    outcome = await service.refresh_session(
        session, runtime.settings, runtime.tokens, refresh_token
    )
    await session.commit()
    if isinstance(outcome, service.Rejection):
        if outcome.revoked_session is not None:
            runtime.principals.evict_session(outcome.revoked_session)
        raise RefreshTokenReused(outcome.detail)
    return outcome


async def sign_out(runtime: Runtime, session: Session, session_id: uuid.UUID) -> None:
    """End a session: its tokens stop working once this commits, in this process at once."""
    await service.end_session(session, session_id)

    async def evict() -> None:
        runtime.principals.evict_session(session_id)

    session.after_commit(evict)
