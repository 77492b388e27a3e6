"""The console's users pages: find an account, read it whole, adjust its credits (exactly, even
when adjustments race), change roles, suspend and restore, sign out everywhere, delete — each
action in the audit log with who, why, before and after."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from sqlalchemy import select

from vidgate.admin.models import AuditEntry
from vidgate.credits.service import find_drift
from vidgate.runtime import Runtime

from ..fixtures.operators import operator
from ..fixtures.signin import sign_in
from ..fixtures.tasks import account

Console = tuple[httpx.AsyncClient, Runtime]


async def _user_id(client: httpx.AsyncClient, headers: dict[str, str]) -> uuid.UUID:
    me = await client.get("/api/auth/me", headers=headers)
    assert me.status_code == 200, me.text
    return uuid.UUID(me.json()["id"])


async def _audit(runtime: Runtime, target: uuid.UUID) -> list[AuditEntry]:
    async with runtime.db.session() as session:
        rows = await session.scalars(
            select(AuditEntry).where(AuditEntry.target_id == str(target)).order_by(AuditEntry.id)
        )
        return list(rows)


async def test_find_an_account_and_read_it_whole(console: Console) -> None:
    client, runtime = console
    admin = await operator(client, runtime, "support")
    user = await sign_in(client, username="harbour_fan")
    user_id = await _user_id(client, user.headers)
    digits = user.phone.replace("86-", "")[-6:]
    for query in (digits, str(user_id), "harbour_f"):
        found = await client.get("/api/admin/users", params={"q": query}, headers=admin.headers)
        assert found.status_code == 200, found.text
        assert str(user_id) in [u["id"] for u in found.json()["users"]], query
    nobody = await client.get(
        "/api/admin/users", params={"q": "no-such-person"}, headers=admin.headers
    )
    assert nobody.json()["total"] == 0

    detail = await client.get(f"/api/admin/users/{user_id}", headers=admin.headers)
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["user"]["username"] == "harbour_fan"
    assert (body["user"]["credits"], body["available"], body["total_earned"]) == (100, 100, 100)
    assert [e["kind"] for e in body["ledger"]] == ["signup_bonus"]
    assert len(body["sessions"]) == 1 and body["tasks"] == [] and body["payments"] == []
    missing = await client.get(f"/api/admin/users/{uuid.uuid4()}", headers=admin.headers)
    assert missing.status_code == 404 and missing.json() == {"detail": "User not found"}


async def test_credit_adjustments_are_exact_limited_and_audited(console: Console) -> None:
    client, runtime = console
    support = await operator(client, runtime, "support")
    admin = await operator(client, runtime, "admin")
    user = await sign_in(client)
    user_id = await _user_id(client, user.headers)
    url = f"/api/admin/users/{user_id}/credits"

    granted = await client.post(
        url, json={"amount": 50, "reason": "apology for a failed render"}, headers=support.headers
    )
    assert granted.status_code == 200, granted.text
    assert granted.json()["applied"] is True and granted.json()["credits"] == 150
    too_big = await client.post(
        url, json={"amount": 5000, "reason": "big gift"}, headers=support.headers
    )
    assert too_big.status_code == 403
    assert too_big.json() == {"detail": "Adjustments this large need an admin"}
    keyed = {"amount": -30, "reason": "charged twice by hand", "idempotency_key": "ticket-7"}
    first = await client.post(url, json=keyed, headers=admin.headers)
    again = await client.post(url, json=keyed, headers=admin.headers)
    assert (first.json()["applied"], again.json()["applied"]) == (True, False)
    assert again.json()["credits"] == 120
    overdraw = await client.post(
        url, json={"amount": -121, "reason": "more than there is"}, headers=admin.headers
    )
    assert overdraw.status_code == 402
    for bad in ({"amount": 0, "reason": "zero"}, {"amount": 5}, {"amount": "5", "reason": "str"}):
        refused = await client.post(url, json=bad, headers=admin.headers)
        assert refused.status_code == 422 and "detail" in refused.json(), bad

    credits, reserved, rows = await account(runtime.db, user_id)
    assert (credits, reserved) == (120, 0)
    assert [(kind, delta) for kind, delta, _ in rows] == [
        ("signup_bonus", 100),
        ("adjustment", 50),
        ("adjustment", -30),
    ]
    audit = await _audit(runtime, user_id)
    assert [(a.action, a.actor_id, a.reason) for a in audit] == [
        ("credits.grant", support.user_id, "apology for a failed render"),
        ("credits.deduct", admin.user_id, "charged twice by hand"),
    ]
    assert audit[0].before is not None and audit[0].before["credits"] == 100
    assert audit[0].after is not None and audit[0].after["credits"] == 150


async def test_racing_deductions_never_overdraw(console: Console) -> None:
    client, runtime = console
    admin = await operator(client, runtime, "admin")
    user = await sign_in(client)
    user_id = await _user_id(client, user.headers)

    async def deduct(n: int) -> int:
        answer = await client.post(
            f"/api/admin/users/{user_id}/credits",
            json={"amount": -30, "reason": f"race {n}"},
            headers=admin.headers,
        )
        return answer.status_code

    statuses = await asyncio.gather(*(deduct(n) for n in range(8)))
    assert sorted(statuses) == [200] * 3 + [402] * 5
    credits, _, rows = await account(runtime.db, user_id)
    assert credits == 10 and len(rows) == 4
    async with runtime.db.session() as session:
        assert await find_drift(session) == []
    assert len(await _audit(runtime, user_id)) == 3


async def test_a_suspended_account_stops_at_once_and_comes_back_when_restored(
    console: Console,
) -> None:
    client, runtime = console
    admin = await operator(client, runtime, "admin")
    user = await sign_in(client)
    user_id = await _user_id(client, user.headers)
    key = await client.post("/api/users/api-keys", json={"name": "server"}, headers=user.headers)
    assert key.status_code == 201, key.text
    key_headers = {"X-API-Key": key.json()["key"]}
    some_task = f"/api/videos/tasks/{uuid.uuid4()}"  # readable with a personal key: 404 if let in
    assert (await client.get(some_task, headers=key_headers)).status_code == 404

    suspended = await client.post(
        f"/api/admin/users/{user_id}/suspend",
        json={"reason": "chargeback fraud"},
        headers=admin.headers,
    )
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["suspended_at"] is not None
    assert (await client.get("/api/auth/me", headers=user.headers)).status_code == 401
    assert (await client.get(some_task, headers=key_headers)).status_code == 401
    refreshed = await client.post("/api/auth/refresh", json={"refresh_token": user.refresh_token})
    assert refreshed.status_code in (401, 403)
    code = await client.post("/api/auth/sms/send", json={"phone_number": user.phone})
    assert code.status_code == 200
    outbox = await client.get("/api/_dev/sms/outbox", params={"phone_number": user.phone})
    login = await client.post(
        "/api/auth/sms/login",
        json={"phone_number": user.phone, "code": outbox.json()["messages"][0]["code"]},
    )
    assert login.status_code == 403 and login.json() == {"detail": "This account is suspended"}
    twice = await client.post(
        f"/api/admin/users/{user_id}/suspend", json={"reason": "again"}, headers=admin.headers
    )
    assert twice.status_code == 409

    restored = await client.post(
        f"/api/admin/users/{user_id}/restore", json={"reason": "cleared"}, headers=admin.headers
    )
    assert restored.status_code == 200 and restored.json()["suspended_at"] is None
    back = await sign_in(client, user.phone)
    assert (await client.get("/api/auth/me", headers=back.headers)).status_code == 200
    assert (await client.get(some_task, headers=key_headers)).status_code == 404
    assert [a.action for a in await _audit(runtime, user_id)] == [
        "user.suspended",
        "user.restored",
    ]


async def test_roles_sign_out_and_deletion(console: Console) -> None:
    client, runtime = console
    admin = await operator(client, runtime, "admin")
    user = await sign_in(client)
    user_id = await _user_id(client, user.headers)
    base = f"/api/admin/users/{user_id}"

    made = await client.put(
        f"{base}/role", json={"role": "support", "reason": "joins the team"}, headers=admin.headers
    )
    assert made.status_code == 200 and made.json()["role"] == "support"
    assert (await client.get("/api/admin/users", headers=user.headers)).status_code == 200
    own = await client.put(
        f"/api/admin/users/{admin.user_id}/role",
        json={"role": "user", "reason": "step down"},
        headers=admin.headers,
    )
    assert own.status_code == 409
    unknown = await client.put(
        f"{base}/role", json={"role": "owner", "reason": "typo"}, headers=admin.headers
    )
    assert unknown.status_code == 422

    second = await sign_in(client, user.phone)
    ended = await client.post(
        f"{base}/sign-out", json={"reason": "lost phone"}, headers=admin.headers
    )
    assert ended.status_code == 200 and ended.json() == {"sessions_ended": 2}
    for headers in (user.headers, second.headers):
        assert (await client.get("/api/auth/me", headers=headers)).status_code == 401

    deleted = await client.post(
        f"{base}/delete", json={"reason": "asked by email"}, headers=admin.headers
    )
    assert deleted.status_code == 200 and deleted.json()["deleted_at"] is not None
    assert [a.action for a in await _audit(runtime, user_id)] == [
        "user.role",
        "user.signed_out",
        "user.deleted",
    ]
