"""What the gateways' refund and dispute notifications say, read by their adapters alone: Stripe's
`charge.refunded` (with and without the charge's refunds listed) and `charge.dispute.*`, and
WeChat Pay's encrypted REFUND.* notifications from its emulator."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from vidgate.emulators.stripe import sign
from vidgate.emulators.wechatpay import WeChatPayEmulator, generate_merchant_keys
from vidgate.payments.gateway import (
    CheckoutRequest,
    InvalidNotification,
    RefundNotice,
    RefundRefused,
    RefundRequest,
)
from vidgate.payments.stripe_gateway import StripeGateway
from vidgate.payments.wechat import WeChatPayGateway

WEBHOOK_SECRET = "whsec_refunds_0123456789abcdef"


@pytest.fixture
async def stripe_gateway() -> AsyncIterator[StripeGateway]:
    gateway = StripeGateway(
        secret_key="sk_test_refunds_0123456789",
        webhook_secret=WEBHOOK_SECRET,
        success_url_default="https://app.example/ok",
        cancel_url_default="https://app.example/back",
    )
    yield gateway
    await gateway.aclose()


def stripe_event(event_type: str, obj: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    body = json.dumps(
        {"id": "evt_1", "object": "event", "type": event_type, "data": {"object": obj}}
    ).encode()
    return {"Stripe-Signature": sign(body, WEBHOOK_SECRET, int(time.time()))}, body


CHARGE = {
    "id": "ch_1",
    "object": "charge",
    "amount": 10000,
    "amount_refunded": 4000,
    "currency": "cny",
    "payment_intent": "pi_1",
}


def test_charge_refunded_without_the_list_reports_the_cumulative_total(
    stripe_gateway: StripeGateway,
) -> None:
    event = stripe_gateway.verify_notification(*stripe_event("charge.refunded", CHARGE))
    assert event.state is None
    assert event.refunds == (
        RefundNotice(
            kind="refund",
            gateway_id="ch_1:refunded:4000",
            state="succeeded",
            amount_minor=None,
            currency="CNY",
            transaction_id="pi_1",
            refunded_total=4000,
        ),
    )


def test_charge_refunded_with_the_list_reports_each_refund(
    stripe_gateway: StripeGateway,
) -> None:
    refunds = [
        {
            "id": "re_2",
            "object": "refund",
            "amount": 1000,
            "currency": "cny",
            "status": "pending",
            "metadata": {},
        },
        {
            "id": "re_1",
            "object": "refund",
            "amount": 3000,
            "currency": "cny",
            "status": "succeeded",
            "payment_intent": "pi_1",
            "metadata": {"refund_id": "ab" * 16},
        },
    ]
    charge = {**CHARGE, "refunds": {"object": "list", "data": refunds}}
    event = stripe_gateway.verify_notification(*stripe_event("charge.refunded", charge))
    assert [(n.gateway_id, n.state, n.amount_minor, n.refund_id) for n in event.refunds] == [
        ("re_2", "pending", 1000, None),
        ("re_1", "succeeded", 3000, "ab" * 16),
    ]
    assert {n.transaction_id for n in event.refunds} == {"pi_1"}


@pytest.mark.parametrize(
    ("event_type", "status", "state"),
    [
        ("charge.dispute.created", "needs_response", "pending"),
        ("charge.dispute.closed", "won", "won"),
        ("charge.dispute.closed", "warning_closed", "won"),
        ("charge.dispute.closed", "lost", "lost"),
    ],
)
def test_disputes_open_pending_and_close_won_or_lost(
    stripe_gateway: StripeGateway, event_type: str, status: str, state: str
) -> None:
    dispute = {
        "id": "dp_1",
        "object": "dispute",
        "amount": 10000,
        "currency": "cny",
        "charge": "ch_1",
        "payment_intent": "pi_1",
        "status": status,
    }
    event = stripe_gateway.verify_notification(*stripe_event(event_type, dispute))
    [notice] = event.refunds
    assert (notice.kind, notice.gateway_id, notice.state, notice.amount_minor) == (
        "dispute",
        "dp_1",
        state,
        10000,
    )


def test_a_dispute_event_without_a_dispute_is_refused(stripe_gateway: StripeGateway) -> None:
    with pytest.raises(InvalidNotification):
        stripe_gateway.verify_notification(*stripe_event("charge.dispute.created", CHARGE))


@pytest.fixture
async def wechat() -> AsyncIterator[tuple[WeChatPayEmulator, WeChatPayGateway]]:
    """The emulator served in-process, and a gateway speaking to it."""
    keys = generate_merchant_keys()
    base = "http://wechat.test/_emulator/wechatpay"
    emulator = WeChatPayEmulator(
        mchid="1900000001",
        appid="wx0000000000000001",
        apiv3_key="k" * 32,
        merchant_public_key_pem=keys.public_key_pem,
        public_base_url=base,
        notify_retry_delays=(),  # its notifications go nowhere here: built, not delivered
    )
    app = FastAPI()
    app.include_router(emulator.router())
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    gateway = WeChatPayGateway(
        mchid="1900000001",
        appid="wx0000000000000001",
        apiv3_key="k" * 32,
        private_key_pem=keys.private_key_pem,
        cert_serial_no=keys.cert_serial_no,
        platform_public_key_pem=emulator.platform_public_key_pem,
        platform_public_key_id=emulator.platform_public_key_id,
        base_url=base,
        client=client,
    )
    yield emulator, gateway
    await emulator.aclose()
    await client.aclose()


NOWHERE = "http://127.0.0.1:9/notify"  # a closed port


async def paid_order(emulator: WeChatPayEmulator, gateway: WeChatPayGateway) -> str:
    out_trade_no = "ef" * 16
    await gateway.create(
        CheckoutRequest(
            payment_id=out_trade_no,
            amount_minor=10000,
            currency="CNY",
            credits=1100,
            description="vidgate 1,100 credits",
            notify_url=NOWHERE,
            expires_at=datetime.now(UTC) + timedelta(minutes=30),
        )
    )
    await emulator.pay(out_trade_no)
    return out_trade_no


def refund_request(out_trade_no: str, refund_id: str, amount: int) -> RefundRequest:
    return RefundRequest(
        payment_id=out_trade_no,
        refund_id=refund_id,
        provider_ref=out_trade_no,
        transaction_id=None,
        amount_minor=amount,
        total_minor=10000,
        currency="CNY",
        reason="asked",
        notify_url=NOWHERE,
    )


@pytest.mark.parametrize(
    ("status", "state"), [("SUCCESS", "succeeded"), ("ABNORMAL", "pending"), ("CLOSED", "failed")]
)
async def test_wechat_refunds_are_answered_processing_then_notified(
    wechat: tuple[WeChatPayEmulator, WeChatPayGateway], status: str, state: str
) -> None:
    emulator, gateway = wechat
    out_trade_no = await paid_order(emulator, gateway)
    emulator.set_refund_outcome(status)
    refund_id = "cd" * 16

    answer = await gateway.refund(refund_request(out_trade_no, refund_id, 2500))
    assert (answer.state, answer.amount_minor) == ("pending", 2500)
    again = await gateway.refund(refund_request(out_trade_no, refund_id, 2500))
    assert again.gateway_id == answer.gateway_id  # the same out_refund_no is the same refund
    assert (await gateway.query(out_trade_no, out_trade_no)).state == "refunded"
    await emulator.wait_idle()

    headers, body = emulator.refund_notification_for(refund_id)
    assert json.loads(body)["event_type"] == f"REFUND.{status}"
    event = gateway.verify_notification(headers, body)
    assert event.state is None
    [notice] = event.refunds
    assert notice == RefundNotice(
        kind="refund",
        gateway_id=answer.gateway_id,
        state=state,  # type: ignore[arg-type]
        amount_minor=2500,
        currency="CNY",
        payment_id=out_trade_no,
        transaction_id=emulator.orders[out_trade_no].transaction_id,
        refund_id=refund_id,
    )


async def test_wechat_refuses_a_refund_beyond_the_order(
    wechat: tuple[WeChatPayEmulator, WeChatPayGateway],
) -> None:
    emulator, gateway = wechat
    out_trade_no = await paid_order(emulator, gateway)
    await gateway.refund(refund_request(out_trade_no, "a1" * 16, 6000))
    with pytest.raises(RefundRefused, match="NOT_ENOUGH"):
        await gateway.refund(refund_request(out_trade_no, "a2" * 16, 4001))
    with pytest.raises(RefundRefused):
        await gateway.refund(refund_request("0" * 32, "a3" * 16, 1))


async def test_a_forged_wechat_refund_notification_is_refused(
    wechat: tuple[WeChatPayEmulator, WeChatPayGateway],
) -> None:
    emulator, gateway = wechat
    out_trade_no = await paid_order(emulator, gateway)
    await gateway.refund(refund_request(out_trade_no, "cd" * 16, 2500))
    await emulator.wait_idle()
    headers, body = emulator.refund_notification_for("cd" * 16, sign=False)
    with pytest.raises(InvalidNotification, match="signature"):
        gateway.verify_notification(headers, body)
