"""Refunds and disputes end to end on the live app, through the emulated Stripe and WeChat Pay:
an operator's refund from the console, refunds made at the gateway (Stripe's dashboard), the
gateway's signed notifications back to vidgate, and the credits each takes back by the money
rule (in proportion, as far as the user still has them available; the rest is a shortfall)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from vidgate.admin.models import AuditEntry
from vidgate.admin.service import command_line
from vidgate.credits import service as ledger
from vidgate.payments import flows, service
from vidgate.payments.models import Payment, PaymentEvent, PaymentRefund

from ..fixtures.app import Live
from ..fixtures.operators import Operator, operator
from ..fixtures.tasks import Caller, account, new_caller

STRIPE = "/_emulator/stripe"
WECHAT = "/_emulator/wechatpay"
AMOUNT, CREDITS = 10000, 1100  # ¥100.00 for 1,100 credits
BONUS = 100  # every new user's signup credits


def bearer(caller: Caller) -> dict[str, str]:
    return {"Authorization": caller.headers["Authorization"]}


async def until_paid(http: httpx.AsyncClient, caller: Caller, payment_id: str) -> None:
    async with asyncio.timeout(15):
        while True:
            shown = (await http.get(f"/api/payments/{payment_id}", headers=bearer(caller))).json()
            if shown["status"] != "pending":
                assert shown["status"] == "completed", shown
                return
            await asyncio.sleep(0.05)


async def buy_with_stripe(http: httpx.AsyncClient, caller: Caller) -> tuple[str, str]:
    """A paid ¥100 Stripe order of the caller: (payment id, Checkout Session id)."""
    created = await http.post(
        "/api/payments/stripe/create",
        headers=bearer(caller),
        json={"amount": AMOUNT // 100, "credits": CREDITS},
    )
    assert created.status_code == 200, created.text
    checkout_url = created.json()["checkout_url"]
    paid = await http.post(httpx.URL(checkout_url).path, data={"method": "card"})
    assert paid.status_code == 303, paid.text
    payment_id = created.json()["payment_id"]
    await until_paid(http, caller, payment_id)
    return payment_id, checkout_url.rsplit("/", 1)[1]


async def buy_with_wechat(http: httpx.AsyncClient, caller: Caller) -> str:
    """A paid ¥100 WeChat Pay order of the caller: its payment id."""
    created = await http.post(
        "/api/payments/wechat/create",
        headers=bearer(caller),
        json={"amount": AMOUNT // 100, "credits": CREDITS},
    )
    assert created.status_code == 200, created.text
    payment_id = created.json()["payment_id"]
    paid = await http.post(f"{WECHAT}/_control/orders/{uuid.UUID(payment_id).hex}/pay")
    assert paid.status_code == 200, paid.text
    await until_paid(http, caller, payment_id)
    return payment_id


async def stripe_quiet(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Wait until every event the Stripe emulator made was delivered (answered 2xx); the
    events."""
    async with asyncio.timeout(15):
        while True:
            state = (await http.get(f"{STRIPE}/_control/events")).json()
            done = {d["event_id"] for d in state["deliveries"] if d["status"] == 200}
            if all(e["id"] in done for e in state["events"]):
                events: list[dict[str, Any]] = state["events"]
                return events
            await asyncio.sleep(0.05)


async def refund(
    http: httpx.AsyncClient, admin: Operator, payment_id: str, amount: int | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"reason": "customer asked"}
    if amount is not None:
        body["amount_minor"] = amount
    return await http.post(
        f"/api/admin/payments/{payment_id}/refund", json=body, headers=admin.headers
    )


async def detail(http: httpx.AsyncClient, admin: Operator, payment_id: str) -> dict[str, Any]:
    shown = await http.get(f"/api/admin/payments/{payment_id}", headers=admin.headers)
    assert shown.status_code == 200, shown.text
    body: dict[str, Any] = shown.json()
    return body


async def no_drift(live: Live) -> None:
    """What `vidgate credits verify` checks: every balance is the sum of its ledger rows."""
    async with live.runtime.db.session() as session:
        assert await ledger.find_drift(session) == []


def taken_back(rows: list[tuple[str, int, int]]) -> list[int]:
    return [delta for kind, delta, _ in rows if kind == "payment_refund"]


@pytest.fixture
async def admin(live: Live, http: httpx.AsyncClient) -> Operator:
    return await operator(http, live.runtime, "admin")


# ---------------------------------------------------------------------------------------------
# Operator refunds through Stripe
# ---------------------------------------------------------------------------------------------


async def test_a_full_refund_takes_back_every_credit_and_is_audited(
    live: Live, http: httpx.AsyncClient, admin: Operator
) -> None:
    caller = await new_caller(http)
    payment_id, _session_id = await buy_with_stripe(http, caller)

    refunded = await refund(http, admin, payment_id)
    assert refunded.status_code == 200, refunded.text
    body = refunded.json()
    assert (body["status"], body["amount_minor"], body["kind"]) == ("succeeded", AMOUNT, "refund")
    assert (body["credits_taken"], body["credits_shortfall"]) == (CREDITS, 0)
    assert body["gateway_id"].startswith("re_")
    assert body["actor"] and body["reason"] == "customer asked"

    events = await stripe_quiet(http)
    assert [e["type"] for e in events][-1] == "charge.refunded"
    shown = await detail(http, admin, payment_id)
    assert (shown["status"], shown["refundable_minor"]) == ("refunded", 0)
    assert [r["refund_id"] for r in shown["refunds"]] == [body["refund_id"]]
    # Stripe's webhook may come before or after its API answer; one of them moves the refund.
    [paid, refunded_event] = [e["outcome"] for e in shown["events"]]
    assert paid == "credited"
    assert refunded_event in ("refund_unchanged", "refund_recorded")
    mine = await http.get(f"/api/payments/{payment_id}", headers=bearer(caller))
    assert mine.json()["status"] == "refunded"

    credits, reserved, rows = await account(live.runtime.db, caller.user_id)
    assert (credits, reserved) == (BONUS, 0)
    assert taken_back(rows) == [-CREDITS]
    again = await refund(http, admin, payment_id, 1)
    assert again.status_code == 409, again.text
    assert "remains refundable" in again.json()["detail"]

    async with live.runtime.db.session() as session:
        audit = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.target_id == payment_id))
        )
    [entry] = audit
    assert (entry.action, entry.actor_id, entry.reason) == (
        "payment.refund",
        admin.user_id,
        "customer asked",
    )
    assert entry.before is not None and entry.after is not None
    assert entry.before["status"] in ("pending", "succeeded")  # the webhook may have been first
    assert entry.after["status"] == "succeeded"
    assert entry.after["credits_taken"] == CREDITS
    await no_drift(live)


async def test_partial_refunds_add_up_to_the_whole_and_no_more(
    live: Live, http: httpx.AsyncClient, admin: Operator
) -> None:
    caller = await new_caller(http)
    payment_id, _ = await buy_with_stripe(http, caller)

    first = (await refund(http, admin, payment_id, 2500)).json()
    assert (first["credits_taken"], first["status"]) == (275, "succeeded")  # 1100 × ¼
    assert (await detail(http, admin, payment_id))["status"] == "partially_refunded"
    second = (await refund(http, admin, payment_id, 3333)).json()
    # Counted on the running total: ⌊1100 × 5833 / 10000⌋ − 275 = 641 − 275.
    assert second["credits_taken"] == 366
    over = await refund(http, admin, payment_id, AMOUNT - 5833 + 1)
    assert over.status_code == 409, over.text
    rest = await refund(http, admin, payment_id)  # no amount: all that remains
    assert rest.status_code == 200, rest.text
    assert (rest.json()["amount_minor"], rest.json()["credits_taken"]) == (4167, 459)

    await stripe_quiet(http)
    shown = await detail(http, admin, payment_id)
    assert (shown["status"], shown["refundable_minor"]) == ("refunded", 0)
    credits, _, rows = await account(live.runtime.db, caller.user_id)
    assert credits == BONUS
    assert taken_back(rows) == [-275, -366, -459]
    assert sum(taken_back(rows)) == -CREDITS
    await no_drift(live)


async def test_a_refund_larger_than_the_payment_is_refused_and_changes_nothing(
    live: Live, http: httpx.AsyncClient, admin: Operator
) -> None:
    caller = await new_caller(http)
    payment_id, _ = await buy_with_stripe(http, caller)
    refused = await refund(http, admin, payment_id, AMOUNT + 1)
    assert refused.status_code == 409, refused.text
    assert refused.json()["detail"] == (
        "Cannot refund 100.01 CNY: 100.00 CNY of the order remains refundable"
    )
    assert (await refund(http, admin, str(uuid.uuid4()))).status_code == 404
    shown = await detail(http, admin, payment_id)
    assert (shown["status"], shown["refunds"]) == ("completed", [])
    assert (await account(live.runtime.db, caller.user_id))[0] == BONUS + CREDITS


async def test_concurrent_refunds_never_pass_the_amount_paid(
    live: Live, http: httpx.AsyncClient, admin: Operator
) -> None:
    caller = await new_caller(http)
    payment_id, _session_id = await buy_with_stripe(http, caller)

    answers = await asyncio.gather(*(refund(http, admin, payment_id, 3000) for _ in range(5)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 200, 200, 409, 409], [a.text for a in answers]

    await stripe_quiet(http)
    shown = await detail(http, admin, payment_id)
    assert shown["refundable_minor"] == 1000
    assert sum(r["amount_minor"] for r in shown["refunds"]) == 9000
    assert all(r["status"] == "succeeded" for r in shown["refunds"])
    charges = [
        e["data"]["object"]
        for e in await stripe_quiet(http)
        if e["type"] == "charge.refunded"
        and e["data"]["object"]["payment_intent"] == shown["transaction_id"]
    ]
    assert max(c["amount_refunded"] for c in charges) == 9000
    credits, _, rows = await account(live.runtime.db, caller.user_id)
    assert sum(taken_back(rows)) == -990  # ⌊1100 × 9000 / 10000⌋
    assert credits == BONUS + CREDITS - 990
    await no_drift(live)


async def test_credits_already_spent_are_recorded_as_a_shortfall(
    live: Live, http: httpx.AsyncClient, admin: Operator
) -> None:
    caller = await new_caller(http)
    payment_id, _ = await buy_with_stripe(http, caller)
    async with live.runtime.db.transaction() as session:
        await ledger.charge(session, caller.user_id, 1150, key=f"test-spend:{uuid.uuid4()}")

    body = (await refund(http, admin, payment_id)).json()
    assert (body["status"], body["credits_taken"], body["credits_shortfall"]) == (
        "succeeded",
        50,
        CREDITS - 50,
    )
    await stripe_quiet(http)
    credits, reserved, rows = await account(live.runtime.db, caller.user_id)
    assert (credits, reserved) == (0, 0)
    assert taken_back(rows) == [-50]
    await no_drift(live)


async def test_reserved_credits_are_not_taken_back(
    live: Live, http: httpx.AsyncClient, admin: Operator
) -> None:
    caller = await new_caller(http)
    payment_id, _ = await buy_with_stripe(http, caller)
    async with live.runtime.db.transaction() as session:
        await ledger.reserve(session, caller.user_id, 1000, key=f"test-hold:{uuid.uuid4()}")

    body = (await refund(http, admin, payment_id)).json()
    assert (body["credits_taken"], body["credits_shortfall"]) == (200, 900)
    await stripe_quiet(http)
    credits, reserved, _ = await account(live.runtime.db, caller.user_id)
    assert (credits, reserved) == (1000, 1000)
    await no_drift(live)


async def test_a_refund_while_the_user_spends_keeps_the_ledger_exact(
    live: Live, http: httpx.AsyncClient, admin: Operator
) -> None:
    caller = await new_caller(http)
    payment_id, _ = await buy_with_stripe(http, caller)
    spent: list[int] = []

    async def spend(n: int) -> None:
        try:
            async with live.runtime.db.transaction() as session:
                await ledger.charge(
                    session, caller.user_id, 100, key=f"test-spend:{n}:{uuid.uuid4()}"
                )
            spent.append(100)
        except ledger.InsufficientCredits:
            pass

    results = await asyncio.gather(refund(http, admin, payment_id), *(spend(n) for n in range(12)))
    body = results[0].json()
    assert body["status"] == "succeeded", body
    assert body["credits_taken"] + body["credits_shortfall"] == CREDITS
    await stripe_quiet(http)
    credits, reserved, rows = await account(live.runtime.db, caller.user_id)
    assert credits == BONUS + CREDITS - sum(spent) - body["credits_taken"]
    assert credits >= 0 and reserved == 0
    assert taken_back(rows) == ([-body["credits_taken"]] if body["credits_taken"] else [])
    await no_drift(live)


# ---------------------------------------------------------------------------------------------
# Refunds and disputes from Stripe's side
# ---------------------------------------------------------------------------------------------


async def test_a_refund_made_in_stripes_dashboard_is_applied_once(
    live: Live, http: httpx.AsyncClient, admin: Operator
) -> None:
    caller = await new_caller(http)
    payment_id, session_id = await buy_with_stripe(http, caller)

    made = await http.post(f"{STRIPE}/_control/sessions/{session_id}/refund", json={"amount": 4000})
    assert made.status_code == 200, made.text
    events = await stripe_quiet(http)
    refunded_event = events[-1]
    assert refunded_event["type"] == "charge.refunded"

    shown = await detail(http, admin, payment_id)
    [row] = shown["refunds"]
    assert (row["kind"], row["status"], row["amount_minor"], row["actor"]) == (
        "refund",
        "succeeded",
        4000,
        "stripe",
    )
    # Stripe's charge no longer lists its refunds: the cumulative total names this one.
    assert row["gateway_id"].startswith("ch_") and row["gateway_id"].endswith(":refunded:4000")
    assert made.json()["id"].startswith("re_")
    assert row["credits_taken"] == 440
    assert (shown["status"], shown["refundable_minor"]) == ("partially_refunded", 6000)

    # Stripe delivers again (a lost acknowledgement): nothing changes.
    again = await http.post(f"{STRIPE}/_control/events/{refunded_event['id']}/resend", json={})
    assert again.json()["status"] == 200
    # A forgery of the same event is refused and changes nothing either.
    forged = await http.post(
        f"{STRIPE}/_control/events/{refunded_event['id']}/resend", json={"forged": True}
    )
    assert forged.json()["status"] == 400
    assert len((await detail(http, admin, payment_id))["refunds"]) == 1
    credits, _, rows = await account(live.runtime.db, caller.user_id)
    assert credits == BONUS + CREDITS - 440
    assert taken_back(rows) == [-440]

    # The rest, refunded by an operator, takes the remaining credits.
    rest = (await refund(http, admin, payment_id)).json()
    assert (rest["amount_minor"], rest["credits_taken"]) == (6000, 660)
    await stripe_quiet(http)
    assert (await account(live.runtime.db, caller.user_id))[0] == BONUS
    await no_drift(live)


async def test_a_dispute_takes_the_credits_back_until_it_is_won(
    live: Live, http: httpx.AsyncClient, admin: Operator
) -> None:
    caller = await new_caller(http)
    payment_id, session_id = await buy_with_stripe(http, caller)

    opened = await http.post(f"{STRIPE}/_control/sessions/{session_id}/dispute")
    assert opened.status_code == 200, opened.text
    dispute_id = opened.json()["id"]
    await stripe_quiet(http)
    shown = await detail(http, admin, payment_id)
    assert shown["status"] == "disputed"
    [row] = shown["refunds"]
    assert (row["kind"], row["status"], row["credits_taken"]) == ("dispute", "pending", CREDITS)
    assert (await account(live.runtime.db, caller.user_id))[0] == BONUS
    refused = await refund(http, admin, payment_id)
    assert refused.status_code == 409 and "dispute" in refused.json()["detail"]

    closed = await http.post(
        f"{STRIPE}/_control/disputes/{dispute_id}/close", json={"outcome": "won"}
    )
    assert closed.status_code == 200, closed.text
    await stripe_quiet(http)
    shown = await detail(http, admin, payment_id)
    assert (shown["status"], shown["refunds"][0]["status"]) == ("completed", "won")
    credits, _, rows = await account(live.runtime.db, caller.user_id)
    assert credits == BONUS + CREDITS
    assert [(k, d) for k, d, _ in rows if k in ("payment_refund", "dispute_won")] == [
        ("payment_refund", -CREDITS),
        ("dispute_won", CREDITS),
    ]
    await no_drift(live)


async def test_a_lost_dispute_keeps_the_credits_taken(
    live: Live, http: httpx.AsyncClient, admin: Operator
) -> None:
    caller = await new_caller(http)
    payment_id, session_id = await buy_with_stripe(http, caller)
    async with live.runtime.db.transaction() as session:
        await ledger.charge(session, caller.user_id, 700, key=f"test-spend:{uuid.uuid4()}")

    dispute_id = (await http.post(f"{STRIPE}/_control/sessions/{session_id}/dispute")).json()["id"]
    await http.post(f"{STRIPE}/_control/disputes/{dispute_id}/close", json={"outcome": "lost"})
    events = await stripe_quiet(http)
    assert [e["type"] for e in events[-2:]] == ["charge.dispute.created", "charge.dispute.closed"]

    shown = await detail(http, admin, payment_id)
    [row] = shown["refunds"]
    assert (row["status"], row["credits_taken"], row["credits_shortfall"]) == ("lost", 500, 600)
    assert (shown["status"], shown["refundable_minor"]) == ("refunded", 0)
    # Its closing, delivered again, changes nothing.
    await http.post(f"{STRIPE}/_control/events/{events[-1]['id']}/resend", json={})
    credits, _, rows = await account(live.runtime.db, caller.user_id)
    assert credits == 0
    assert taken_back(rows) == [-500]
    await no_drift(live)


# ---------------------------------------------------------------------------------------------
# The console's search
# ---------------------------------------------------------------------------------------------


async def test_operators_search_payments(
    live: Live, http: httpx.AsyncClient, admin: Operator
) -> None:
    caller = await new_caller(http)
    payment_id, _ = await buy_with_stripe(http, caller)
    support = await operator(http, live.runtime, "support")

    found = await http.get(
        "/api/admin/payments",
        params={"user_id": str(caller.user_id), "provider": "stripe", "status": "completed"},
        headers=support.headers,
    )
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["total"] == 1
    [shown] = body["payments"]
    assert (shown["payment_id"], shown["amount_minor"], shown["credits"]) == (
        payment_id,
        AMOUNT,
        CREDITS,
    )
    none = await http.get(
        "/api/admin/payments",
        params={"user_id": str(caller.user_id), "status": "refunded"},
        headers=support.headers,
    )
    assert none.json()["total"] == 0
    later = await http.get(
        "/api/admin/payments",
        params={"user_id": str(caller.user_id), "since": "2999-01-01T00:00:00Z"},
        headers=support.headers,
    )
    assert later.json()["total"] == 0
    # Support reads, but only an admin refunds.
    assert (await refund(http, support, payment_id)).status_code == 403
    async with live.runtime.db.session() as session:
        rows = await session.scalar(
            select(func.count())
            .select_from(PaymentRefund)
            .where(PaymentRefund.payment_id == uuid.UUID(payment_id))
        )
        assert rows == 0
        assert await session.get(Payment, uuid.UUID(payment_id)) is not None
        assert (
            await session.scalar(
                select(func.count())
                .select_from(PaymentEvent)
                .where(PaymentEvent.payment_id == uuid.UUID(payment_id))
            )
            == 1
        )


# ---------------------------------------------------------------------------------------------
# WeChat Pay: refunds answered PROCESSING, settled by their notification
# ---------------------------------------------------------------------------------------------


async def until_refund_settles(
    http: httpx.AsyncClient, admin: Operator, payment_id: str, refund_id: str
) -> dict[str, Any]:
    """The refund once WeChat's notification has moved it out of pending."""
    async with asyncio.timeout(15):
        while True:
            shown = await detail(http, admin, payment_id)
            row: dict[str, Any] = next(r for r in shown["refunds"] if r["refund_id"] == refund_id)
            if row["status"] != "pending":
                return row
            await asyncio.sleep(0.05)


async def test_a_wechat_refund_takes_the_credits_when_its_notification_says_success(
    live: Live, http: httpx.AsyncClient, admin: Operator
) -> None:
    caller = await new_caller(http)
    payment_id = await buy_with_wechat(http, caller)

    asked = await refund(http, admin, payment_id, 5000)
    assert asked.status_code == 200, asked.text
    body = asked.json()
    assert (body["status"], body["credits_taken"]) == ("pending", 0)  # WeChat: PROCESSING
    row = await until_refund_settles(http, admin, payment_id, body["refund_id"])
    assert (row["status"], row["credits_taken"], row["gateway_id"]) == (
        "succeeded",
        550,
        body["gateway_id"],
    )
    shown = await detail(http, admin, payment_id)
    assert (shown["status"], shown["refundable_minor"]) == ("partially_refunded", 5000)
    assert [e["outcome"] for e in shown["events"]] == ["credited", "refund_recorded"]

    out_refund_no = uuid.UUID(body["refund_id"]).hex
    again = await http.post(f"{WECHAT}/_control/refunds/{out_refund_no}/notify", json={})
    assert again.json()["status"] == 204
    forged = await http.post(
        f"{WECHAT}/_control/refunds/{out_refund_no}/notify", json={"forged": True}
    )
    assert forged.json()["status"] == 400
    shown = await detail(http, admin, payment_id)
    assert [r["status"] for r in shown["refunds"]] == ["succeeded"]
    assert [e["outcome"] for e in shown["events"]] == ["credited", "refund_recorded"]
    credits, _, rows = await account(live.runtime.db, caller.user_id)
    assert credits == BONUS + CREDITS - 550
    assert taken_back(rows) == [-550]

    # WeChat's order now reads REFUND: that is no payment to credit.
    gateway = live.runtime.payment_gateways["wechat"]
    hex_id = uuid.UUID(payment_id).hex
    assert (await gateway.query(hex_id, hex_id)).state == "refunded"

    rest = (await refund(http, admin, payment_id)).json()
    assert rest["amount_minor"] == 5000
    row = await until_refund_settles(http, admin, payment_id, rest["refund_id"])
    assert row["credits_taken"] == 550
    assert (await detail(http, admin, payment_id))["status"] == "refunded"
    assert (await account(live.runtime.db, caller.user_id))[0] == BONUS
    await no_drift(live)


async def test_a_closed_wechat_refund_takes_nothing_and_frees_its_amount(
    live: Live, http: httpx.AsyncClient, admin: Operator
) -> None:
    caller = await new_caller(http)
    payment_id = await buy_with_wechat(http, caller)
    await http.post(f"{WECHAT}/_control/refund_outcome", json={"outcome": "CLOSED"})
    try:
        body = (await refund(http, admin, payment_id)).json()
        row = await until_refund_settles(http, admin, payment_id, body["refund_id"])
    finally:
        await http.post(f"{WECHAT}/_control/refund_outcome", json={"outcome": "SUCCESS"})
    assert (row["status"], row["credits_taken"]) == ("failed", 0)
    shown = await detail(http, admin, payment_id)
    assert (shown["status"], shown["refundable_minor"]) == ("completed", AMOUNT)
    assert (await account(live.runtime.db, caller.user_id))[0] == BONUS + CREDITS
    await no_drift(live)


async def test_an_order_refunded_before_it_was_credited_grants_nothing(
    live: Live, http: httpx.AsyncClient
) -> None:
    """WeChat's trade_state REFUND (paid, then refunded) is not a payment to credit."""
    caller = await new_caller(http)
    created = await http.post(
        "/api/payments/wechat/create",
        headers=bearer(caller),
        json={"amount": AMOUNT // 100, "credits": CREDITS},
    )
    payment_id = uuid.UUID(created.json()["payment_id"])
    async with live.runtime.db.transaction() as session:
        outcome = await service.settle(
            session,
            payment_id,
            service.Report("refunded", AMOUNT, "CNY", transaction_id="4200000000"),
            gateway="wechat",
        )
    assert outcome == "refunded_unpaid"
    async with live.runtime.db.session() as session:
        payment = await session.get_one(Payment, payment_id)
        assert payment.status == "refunded"
    credits, _, rows = await account(live.runtime.db, caller.user_id)
    assert credits == BONUS
    assert [kind for kind, _, _ in rows] == ["signup_bonus"]


async def test_a_refund_the_gateway_did_not_answer_stays_pending_and_can_be_retried(
    live: Live, http: httpx.AsyncClient, admin: Operator
) -> None:
    caller = await new_caller(http)
    payment_id = await buy_with_wechat(http, caller)
    await http.post(f"{WECHAT}/_control/faults", json={"next_request": "system_error"})

    unanswered = await refund(http, admin, payment_id, 2000)
    assert unanswered.status_code == 503, unanswered.text
    shown = await detail(http, admin, payment_id)
    [row] = shown["refunds"]
    assert (row["status"], row["gateway_id"]) == ("pending", None)
    assert shown["refundable_minor"] == AMOUNT - 2000  # held until it is settled
    retry = f"/api/admin/payments/{payment_id}/refunds/{row['refund_id']}/retry"
    elsewhere = f"/api/admin/payments/{uuid.uuid4()}/refunds/{row['refund_id']}/retry"
    assert (await http.post(elsewhere, headers=admin.headers)).status_code == 404

    retried = await http.post(retry, headers=admin.headers)
    assert retried.status_code == 200, retried.text
    settled = await until_refund_settles(http, admin, payment_id, row["refund_id"])
    assert (settled["status"], settled["credits_taken"]) == ("succeeded", 220)
    assert (await http.post(retry, headers=admin.headers)).status_code == 409
    async with live.runtime.db.session() as session:
        audit = list(
            await session.scalars(
                select(AuditEntry.after).where(AuditEntry.target_id == payment_id)
            )
        )
    assert [a["status"] if a else None for a in audit] == ["pending", "pending"]
    assert (await account(live.runtime.db, caller.user_id))[0] == BONUS + CREDITS - 220
    await no_drift(live)


async def test_the_command_line_refunds_through_the_same_flow(
    live: Live, http: httpx.AsyncClient
) -> None:
    """What `vidgate payments refund PAYMENT_ID [--amount N] --reason R` calls."""
    caller = await new_caller(http)
    payment_id, _ = await buy_with_stripe(http, caller)
    async with live.runtime.db.session() as session:
        row = await flows.refund_payment(
            live.runtime,
            session,
            uuid.UUID(payment_id),
            command_line(),
            amount_minor=5000,
            reason="chargeback avoided",
        )
    assert (row.status, row.credits_taken, row.actor) == ("succeeded", 550, command_line().name)
    await stripe_quiet(http)
    async with live.runtime.db.session() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.target_id == payment_id))
    assert entry is not None
    assert (entry.actor, entry.actor_id, entry.reason) == (
        command_line().name,
        None,
        "chargeback avoided",
    )
    await no_drift(live)
