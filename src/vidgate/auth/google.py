"""Google sign-in: exchange an authorization code, verify the ID token against Google's keys.

The same code talks to Google in production and to vidgate's emulator in development; only the
endpoint URLs differ (settings).
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from vidgate.auth.tokens import derive_key
from vidgate.config import Settings
from vidgate.errors import NotAuthenticated, NotImplementedFeature, ServiceUnavailable
from vidgate.vendors import GOOGLE

EMULATOR_PREFIX = "/_emulator/google"
EMULATOR_ISSUER = "https://accounts.google.com"  # the emulator speaks as Google does
EMULATOR_CLIENT_ID = "vidgate-development.apps.googleusercontent.com"
CLOCK_SKEW_SECONDS = 60
SCOPE = "openid email profile"


class GoogleCodeRejected(NotAuthenticated):
    """Google refused the authorization code: invalid, expired or used already."""

    detail = "Invalid, expired or already used Google authorization code"


class GoogleTokenInvalid(NotAuthenticated):
    """Google's ID token failed verification, or the Google account's email is not verified."""

    detail = "Google ID token failed verification"


class GoogleUnavailable(ServiceUnavailable):
    """Google did not answer, or answered in a way this server cannot use."""

    detail = "Google sign-in is unavailable right now; try again later"


class GoogleNotConfigured(NotImplementedFeature):
    """Google sign-in is not configured on this server."""

    detail = "Google sign-in is not configured on this server"


@dataclass(frozen=True)
class GoogleConfig:
    client_id: str
    client_secret: str
    authorize_url: str
    token_url: str
    jwks_url: str
    issuers: tuple[str, ...]
    default_redirect_uri: str

    @classmethod
    def from_settings(cls, settings: Settings) -> GoogleConfig | None:
        """The configured client, the emulator's in development, or None (not configured)."""
        if settings.google_uses_emulator:
            emulator = settings.base_url + EMULATOR_PREFIX
            return cls(
                client_id=EMULATOR_CLIENT_ID,
                client_secret=emulator_client_secret(settings),
                authorize_url=f"{emulator}/o/oauth2/v2/auth",
                token_url=f"{emulator}/token",
                jwks_url=f"{emulator}/oauth2/v3/certs",
                issuers=(EMULATOR_ISSUER,),
                default_redirect_uri=settings.google_redirect_uri or "postmessage",
            )
        if not GOOGLE.configured(settings):
            return None
        return cls(
            client_id=settings.google_client_id,
            client_secret=settings.google_client_secret,
            authorize_url=settings.google_authorize_url,
            token_url=settings.google_token_url,
            jwks_url=settings.google_jwks_url,
            issuers=tuple(settings.google_issuers),
            default_redirect_uri=settings.google_redirect_uri or "postmessage",
        )


def emulator_client_secret(settings: Settings) -> str:
    """The development client's secret, derived so that nothing extra is stored."""
    return base64.urlsafe_b64encode(derive_key(settings.secret_key, "google-emulator")).decode()[
        :32
    ]


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(frozen=True)
class GoogleIdentity:
    sub: str
    email: str | None
    email_verified: bool
    name: str | None
    picture: str | None


class GoogleSignIn:
    """One configured Google client: authorization URLs, code exchange, ID-token checks."""

    def __init__(
        self,
        config: GoogleConfig,
        *,
        client: httpx.AsyncClient | None = None,
        min_jwks_refresh_seconds: float = 10.0,
    ) -> None:
        self.config = config
        self._client = client or httpx.AsyncClient(timeout=10.0, follow_redirects=False)
        self._owns_client = client is None
        self._keys: dict[str, jwt.PyJWK] = {}
        self._keys_fetched_at = float("-inf")
        self._min_refresh = min_jwks_refresh_seconds

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def authorization_url(
        self, *, redirect_uri: str, state: str, code_challenge: str, nonce: str
    ) -> str:
        query = urlencode(
            {
                "client_id": self.config.client_id,
                "redirect_uri": redirect_uri,
                "response_type": "code",
                "scope": SCOPE,
                "state": state,
                "code_challenge": code_challenge,
                "code_challenge_method": "S256",
                "nonce": nonce,
                "prompt": "select_account",
            }
        )
        return f"{self.config.authorize_url}?{query}"

    async def exchange_code(
        self, code: str, *, redirect_uri: str, code_verifier: str | None = None
    ) -> str:
        """The ID token for an authorization code (which Google accepts once)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": self.config.client_id,
            "client_secret": self.config.client_secret,
            "redirect_uri": redirect_uri,
        }
        if code_verifier:
            form["code_verifier"] = code_verifier
        try:
            response = await self._client.post(self.config.token_url, data=form)
        except httpx.HTTPError as exc:
            raise GoogleUnavailable() from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise GoogleUnavailable()
        body = _json_or_empty(response)
        if response.status_code == 400 and body.get("error") == "invalid_grant":
            raise GoogleCodeRejected()
        if response.status_code != 200 or not isinstance(body.get("id_token"), str):
            # invalid_client and the like: our configuration is wrong, not the user's code.
            raise GoogleUnavailable("Google sign-in is misconfigured on this server")
        token: str = body["id_token"]
        return token

    async def verify_id_token(self, token: str, *, nonce: str | None = None) -> GoogleIdentity:
        """Check signature (JWKS key by `kid`), iss, aud, exp/iat, nonce and a verified email."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise GoogleTokenInvalid() from exc
        if header.get("alg") != "RS256":
            raise GoogleTokenInvalid("Google ID token failed verification: unexpected algorithm")
        key = await self._key(str(header.get("kid", "")))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self.config.client_id,
                issuer=list(self.config.issuers),
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise GoogleTokenInvalid("Google ID token failed verification: expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise GoogleTokenInvalid("Google ID token failed verification: wrong audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise GoogleTokenInvalid("Google ID token failed verification: wrong issuer") from exc
        except jwt.InvalidTokenError as exc:
            raise GoogleTokenInvalid() from exc
        if nonce is not None and claims.get("nonce") != nonce:
            raise GoogleTokenInvalid("Google ID token failed verification: nonce mismatch")
        if claims.get("email_verified") is not True:
            raise GoogleTokenInvalid("Google account email is not verified")
        return GoogleIdentity(
            sub=str(claims["sub"]),
            email=claims.get("email"),
            email_verified=True,
            name=claims.get("name"),
            picture=claims.get("picture"),
        )

    async def _key(self, kid: str) -> jwt.PyJWK:
        """The signing key `kid`; an unknown kid refreshes the key set (Google rotates keys)."""
        key = self._keys.get(kid)
        if key is not None:
            return key
        if time.monotonic() - self._keys_fetched_at >= self._min_refresh:
            await self._fetch_keys()
        key = self._keys.get(kid)
        if key is None:
            raise GoogleTokenInvalid("Google ID token failed verification: unknown signing key")
        return key

    async def _fetch_keys(self) -> None:
        try:
            response = await self._client.get(self.config.jwks_url)
        except httpx.HTTPError as exc:
            raise GoogleUnavailable() from exc
        if response.status_code != 200:
            raise GoogleUnavailable()
        keys: dict[str, jwt.PyJWK] = {}
        for jwk in _json_or_empty(response).get("keys", []):
            try:
                parsed = jwt.PyJWK(jwk)
            except jwt.PyJWKError:
                continue  # a key type we do not use
            if parsed.key_id:
                keys[parsed.key_id] = parsed
        self._keys = keys
        self._keys_fetched_at = time.monotonic()


def _json_or_empty(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
