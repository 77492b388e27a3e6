"""Google sign-in against the emulated provider, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from sqlalchemy import func, select, update

from vidgate.auth.google import GoogleConfig, GoogleSignIn, GoogleTokenInvalid
from vidgate.credits.models import LedgerEntry
from vidgate.db.engine import Database
from vidgate.emulators.google import PREFIX, GoogleEmulator
from vidgate.runtime import Runtime
from vidgate.users.models import User

from ..fixtures.loopback import closed_port_url, serve_on_loopback
from ..fixtures.signin import sign_in

ISSUER = "https://accounts.google.com"
CLIENT_ID = "test-client.apps.googleusercontent.com"
CLIENT_SECRET = "test-secret-0123456789"


@pytest.fixture(scope="module")
async def emulator() -> AsyncIterator[tuple[GoogleEmulator, str]]:
    """The emulated Google on a real port; yields it and its base URL."""
    google = GoogleEmulator(issuer=ISSUER, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    app = FastAPI()
    app.include_router(google.router())
    async with serve_on_loopback(app) as url:
        yield google, f"{url}{PREFIX}"


def _config(base: str, **changes: str) -> GoogleConfig:
    values = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "authorize_url": f"{base}/o/oauth2/v2/auth",
        "token_url": f"{base}/token",
        "jwks_url": f"{base}/oauth2/v3/certs",
        "issuers": (ISSUER,),
        "default_redirect_uri": "postmessage",
        **changes,
    }
    return GoogleConfig(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
async def google(
    emulator: tuple[GoogleEmulator, str], runtime: Runtime
) -> AsyncIterator[GoogleSignIn]:
    """vidgate's Google client pointed at the emulator, installed in the test app."""
    client = GoogleSignIn(_config(emulator[1]), min_jwks_refresh_seconds=0)
    previous = runtime.google
    runtime.google = client
    yield client
    runtime.google = previous
    await client.aclose()


def _email() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


async def _login(client: httpx.AsyncClient, code: str, **extra: str) -> httpx.Response:
    return await client.post("/api/auth/google/login", json={"code": code, **extra})


async def test_popup_flow_signs_up_with_bonus(
    client: httpx.AsyncClient, emulator: tuple[GoogleEmulator, str], google: GoogleSignIn
) -> None:
    email = _email()
    code = emulator[0].issue_code(email=email, name="Ada Lovelace", redirect_uri="postmessage")
    r = await _login(client, code)
    assert r.status_code == 200, r.text
    tokens = r.json()
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 86400
    me = await client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["email"] == email
    assert me.json()["username"] == "Ada Lovelace"
    assert me.json()["credits"] == 100
    assert me.json()["phone_number"] is None


async def test_same_google_account_twice_is_one_user_one_bonus(
    client: httpx.AsyncClient,
    emulator: tuple[GoogleEmulator, str],
    google: GoogleSignIn,
    db: Database,
) -> None:
    email = _email()
    ids = []
    for _ in range(2):
        code = emulator[0].issue_code(email=email, name="Twice", redirect_uri="postmessage")
        r = await _login(client, code)
        assert r.status_code == 200
        me = await client.get(
            "/api/auth/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}
        )
        ids.append(me.json()["id"])
    assert ids[0] == ids[1]
    async with db.session() as s:
        rows = await s.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.user_id == uuid.UUID(ids[0]))
        )
    assert rows == 1


async def test_reused_bad_and_unverified_codes_are_401(
    client: httpx.AsyncClient, emulator: tuple[GoogleEmulator, str], google: GoogleSignIn
) -> None:
    code = emulator[0].issue_code(email=_email(), redirect_uri="postmessage")
    assert (await _login(client, code)).status_code == 200
    reused = await _login(client, code)
    assert reused.status_code == 401
    assert reused.json() == {"detail": "Invalid, expired or already used Google authorization code"}
    assert (await _login(client, "made-up-code")).status_code == 401
    unverified = emulator[0].issue_code(
        email=_email(), email_verified=False, redirect_uri="postmessage"
    )
    r = await _login(client, unverified)
    assert r.status_code == 401
    assert r.json()["detail"] == "Google account email is not verified"
    # The code must be exchanged with the redirect_uri it was issued for.
    elsewhere = emulator[0].issue_code(email=_email(), redirect_uri="https://app.example/cb")
    assert (await _login(client, elsewhere)).status_code == 401


async def test_sms_account_with_the_same_verified_email_is_linked(
    client: httpx.AsyncClient,
    emulator: tuple[GoogleEmulator, str],
    google: GoogleSignIn,
    db: Database,
) -> None:
    sms_user = await sign_in(client)
    me = (await client.get("/api/auth/me", headers=sms_user.headers)).json()
    email = _email()
    async with db.session() as s:
        await s.execute(
            update(User).where(User.id == uuid.UUID(me["id"])).values(email=email.upper())
        )
        await s.commit()
    code = emulator[0].issue_code(email=email, name="Linked", redirect_uri="postmessage")
    r = await _login(client, code)
    assert r.status_code == 200
    linked = (
        await client.get(
            "/api/auth/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}
        )
    ).json()
    assert linked["id"] == me["id"]
    assert linked["credits"] == 100  # no second bonus
    async with db.session() as s:
        user = await s.get_one(User, uuid.UUID(me["id"]))
    assert user.google_sub == emulator[0].sub_for(email)


async def test_concurrent_first_logins_make_one_user_and_one_bonus(
    client: httpx.AsyncClient,
    emulator: tuple[GoogleEmulator, str],
    google: GoogleSignIn,
    db: Database,
) -> None:
    email = _email()
    codes = [emulator[0].issue_code(email=email, redirect_uri="postmessage") for _ in range(6)]
    results = await asyncio.gather(*(_login(client, code) for code in codes))
    assert [r.status_code for r in results] == [200] * 6
    sub = emulator[0].sub_for(email)
    async with db.session() as s:
        users = (await s.scalars(select(User).where(User.google_sub == sub))).all()
        assert len(users) == 1
        bonus = await s.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.user_id == users[0].id)
        )
    assert bonus == 1


async def test_redirect_flow_with_state_and_pkce(
    client: httpx.AsyncClient, emulator: tuple[GoogleEmulator, str], google: GoogleSignIn
) -> None:
    callback = "https://app.example/auth/callback"
    r = await client.get("/api/auth/google/authorize-url", params={"redirect_uri": callback})
    assert r.status_code == 200
    url, state = r.json()["url"], r.json()["state"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query["state"] == state
    assert query["code_challenge_method"] == "S256"
    assert query["redirect_uri"] == callback
    assert url.startswith(emulator[1])
    # The person approves on the emulated consent page; Google redirects to the callback.
    async with httpx.AsyncClient() as browser:
        approved = await browser.post(
            f"{emulator[1]}/o/oauth2/v2/auth",
            data={
                **query,
                "email": _email(),
                "name": "Redirected",
                "email_verified": "true",
                "action": "approve",
            },
        )
    assert approved.status_code == 302, approved.text
    back = {k: v[0] for k, v in parse_qs(urlsplit(approved.headers["location"]).query).items()}
    assert back["state"] == state
    login = await _login(client, back["code"], state=state)
    assert login.status_code == 200, login.text
    again = await _login(client, back["code"], state=state)
    assert again.status_code == 400
    assert "state" in again.json()["detail"]


async def test_bad_redirect_uri_and_missing_code_are_422(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/auth/google/authorize-url", params={"redirect_uri": "javascript:x"})
    assert r.status_code == 422
    assert (await client.post("/api/auth/google/login", json={})).status_code == 422
    r = await client.post(
        "/api/auth/google/login", json={"code": "x", "redirect_uri": "ftp://nope"}
    )
    assert r.status_code == 422


async def test_tampered_id_tokens_are_rejected(
    emulator: tuple[GoogleEmulator, str], google: GoogleSignIn
) -> None:
    provider = emulator[0]
    now = int(time.time())
    good = {
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "azp": CLIENT_ID,
        "sub": "1234567890",
        "email": "a@example.com",
        "email_verified": True,
        "iat": now,
        "exp": now + 3600,
    }
    identity = await google.verify_id_token(provider.sign_id_token(good))
    assert identity.sub == "1234567890"
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    active_kid = provider.rotate_key(keep_old=True)
    cases = {
        "wrong signature": provider.sign_id_token(good, kid=active_kid, key=stranger),
        "wrong audience": provider.sign_id_token({**good, "aud": "someone-else"}),
        "wrong issuer": provider.sign_id_token({**good, "iss": "https://evil.example"}),
        "expired": provider.sign_id_token({**good, "iat": now - 7200, "exp": now - 3600}),
        "unverified email": provider.sign_id_token({**good, "email_verified": False}),
        "unknown kid": provider.sign_id_token(good, kid="no-such-key", key=stranger),
    }
    for label, token in cases.items():
        with pytest.raises(GoogleTokenInvalid):
            await google.verify_id_token(token)
        assert label  # each case named for the failure message
    # A rotated key is fetched when a token names it.
    assert (await google.verify_id_token(provider.sign_id_token(good))).sub == "1234567890"
    with pytest.raises(GoogleTokenInvalid):
        await google.verify_id_token(provider.sign_id_token(good), nonce="expected-nonce")


async def test_google_unreachable_is_503_and_unconfigured_is_501(
    client: httpx.AsyncClient, runtime: Runtime, emulator: tuple[GoogleEmulator, str]
) -> None:
    previous = runtime.google
    dead = closed_port_url()
    runtime.google = GoogleSignIn(_config(emulator[1], token_url=f"{dead}/token"))
    try:
        r = await _login(client, "anything")
        assert r.status_code == 503
        runtime.google = None
        r = await _login(client, "anything")
        assert r.status_code == 501
        assert r.json() == {"detail": "Google sign-in is not configured on this server"}
        r = await client.get(
            "/api/auth/google/authorize-url", params={"redirect_uri": "https://app.example/cb"}
        )
        assert r.status_code == 501
    finally:
        runtime.google = previous
