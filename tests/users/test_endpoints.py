"""Profile, credits, ledger history and account deletion through the HTTP API (docs/api.md §5)."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from vidgate.auth.dependencies import UserWithKey
from vidgate.credits import service as ledger
from vidgate.credits.models import LedgerEntry
from vidgate.db.engine import Database
from vidgate.errors import install_error_handlers
from vidgate.runtime import Runtime
from vidgate.users.models import User
from vidgate.users.service import anonymize_due_accounts

from ..fixtures.signin import SignedIn, age_codes, e164, sign_in

DELETION_MESSAGE = "Account deletion requested. Your account will be deleted within 30 days."
PROFILE_FIELDS = {
    "id",
    "email",
    "username",
    "avatar_url",
    "region",
    "credits",
    "created_at",
    "last_login_at",
    "phone_number",
}


@pytest.fixture
async def key_probe(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """A tiny app with one route behind `UserWithKey`, to see whether a personal key works."""
    app = FastAPI()
    install_error_handlers(app)
    app.state.runtime = runtime

    @app.get("/probe")
    async def probe(user: UserWithKey) -> dict[str, str]:
        return {"user_id": str(user.id)}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as c:
        yield c


async def user_id(client: httpx.AsyncClient, user: SignedIn) -> uuid.UUID:
    r = await client.get("/api/users/profile", headers=user.headers)
    assert r.status_code == 200, r.text
    return uuid.UUID(r.json()["id"])


async def ledger_rows(db: Database, uid: uuid.UUID) -> list[tuple[str, int]]:
    async with db.session() as s:
        rows = await s.scalars(
            select(LedgerEntry).where(LedgerEntry.user_id == uid).order_by(LedgerEntry.id)
        )
        return [(r.kind, r.delta) for r in rows]


# --- profile -------------------------------------------------------------------------------------


async def test_profile_has_the_contract_fields(client: httpx.AsyncClient) -> None:
    user = await sign_in(client, username="小明")
    r = await client.get("/api/users/profile", headers=user.headers)
    assert r.status_code == 200
    profile = r.json()
    assert set(profile) == PROFILE_FIELDS
    assert profile["username"] == "小明"
    assert profile["phone_number"] == e164(user.phone)
    assert profile["region"] == "CN"
    assert profile["credits"] == 100
    assert profile["email"] is None and profile["avatar_url"] is None
    assert profile["last_login_at"] is not None
    uuid.UUID(profile["id"])
    datetime.fromisoformat(profile["created_at"])
    me = (await client.get("/api/auth/me", headers=user.headers)).json()
    assert me["id"] == profile["id"]


async def test_update_profile_changes_username_and_avatar_and_keeps_them(
    client: httpx.AsyncClient,
) -> None:
    user = await sign_in(client, username="before")
    before = (await client.get("/api/users/profile", headers=user.headers)).json()
    r = await client.put(
        "/api/users/profile",
        headers=user.headers,
        json={
            "username": "  after  ",
            "avatar_url": "https://cdn.example.com/a.png",
            # Fields that cannot be changed here are ignored.
            "credits": 1_000_000,
            "region": "US",
            "email": "someone@example.com",
            "id": str(uuid.uuid4()),
            "whatever": True,
        },
    )
    assert r.status_code == 200, r.text
    updated = r.json()
    assert set(updated) == PROFILE_FIELDS
    assert updated["username"] == "after"
    assert updated["avatar_url"] == "https://cdn.example.com/a.png"
    for unchanged in ("id", "credits", "region", "email", "phone_number", "created_at"):
        assert updated[unchanged] == before[unchanged], unchanged
    assert (await client.get("/api/users/profile", headers=user.headers)).json() == updated

    # Only the avatar: the username stays.
    r = await client.put(
        "/api/users/profile", headers=user.headers, json={"avatar_url": "http://x.example/b.jpg"}
    )
    assert r.status_code == 200
    assert (r.json()["username"], r.json()["avatar_url"]) == ("after", "http://x.example/b.jpg")
    # An empty body changes nothing.
    r = await client.put("/api/users/profile", headers=user.headers, json={})
    assert r.status_code == 200
    assert (r.json()["username"], r.json()["avatar_url"]) == ("after", "http://x.example/b.jpg")
    # Usernames of exactly 3 and 50 characters are fine.
    for name in ("abc", "n" * 50, "三个字"):
        r = await client.put("/api/users/profile", headers=user.headers, json={"username": name})
        assert r.status_code == 200, (name, r.text)
        assert r.json()["username"] == name
    profile = (await client.get("/api/users/profile", headers=user.headers)).json()
    assert profile["username"] == "三个字"


@pytest.mark.parametrize(
    "body",
    [
        {"username": "ab"},
        {"username": "  ab  "},
        {"username": "x" * 51},
        {"username": None},
        {"username": 12345},
        {"username": ["abc"]},
        {"avatar_url": "ftp://x"},
        {"avatar_url": "javascript:alert(1)"},
        {"avatar_url": "not a url"},
        {"avatar_url": 42},
        {"avatar_url": "https://" + "a" * 2048 + ".com"},
        {"username": "fine name", "avatar_url": "ftp://x"},
    ],
)
async def test_update_profile_rejects_bad_values(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    user = await sign_in(client, username="stays")
    r = await client.put("/api/users/profile", headers=user.headers, json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, list) and detail
    assert {"loc", "msg", "type"} <= detail[0].keys()
    profile = (await client.get("/api/users/profile", headers=user.headers)).json()
    assert (profile["username"], profile["avatar_url"]) == ("stays", None)


async def test_update_profile_rejects_malformed_json(client: httpx.AsyncClient) -> None:
    user = await sign_in(client)
    for body in (b"{not json", b"[]", b'"abc"'):
        r = await client.put(
            "/api/users/profile",
            headers={**user.headers, "content-type": "application/json"},
            content=body,
        )
        assert r.status_code == 422, (body, r.text)


@pytest.fixture
async def lenient_client(
    app_and_runtime: tuple[object, Runtime],
) -> AsyncIterator[httpx.AsyncClient]:
    """Like `client`, but a server error comes back as a 500 response instead of an exception."""
    transport = httpx.ASGITransport(app=app_and_runtime[0], raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.mark.parametrize(
    "body",
    [
        {"username": "nul\x00byte"},
        {"avatar_url": "https://example.com/a\x00.png"},
    ],
)
async def test_update_profile_with_a_nul_character_is_a_validation_error(
    lenient_client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    # PostgreSQL text cannot hold U+0000; it must be refused as input, not fail as a 500.
    user = await sign_in(lenient_client, username="stays")
    r = await lenient_client.put("/api/users/profile", headers=user.headers, json=body)
    if "avatar_url" in body and r.status_code == 200:
        # A URL may instead be accepted in its normalised form, without the NUL.
        assert "\x00" not in r.json()["avatar_url"]
        return
    assert r.status_code == 422, r.text
    profile = (await lenient_client.get("/api/users/profile", headers=user.headers)).json()
    assert (profile["username"], profile["avatar_url"]) == ("stays", None)


@pytest.mark.parametrize(
    "avatar", ["https:example.com", "http:/example.com", " https://example.com"]
)
async def test_an_accepted_avatar_url_is_an_absolute_http_url(
    client: httpx.AsyncClient, avatar: str
) -> None:
    # `https:example.com` is a relative reference in a browser (same scheme as the page): what is
    # stored and shown must be the absolute http(s) URL that was validated, or be refused.
    user = await sign_in(client)
    r = await client.put("/api/users/profile", headers=user.headers, json={"avatar_url": avatar})
    if r.status_code != 422:
        assert r.status_code == 200, r.text
        assert re.match(r"https?://[^/\s]+", r.json()["avatar_url"]), r.json()["avatar_url"]


# --- credits -------------------------------------------------------------------------------------


async def test_credits_after_signup_and_after_a_charge(
    client: httpx.AsyncClient, db: Database
) -> None:
    user = await sign_in(client)
    uid = await user_id(client, user)
    r = await client.get("/api/users/credits", headers=user.headers)
    assert r.status_code == 200
    assert r.json() == {
        "user_id": str(uid),
        "credits": 100,
        "total_earned": 100,
        "total_spent": 0,
        "credits_reserved": 0,
        "available": 100,
    }
    async with db.session() as s:
        await ledger.charge(s, uid, 20, key=f"test:{uid}:charge")
        await ledger.reserve(s, uid, 30, key=f"test:{uid}:reserve")
        await s.commit()
    r = await client.get("/api/users/credits", headers=user.headers)
    assert r.json() == {
        "user_id": str(uid),
        "credits": 80,
        "total_earned": 100,
        "total_spent": 20,
        "credits_reserved": 30,
        "available": 50,
    }
    async with db.session() as s:
        await ledger.refund(s, uid, 5, key=f"test:{uid}:refund")
        await ledger.grant(s, uid, 50, key=f"test:{uid}:grant", kind=ledger.LedgerKind.PURCHASE)
        await s.commit()
    body = (await client.get("/api/users/credits", headers=user.headers)).json()
    assert (body["credits"], body["total_earned"], body["total_spent"]) == (135, 150, 15)
    assert body["total_earned"] - body["total_spent"] == body["credits"]
    profile = (await client.get("/api/users/profile", headers=user.headers)).json()
    assert profile["credits"] == 135


async def test_transactions_are_paged_newest_first(client: httpx.AsyncClient, db: Database) -> None:
    user = await sign_in(client)
    uid = await user_id(client, user)
    async with db.session() as s:
        for amount in range(1, 6):
            await ledger.grant(s, uid, amount, key=f"test:{uid}:g{amount}", note=f"n{amount}")
        await s.commit()

    r = await client.get("/api/users/credits/transactions", headers=user.headers)
    assert r.status_code == 200
    body = r.json()
    assert (body["total"], body["page"], body["page_size"]) == (6, 1, 20)
    assert [t["delta"] for t in body["transactions"]] == [5, 4, 3, 2, 1, 100]
    newest, oldest = body["transactions"][0], body["transactions"][-1]
    assert set(newest) == {
        "id",
        "delta",
        "reserved_delta",
        "kind",
        "reference",
        "balance_after",
        "reserved_after",
        "note",
        "created_at",
    }
    assert (newest["kind"], newest["balance_after"], newest["note"]) == ("adjustment", 115, "n5")
    assert (oldest["kind"], oldest["balance_after"]) == ("signup_bonus", 100)

    pages = []
    for page in (1, 2, 3):
        r = await client.get(
            "/api/users/credits/transactions",
            headers=user.headers,
            params={"page": page, "page_size": 4},
        )
        assert r.status_code == 200
        pages.append(r.json())
    assert [t["delta"] for t in pages[0]["transactions"]] == [5, 4, 3, 2]
    assert [t["delta"] for t in pages[1]["transactions"]] == [1, 100]
    assert pages[2]["transactions"] == []
    assert {p["total"] for p in pages} == {6}
    assert [(p["page"], p["page_size"]) for p in pages] == [(1, 4), (2, 4), (3, 4)]

    for params in ({"page_size": 0}, {"page_size": 101}, {"page": 0}, {"page": "x"}):
        r = await client.get("/api/users/credits/transactions", headers=user.headers, params=params)
        assert r.status_code == 422, params
    r = await client.get(
        "/api/users/credits/transactions", headers=user.headers, params={"page_size": 100}
    )
    assert r.status_code == 200


async def test_transactions_show_only_the_callers_rows(client: httpx.AsyncClient) -> None:
    one, other = await sign_in(client), await sign_in(client)
    uid = await user_id(client, one)
    body = (await client.get("/api/users/credits/transactions", headers=other.headers)).json()
    assert body["total"] == 1
    assert str(uid) not in str(body)


async def test_transactions_csv_has_a_header_and_one_row_per_entry(
    client: httpx.AsyncClient, db: Database
) -> None:
    user = await sign_in(client)
    uid = await user_id(client, user)
    async with db.session() as s:
        await ledger.charge(s, uid, 20, key=f"test:{uid}:c", reference="task-9", note="a, b")
        await ledger.reserve(s, uid, 30, key=f"test:{uid}:r")
        await s.commit()
    r = await client.get("/api/users/credits/transactions.csv", headers=user.headers)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == [
        "id",
        "created_at",
        "kind",
        "delta",
        "reserved_delta",
        "balance_after",
        "reserved_after",
        "reference",
        "note",
    ]
    data = rows[1:]
    assert [(row[2], row[3], row[4], row[5], row[6]) for row in data] == [
        ("reserve", "0", "30", "80", "30"),
        ("charge", "-20", "0", "80", "0"),
        ("signup_bonus", "100", "0", "100", "0"),
    ]
    assert (data[1][7], data[1][8]) == ("task-9", "a, b")
    for row in data:
        datetime.fromisoformat(row[1])
    listed = (await client.get("/api/users/credits/transactions", headers=user.headers)).json()
    assert [int(row[0]) for row in data] == [t["id"] for t in listed["transactions"]]


# --- account deletion ---------------------------------------------------------------------------


async def test_delete_account_ends_access_and_sign_in_restores_it(
    client: httpx.AsyncClient, db: Database, key_probe: httpx.AsyncClient
) -> None:
    user = await sign_in(client, username="leaving")
    uid = await user_id(client, user)
    created = await client.post("/api/users/api-keys", headers=user.headers, json={"name": "srv"})
    assert created.status_code == 201
    personal = {"X-API-Key": created.json()["key"]}
    assert (await key_probe.get("/probe", headers=personal)).json() == {"user_id": str(uid)}

    r = await client.delete("/api/users/account", headers=user.headers)
    assert r.status_code == 200
    assert r.json() == {"message": DELETION_MESSAGE}

    assert (await client.get("/api/users/profile", headers=user.headers)).status_code == 401
    assert (await client.get("/api/users/credits", headers=user.headers)).status_code == 401
    assert (await client.delete("/api/users/account", headers=user.headers)).status_code == 401
    refresh = await client.post("/api/auth/refresh", json={"refresh_token": user.refresh_token})
    assert refresh.status_code == 401
    assert (await key_probe.get("/probe", headers=personal)).status_code == 401
    async with db.session() as s:
        row = await s.get_one(User, uid)
        assert row.deleted_at is not None and row.purge_after is not None
        assert timedelta(days=29) < row.purge_after - datetime.now(UTC) <= timedelta(days=30)
        assert row.phone == e164(user.phone)

    # Signing in again within the grace period brings the same account back, without a 2nd bonus.
    await age_codes(db, user.phone, 61)
    back = await sign_in(client, user.phone, username="ignored")
    profile = (await client.get("/api/users/profile", headers=back.headers)).json()
    assert (profile["id"], profile["username"], profile["credits"]) == (str(uid), "leaving", 100)
    credits = (await client.get("/api/users/credits", headers=back.headers)).json()
    assert (credits["credits"], credits["total_earned"]) == (100, 100)
    assert await ledger_rows(db, uid) == [("signup_bonus", 100)]
    async with db.session() as s:
        row = await s.get_one(User, uid)
        assert row.deleted_at is None and row.purge_after is None
    # What deletion ended stays ended: old tokens and keys do not come back.
    assert (await client.get("/api/users/profile", headers=user.headers)).status_code == 401
    assert (await key_probe.get("/probe", headers=personal)).status_code == 401


async def test_anonymized_account_keeps_its_ledger_and_the_phone_starts_afresh(
    client: httpx.AsyncClient, db: Database, runtime: Runtime
) -> None:
    user = await sign_in(client, username="gone soon")
    uid = await user_id(client, user)
    async with db.session() as s:
        await ledger.charge(s, uid, 20, key=f"test:{uid}:c")
        await s.commit()
    assert (await client.delete("/api/users/account", headers=user.headers)).status_code == 200

    # Not yet due: the job leaves the account alone.
    async with db.session() as s:
        await anonymize_due_accounts(s, runtime.storage)
        await s.commit()
        assert (await s.get_one(User, uid)).anonymized_at is None

    async with db.session() as s:
        await s.execute(
            update(User)
            .where(User.id == uid)
            .values(purge_after=datetime.now(UTC) - timedelta(minutes=1))
        )
        await s.commit()
    async with db.session() as s:
        assert await anonymize_due_accounts(s, runtime.storage) >= 1
        await s.commit()
    async with db.session() as s:
        row = await s.get_one(User, uid)
        assert (row.phone, row.email, row.avatar_url) == (None, None, None)
        assert row.username == "deleted user"
        assert row.anonymized_at is not None
        assert row.credits == 80
    assert await ledger_rows(db, uid) == [("signup_bonus", 100), ("charge", -20)]
    # Running again does nothing more to it.
    async with db.session() as s:
        await anonymize_due_accounts(s, runtime.storage)
        await s.commit()
        assert (await s.get_one(User, uid)).username == "deleted user"

    await age_codes(db, user.phone, 61)
    fresh = await sign_in(client, user.phone)
    new_uid = await user_id(client, fresh)
    assert new_uid != uid
    credits = (await client.get("/api/users/credits", headers=fresh.headers)).json()
    assert (credits["credits"], credits["total_earned"], credits["total_spent"]) == (100, 100, 0)
    assert await ledger_rows(db, new_uid) == [("signup_bonus", 100)]
    async with db.session() as s:
        holders = await s.scalar(
            select(func.count()).select_from(User).where(User.phone == e164(user.phone))
        )
    assert holders == 1


# --- authentication ------------------------------------------------------------------------------


async def test_every_users_endpoint_needs_a_token(client: httpx.AsyncClient) -> None:
    user = await sign_in(client)
    calls = [
        ("GET", "/api/users/profile", None),
        ("PUT", "/api/users/profile", {"username": "nobody"}),
        ("GET", "/api/users/credits", None),
        ("GET", "/api/users/credits/transactions", None),
        ("GET", "/api/users/credits/transactions.csv", None),
        ("DELETE", "/api/users/account", None),
    ]
    for headers in ({}, {"Authorization": "Bearer garbage"}, {"X-API-Key": "vg_nothing"}):
        for method, path, body in calls:
            r = await client.request(method, path, headers=headers, json=body)
            assert r.status_code == 401, (method, path, headers)
            assert r.headers.get("WWW-Authenticate") == "Bearer"
            assert "detail" in r.json()
    # Nothing above touched the account.
    profile = await client.get("/api/users/profile", headers=user.headers)
    assert profile.status_code == 200
    assert profile.json()["username"] != "nobody"
