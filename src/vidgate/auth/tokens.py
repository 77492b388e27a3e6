"""Access tokens (JWT), refresh tokens (opaque) and the keyed hashes that protect stored secrets."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass

import jwt

from vidgate.auth.errors import AccessTokenExpired, AccessTokenInvalid

_ALGORITHM = "HS256"
_LEEWAY = 5  # seconds of clock skew tolerated on `exp`


def derive_key(secret_key: str, purpose: str) -> bytes:
    """A separate key per use of the one configured secret."""
    return hmac.new(secret_key.encode(), purpose.encode(), hashlib.sha256).digest()


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def code_hmac(secret_key: str, phone: str, code: str) -> str:
    """What is stored for an SMS code: bound to the phone it was sent to."""
    key = derive_key(secret_key, "sms-code")
    return hmac.new(key, f"{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def new_refresh_token() -> tuple[str, str]:
    """A fresh 256-bit refresh token and the hash under which it is stored."""
    token = secrets.token_urlsafe(32)
    return token, sha256_hex(token)


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID


class AccessTokens:
    """Issues and checks access tokens; the signing key is derived once per process."""

    # Tokens already verified, with their expiry: a signature check of the same bytes gives the
    # same answer, and decoding costs more than the rest of an authenticated read.
    _VERIFIED_MAX = 20_000

    def __init__(self, secret_key: str, expires_in: int) -> None:
        self._key = derive_key(secret_key, "access-token")
        self.expires_in = expires_in
        self._verified: OrderedDict[str, tuple[AccessClaims, float]] = OrderedDict()

    def issue(self, user_id: uuid.UUID, session_id: uuid.UUID) -> str:
        now = int(time.time())
        claims = {
            "sub": str(user_id),
            "sid": str(session_id),
            "iat": now,
            "exp": now + self.expires_in,
            "typ": "access",
        }
        return jwt.encode(claims, self._key, algorithm=_ALGORITHM)

    def verify(self, token: str) -> AccessClaims:
        """Signature, expiry and shape; NotAuthenticated with a reason otherwise."""
        known = self._verified.get(token)
        if known is not None:
            claims, expires_at = known
            if time.time() < expires_at + _LEEWAY:
                return claims
            del self._verified[token]
        claims, expires_at = self._decode(token)
        self._verified[token] = (claims, expires_at)
        if len(self._verified) > self._VERIFIED_MAX:
            self._verified.popitem(last=False)
        return claims

    def _decode(self, token: str) -> tuple[AccessClaims, float]:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                options={"require": ["exp", "sub", "sid"]},
                leeway=_LEEWAY,
            )
        except jwt.ExpiredSignatureError as exc:
            raise AccessTokenExpired() from exc
        except jwt.InvalidTokenError as exc:
            raise AccessTokenInvalid() from exc
        if claims.get("typ") != "access":
            raise AccessTokenInvalid()
        try:
            parsed = AccessClaims(uuid.UUID(claims["sub"]), uuid.UUID(claims["sid"]))
            return parsed, float(claims["exp"])
        except (ValueError, TypeError, AttributeError) as exc:
            raise AccessTokenInvalid() from exc
