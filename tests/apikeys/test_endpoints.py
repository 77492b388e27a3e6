"""Personal API keys (`/api/users/api-keys`) and the key-checking dependencies."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text, update

from vidgate.apikeys.models import ApiKey
from vidgate.auth.dependencies import ApiKeyAuth, UserWithKey
from vidgate.db.engine import Database
from vidgate.errors import install_error_handlers
from vidgate.runtime import Runtime

from ..fixtures.app import DEV_CLIENT_KEY, Live
from ..fixtures.signin import SignedIn, sign_in


@pytest.fixture
async def probe(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """A tiny app with one route per key-checking dependency, sharing the test runtime."""
    app = FastAPI()
    install_error_handlers(app)
    app.state.runtime = runtime

    @app.get("/user-with-key")
    async def user_with_key(user: UserWithKey) -> dict[str, str | None]:
        key_id = user.api_key_id
        return {"user_id": str(user.id), "api_key_id": str(key_id) if key_id else None}

    @app.get("/api-key")
    async def api_key(key: ApiKeyAuth) -> dict[str, str | None]:
        owner = str(key.user_id) if key.user_id else None
        return {"id": str(key.id), "kind": key.kind, "user_id": owner}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as c:
        yield c


async def user_id(client: httpx.AsyncClient, user: SignedIn) -> str:
    r = await client.get("/api/users/profile", headers=user.headers)
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


async def create_key(client: httpx.AsyncClient, user: SignedIn, name: str = "server") -> dict:
    r = await client.post("/api/users/api-keys", headers=user.headers, json={"name": name})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def status_becomes(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], status: int
) -> None:
    for _ in range(100):
        if (await client.get(path, headers=headers)).status_code == status:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path} never answered {status}")


# --- the endpoints --------------------------------------------------------------------------------


async def test_create_shows_the_key_once_and_list_never_does(client: httpx.AsyncClient) -> None:
    user = await sign_in(client)
    r = await client.post(
        "/api/users/api-keys", headers=user.headers, json={"name": "  my server  ", "x": 1}
    )
    assert r.status_code == 201
    created = r.json()
    assert set(created) == {"id", "name", "key", "prefix", "created_at"}
    assert created["name"] == "my server"
    assert created["key"].startswith("vg_") and len(created["key"]) >= 32
    assert created["prefix"] == created["key"][:10]
    uuid.UUID(created["id"])
    datetime.fromisoformat(created["created_at"])

    second = await create_key(client, user, "laptop")
    assert second["key"] != created["key"]

    r = await client.get("/api/users/api-keys", headers=user.headers)
    assert r.status_code == 200
    listed = r.json()["api_keys"]
    assert [k["id"] for k in listed] == [second["id"], created["id"]]  # newest first
    for k in listed:
        assert "key" not in k and "key_hash" not in k
        assert k["kind"] == "personal" and k["revoked_at"] is None
    assert listed[1]["prefix"] == created["prefix"] and listed[1]["name"] == "my server"
    assert created["key"] not in r.text and second["key"] not in r.text

    # Another user sees none of them.
    other = await sign_in(client)
    assert (await client.get("/api/users/api-keys", headers=other.headers)).json() == {
        "api_keys": []
    }


async def test_only_the_hash_is_stored(client: httpx.AsyncClient, db: Database) -> None:
    user = await sign_in(client)
    created = await create_key(client, user)
    secret = created["key"]
    async with db.session() as s:
        row = await s.get_one(ApiKey, uuid.UUID(created["id"]))
        assert row.key_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert (row.kind, str(row.user_id), row.prefix) == (
            "personal",
            await user_id(client, user),
            secret[:10],
        )
        leaked = await s.scalar(
            text("SELECT count(*) FROM api_keys k WHERE k::text LIKE :pattern"),
            {"pattern": f"%{secret}%"},
        )
        assert leaked == 0
        # Nor half of it: the only stored piece is the 10-character display prefix.
        assert (
            await s.scalar(
                text("SELECT count(*) FROM api_keys k WHERE k::text LIKE :pattern"),
                {"pattern": f"%{secret[:20]}%"},
            )
            == 0
        )


async def test_revoked_key_stops_working_and_leaves_the_list(
    client: httpx.AsyncClient, probe: httpx.AsyncClient
) -> None:
    user = await sign_in(client)
    uid = await user_id(client, user)
    created = await create_key(client, user)
    kept = await create_key(client, user, "kept")
    headers = {"X-API-Key": created["key"]}
    r = await probe.get("/user-with-key", headers=headers)
    assert r.status_code == 200
    assert r.json() == {"user_id": uid, "api_key_id": created["id"]}

    r = await client.delete(f"/api/users/api-keys/{created['id']}", headers=user.headers)
    assert r.status_code == 200
    assert "message" in r.json()
    assert (await probe.get("/user-with-key", headers=headers)).status_code == 401
    assert (await probe.get("/api-key", headers=headers)).status_code == 401
    listed = (await client.get("/api/users/api-keys", headers=user.headers)).json()["api_keys"]
    assert [k["id"] for k in listed] == [kept["id"]]
    # Revoking again: there is no such active key.
    r = await client.delete(f"/api/users/api-keys/{created['id']}", headers=user.headers)
    assert r.status_code == 404
    # The other key is untouched.
    assert (await probe.get("/api-key", headers={"X-API-Key": kept["key"]})).status_code == 200


async def test_someone_elses_key_cannot_be_revoked(
    client: httpx.AsyncClient, probe: httpx.AsyncClient, db: Database
) -> None:
    owner, intruder = await sign_in(client), await sign_in(client)
    created = await create_key(client, owner)
    r = await client.delete(f"/api/users/api-keys/{created['id']}", headers=intruder.headers)
    assert r.status_code == 404
    assert r.json() == {"detail": "API key not found"}
    assert (await probe.get("/api-key", headers={"X-API-Key": created["key"]})).status_code == 200
    async with db.session() as s:
        assert (await s.get_one(ApiKey, uuid.UUID(created["id"]))).revoked_at is None
    # Unknown ids and non-ids.
    r = await client.delete(f"/api/users/api-keys/{uuid.uuid4()}", headers=owner.headers)
    assert r.status_code == 404
    r = await client.delete("/api/users/api-keys/not-a-uuid", headers=owner.headers)
    assert r.status_code == 422


async def test_client_keys_cannot_be_revoked_by_users(
    client: httpx.AsyncClient, db: Database, probe: httpx.AsyncClient
) -> None:
    user = await sign_in(client)
    async with db.session() as s:
        dev_key_id = await s.scalar(
            select(ApiKey.id).where(
                ApiKey.key_hash == hashlib.sha256(DEV_CLIENT_KEY.encode()).hexdigest()
            )
        )
    assert dev_key_id is not None
    r = await client.delete(f"/api/users/api-keys/{dev_key_id}", headers=user.headers)
    assert r.status_code == 404
    assert (await probe.get("/api-key", headers={"X-API-Key": DEV_CLIENT_KEY})).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b'{"name": ""}',
        b'{"name": "   "}',
        b'{"name": "' + b"n" * 101 + b'"}',
        b'{"name": 5}',
        b'{"name": null}',
        b'{"name": ["a"]}',
        b"{not json",
        b"[]",
        b"",
    ],
)
async def test_bad_bodies_are_refused(client: httpx.AsyncClient, db: Database, body: bytes) -> None:
    user = await sign_in(client)
    r = await client.post(
        "/api/users/api-keys",
        headers={**user.headers, "content-type": "application/json"},
        content=body,
    )
    assert r.status_code == 422, (body, r.text)
    assert "detail" in r.json()
    uid = uuid.UUID(await user_id(client, user))
    async with db.session() as s:
        count = await s.scalar(
            select(func.count()).select_from(ApiKey).where(ApiKey.user_id == uid)
        )
    assert count == 0


async def test_name_of_100_characters_is_fine(client: httpx.AsyncClient) -> None:
    user = await sign_in(client)
    assert (await create_key(client, user, "n" * 100))["name"] == "n" * 100


async def test_name_with_a_nul_character_is_a_validation_error(
    app_and_runtime: tuple[object, Runtime],
) -> None:
    # PostgreSQL text cannot hold U+0000: such a name must be refused as input, not end in a 500.
    transport = httpx.ASGITransport(app=app_and_runtime[0], raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        user = await sign_in(c)
        r = await c.post("/api/users/api-keys", headers=user.headers, json={"name": "a\x00b"})
        assert r.status_code == 422, r.text


async def test_at_most_25_active_keys(client: httpx.AsyncClient) -> None:
    user = await sign_in(client)
    keys = [await create_key(client, user, f"k{i}") for i in range(25)]
    r = await client.post("/api/users/api-keys", headers=user.headers, json={"name": "one more"})
    assert r.status_code == 400
    assert "25" in r.json()["detail"]
    await client.delete(f"/api/users/api-keys/{keys[0]['id']}", headers=user.headers)
    await create_key(client, user, "after revoking one")


async def test_forty_parallel_creates_leave_exactly_25_keys(
    live: Live, http: httpx.AsyncClient
) -> None:
    """The limit holds when creates race over real connections: every create counts the keys
    only after the ones before it have committed."""
    user = await sign_in(http)
    responses = await asyncio.gather(
        *(
            http.post("/api/users/api-keys", headers=user.headers, json={"name": f"race {i}"})
            for i in range(40)
        )
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] * 25 + [400] * 15, codes
    for refused in (r for r in responses if r.status_code == 400):
        assert refused.json() == {"detail": "You already have 25 active API keys; revoke one first"}
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    listed = (await http.get("/api/users/api-keys", headers=user.headers)).json()["api_keys"]
    assert {k["id"] for k in listed} == created
    uid = uuid.UUID(await user_id(http, user))
    async with live.runtime.db.session() as s:
        stored = await s.scalar(
            select(func.count()).select_from(ApiKey).where(ApiKey.user_id == uid)
        )
    assert stored == 25


async def test_api_key_endpoints_need_a_token(client: httpx.AsyncClient) -> None:
    user = await sign_in(client)
    created = await create_key(client, user)
    # A personal key is not a substitute for the Bearer token here.
    for headers in ({}, {"Authorization": "Bearer nope"}, {"X-API-Key": created["key"]}):
        for method, path, body in (
            ("POST", "/api/users/api-keys", {"name": "x"}),
            ("GET", "/api/users/api-keys", None),
            ("DELETE", f"/api/users/api-keys/{created['id']}", None),
        ):
            r = await client.request(method, path, headers=headers, json=body)
            assert r.status_code == 401, (method, path, headers)
    listed = (await client.get("/api/users/api-keys", headers=user.headers)).json()["api_keys"]
    assert [k["id"] for k in listed] == [created["id"]]


# --- the dependencies ---------------------------------------------------------------------------


async def test_user_with_key_accepts_token_plus_key_or_a_personal_key(
    client: httpx.AsyncClient, probe: httpx.AsyncClient
) -> None:
    alice, bob = await sign_in(client), await sign_in(client)
    alice_id, bob_id = await user_id(client, alice), await user_id(client, bob)
    alice_key = (await create_key(client, alice))["key"]
    bob_key = (await create_key(client, bob))["key"]
    client_key = {"X-API-Key": DEV_CLIENT_KEY}

    async def who(headers: dict[str, str]) -> tuple[int, object]:
        r = await probe.get("/user-with-key", headers=headers)
        body = r.json()
        return r.status_code, body.get("user_id", body.get("detail"))

    # JWT + client key → the token's user.
    assert await who({**alice.headers, **client_key}) == (200, alice_id)
    # JWT + the user's own personal key → the user.
    assert await who({**alice.headers, "X-API-Key": alice_key}) == (200, alice_id)
    # A personal key alone → its owner.
    assert await who({"X-API-Key": bob_key}) == (200, bob_id)
    # A client key alone, a JWT alone, nothing: not authenticated.
    status, detail = await who(client_key)
    assert status == 401 and "Bearer" in str(detail)
    assert (await who(alice.headers))[0] == 401
    assert (await who({}))[0] == 401
    # JWT of one user + personal key of another → forbidden.
    assert await who({**alice.headers, "X-API-Key": bob_key}) == (
        403,
        "This API key belongs to another user",
    )
    # Garbage keys, and a bad token with a good key.
    for bad in ("garbage", "vg_" + "x" * 43, DEV_CLIENT_KEY + "x", ""):
        assert (await who({**alice.headers, "X-API-Key": bad}))[0] == 401, bad
    assert (await who({"Authorization": "Bearer nope", **client_key}))[0] == 401
    assert (await who({"Authorization": "Bearer nope", "X-API-Key": bob_key}))[0] == 401
    r = await probe.get("/user-with-key", headers={"X-API-Key": "garbage"})
    assert r.headers.get("WWW-Authenticate") == "Bearer"


async def test_user_with_key_refuses_revoked_keys_and_ended_sessions(
    client: httpx.AsyncClient, probe: httpx.AsyncClient, db: Database
) -> None:
    user = await sign_in(client)
    created = await create_key(client, user)
    key = {"X-API-Key": created["key"]}
    assert (await probe.get("/user-with-key", headers={**user.headers, **key})).status_code == 200
    await client.delete(f"/api/users/api-keys/{created['id']}", headers=user.headers)
    assert (await probe.get("/user-with-key", headers=key)).status_code == 401
    assert (await probe.get("/user-with-key", headers={**user.headers, **key})).status_code == 401
    # An expired key is refused like a revoked one.
    other = await create_key(client, user, "expiring")
    assert (await probe.get("/api-key", headers={"X-API-Key": other["key"]})).status_code == 200
    async with db.session() as s:
        await s.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(other["id"]))
            .values(expires_at=func.now() - timedelta(seconds=1))
        )
        await s.commit()
    # Written by another connection: this process hears of it by notification, within moments.
    await status_becomes(probe, "/api-key", {"X-API-Key": other["key"]}, 401)
    # A logged-out token no longer works even with a valid client key.
    client_key = {"X-API-Key": DEV_CLIENT_KEY}
    assert (await client.post("/api/auth/logout", headers=user.headers)).status_code == 200
    r = await probe.get("/user-with-key", headers={**user.headers, **client_key})
    assert r.status_code == 401


async def test_api_key_auth_names_the_key(
    client: httpx.AsyncClient, probe: httpx.AsyncClient, db: Database
) -> None:
    user = await sign_in(client)
    uid = await user_id(client, user)
    created = await create_key(client, user)
    r = await probe.get("/api-key", headers={"X-API-Key": created["key"]})
    assert r.status_code == 200
    assert r.json() == {"id": created["id"], "kind": "personal", "user_id": uid}
    r = await probe.get("/api-key", headers={"X-API-Key": DEV_CLIENT_KEY})
    assert r.status_code == 200
    assert (r.json()["kind"], r.json()["user_id"]) == ("client", None)
    for headers in ({}, {"X-API-Key": ""}, {"X-API-Key": "garbage"}, user.headers):
        r = await probe.get("/api-key", headers=headers)
        assert r.status_code == 401, headers
        assert "detail" in r.json()
    # Use is recorded.
    async with db.session() as s:
        row = await s.get_one(ApiKey, uuid.UUID(created["id"]))
        assert row.last_used_at is not None
    listed = (await client.get("/api/users/api-keys", headers=user.headers)).json()["api_keys"]
    assert listed[0]["last_used_at"] is not None
