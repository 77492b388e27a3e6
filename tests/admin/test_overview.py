"""The console's overview: one day's business read back from the tables it comes from, as JSON
and as CSV; a range that runs backwards or too long is refused."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from vidgate.credits import service as ledger
from vidgate.payments.models import Payment
from vidgate.runtime import Runtime

from ..fixtures.operators import operator
from ..fixtures.tasks import new_caller, text_to_video

Console = tuple[httpx.AsyncClient, Runtime]


async def test_a_day_of_business_as_json_and_csv(console: Console) -> None:
    client, runtime = console
    admin = await operator(client, runtime, "support")
    buyer, idle = await new_caller(client), await new_caller(client)
    task_id = await text_to_video(client, buyer, "a quiet harbour")  # charged 20 (no worker)
    canceled = await client.post(
        f"/api/admin/tasks/{task_id}/cancel", json={"reason": "test"}, headers=admin.headers
    )
    assert canceled.status_code == 200, canceled.text
    now = datetime.now(UTC)
    async with runtime.db.transaction() as session:
        payment = Payment(
            user_id=buyer.user_id,
            provider="stripe",
            status="completed",
            amount_minor=999,
            currency="USD",
            credits=500,
            expires_at=now + timedelta(hours=1),
            paid_at=now,
        )
        session.add(payment)
        await session.flush()
        await ledger.grant(
            session,
            buyer.user_id,
            500,
            key=f"test-purchase:{uuid.uuid4()}",
            kind=ledger.LedgerKind.PURCHASE,
        )
    today = now.date()
    answer = await client.get(
        "/api/admin/overview",
        params={"since": str(today - timedelta(days=2)), "until": str(today)},
        headers=admin.headers,
    )
    assert answer.status_code == 200, answer.text
    days = answer.json()["days"]
    assert [d["day"] for d in days] == [str(today - timedelta(days=n)) for n in (2, 1, 0)]
    assert days[0]["signups"] == 0 and days[0]["tasks"] == 0
    day = days[-1]
    assert day["signups"] == 3  # the operator, the buyer and the idle user
    assert (day["active_users"], day["tasks"]) == (1, 1)
    assert day["tasks_by_kind"] == {"text-to-video": 1}
    assert day["tasks_by_status"] == {"CANCELED": 1}
    assert (day["failure_rate"], day["refund_rate"]) == (0.0, 1.0)
    assert (day["credits_sold"], day["credits_granted"], day["credits_spent"]) == (500, 300, 0)
    assert day["revenue_minor"] == {"stripe:USD": 999}
    assert day["duration_p50_seconds"] is None  # nothing succeeded

    exported = await client.get(
        "/api/admin/overview.csv", params={"since": str(today)}, headers=admin.headers
    )
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 1
    assert rows[0]["day"] == str(today) and rows[0]["signups"] == "3"
    assert rows[0]["tasks_text-to-video"] == "1" and rows[0]["revenue_minor_stripe_USD"] == "999"
    assert idle.user_id != buyer.user_id


async def test_ranges_that_run_backwards_or_too_long_are_refused(console: Console) -> None:
    client, runtime = console
    admin = await operator(client, runtime, "support")
    for params in (
        {"since": "2026-12-05", "until": "2026-12-01"},
        {"since": "2025-01-01", "until": "2026-12-01"},
    ):
        refused = await client.get("/api/admin/overview", params=params, headers=admin.headers)
        assert refused.status_code == 422, params
        assert refused.json()["detail"].startswith("The date range")
    malformed = await client.get(
        "/api/admin/overview", params={"since": "yesterday"}, headers=admin.headers
    )
    assert malformed.status_code == 422
