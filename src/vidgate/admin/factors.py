"""Operators' second factor: TOTP (RFC 6238: 30 s steps, 6 digits, SHA-1, as every authenticator
app reads it) with ten single-use recovery codes.

The secret is kept encrypted with a key derived from `VIDGATE_SECRET_KEY`; recovery codes only as
SHA-256. A code is accepted one step either side of now, and never twice: the last accepted step
is remembered. Passing the factor marks the operator's session (`second_factor_at`), which the
console's guard reads.
"""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from vidgate.admin.errors import (
    SecondFactorAlreadyEnrolled,
    SecondFactorNotEnrolled,
    SecondFactorRejected,
)
from vidgate.admin.models import OperatorFactor
from vidgate.auth.models import AuthSession
from vidgate.auth.tokens import derive_key, sha256_hex

ISSUER = "vidgate"
RECOVERY_CODES = 10
STEP_SECONDS = 30


def _fernet(secret_key: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(derive_key(secret_key, "operator-totp")))


@dataclass(frozen=True)
class Enrolment:
    secret: str  # base32, for typing into an app by hand
    uri: str  # otpauth://totp/...
    qr_svg: str  # the URI as a QR code, an SVG document


async def enrol(
    session: AsyncSession, secret_key: str, user_id: uuid.UUID, account_name: str
) -> Enrolment:
    """A new (unconfirmed) TOTP secret for the operator, replacing an unconfirmed one."""
    factor = await session.get(OperatorFactor, user_id, with_for_update=True)
    if factor is not None and factor.confirmed_at is not None:
        raise SecondFactorAlreadyEnrolled()
    secret = pyotp.random_base32()
    sealed = _fernet(secret_key).encrypt(secret.encode()).decode()
    if factor is None:
        session.add(OperatorFactor(user_id=user_id, totp_secret=sealed, recovery_codes=[]))
    else:
        factor.totp_secret, factor.last_step, factor.recovery_codes = sealed, None, []
    await session.flush()
    uri = pyotp.TOTP(secret).provisioning_uri(name=account_name, issuer_name=ISSUER)
    qr = segno.make(uri, error="m")
    return Enrolment(secret, uri, qr.svg_inline(scale=4, dark="#111", light="#fff"))


def _matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step (-1, 0 or +1 from now) whose code `code` is, if any."""
    totp = pyotp.TOTP(secret)
    here = int(now // STEP_SECONDS)
    for step in (here - 1, here, here + 1):
        if secrets.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def _new_recovery_codes() -> list[str]:
    return [f"{secrets.token_hex(4)}-{secrets.token_hex(4)}" for _ in range(RECOVERY_CODES)]


async def _pass(session: AsyncSession, auth_session_id: uuid.UUID | None) -> None:
    if auth_session_id is not None:
        await session.execute(
            update(AuthSession)
            .where(AuthSession.id == auth_session_id)
            .values(second_factor_at=datetime.now(UTC))
        )


async def _check(
    session: AsyncSession, secret_key: str, factor: OperatorFactor, code: str, now: float
) -> None:
    """Accept a fresh TOTP code or an unused recovery code, or raise `SecondFactorRejected`."""
    code = code.strip().replace(" ", "")
    if code.isdigit() and len(code) == 6:
        try:
            secret = _fernet(secret_key).decrypt(factor.totp_secret.encode()).decode()
        except InvalidToken as exc:  # the secret key changed: the factor must be reset
            raise SecondFactorRejected() from exc
        step = _matching_step(secret, code, now)
        if step is None or (factor.last_step is not None and step <= factor.last_step):
            raise SecondFactorRejected()
        factor.last_step = step
        return
    digest = sha256_hex(code.lower())
    if factor.confirmed_at is None or digest not in factor.recovery_codes:
        raise SecondFactorRejected()
    factor.recovery_codes = [c for c in factor.recovery_codes if c != digest]


async def confirm(
    session: AsyncSession,
    secret_key: str,
    user_id: uuid.UUID,
    code: str,
    auth_session_id: uuid.UUID | None,
    *,
    now: float | None = None,
) -> list[str]:
    """Confirm an enrolment with a first code; the recovery codes, shown this once."""
    factor = await session.get(OperatorFactor, user_id, with_for_update=True)
    if factor is None:
        raise SecondFactorNotEnrolled()
    if factor.confirmed_at is not None:
        raise SecondFactorAlreadyEnrolled()
    if not code.strip().isdigit():
        raise SecondFactorRejected()  # recovery codes do not exist yet
    await _check(session, secret_key, factor, code, time.time() if now is None else now)
    codes = _new_recovery_codes()
    factor.recovery_codes = [sha256_hex(c) for c in codes]
    factor.confirmed_at = datetime.now(UTC)
    await _pass(session, auth_session_id)
    await session.flush()
    return codes


async def verify(
    session: AsyncSession,
    secret_key: str,
    user_id: uuid.UUID,
    code: str,
    auth_session_id: uuid.UUID | None,
    *,
    now: float | None = None,
) -> int:
    """Pass the factor in this session with a TOTP or recovery code; recovery codes left."""
    factor = await session.get(OperatorFactor, user_id, with_for_update=True)
    if factor is None or factor.confirmed_at is None:
        raise SecondFactorNotEnrolled()
    await _check(session, secret_key, factor, code, time.time() if now is None else now)
    await _pass(session, auth_session_id)
    await session.flush()
    return len(factor.recovery_codes)


async def enrolled(session: AsyncSession, user_id: uuid.UUID) -> bool:
    factor = await session.get(OperatorFactor, user_id)
    return factor is not None and factor.confirmed_at is not None


async def reset(session: AsyncSession, user_id: uuid.UUID) -> bool:
    """Remove the operator's factor (an admin's action, audited by the caller)."""
    factor = await session.get(OperatorFactor, user_id)
    if factor is None:
        return False
    await session.delete(factor)
    await session.flush()
    return True
