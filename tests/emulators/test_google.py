"""The Google OpenID Connect emulator, served by uvicorn on loopback and driven over real HTTP.

The browser is played by parsing the consent page's form and posting what a browser would; ID
tokens are checked with PyJWT against the published JWKS, independently of the emulator's code.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

from vidgate.emulators.google import PREFIX, GoogleEmulator

from ..fixtures.loopback import serve_on_loopback

ISSUER = "https://accounts.google.com"
CLIENT_ID = "test-client.apps.googleusercontent.com"
CLIENT_SECRET = "test-client-secret"
REDIRECT_URI = "https://app.example/auth/google/callback"
EMAIL = "Ada.Lovelace@Example.com"
HOSTILE = "\"'><script>alert(1)</script>&amp;"


# ---------------------------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------------------------


@dataclass
class Served:
    emulator: GoogleEmulator
    base_url: str  # the app's root; the emulator lives under PREFIX
    client: httpx.AsyncClient


@contextlib.asynccontextmanager
async def serving(emulator: GoogleEmulator) -> AsyncIterator[Served]:
    """Serve the emulator's router in a fresh app on a free 127.0.0.1 port."""
    app = FastAPI()
    app.include_router(emulator.router())
    async with (
        serve_on_loopback(app) as base_url,
        httpx.AsyncClient(base_url=base_url + PREFIX, timeout=10) as client,
    ):
        yield Served(emulator, base_url, client)


def make_emulator(**overrides: Any) -> GoogleEmulator:
    return GoogleEmulator(
        issuer=ISSUER, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, **overrides
    )


@pytest.fixture
async def google() -> AsyncIterator[Served]:
    async with serving(make_emulator()) as served:
        yield served


# ---------------------------------------------------------------------------------------------
# Helpers: a browser's view of the form, the client's side of the protocol
# ---------------------------------------------------------------------------------------------


@dataclass
class Form:
    action: str = ""
    method: str = ""
    inputs: list[dict[str, str | None]] = field(default_factory=list)
    buttons: list[dict[str, str | None]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # for= → text

    def input(self, name: str) -> dict[str, str | None]:
        matches = [i for i in self.inputs if i.get("name") == name]
        assert len(matches) == 1, f"expected one input {name!r}, found {matches}"
        return matches[0]

    def hidden(self) -> dict[str, str]:
        return {
            str(i["name"]): str(i.get("value") or "")
            for i in self.inputs
            if i.get("type") == "hidden"
        }


class FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.form = Form()
        self._label_for: str | None = None
        self._label_text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self.form.action = attributes.get("action") or ""
            self.form.method = (attributes.get("method") or "").lower()
        elif tag == "input":
            self.form.inputs.append(attributes)
        elif tag == "button":
            self.form.buttons.append(attributes)
        elif tag == "label":
            self._label_for, self._label_text = attributes.get("for"), ""

    def handle_data(self, data: str) -> None:
        if self._label_for is not None:
            self._label_text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "label" and self._label_for is not None:
            self.form.labels[self._label_for] = self._label_text.strip()
            self._label_for = None


def parse_form(page: str) -> Form:
    parser = FormParser()
    parser.feed(page)
    return parser.form


def s256(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


def auth_params(**overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "openid email profile",
        "state": "state-123",
        "nonce": "nonce-456",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


async def consent_page(google: Served, **overrides: str | None) -> Form:
    response = await google.client.get("/o/oauth2/v2/auth", params=auth_params(**overrides))
    assert response.status_code == 200, response.text
    return parse_form(response.text)


async def submit(
    google: Served,
    form: Form,
    *,
    action: str = "approve",
    email: str = EMAIL,
    name: str = "Ada Lovelace",
    email_verified: bool = True,
) -> httpx.Response:
    """Post the consent form as a browser would after the user filled it in."""
    data = form.hidden()
    data.update({"email": email, "name": name, "action": action})
    if email_verified:
        data["email_verified"] = str(form.input("email_verified")["value"])
    # The action is a path from the root, as a browser resolves it against the page.
    return await google.client.post(google.base_url + form.action, data=data)


def redirect_query(response: httpx.Response) -> dict[str, list[str]]:
    assert response.status_code == 302, response.text
    return parse_qs(urlsplit(response.headers["location"]).query)


async def exchange(google: Served, code_: str, **overrides: str | None) -> httpx.Response:
    form: dict[str, str | None] = {
        "grant_type": "authorization_code",
        "code": code_,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uri": REDIRECT_URI,
    }
    form.update(overrides)
    return await google.client.post("/token", data={k: v for k, v in form.items() if v is not None})


async def verify(google: Served, id_token: str) -> dict[str, Any]:
    """Verify an ID token the way a relying party does: JWKS key by kid, RS256, iss, aud."""
    jwks = (await google.client.get("/oauth2/v3/certs")).json()
    kid = jwt.get_unverified_header(id_token)["kid"]
    [jwk] = [k for k in jwks["keys"] if k["kid"] == kid]
    claims: dict[str, Any] = jwt.decode(
        id_token,
        jwt.PyJWK(jwk).key,
        algorithms=["RS256"],
        audience=CLIENT_ID,
        issuer=ISSUER,
        options={"require": ["iss", "aud", "exp", "iat", "sub"]},
    )
    return claims


def error_of(response: httpx.Response) -> str:
    return str(response.json()["error"])


# ---------------------------------------------------------------------------------------------
# Authorization page
# ---------------------------------------------------------------------------------------------


async def test_consent_page_has_labelled_inputs_and_carries_every_parameter(
    google: Served,
) -> None:
    challenge = s256(secrets.token_urlsafe(48))
    response = await google.client.get(
        "/o/oauth2/v2/auth",
        params=auth_params(
            state=HOSTILE,
            code_challenge=challenge,
            code_challenge_method="S256",
            login_hint="ada@example.com",
            prompt="select_account",
        ),
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>Sign in with Google — vidgate emulator</title>" in response.text
    form = parse_form(response.text)

    assert form.method == "post"
    assert form.action == PREFIX + "/o/oauth2/v2/auth"
    email = form.input("email")
    assert email["type"] == "email" and "required" in email and email["id"] == "email"
    assert email["value"] == "ada@example.com"  # login_hint pre-fills it
    assert form.labels["email"] == "Email"
    assert form.input("name")["id"] == "name" and form.labels["name"] == "Name"
    verified = form.input("email_verified")
    assert verified["type"] == "checkbox" and "checked" in verified
    assert form.labels["email_verified"].lower() == "email verified"
    assert {(b["value"], "formnovalidate" in b) for b in form.buttons} == {
        ("approve", False),
        ("deny", True),  # Deny must not be blocked by the required email
    }
    assert form.hidden() == {
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "openid email profile",
        "state": HOSTILE,  # round-trips exactly once unescaped by the parser
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "nonce": "nonce-456",
        "login_hint": "ada@example.com",
        "prompt": "select_account",
    }


async def test_consent_page_escapes_hostile_parameters(google: Served) -> None:
    response = await google.client.get(
        "/o/oauth2/v2/auth",
        params=auth_params(state=HOSTILE, login_hint=HOSTILE, redirect_uri=REDIRECT_URI + "?q=<b>"),
    )
    assert response.status_code == 200
    assert "<script>" not in response.text
    assert "<b>" not in response.text
    assert "&lt;script&gt;" in response.text


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"client_id": "someone-else.apps.googleusercontent.com"}, "Error 401: invalid_client"),
        ({"client_id": None}, "invalid_request"),
        ({"redirect_uri": "/relative/callback"}, "redirect_uri_mismatch"),
        ({"redirect_uri": "javascript:alert(1)"}, "redirect_uri_mismatch"),
        ({"redirect_uri": REDIRECT_URI + "#fragment"}, "redirect_uri_mismatch"),
        ({"redirect_uri": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": None}, "invalid_request"),
        ({"scope": "openid calendar"}, "invalid_scope"),
        ({"code_challenge": s256("x" * 43), "code_challenge_method": "S512"}, "invalid_request"),
    ],
)
async def test_invalid_authorization_requests_get_an_error_page(
    google: Served, overrides: dict[str, str | None], error: str
) -> None:
    response = await google.client.get("/o/oauth2/v2/auth", params=auth_params(**overrides))
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert error in response.text
    assert "location" not in response.headers  # never redirect to an unchecked URI


async def test_repeated_parameter_is_rejected(google: Served) -> None:
    query = httpx.QueryParams(auth_params()).add("state", "second")
    response = await google.client.get("/o/oauth2/v2/auth", params=query)
    assert response.status_code == 400
    assert "invalid_request" in response.text


async def test_tampered_hidden_client_id_is_rejected_on_post(google: Served) -> None:
    form = await consent_page(google)
    for field_ in form.inputs:
        if field_.get("name") == "client_id":
            field_["value"] = "evil.apps.googleusercontent.com"
    response = await submit(google, form)
    assert response.status_code == 400
    assert "invalid_client" in response.text


# ---------------------------------------------------------------------------------------------
# Approve, Deny, postmessage
# ---------------------------------------------------------------------------------------------


async def test_approve_redirects_with_code_and_state(google: Served) -> None:
    form = await consent_page(google, state=HOSTILE)
    response = await submit(google, form)
    assert response.headers["location"].startswith(REDIRECT_URI + "?")
    query = redirect_query(response)
    assert query["state"] == [HOSTILE]
    [code] = query["code"]
    assert len(code) >= 43 and re.fullmatch(r"[A-Za-z0-9_-]+", code)
    assert (await exchange(google, code)).status_code == 200


async def test_approve_keeps_an_existing_query_on_the_redirect_uri(google: Served) -> None:
    redirect_uri = "http://localhost:5173/callback?tenant=a%20b&x=1"
    form = await consent_page(google, redirect_uri=redirect_uri)
    response = await submit(google, form)
    location = response.headers["location"]
    assert location.startswith("http://localhost:5173/callback?tenant=a%20b&x=1&")
    query = redirect_query(response)
    assert query["tenant"] == ["a b"] and query["x"] == ["1"] and query["state"] == ["state-123"]
    token = await exchange(google, query["code"][0], redirect_uri=redirect_uri)
    assert token.status_code == 200


async def test_deny_redirects_with_access_denied(google: Served) -> None:
    form = await consent_page(google)
    query = redirect_query(await submit(google, form, action="deny", email=""))
    assert query == {"error": ["access_denied"], "state": ["state-123"]}


async def test_approve_without_email_shows_the_form_again(google: Served) -> None:
    form = await consent_page(google)
    response = await submit(google, form, email="not-an-email")
    assert response.status_code == 400
    assert 'role="alert"' in response.text
    assert parse_form(response.text).hidden() == form.hidden()


async def test_postmessage_page_hands_the_code_to_the_opener(google: Served) -> None:
    form = await consent_page(google, redirect_uri="postmessage", state=HOSTILE)
    response = await submit(google, form)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "window.opener && window.opener.postMessage(" in response.text
    assert "</script>alert" not in response.text and "<script>alert" not in response.text
    [code] = re.findall(r'"code": "([A-Za-z0-9_-]+)"', response.text)
    assert f"<code>{code}</code>" in response.text  # shown to the user too
    assert (await exchange(google, code, redirect_uri="postmessage")).status_code == 200


async def test_postmessage_deny_posts_access_denied(google: Served) -> None:
    form = await consent_page(google, redirect_uri="postmessage")
    response = await submit(google, form, action="deny")
    assert response.status_code == 200
    assert '"error": "access_denied"' in response.text and '"state": "state-123"' in response.text


# ---------------------------------------------------------------------------------------------
# Token endpoint
# ---------------------------------------------------------------------------------------------


async def test_code_exchange_returns_a_verifiable_id_token(google: Served) -> None:
    form = await consent_page(google)
    code = redirect_query(await submit(google, form, email_verified=False))["code"][0]
    response = await exchange(google, code)
    assert response.status_code == 200, response.text
    assert "no-store" in response.headers["cache-control"]
    body = response.json()
    assert set(body) == {"access_token", "expires_in", "token_type", "scope", "id_token"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert set(body["scope"].split()) == {
        "openid",
        "https://www.googleapis.com/auth/userinfo.email",
        "https://www.googleapis.com/auth/userinfo.profile",
    }

    header = jwt.get_unverified_header(body["id_token"])
    assert header["alg"] == "RS256" and header["kid"] == google.emulator.active_kid
    claims = await verify(google, body["id_token"])
    assert claims["iss"] == ISSUER
    assert claims["aud"] == CLIENT_ID and claims["azp"] == CLIENT_ID
    assert claims["nonce"] == "nonce-456"
    assert claims["email"] == EMAIL
    assert claims["email_verified"] is False
    assert claims["name"] == "Ada Lovelace"
    assert "picture" not in claims
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["sub"] == google.emulator.sub_for("ada.lovelace@example.com")
    assert re.fullmatch(r"\d{21}", claims["sub"])
    at_hash = hashlib.sha256(body["access_token"].encode()).digest()[:16]
    assert claims["at_hash"] == base64.urlsafe_b64encode(at_hash).rstrip(b"=").decode()


async def test_client_secret_basic_is_accepted(google: Served) -> None:
    code = google.emulator.issue_code(email=EMAIL, redirect_uri=REDIRECT_URI)
    response = await google.client.post(
        "/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )
    assert response.status_code == 200, response.text


async def test_a_code_is_redeemed_once_and_replay_revokes_its_token(google: Served) -> None:
    code = google.emulator.issue_code(email=EMAIL, redirect_uri=REDIRECT_URI)
    first = await exchange(google, code)
    assert first.status_code == 200
    access_token = first.json()["access_token"]
    second = await exchange(google, code)
    assert second.status_code == 400 and error_of(second) == "invalid_grant"
    assert "error_description" in second.json()
    userinfo = await google.client.get(
        "/v1/userinfo", headers={"Authorization": f"Bearer {access_token}"}
    )
    assert userinfo.status_code == 401


@pytest.mark.parametrize(
    ("overrides", "status", "error"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "someone-else.apps.googleusercontent.com"}, 401, "invalid_client"),
        ({"client_id": None}, 400, "invalid_request"),
        ({"client_secret": None}, 400, "invalid_request"),
        ({"grant_type": "refresh_token"}, 400, "unsupported_grant_type"),
        ({"grant_type": None}, 400, "unsupported_grant_type"),
        ({"redirect_uri": REDIRECT_URI + "/other"}, 400, "invalid_grant"),
        ({"redirect_uri": "postmessage"}, 400, "invalid_grant"),
        ({"code": "not-a-code"}, 400, "invalid_grant"),
    ],
)
async def test_token_errors(
    google: Served, overrides: dict[str, str | None], status: int, error: str
) -> None:
    code = google.emulator.issue_code(email=EMAIL, redirect_uri=REDIRECT_URI)
    response = await exchange(google, code, **overrides)
    assert response.status_code == status, response.text
    assert error_of(response) == error
    assert isinstance(response.json()["error_description"], str)
    # A rejected attempt does not use up the code.
    assert (await exchange(google, code)).status_code == 200


async def test_wrong_basic_credentials_are_invalid_client(google: Served) -> None:
    code = google.emulator.issue_code(email=EMAIL, redirect_uri=REDIRECT_URI)
    response = await google.client.post(
        "/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        auth=(CLIENT_ID, "wrong"),
    )
    assert response.status_code == 401 and error_of(response) == "invalid_client"


async def test_expired_code_is_invalid_grant() -> None:
    async with serving(make_emulator(code_ttl_seconds=0)) as google:
        code = google.emulator.issue_code(email=EMAIL, redirect_uri=REDIRECT_URI)
        response = await exchange(google, code)
        assert response.status_code == 400 and error_of(response) == "invalid_grant"


async def test_pkce_s256(google: Served) -> None:
    verifier = secrets.token_urlsafe(64)
    form = await consent_page(google, code_challenge=s256(verifier), code_challenge_method="S256")
    code = redirect_query(await submit(google, form))["code"][0]
    assert (await exchange(google, code, code_verifier=verifier)).status_code == 200


@pytest.mark.parametrize("verifier", [None, "", "wrong-" + "v" * 50])
async def test_pkce_without_the_right_verifier_is_invalid_grant(
    google: Served, verifier: str | None
) -> None:
    challenge = s256(secrets.token_urlsafe(64))
    code = google.emulator.issue_code(
        email=EMAIL, redirect_uri=REDIRECT_URI, code_challenge=challenge
    )
    response = await exchange(google, code, code_verifier=verifier)
    assert response.status_code == 400 and error_of(response) == "invalid_grant"


async def test_pkce_plain(google: Served) -> None:
    verifier = secrets.token_urlsafe(64)
    code = google.emulator.issue_code(
        email=EMAIL,
        redirect_uri=REDIRECT_URI,
        code_challenge=verifier,
        code_challenge_method="plain",
    )
    wrong = await exchange(google, code, code_verifier=s256(verifier))
    assert wrong.status_code == 400 and error_of(wrong) == "invalid_grant"
    assert (await exchange(google, code, code_verifier=verifier)).status_code == 200


async def test_concurrent_redemptions_of_one_code_succeed_once(google: Served) -> None:
    code = google.emulator.issue_code(email=EMAIL, redirect_uri=REDIRECT_URI)
    responses = await asyncio.gather(*(exchange(google, code) for _ in range(10)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [400] * 9
    assert {error_of(r) for r in responses if r.status_code == 400} == {"invalid_grant"}


async def test_scopes_limit_the_claims(google: Served) -> None:
    code = google.emulator.issue_code(email=EMAIL, redirect_uri=REDIRECT_URI, scope="openid")
    body = (await exchange(google, code)).json()
    assert body["scope"] == "openid"
    claims = await verify(google, body["id_token"])
    assert "email" not in claims and "name" not in claims

    code = google.emulator.issue_code(email=EMAIL, redirect_uri=REDIRECT_URI, scope="email")
    body = (await exchange(google, code)).json()
    assert "id_token" not in body  # no openid, no ID token


async def test_issue_code_rejects_what_the_page_would(google: Served) -> None:
    with pytest.raises(ValueError, match="redirect_uri_mismatch"):
        google.emulator.issue_code(email=EMAIL, redirect_uri="ftp://example.com/cb")
    with pytest.raises(ValueError, match="email"):
        google.emulator.issue_code(email="nobody", redirect_uri=REDIRECT_URI)


# ---------------------------------------------------------------------------------------------
# Userinfo, JWKS, discovery, key rotation
# ---------------------------------------------------------------------------------------------


async def test_userinfo_with_the_access_token(google: Served) -> None:
    code = google.emulator.issue_code(email=EMAIL, name="Ada", redirect_uri=REDIRECT_URI)
    access_token = (await exchange(google, code)).json()["access_token"]
    response = await google.client.get(
        "/v1/userinfo", headers={"Authorization": f"Bearer {access_token}"}
    )
    assert response.status_code == 200
    assert response.json() == {
        "sub": google.emulator.sub_for(EMAIL),
        "email": EMAIL,
        "email_verified": True,
        "name": "Ada",
    }


@pytest.mark.parametrize("authorization", [None, "Bearer nope", "Basic Zm9vOmJhcg=="])
async def test_userinfo_rejects_bad_tokens(google: Served, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await google.client.get("/v1/userinfo", headers=headers)
    assert response.status_code == 401 and error_of(response) == "invalid_token"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_jwks_publishes_the_public_key(google: Served) -> None:
    response = await google.client.get("/oauth2/v3/certs")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    [key] = response.json()["keys"]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig"
    assert key["kid"] == google.emulator.active_kid and key["e"] == "AQAB"
    assert "d" not in key and "p" not in key  # public half only
    assert jwt.PyJWK(key).key.key_size == 2048


async def test_discovery_document(google: Served) -> None:
    response = await google.client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    doc = response.json()
    base = google.base_url + PREFIX
    assert doc["issuer"] == ISSUER
    assert doc["authorization_endpoint"] == base + "/o/oauth2/v2/auth"
    assert doc["token_endpoint"] == base + "/token"
    assert doc["userinfo_endpoint"] == base + "/v1/userinfo"
    assert doc["jwks_uri"] == base + "/oauth2/v3/certs"
    assert doc["code_challenge_methods_supported"] == ["plain", "S256"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert "code" in doc["response_types_supported"]
    assert doc["subject_types_supported"] == ["public"]
    assert {"openid", "email", "profile"} <= set(doc["scopes_supported"])
    async with httpx.AsyncClient() as client:
        assert (await client.get(doc["jwks_uri"])).json()["keys"]


async def test_rotate_key(google: Served) -> None:
    first = google.emulator.active_kid
    second = google.emulator.rotate_key()
    kids = [k["kid"] for k in (await google.client.get("/oauth2/v3/certs")).json()["keys"]]
    assert second != first and set(kids) == {first, second}

    code = google.emulator.issue_code(email=EMAIL, redirect_uri=REDIRECT_URI)
    id_token = (await exchange(google, code)).json()["id_token"]
    assert jwt.get_unverified_header(id_token)["kid"] == second
    await verify(google, id_token)

    third = google.emulator.rotate_key(keep_old=False)
    kids = [k["kid"] for k in (await google.client.get("/oauth2/v3/certs")).json()["keys"]]
    assert kids == [third]


async def test_sign_id_token_can_forge(google: Served) -> None:
    claims = {"iss": ISSUER, "aud": CLIENT_ID, "sub": "1" * 21, "iat": 1, "exp": 2**40}
    genuine = google.emulator.sign_id_token(claims)
    assert (await verify(google, genuine))["sub"] == "1" * 21

    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = google.emulator.sign_id_token(claims, key=stranger)
    assert jwt.get_unverified_header(forged)["kid"] == google.emulator.active_kid
    with pytest.raises(jwt.InvalidSignatureError):
        await verify(google, forged)

    unknown = google.emulator.sign_id_token(claims, kid="unknown-kid")
    assert jwt.get_unverified_header(unknown)["kid"] == "unknown-kid"


def test_sub_is_stable_numeric_and_case_insensitive() -> None:
    a, b = make_emulator(), make_emulator()
    assert a.sub_for("Ada@Example.com") == b.sub_for(" ada@example.com ")
    assert a.sub_for("ada@example.com") != a.sub_for("bob@example.com")
    assert re.fullmatch(r"\d{21}", a.sub_for("x@y.z"))
