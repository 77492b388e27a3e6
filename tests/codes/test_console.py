"""The console's redemption codes (`/api/admin/codes/...`): admins make and disable batches,
support and admins list, read and export them, and every change leaves its audit row."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from vidgate.admin.models import AuditEntry
from vidgate.runtime import Runtime

from ..fixtures.codes import BATCHES, audit_actions, make_batch, redeem
from ..fixtures.operators import operator
from ..fixtures.tasks import new_caller

CODE_FORM = re.compile(r"^[A-HJ-NP-Z2-9]{4}(-[A-HJ-NP-Z2-9]{4}){3}$")


async def test_an_admin_makes_a_batch_and_the_audit_log_says_so(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    admin = await operator(client, runtime, "admin")
    expires = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    made = await make_batch(
        client,
        admin,
        credits=50,
        count=3,
        max_uses=2,
        expires_at=expires.isoformat(),
        note="  spring campaign  ",
        reason="marketing asked for it",
    )
    batch = made["batch"]
    assert (batch["credits"], batch["count"], batch["max_uses"]) == (50, 3, 2)
    assert datetime.fromisoformat(batch["expires_at"]) == expires
    assert batch["note"] == "spring campaign"
    assert (batch["uses"], batch["codes_used"], batch["disabled_at"]) == (0, 0, None)
    me = await client.get("/api/admin/me", headers=admin.headers)
    assert batch["created_by"] == me.json()["name"]
    codes = [c["code"] for c in made["codes"]]
    assert len(set(codes)) == 3 and all(CODE_FORM.match(c) for c in codes), codes
    assert all(c["uses"] == 0 and c["disabled_at"] is None for c in made["codes"])

    async with runtime.db.session() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.target_id == batch["id"]))
    assert entry is not None
    assert (entry.action, entry.target_type, entry.actor_id) == (
        "codes.batch_created",
        "code_batch",
        admin.user_id,
    )
    assert entry.reason == "marketing asked for it"
    assert entry.after is not None
    assert (entry.after["credits"], entry.after["count"], entry.after["max_uses"]) == (50, 3, 2)


async def test_support_reads_and_exports_but_does_not_make_or_disable(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    admin = await operator(client, runtime, "admin")
    support = await operator(client, runtime, "support")
    refused = await client.post(
        BATCHES, json={"credits": 5, "count": 1, "reason": "trying"}, headers=support.headers
    )
    assert (refused.status_code, refused.json()) == (403, {"detail": "Admins only"})
    made = await make_batch(client, admin, count=2)
    batch_id = made["batch"]["id"]
    listed = await client.get(BATCHES, headers=support.headers)
    assert listed.status_code == 200
    assert batch_id in [b["id"] for b in listed.json()["batches"]]
    detail = await client.get(f"{BATCHES}/{batch_id}", headers=support.headers)
    assert detail.status_code == 200
    exported = await client.get(f"{BATCHES}/{batch_id}/codes.csv", headers=support.headers)
    assert exported.status_code == 200
    for path in (
        f"{BATCHES}/{batch_id}/disable",
        f"/api/admin/codes/{made['codes'][0]['id']}/disable",
    ):
        off = await client.post(path, json={"reason": "trying"}, headers=support.headers)
        assert (off.status_code, off.json()) == (403, {"detail": "Admins only"})
    assert [action for action, _ in await audit_actions(runtime.db, batch_id)] == [
        "codes.batch_created",
        "codes.batch_exported",
    ]
    plain = await new_caller(client)
    assert (await client.get(BATCHES, headers=plain.headers)).status_code == 403


async def test_the_list_and_the_detail_count_uses(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    admin = await operator(client, runtime, "admin")
    older = await make_batch(client, admin, count=1)
    made = await make_batch(client, admin, credits=3, count=3, max_uses=2)
    first, second = made["codes"][0]["code"], made["codes"][1]["code"]
    users = [await new_caller(client) for _ in range(2)]
    for user in users:
        assert (await redeem(client, user.headers, first)).status_code == 200
    assert (await redeem(client, users[0].headers, second)).status_code == 200

    listed = await client.get(BATCHES, params={"page_size": 100}, headers=admin.headers)
    body = listed.json()
    ids = [b["id"] for b in body["batches"]]
    assert ids.index(made["batch"]["id"]) < ids.index(older["batch"]["id"])  # newest first
    assert body["total"] >= 2 and body["page"] == 1
    summary = body["batches"][ids.index(made["batch"]["id"])]
    assert (summary["uses"], summary["codes_used"]) == (3, 2)

    detail = (await client.get(f"{BATCHES}/{made['batch']['id']}", headers=admin.headers)).json()
    assert (detail["batch"]["uses"], detail["batch"]["codes_used"]) == (3, 2)
    uses = {c["code"]: c["uses"] for c in detail["codes"]}
    assert sorted(uses.values()) == [0, 1, 2]
    assert (uses[first], uses[second]) == (2, 1)

    unknown = await client.get(f"{BATCHES}/{uuid.uuid4()}", headers=admin.headers)
    assert (unknown.status_code, unknown.json()) == (404, {"detail": "Batch not found"})


async def test_a_batch_exports_as_csv(client: httpx.AsyncClient, runtime: Runtime) -> None:
    admin = await operator(client, runtime, "admin")
    made = await make_batch(client, admin, credits=12, count=4, max_uses=3)
    batch_id = made["batch"]["id"]
    user = await new_caller(client)
    assert (await redeem(client, user.headers, made["codes"][0]["code"])).status_code == 200

    exported = await client.get(f"{BATCHES}/{batch_id}/codes.csv", headers=admin.headers)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert f"codes-{batch_id}.csv" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert list(rows[0]) == [
        "code",
        "credits",
        "max_uses",
        "uses",
        "expires_at",
        "disabled_at",
        "batch_id",
        "created_at",
    ]
    assert sorted(r["code"] for r in rows) == sorted(c["code"] for c in made["codes"])
    by_code = {r["code"]: r for r in rows}
    redeemed = by_code[made["codes"][0]["code"]]
    assert (redeemed["credits"], redeemed["max_uses"], redeemed["uses"]) == ("12", "3", "1")
    assert {r["batch_id"] for r in rows} == {batch_id}
    assert {r["disabled_at"] for r in rows} == {""}

    await client.post(
        f"{BATCHES}/{batch_id}/disable", json={"reason": "campaign over"}, headers=admin.headers
    )
    again = await client.get(f"{BATCHES}/{batch_id}/codes.csv", headers=admin.headers)
    assert all(r["disabled_at"] for r in csv.DictReader(io.StringIO(again.text)))

    unknown = await client.get(f"{BATCHES}/{uuid.uuid4()}/codes.csv", headers=admin.headers)
    assert (unknown.status_code, unknown.json()) == (404, {"detail": "Batch not found"})


async def test_a_batch_of_ten_thousand_codes(client: httpx.AsyncClient, runtime: Runtime) -> None:
    admin = await operator(client, runtime, "admin")
    made = await make_batch(client, admin, count=10_000)
    assert len({c["code"] for c in made["codes"]}) == 10_000
    exported = await client.get(f"{BATCHES}/{made['batch']['id']}/codes.csv", headers=admin.headers)
    assert len(exported.text.splitlines()) == 10_001
    too_many = await client.post(
        BATCHES, json={"credits": 1, "count": 10_001, "reason": "too many"}, headers=admin.headers
    )
    assert too_many.status_code == 422


async def test_disabling_is_recorded_and_happens_once(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    admin = await operator(client, runtime, "admin")
    made = await make_batch(client, admin, count=2)
    batch_id, code = made["batch"]["id"], made["codes"][0]
    path = f"{BATCHES}/{batch_id}/disable"
    no_reason = await client.post(path, json={}, headers=admin.headers)
    assert no_reason.status_code == 422
    off = await client.post(path, json={"reason": "campaign over"}, headers=admin.headers)
    assert off.status_code == 200, off.text
    assert off.json()["disabled_at"] is not None
    twice = await client.post(path, json={"reason": "campaign over"}, headers=admin.headers)
    assert (twice.status_code, twice.json()) == (409, {"detail": "This batch is already disabled"})
    assert await audit_actions(runtime.db, batch_id) == [
        ("codes.batch_created", "test batch"),
        ("codes.batch_disabled", "campaign over"),
    ]

    code_path = f"/api/admin/codes/{code['id']}/disable"
    assert (
        await client.post(code_path, json={"reason": "leaked"}, headers=admin.headers)
    ).status_code == 200
    again = await client.post(code_path, json={"reason": "leaked"}, headers=admin.headers)
    assert (again.status_code, again.json()) == (409, {"detail": "This code is already disabled"})
    assert await audit_actions(runtime.db, code["id"]) == [("codes.code_disabled", "leaked")]
    unknown = await client.post(
        f"/api/admin/codes/{uuid.uuid4()}/disable", json={"reason": "leaked"}, headers=admin.headers
    )
    assert (unknown.status_code, unknown.json()) == (404, {"detail": "Redemption code not found"})
    missing_batch = await client.post(
        f"{BATCHES}/{uuid.uuid4()}/disable", json={"reason": "leaked"}, headers=admin.headers
    )
    assert missing_batch.status_code == 404


async def test_malformed_batches_are_refused(client: httpx.AsyncClient, runtime: Runtime) -> None:
    admin = await operator(client, runtime, "admin")
    good = {"credits": 5, "count": 1, "reason": "a good reason"}
    for change in (
        {"credits": 0},
        {"credits": "5"},
        {"count": 0},
        {"count": 10_001},
        {"max_uses": 0},
        {"reason": "no"},
        {"reason": None},
        {"note": "x" * 501},
        {"expires_at": "2999-01-01T00:00:00"},  # no time zone
        {"expires_at": "soon"},
        {"extra": True},
    ):
        refused = await client.post(BATCHES, json={**good, **change}, headers=admin.headers)
        assert refused.status_code == 422, (change, refused.text)
        assert isinstance(refused.json()["detail"], list)
    past = await client.post(
        BATCHES, json={**good, "expires_at": "2020-01-01T00:00:00Z"}, headers=admin.headers
    )
    assert (past.status_code, past.json()) == (400, {"detail": "expires_at must be in the future"})
