"""A local model of Google's OpenID Connect provider, for development and tests without internet.

It serves the endpoints a Google sign-in client talks to (authorization page, token, JWKS,
userinfo, discovery) under one router, with Google's parameter names, status codes and error
bodies, and signs ID tokens with its own RSA key. Nothing is persisted: codes, access tokens and
keys live in memory and die with the process.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus, urlencode, urlsplit, urlunsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from vidgate.emulators.pages import NO_STORE, html_page

PREFIX = "/_emulator/google"
POSTMESSAGE = "postmessage"
ID_TOKEN_TTL_SECONDS = 3600  # Google's ID tokens always live one hour

EMAIL_SCOPE = "https://www.googleapis.com/auth/userinfo.email"
PROFILE_SCOPE = "https://www.googleapis.com/auth/userinfo.profile"
# Google accepts the short names and answers with the long ones in the token response.
_SCOPE_ALIASES = {"email": EMAIL_SCOPE, "profile": PROFILE_SCOPE}
_GOOGLE_API_SCOPE_PREFIX = "https://www.googleapis.com/auth/"

# Parameters of an authorization request the emulator understands and carries through its form.
_AUTH_PARAMS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "login_hint",
    "prompt",
)
_PKCE_VALUE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")  # RFC 7636 §4.1
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_PAGE_TITLE = "Sign in with Google — vidgate emulator"

_ROUTE_AUTHORIZE = "google_emulator_authorize"
_ROUTE_TOKEN = "google_emulator_token"
_ROUTE_CERTS = "google_emulator_certs"
_ROUTE_USERINFO = "google_emulator_userinfo"


@dataclass(frozen=True)
class _Identity:
    sub: str
    email: str
    email_verified: bool
    name: str
    picture: str | None


@dataclass
class _Grant:
    """An authorization code and what it was issued for."""

    client_id: str
    redirect_uri: str
    code_challenge: str | None
    code_challenge_method: str
    nonce: str | None
    scopes: tuple[str, ...]
    identity: _Identity
    expires_at: float
    # Set on redemption; the code is kept until it expires so a replay can revoke this token.
    access_token: str | None = None


@dataclass(frozen=True)
class _AccessToken:
    identity: _Identity
    scopes: tuple[str, ...]
    expires_at: float


@dataclass(frozen=True)
class _AuthRequest:
    """A validated authorization request."""

    params: dict[str, str]  # the recognised parameters as received, for the hidden inputs
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    code_challenge: str | None
    code_challenge_method: str
    nonce: str | None


class _AuthError(Exception):
    """An authorization request Google would answer with its error page, not a redirect."""

    def __init__(self, error: str, description: str, *, code: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.code = code


class GoogleEmulator:
    """Google's OAuth 2.0 / OpenID Connect endpoints for one registered web client.

    Mount `router()` in a FastAPI app; point a Google client at `<base>/_emulator/google`.
    """

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str,
        code_ttl_seconds: int = 300,
        token_ttl_seconds: int = 3600,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.client_secret = client_secret
        self.code_ttl_seconds = code_ttl_seconds
        self.token_ttl_seconds = token_ttl_seconds
        # One lock for all state; no critical section awaits, so it serves both the event loop
        # and test hooks called from other threads, and makes redeeming a code atomic.
        self._lock = threading.Lock()
        self._codes: dict[str, _Grant] = {}
        self._tokens: dict[str, _AccessToken] = {}
        self._keys: dict[str, rsa.RSAPrivateKey] = {}
        self._active_kid = ""
        self.rotate_key()

    # -----------------------------------------------------------------------------------------
    # Hooks for tests and tools
    # -----------------------------------------------------------------------------------------

    @property
    def active_kid(self) -> str:
        """The `kid` new ID tokens are signed with."""
        return self._active_kid

    def sub_for(self, email: str) -> str:
        """The stable subject for an email: 21 digits, like Google's numeric `sub`."""
        digest = hashlib.sha256(b"vidgate-google-emulator:" + email.strip().lower().encode())
        return "1" + str(int.from_bytes(digest.digest()[:16], "big") % 10**20).zfill(20)

    def issue_code(
        self,
        *,
        email: str,
        name: str = "",
        email_verified: bool = True,
        redirect_uri: str,
        code_challenge: str | None = None,
        code_challenge_method: str = "S256",
        nonce: str | None = None,
        scope: str = "openid email profile",
    ) -> str:
        """An authorization code, as if `email` had approved the consent page (for tests)."""
        params = {
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": scope,
        }
        if code_challenge is not None:
            params["code_challenge"] = code_challenge
            params["code_challenge_method"] = code_challenge_method
        if nonce is not None:
            params["nonce"] = nonce
        try:
            request = self._check_auth_request(params)
        except _AuthError as exc:
            raise ValueError(f"{exc.error}: {exc.description}") from None
        if not _EMAIL.fullmatch(email.strip()):
            raise ValueError(f"not an email address: {email!r}")
        return self._mint_code(request, self._identity(email, name, email_verified))

    def sign_id_token(
        self,
        claims: dict[str, Any],
        *,
        kid: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
    ) -> str:
        """Sign arbitrary claims RS256 (for crafting tokens in tests).

        By default with the active key and its kid; pass `key` (an RSA private key) to forge a
        signature under the active kid, or `kid` to name another key in the header.
        """
        with self._lock:
            signing_key = key if key is not None else self._keys[self._active_kid]
            header_kid = kid if kid is not None else self._active_kid
        return jwt.encode(claims, signing_key, algorithm="RS256", headers={"kid": header_kid})

    def rotate_key(self, keep_old: bool = True) -> str:
        """Make a new signing key active and return its kid; old keys stay in JWKS if keep_old."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        kid = secrets.token_hex(20)  # Google's kids are 40 hex digits
        with self._lock:
            if not keep_old:
                self._keys.clear()
            self._keys[kid] = key
            self._active_kid = kid
        return kid

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The published key set: every kept public key as a JWK."""
        with self._lock:
            keys = list(self._keys.items())
        return {"keys": [_public_jwk(kid, key) for kid, key in keys]}

    # -----------------------------------------------------------------------------------------
    # HTTP
    # -----------------------------------------------------------------------------------------

    def router(self) -> APIRouter:
        """The emulator's endpoints under /_emulator/google, at Google's paths."""
        router = APIRouter(prefix=PREFIX, tags=["emulators"], include_in_schema=False)
        router.add_api_route(
            "/o/oauth2/v2/auth",
            self._authorize_page,
            methods=["GET"],
            name=_ROUTE_AUTHORIZE,
            response_model=None,
        )
        router.add_api_route(
            "/o/oauth2/v2/auth", self._authorize_decision, methods=["POST"], response_model=None
        )
        router.add_api_route(
            "/token", self._token, methods=["POST"], name=_ROUTE_TOKEN, response_model=None
        )
        router.add_api_route(
            "/oauth2/v3/certs", self._certs, methods=["GET"], name=_ROUTE_CERTS, response_model=None
        )
        router.add_api_route(
            "/v1/userinfo",
            self._userinfo,
            methods=["GET"],
            name=_ROUTE_USERINFO,
            response_model=None,
        )
        router.add_api_route(
            "/.well-known/openid-configuration",
            self._discovery,
            methods=["GET"],
            response_model=None,
        )
        return router

    async def _authorize_page(self, request: Request) -> Response:
        try:
            params = _single_values(request.query_params.multi_items())
            auth = self._check_auth_request(params)
        except _AuthError as exc:
            return _error_page(exc)
        return self._consent_page(request, auth)

    async def _authorize_decision(self, request: Request) -> Response:
        try:
            fields = _single_values((await request.form()).multi_items())
            # The hidden inputs come back from the browser, so they are checked again.
            auth = self._check_auth_request(fields)
        except _AuthError as exc:
            return _error_page(exc)
        action = fields.get("action")
        if action == "deny":
            return self._answer(auth, {"error": "access_denied"})
        if action != "approve":
            return _error_page(_AuthError("invalid_request", "Choose Approve or Deny."))
        email = fields.get("email", "").strip()
        if not _EMAIL.fullmatch(email):
            return self._consent_page(
                request, auth, error="Enter an email address, such as name@example.com."
            )
        identity = self._identity(
            email, fields.get("name", ""), fields.get("email_verified") == "true"
        )
        code = self._mint_code(auth, identity)
        return self._answer(
            auth,
            {"code": code, "scope": " ".join(auth.scopes), "authuser": "0", "prompt": "consent"},
        )

    async def _token(self, request: Request) -> Response:
        try:
            form = _single_values((await request.form()).multi_items())
        except _AuthError as exc:
            return _oauth_error(400, "invalid_request", exc.description)
        grant_type = form.get("grant_type", "")
        if grant_type != "authorization_code":
            return _oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")

        basic = _basic_credentials(request.headers.get("authorization"))
        client_id, client_secret = basic or (form.get("client_id"), form.get("client_secret"))
        if basic is not None and form.get("client_id") not in (None, client_id):
            return _oauth_error(401, "invalid_client", "client_id does not match Basic auth.")
        if not client_id:
            return _oauth_error(
                400, "invalid_request", "Could not determine client ID from request."
            )
        if not secrets.compare_digest(client_id.encode(), self.client_id.encode()):
            return _oauth_error(401, "invalid_client", "The OAuth client was not found.")
        if not client_secret:
            return _oauth_error(400, "invalid_request", "client_secret is missing.")
        if not secrets.compare_digest(client_secret.encode(), self.client_secret.encode()):
            return _oauth_error(401, "invalid_client", "Unauthorized")

        code = form.get("code")
        redirect_uri = form.get("redirect_uri")
        if not code:
            return _oauth_error(400, "invalid_request", "Missing required parameter: code")
        if not redirect_uri:
            return _oauth_error(400, "invalid_request", "Missing required parameter: redirect_uri")
        return self._redeem(code, client_id, redirect_uri, form.get("code_verifier"))

    async def _certs(self) -> Response:
        return JSONResponse(self.jwks(), headers={"Cache-Control": "public, max-age=300"})

    async def _userinfo(self, request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._lock:
            grant = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
            if grant is not None and grant.expires_at <= time.time():
                grant = None
        if grant is None:
            return JSONResponse(
                {"error": "invalid_token", "error_description": "Invalid Credentials"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return JSONResponse(_identity_claims(grant.identity, grant.scopes), headers=NO_STORE)

    async def _discovery(self, request: Request) -> Response:
        # url_for yields absolute URLs on the request's base, whatever the app mounts us under.
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": str(request.url_for(_ROUTE_AUTHORIZE)),
                "token_endpoint": str(request.url_for(_ROUTE_TOKEN)),
                "userinfo_endpoint": str(request.url_for(_ROUTE_USERINFO)),
                "jwks_uri": str(request.url_for(_ROUTE_CERTS)),
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "client_secret_basic",
                ],
                "grant_types_supported": ["authorization_code"],
                "claims_supported": [
                    "aud",
                    "email",
                    "email_verified",
                    "exp",
                    "iat",
                    "iss",
                    "name",
                    "picture",
                    "sub",
                ],
                "code_challenge_methods_supported": ["plain", "S256"],
            }
        )

    # -----------------------------------------------------------------------------------------
    # Rules
    # -----------------------------------------------------------------------------------------

    def _check_auth_request(self, params: Mapping[str, str]) -> _AuthRequest:
        """Validate in Google's order; raise _AuthError for its error page."""
        client_id = params.get("client_id")
        if not client_id:
            raise _AuthError("invalid_request", "Missing required parameter: client_id")
        if client_id != self.client_id:
            raise _AuthError("invalid_client", "The OAuth client was not found.", code=401)
        redirect_uri = params.get("redirect_uri")
        if not redirect_uri:
            raise _AuthError("invalid_request", "Missing required parameter: redirect_uri")
        if not _valid_redirect_uri(redirect_uri):
            raise _AuthError(
                "redirect_uri_mismatch",
                f"The redirect URI in the request, {redirect_uri}, is not an absolute http(s) "
                'URL or "postmessage".',
            )
        response_type = params.get("response_type")
        if not response_type:
            raise _AuthError("invalid_request", "Missing required parameter: response_type")
        if response_type != "code":
            raise _AuthError(
                "unsupported_response_type", f"Unsupported response_type: {response_type}"
            )
        scope = params.get("scope", "")
        if not scope.split():
            raise _AuthError("invalid_request", "Missing required parameter: scope")
        scopes, invalid = _expand_scopes(scope)
        if invalid:
            raise _AuthError(
                "invalid_scope", f"Some requested scopes were invalid. {{invalid={invalid}}}"
            )
        challenge = params.get("code_challenge") or None
        # RFC 7636 §4.3: without a method the challenge is plain.
        method = params.get("code_challenge_method") or "plain"
        if challenge is None and params.get("code_challenge_method"):
            raise _AuthError("invalid_request", "code_challenge_method without code_challenge")
        if method not in ("plain", "S256"):
            raise _AuthError("invalid_request", f"Invalid code_challenge_method: {method}")
        if challenge is not None and not _PKCE_VALUE.fullmatch(challenge):
            raise _AuthError("invalid_request", "Invalid code_challenge.")
        return _AuthRequest(
            params={k: params[k] for k in _AUTH_PARAMS if k in params},
            redirect_uri=redirect_uri,
            scopes=scopes,
            state=params.get("state"),
            code_challenge=challenge,
            code_challenge_method=method,
            nonce=params.get("nonce") or None,
        )

    def _identity(self, email: str, name: str, email_verified: bool) -> _Identity:
        email = email.strip()
        return _Identity(self.sub_for(email), email, email_verified, name.strip(), None)

    def _mint_code(self, auth: _AuthRequest, identity: _Identity) -> str:
        code = secrets.token_urlsafe(32)
        now = time.time()
        grant = _Grant(
            client_id=self.client_id,
            redirect_uri=auth.redirect_uri,
            code_challenge=auth.code_challenge,
            code_challenge_method=auth.code_challenge_method,
            nonce=auth.nonce,
            scopes=auth.scopes,
            identity=identity,
            expires_at=now + self.code_ttl_seconds,
        )
        with self._lock:
            self._purge(now)
            self._codes[code] = grant
        return code

    def _purge(self, now: float) -> None:
        """Forget expired codes and tokens (caller holds the lock)."""
        for code in [c for c, g in self._codes.items() if g.expires_at <= now]:
            del self._codes[code]
        for token in [t for t, a in self._tokens.items() if a.expires_at <= now]:
            del self._tokens[token]

    def _redeem(
        self, code: str, client_id: str, redirect_uri: str, verifier: str | None
    ) -> Response:
        now = time.time()
        # Check and consume under one lock with no await in between: of racing redemptions
        # exactly one sees an unused code.
        with self._lock:
            grant = self._codes.get(code)
            if grant is None:
                return _invalid_grant("Malformed auth code.")
            if grant.expires_at <= now:
                del self._codes[code]
                return _invalid_grant("Auth code expired.")
            if grant.access_token is not None:
                # A replayed code may have leaked: revoke what it bought (RFC 6749 §4.1.2).
                del self._codes[code]
                self._tokens.pop(grant.access_token, None)
                return _invalid_grant("Auth code already redeemed.")
            if grant.client_id != client_id:
                return _invalid_grant("Auth code was issued to another client.")
            if grant.redirect_uri != redirect_uri:
                return _invalid_grant("redirect_uri does not match the authorization request.")
            if grant.code_challenge is not None:
                if not verifier:
                    return _invalid_grant("Missing code verifier.")
                if not _pkce_matches(grant.code_challenge_method, grant.code_challenge, verifier):
                    return _invalid_grant("Invalid code verifier.")
            access_token = "ya29." + secrets.token_urlsafe(48)
            grant.access_token = access_token
            self._tokens[access_token] = _AccessToken(
                grant.identity, grant.scopes, now + self.token_ttl_seconds
            )
        body: dict[str, Any] = {
            "access_token": access_token,
            "expires_in": self.token_ttl_seconds,
            "token_type": "Bearer",
            "scope": " ".join(grant.scopes),
        }
        if "openid" in grant.scopes:
            body["id_token"] = self._id_token(grant, access_token, int(now))
        return JSONResponse(body, headers=NO_STORE)

    def _id_token(self, grant: _Grant, access_token: str, iat: int) -> str:
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "azp": grant.client_id,
            "aud": grant.client_id,
            "sub": grant.identity.sub,
        }
        claims.update(_identity_claims(grant.identity, grant.scopes))
        digest = hashlib.sha256(access_token.encode()).digest()
        claims["at_hash"] = _b64url(digest[:16])  # OIDC Core §3.1.3.6
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        claims["iat"] = iat
        claims["exp"] = iat + ID_TOKEN_TTL_SECONDS
        return self.sign_id_token(claims)

    # -----------------------------------------------------------------------------------------
    # Pages
    # -----------------------------------------------------------------------------------------

    def _answer(self, auth: _AuthRequest, result: dict[str, str]) -> Response:
        """Send the outcome back: a redirect, or a postMessage page for the GIS popup flow."""
        if auth.state is not None:
            result = {**result, "state": auth.state}
        if auth.redirect_uri == POSTMESSAGE:
            return _postmessage_page(result)
        return RedirectResponse(_with_query(auth.redirect_uri, result), status_code=302)

    def _consent_page(self, request: Request, auth: _AuthRequest, error: str = "") -> Response:
        e = html.escape
        hidden = "\n".join(
            f'<input type="hidden" name="{e(k)}" value="{e(v)}">' for k, v in auth.params.items()
        )
        action = request.url_for(_ROUTE_AUTHORIZE).path
        alert = f'<p class="error" role="alert" id="form-error">{e(error)}</p>' if error else ""
        described = ' aria-describedby="form-error" aria-invalid="true"' if error else ""
        body = f"""
<h1>{e(_PAGE_TITLE)}</h1>
<p>This is vidgate's local stand-in for Google's sign-in page: no Google account is involved,
enter any identity.</p>
<p><strong>{e(self.client_id)}</strong> asks for: {e(" ".join(auth.scopes))}.<br>
You will return to <code>{e(auth.redirect_uri)}</code>.</p>
{alert}
<form method="post" action="{e(action)}">
{hidden}
<p><label for="email">Email</label>
<input id="email" name="email" type="email" required autocomplete="email"
 value="{e(auth.params.get("login_hint", ""))}"{described}></p>
<p><label for="name">Name</label>
<input id="name" name="name" type="text" autocomplete="name"></p>
<p><input id="email_verified" name="email_verified" type="checkbox" value="true" checked>
<label for="email_verified">Email verified</label></p>
<p><button type="submit" name="action" value="approve">Approve</button>
<button type="submit" name="action" value="deny" formnovalidate>Deny</button></p>
</form>"""
        return _html(body, status_code=400 if error else 200)


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _single_values(items: list[tuple[str, Any]]) -> dict[str, str]:
    """Parameters as a dict; a repeated parameter or a file upload is an invalid request."""
    values: dict[str, str] = {}
    for key, value in items:
        if key in values:
            raise _AuthError("invalid_request", f"Parameter repeated: {key}")
        if not isinstance(value, str):
            raise _AuthError("invalid_request", f"Parameter is not text: {key}")
        values[key] = value
    return values


def _valid_redirect_uri(uri: str) -> bool:
    if uri == POSTMESSAGE:
        return True
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    # No fragment: RFC 6749 §3.1.2 forbids it, and ours would collide with the query we add.
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.fragment


def _expand_scopes(scope: str) -> tuple[tuple[str, ...], list[str]]:
    """Requested scopes in Google's long form, deduplicated, and the ones it would refuse."""
    scopes: list[str] = []
    invalid: list[str] = []
    for name in scope.split():
        full = _SCOPE_ALIASES.get(name, name)
        if full != "openid" and not full.startswith(_GOOGLE_API_SCOPE_PREFIX):
            invalid.append(name)
        elif full not in scopes:
            scopes.append(full)
    return tuple(scopes), invalid


def _identity_claims(identity: _Identity, scopes: tuple[str, ...]) -> dict[str, Any]:
    """The claims Google releases for these scopes (email needs `email`, name `profile`)."""
    claims: dict[str, Any] = {"sub": identity.sub}
    if EMAIL_SCOPE in scopes:
        claims["email"] = identity.email
        claims["email_verified"] = identity.email_verified
    if PROFILE_SCOPE in scopes:
        if identity.name:
            claims["name"] = identity.name
        if identity.picture is not None:
            claims["picture"] = identity.picture
    return claims


def _pkce_matches(method: str, challenge: str, verifier: str) -> bool:
    if method == "S256":
        verifier = _b64url(hashlib.sha256(verifier.encode()).digest())
    return secrets.compare_digest(verifier.encode(), challenge.encode())


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(client_id, secret) from HTTP Basic, form-decoded per RFC 6749 §2.3.1; None if absent."""
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except ValueError:  # also covers binascii.Error and UnicodeDecodeError
        return ("", "")
    user, _, password = decoded.partition(":")
    return unquote_plus(user), unquote_plus(password)


def _with_query(uri: str, params: dict[str, str]) -> str:
    parts = urlsplit(uri)
    extra = urlencode(params)
    return urlunsplit(parts._replace(query=f"{parts.query}&{extra}" if parts.query else extra))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _public_jwk(kid: str, key: rsa.RSAPrivateKey) -> dict[str, str]:
    numbers = key.public_key().public_numbers()

    def encode(value: int) -> str:
        return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))

    return {
        "kty": "RSA",
        "alg": "RS256",
        "use": "sig",
        "kid": kid,
        "n": encode(numbers.n),
        "e": encode(numbers.e),
    }


def _oauth_error(status: int, error: str, description: str) -> Response:
    headers = dict(NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="google-emulator"'
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=headers
    )


def _invalid_grant(description: str) -> Response:
    return _oauth_error(400, "invalid_grant", description)


def _js_literal(value: object) -> str:
    """JSON safe inside <script>: no `</script>`, `<!--` or `&` can break out of it."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _html(body: str, *, status_code: int = 200, script: str = "") -> HTMLResponse:
    style = """label { display: block; font-weight: 600; }
input[type=email], input[type=text] { width: 100%; padding: .4rem; font-size: 1rem; }
input[type=checkbox] + label { display: inline; font-weight: normal; }
button { padding: .4rem 1rem; font-size: 1rem; margin-right: .5rem; }"""
    return html_page(_PAGE_TITLE, body, style=style, status_code=status_code, script=script)


def _error_page(exc: _AuthError) -> Response:
    e = html.escape
    body = f"""
<h1>Access blocked: this request is invalid</h1>
<p class="error">Error {exc.code}: {e(exc.error)}</p>
<p>{e(exc.description)}</p>"""
    return _html(body, status_code=400)


def _postmessage_page(result: dict[str, str]) -> Response:
    """What the Google Identity Services popup does: hand the result to the opener window."""
    rows = "\n".join(
        f"<dt>{html.escape(k)}</dt><dd><code>{html.escape(v)}</code></dd>"
        for k, v in result.items()
    )
    heading = "Access denied" if "error" in result else "Signed in"
    body = f"""
<h1>{heading}</h1>
<p>This window passes the result to the page that opened it; you can close it.</p>
<dl>
{rows}
</dl>"""
    script = (
        f"var result = {_js_literal(result)};\n"
        'window.opener && window.opener.postMessage(result, "*");'
    )
    return _html(body, script=script)
