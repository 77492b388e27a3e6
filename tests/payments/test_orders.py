"""Orders, notifications and reconciliation through a gateway double (the gateways' own
protocol work is tested against their emulators in test_wechat.py and test_stripe.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import func, select, update

from vidgate.config import CreditPack
from vidgate.credits import service as ledger
from vidgate.credits.models import LedgerEntry
from vidgate.db.engine import Database
from vidgate.errors import BadRequest
from vidgate.payments.currency import to_major, to_minor
from vidgate.payments.flows import check_way_back
from vidgate.payments.gateway import (
    Acknowledgement,
    Checkout,
    CheckoutRequest,
    GatewayError,
    GatewayPayment,
    InvalidNotification,
    PaymentState,
    VerifiedEvent,
)
from vidgate.payments.jobs import reconcile_payments
from vidgate.payments.models import Payment, PaymentEvent
from vidgate.payments.schemas import CreatePayment
from vidgate.runtime import Runtime
from vidgate.users.models import User

from ..fixtures.signin import SignedIn, sign_in

SECRET = b"double-secret"


@dataclass
class DoubleGateway:
    """Signs notifications with an HMAC header; remembers orders; answers queries as told."""

    name: str = "stripe"
    created: list[CheckoutRequest] = field(default_factory=list)
    states: dict[str, GatewayPayment] = field(default_factory=dict)
    closed: list[str] = field(default_factory=list)
    fail_create: bool = False

    async def create(self, request: CheckoutRequest) -> Checkout:
        if self.fail_create:
            raise GatewayError("down")
        self.created.append(request)
        return Checkout(
            provider_ref=f"ref_{request.payment_id}",
            checkout_url=f"https://pay.example/{request.payment_id}",
        )

    async def query(self, payment_id: str, provider_ref: str) -> GatewayPayment:
        return self.states.get(payment_id, GatewayPayment("pending", None, None))

    async def close(self, payment_id: str, provider_ref: str) -> None:
        if self.states.get(payment_id, GatewayPayment("pending", None, None)).state == "paid":
            raise GatewayError("already paid")
        self.closed.append(payment_id)

    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> VerifiedEvent:
        expected = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(headers.get("x-double-signature", ""), expected):
            raise InvalidNotification("bad signature")
        data = json.loads(body)
        return VerifiedEvent(
            event_id=data["id"],
            state=data["state"],
            payment_id=data["payment_id"],
            provider_ref=None,
            amount_minor=data["amount"],
            currency=data["currency"],
            raw=data,
        )

    def acknowledge(self) -> Acknowledgement:
        return Acknowledgement(200, b'{"received": true}')

    def reject(self, message: str) -> Acknowledgement:
        return Acknowledgement(400, json.dumps({"detail": message}).encode())

    async def aclose(self) -> None:
        return None


def notification(
    payment_id: str,
    *,
    state: PaymentState = "paid",
    amount: int = 10000,
    currency: str = "CNY",
    event_id: str | None = None,
    signed: bool = True,
) -> tuple[dict[str, str], bytes]:
    body = json.dumps(
        {
            "id": event_id or f"evt_{uuid.uuid4().hex}",
            "state": state,
            "payment_id": payment_id,
            "amount": amount,
            "currency": currency,
        }
    ).encode()
    signature = hmac.new(SECRET if signed else b"guess", body, hashlib.sha256).hexdigest()
    return {"x-double-signature": signature, "content-type": "application/json"}, body


@pytest.fixture
async def gateway(runtime: Runtime) -> AsyncIterator[DoubleGateway]:
    double = DoubleGateway()
    saved = dict(runtime.payment_gateways)
    runtime.payment_gateways.clear()
    runtime.payment_gateways["stripe"] = double  # type: ignore[assignment]
    try:
        yield double
    finally:
        runtime.payment_gateways.clear()
        runtime.payment_gateways.update(saved)


async def order(client: httpx.AsyncClient, user: SignedIn, **overrides: Any) -> httpx.Response:
    body = {"amount": 100, "currency": "CNY", "credits": 1100, **overrides}
    return await client.post("/api/payments/stripe/create", headers=user.headers, json=body)


async def balance(db: Database, user: SignedIn, client: httpx.AsyncClient) -> tuple[int, int]:
    """(credits, purchase ledger rows) of the user."""
    me = (await client.get("/api/auth/me", headers=user.headers)).json()
    uid = uuid.UUID(me["id"])
    async with db.session() as session:
        credits = await session.scalar(select(User.credits).where(User.id == uid))
        purchases = await session.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.user_id == uid, LedgerEntry.kind == "purchase")
        )
        assert await ledger.find_drift(session) == []
    return int(credits or 0), int(purchases or 0)


async def test_an_order_matches_a_pack_and_is_private(
    client: httpx.AsyncClient, gateway: DoubleGateway
) -> None:
    user = await sign_in(client)
    created = await order(client, user, return_url="https://app.example/done")
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["status"] == "pending"
    assert (body["amount"], body["currency"], body["credits"], body["provider"]) == (
        100.0,
        "CNY",
        1100,
        "stripe",
    )
    assert body["checkout_url"] == f"https://pay.example/{uuid.UUID(body['payment_id']).hex}"
    sent = gateway.created[-1]
    assert (sent.amount_minor, sent.currency, sent.credits) == (10000, "CNY", 1100)
    assert sent.notify_url == "http://test/api/payments/stripe/webhook"
    assert sent.return_url == "https://app.example/done"

    shown = await client.get(f"/api/payments/{body['payment_id']}", headers=user.headers)
    assert shown.json() == body
    listed = await client.get("/api/payments", headers=user.headers)
    assert [p["payment_id"] for p in listed.json()["payments"]] == [body["payment_id"]]
    stranger = await sign_in(client)
    refused = await client.get(f"/api/payments/{body['payment_id']}", headers=stranger.headers)
    assert (refused.status_code, refused.json()) == (404, {"detail": "Payment not found"})
    assert (await client.get(f"/api/payments/{body['payment_id']}")).status_code == 401


async def test_return_and_cancel_urls_name_the_payment(
    client: httpx.AsyncClient, gateway: DoubleGateway
) -> None:
    """By default the payer comes back to the web app's buy page for this payment; a client's
    own URLs may carry the new payment's id through `{PAYMENT_ID}`."""
    user = await sign_in(client)
    created = await order(client, user)
    payment_id = created.json()["payment_id"]
    sent = gateway.created[-1]
    assert sent.return_url == sent.cancel_url == f"http://test/buy/?payment={payment_id}"

    created = await order(
        client,
        user,
        return_url="https://app.example/paid/{PAYMENT_ID}",
        cancel_url="https://app.example/buy?gave_up={PAYMENT_ID}",
    )
    payment_id = created.json()["payment_id"]
    sent = gateway.created[-1]
    assert sent.return_url == f"https://app.example/paid/{payment_id}"
    assert sent.cancel_url == f"https://app.example/buy?gave_up={payment_id}"

    # vidgate's own pages, written with the default port and a capital host, are fine too.
    created = await order(client, user, return_url="HTTP://Test:80/account")
    assert created.status_code == 200, created.text
    assert gateway.created[-1].return_url == "HTTP://Test:80/account"

    # Development also allows pages on loopback (`npm run dev` serves them on another port).
    created = await order(client, user, return_url="http://localhost:3000/buy/")
    assert created.status_code == 200, created.text


def test_production_sends_payers_back_only_to_listed_origins() -> None:
    allowed = ["https://pay.example", "https://app.example"]
    for url in ("https://pay.example/buy/", "https://APP.example:443/paid"):
        check_way_back(
            CreatePayment(amount=1, credits=1, return_url=url), allowed, any_loopback=False
        )
    for url in ("http://localhost:3000/buy/", "http://127.0.0.1/", "https://pay.example.evil/"):
        body = CreatePayment(amount=1, credits=1, cancel_url=url)
        with pytest.raises(BadRequest, match=r"cancel_url must be on https://pay\.example or"):
            check_way_back(body, allowed, any_loopback=False)
    check_way_back(
        CreatePayment(amount=1, credits=1, return_url="http://[::1]:3000/"),
        allowed,
        any_loopback=True,
    )


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        ({"amount": 99}, 400),  # not the pack's price
        ({"credits": 1200}, 400),  # no such pack
        ({"currency": "USD"}, 400),  # not sold in USD by default
        ({"amount": "abc"}, 422),
        ({"amount": -100}, 422),
        ({"currency": "cny"}, 422),
        ({"return_url": "javascript:alert(1)"}, 422),
        ({"cancel_url": "data:text/html,hi"}, 422),
        # The way back leads only to vidgate or a front end of this deployment: no lookalikes.
        ({"return_url": "https://app.example.evil/paid"}, 400),
        ({"return_url": "http://app.example/paid"}, 400),  # another scheme: another origin
        ({"return_url": "https://app.example:8443/paid"}, 400),
        ({"cancel_url": "https://evil.example/login"}, 400),
        ({"return_url": "https://{PAYMENT_ID}.app.example/paid"}, 400),
        ({"surprise": True}, 422),
    ],
)
async def test_orders_outside_the_catalog_are_refused_and_create_nothing(
    client: httpx.AsyncClient,
    gateway: DoubleGateway,
    db: Database,
    overrides: dict[str, Any],
    status: int,
) -> None:
    user = await sign_in(client)
    async with db.session() as session:
        before = await session.scalar(select(func.count()).select_from(Payment))
    response = await order(client, user, **overrides)
    assert response.status_code == status, response.text
    assert "detail" in response.json()
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Payment)) == before


async def test_packages_and_an_unconfigured_gateway(
    client: httpx.AsyncClient, gateway: DoubleGateway
) -> None:
    packs = (await client.get("/api/payments/packages")).json()["packages"]
    assert [(p["credits"], p["prices"]["CNY"]) for p in packs] == [
        (500, 50.0),
        (1100, 100.0),
        (6000, 500.0),
        (13000, 1000.0),
    ]
    user = await sign_in(client)
    response = await client.post(
        "/api/payments/wechat/create",
        headers=user.headers,
        json={"amount": 50, "credits": 500},
    )
    assert (response.status_code, response.json()) == (
        501,
        {"detail": "WeChat Pay is not configured on this server"},
    )


async def test_gateway_down_is_503_and_the_order_is_failed(
    client: httpx.AsyncClient, gateway: DoubleGateway, db: Database
) -> None:
    gateway.fail_create = True
    user = await sign_in(client)
    response = await order(client, user)
    assert response.status_code == 503
    listed = (await client.get("/api/payments", headers=user.headers)).json()["payments"]
    assert [p["status"] for p in listed] == ["failed"]


async def test_zero_and_three_decimal_currencies_are_charged_in_their_own_minor_units(
    client: httpx.AsyncClient,
    gateway: DoubleGateway,
    runtime: Runtime,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """¥3,000 is 3000 for Stripe, not 300000; 6.5 KWD is 6500 thousandths."""
    pack = CreditPack(credits=2000, prices={"JPY": Decimal("3000"), "KWD": Decimal("6.5")})
    monkeypatch.setattr(runtime.settings, "payment_packs", [*runtime.settings.payment_packs, pack])
    user = await sign_in(client)

    created = await order(client, user, amount=3000, currency="JPY", credits=2000)
    assert created.status_code == 200, created.text
    assert (created.json()["amount"], created.json()["currency"]) == (3000, "JPY")
    assert gateway.created[-1].amount_minor == 3000
    kwd = await order(client, user, amount="6.50", currency="KWD", credits=2000)
    assert kwd.status_code == 200, kwd.text
    assert (kwd.json()["amount"], gateway.created[-1].amount_minor) == (6.5, 6500)

    payment_id = created.json()["payment_id"]
    for amount in (300000, 3000):  # the first is what a cents-only reading would expect
        headers, body = notification(payment_id, amount=amount, currency="JPY")
        r = await client.post("/api/payments/stripe/webhook", headers=headers, content=body)
        assert r.status_code == 200
    assert await balance(db, user, client) == (100 + 2000, 1)
    async with db.session() as session:
        note = await session.scalar(
            select(LedgerEntry.note).where(LedgerEntry.reference == payment_id)
        )
    assert note == "stripe: 2000 credits for 3000 JPY"


def test_prices_carry_no_more_decimals_than_the_currency_charges() -> None:
    assert to_minor(Decimal("9.99"), "USD") == 999
    assert to_minor(Decimal("1000"), "jpy") == 1000
    assert to_major(1230, "KWD") == Decimal("1.23")
    with pytest.raises(ValueError, match="more decimals"):
        to_minor(Decimal("1000.5"), "JPY")
    CreditPack(credits=1, prices={"JPY": Decimal("150"), "KWD": Decimal("0.35"), "ISK": 990})
    for currency, price in (("JPY", "150.5"), ("KWD", "0.355"), ("USD", "0.999"), ("ISK", "9.9")):
        with pytest.raises(ValidationError, match=f"{currency} price"):
            CreditPack(credits=1, prices={currency: Decimal(price)})


async def test_paid_notification_credits_once_even_twenty_at_once(
    client: httpx.AsyncClient, gateway: DoubleGateway, db: Database
) -> None:
    user = await sign_in(client)
    payment_id = (await order(client, user)).json()["payment_id"]
    headers, body = notification(payment_id)

    async def deliver() -> int:
        r = await client.post("/api/payments/stripe/webhook", headers=headers, content=body)
        return r.status_code

    assert await asyncio.gather(*(deliver() for _ in range(20))) == [200] * 20
    assert await balance(db, user, client) == (100 + 1100, 1)
    shown = (await client.get(f"/api/payments/{payment_id}", headers=user.headers)).json()
    assert shown["status"] == "completed" and shown["paid_at"]
    assert "checkout_url" not in shown or shown["checkout_url"] is None
    async with db.session() as session:
        inbox = (
            await session.scalars(
                select(PaymentEvent.outcome).where(PaymentEvent.payment_id == uuid.UUID(payment_id))
            )
        ).all()
    assert inbox == ["credited"]

    # Another event saying paid (a gateway retry with a new id), then a late "expired": no change.
    for extra in (notification(payment_id), notification(payment_id, state="expired")):
        r = await client.post("/api/payments/stripe/webhook", headers=extra[0], content=extra[1])
        assert r.status_code == 200
    assert await balance(db, user, client) == (1200, 1)
    shown = (await client.get(f"/api/payments/{payment_id}", headers=user.headers)).json()
    assert shown["status"] == "completed"


async def test_forged_and_tampered_notifications_change_nothing(
    client: httpx.AsyncClient, gateway: DoubleGateway, db: Database
) -> None:
    user = await sign_in(client)
    payment_id = (await order(client, user)).json()["payment_id"]
    forged = notification(payment_id, signed=False)
    r = await client.post("/api/payments/stripe/webhook", headers=forged[0], content=forged[1])
    assert r.status_code == 400
    unsigned = await client.post(
        "/api/payments/stripe/webhook", content=forged[1], headers={"content-type": "text/plain"}
    )
    assert unsigned.status_code == 400
    cheap = notification(payment_id, amount=1)  # signed, but for one fen
    r = await client.post("/api/payments/stripe/webhook", headers=cheap[0], content=cheap[1])
    assert r.status_code == 200  # taken in (the gateway must not resend it) but not credited
    other_currency = notification(payment_id, currency="USD")
    r = await client.post(
        "/api/payments/stripe/webhook", headers=other_currency[0], content=other_currency[1]
    )
    stranger = notification(str(uuid.uuid4()))  # a payment that does not exist
    r = await client.post("/api/payments/stripe/webhook", headers=stranger[0], content=stranger[1])
    assert r.status_code == 200
    assert await balance(db, user, client) == (100, 0)
    shown = (await client.get(f"/api/payments/{payment_id}", headers=user.headers)).json()
    assert shown["status"] == "pending"
    async with db.session() as session:
        outcomes = sorted(
            (
                await session.scalars(
                    select(PaymentEvent.outcome).where(
                        PaymentEvent.event_id.in_(
                            [json.loads(n[1])["id"] for n in (cheap, other_currency, stranger)]
                        )
                    )
                )
            ).all()
        )
    assert outcomes == ["amount_mismatch", "amount_mismatch", "unknown_payment"]


def _context(runtime: Runtime, gateway: DoubleGateway) -> Any:
    with_double = dataclasses.replace(runtime, payment_gateways={"stripe": gateway})
    return SimpleNamespace(additional_context={"runtime": with_double})


async def _age(db: Database, payment_id: str, *, created: timedelta, expires: timedelta) -> None:
    now = datetime.now(UTC)
    async with db.session() as session:
        await session.execute(
            update(Payment)
            .where(Payment.id == uuid.UUID(payment_id))
            .values(created_at=now - created, expires_at=now + expires)
        )
        await session.commit()


async def test_reconciliation_credits_a_lost_notification_and_expires_unpaid_orders(
    client: httpx.AsyncClient, gateway: DoubleGateway, runtime: Runtime, db: Database
) -> None:
    user = await sign_in(client)
    paid = (await order(client, user)).json()["payment_id"]
    unpaid = (await order(client, user)).json()["payment_id"]
    fresh = (await order(client, user)).json()["payment_id"]
    await _age(db, paid, created=timedelta(minutes=5), expires=timedelta(minutes=25))
    await _age(db, unpaid, created=timedelta(minutes=40), expires=timedelta(minutes=-10))
    now = datetime.now(UTC)
    gateway.states[uuid.UUID(paid).hex] = GatewayPayment("paid", 10000, "CNY", now, "pi_1")
    gateway.states[uuid.UUID(fresh).hex] = GatewayPayment("paid", 10000, "CNY", now, "pi_2")

    await reconcile_payments(_context(runtime, gateway), 0)
    statuses = {
        pid: (await client.get(f"/api/payments/{pid}", headers=user.headers)).json()["status"]
        for pid in (paid, unpaid, fresh)
    }
    # The fresh order is left to its notification for a few minutes.
    assert statuses == {paid: "completed", unpaid: "expired", fresh: "pending"}
    assert gateway.closed == [uuid.UUID(unpaid).hex]
    assert await balance(db, user, client) == (100 + 1100, 1)
    # A second run changes nothing; an expired order is never credited by a late report either.
    await reconcile_payments(_context(runtime, gateway), 0)
    late = notification(unpaid, state="expired")
    await client.post("/api/payments/stripe/webhook", headers=late[0], content=late[1])
    assert await balance(db, user, client) == (1200, 1)


async def test_failed_then_paid_and_expired_then_paid(
    client: httpx.AsyncClient, gateway: DoubleGateway, db: Database
) -> None:
    """A failed or expired mark is vidgate's view; if the gateway later reports the money taken,
    the credits are owed (once). A failure report after completion changes nothing."""
    user = await sign_in(client)
    failed = (await order(client, user)).json()["payment_id"]
    expired = (await order(client, user)).json()["payment_id"]

    async def post(payment_id: str, state: PaymentState) -> str:
        headers, body = notification(payment_id, state=state)
        r = await client.post("/api/payments/stripe/webhook", headers=headers, content=body)
        assert r.status_code == 200
        shown = await client.get(f"/api/payments/{payment_id}", headers=user.headers)
        status: str = shown.json()["status"]
        return status

    assert await post(failed, "failed") == "failed"
    assert await post(expired, "expired") == "expired"
    assert await balance(db, user, client) == (100, 0)
    assert await post(failed, "paid") == "completed"
    assert await post(expired, "paid") == "completed"
    assert await balance(db, user, client) == (100 + 2 * 1100, 2)
    assert await post(failed, "failed") == "completed"
    assert await balance(db, user, client) == (2300, 2)


async def test_only_the_orders_own_gateway_settles_it(
    client: httpx.AsyncClient, runtime: Runtime, db: Database
) -> None:
    """A genuine notification from the other gateway that names a WeChat order (the same id
    form, another merchant's order) credits nothing; the order's own gateway still does."""
    wechat, stripe = DoubleGateway(name="wechat"), DoubleGateway(name="stripe")
    saved = dict(runtime.payment_gateways)
    runtime.payment_gateways.clear()
    runtime.payment_gateways.update({"wechat": wechat, "stripe": stripe})  # type: ignore[dict-item]
    try:
        user = await sign_in(client)
        created = await client.post(
            "/api/payments/wechat/create",
            headers=user.headers,
            json={"amount": 100, "currency": "CNY", "credits": 1100},
        )
        assert created.status_code == 200, created.text
        payment_id = created.json()["payment_id"]

        headers, body = notification(payment_id)
        r = await client.post("/api/payments/stripe/webhook", headers=headers, content=body)
        assert r.status_code == 200  # genuine, so acknowledged; but not this gateway's order
        assert await balance(db, user, client) == (100, 0)
        shown = await client.get(f"/api/payments/{payment_id}", headers=user.headers)
        assert shown.json()["status"] == "pending"
        async with db.session() as session:
            outcome = await session.scalar(
                select(PaymentEvent.outcome).where(PaymentEvent.event_id == json.loads(body)["id"])
            )
        assert outcome == "gateway_mismatch"

        headers, body = notification(payment_id)
        r = await client.post("/api/payments/wechat/notify", headers=headers, content=body)
        assert r.status_code == 200
        assert await balance(db, user, client) == (1200, 1)
    finally:
        runtime.payment_gateways.clear()
        runtime.payment_gateways.update(saved)
