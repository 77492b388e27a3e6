"""The WeChat Pay gateway against the WeChat Pay emulator, both over real HTTP on loopback.

A second small app plays the merchant's notification endpoint: it verifies what arrives with the
gateway under test and acknowledges or rejects it. The gateway signs and verifies with
`wechatpayv3`'s helpers, the emulator with `cryptography` directly, so each checks the other.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response
from wechatpayv3.utils import load_private_key, rsa_sign

from vidgate.emulators.wechatpay import (
    PREFIX,
    MerchantKeys,
    PaymentRefused,
    WeChatPayEmulator,
    generate_merchant_keys,
    generate_platform_key,
)
from vidgate.payments.gateway import (
    CheckoutRequest,
    GatewayError,
    InvalidNotification,
    VerifiedEvent,
)
from vidgate.payments.wechat import WeChatOrderNotFound, WeChatPayError, WeChatPayGateway

from ..fixtures.clock import FakeClock
from ..fixtures.loopback import Switch, closed_port_url, serve_on_loopback

MCHID = "1900000109"
APPID = "wxd678efh567hg6787"
APIV3_KEY = "0123456789abcdefghijABCDEFGHIJ01"  # 32 characters
OTHER_APIV3_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBA987654"
AMOUNT = 1234  # fen: ¥12.34
DESCRIPTION = "vidgate 1,100 credits"


@pytest.fixture(scope="module")
def merchant() -> MerchantKeys:
    return generate_merchant_keys()


# ---------------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------------


@dataclass
class Receiver:
    """The merchant's notification endpoint, verifying with the current test's gateway."""

    gateway: WeChatPayGateway | None = None
    events: list[VerifiedEvent] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    fail_next: int = 0  # answer this many deliveries with HTTP 500 before verifying
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def reset(self, gateway: WeChatPayGateway) -> None:
        self.gateway = gateway
        self.events.clear()
        self.rejected.clear()
        self.fail_next = 0
        self.arrived.clear()

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/wechat/notify")
        async def notify(request: Request) -> Response:
            assert self.gateway is not None
            body = await request.body()
            if self.fail_next > 0:
                self.fail_next -= 1
                return Response(status_code=500)
            try:
                event = self.gateway.verify_notification(request.headers, body)
            except InvalidNotification as exc:
                self.rejected.append(str(exc))
                ack = self.gateway.reject(str(exc))
            else:
                self.events.append(event)
                ack = self.gateway.acknowledge()
            self.arrived.set()
            return Response(ack.body, status_code=ack.status_code, media_type=ack.content_type)

        return app


@dataclass
class Servers:
    switch: Switch
    base: str
    receiver: Receiver
    receiver_base: str


@pytest.fixture(scope="module")
async def servers() -> AsyncIterator[Servers]:
    switch, receiver = Switch(), Receiver()
    async with (
        serve_on_loopback(switch) as base,
        serve_on_loopback(receiver.app()) as receiver_base,
    ):
        yield Servers(switch, base, receiver, receiver_base)


def make_gateway(
    emulator: WeChatPayEmulator, merchant: MerchantKeys, **overrides: Any
) -> WeChatPayGateway:
    """The gateway as vidgate's development settings would configure it for this emulator."""
    kwargs: dict[str, Any] = {
        "mchid": MCHID,
        "appid": APPID,
        "apiv3_key": APIV3_KEY,
        "private_key_pem": merchant.private_key_pem,
        "cert_serial_no": merchant.cert_serial_no,
        "platform_public_key_pem": emulator.platform_public_key_pem,
        "platform_public_key_id": emulator.platform_public_key_id,
        "base_url": emulator.public_base_url,
        "timeout": 5.0,
    }
    kwargs.update(overrides)
    return WeChatPayGateway(**kwargs)


@dataclass
class Env:
    emulator: WeChatPayEmulator
    gateway: WeChatPayGateway
    clock: FakeClock
    base: str  # the gateway's base URL: where the emulator is mounted
    notify_url: str
    receiver: Receiver
    merchant: MerchantKeys

    def gateway_with(self, **overrides: Any) -> WeChatPayGateway:
        return make_gateway(self.emulator, self.merchant, **overrides)

    def checkout(self, payment_id: str, **overrides: Any) -> CheckoutRequest:
        values: dict[str, Any] = {
            "payment_id": payment_id,
            "amount_minor": AMOUNT,
            "currency": "CNY",
            "credits": 1100,
            "description": DESCRIPTION,
            "notify_url": self.notify_url,
            "expires_at": datetime.fromtimestamp(self.clock.now, UTC) + timedelta(minutes=30),
        }
        values.update(overrides)
        return CheckoutRequest(**values)


@pytest.fixture
async def env(servers: Servers, merchant: MerchantKeys) -> AsyncIterator[Env]:
    clock = FakeClock()
    clock.now = float(int(time.time()))  # order times start at the real present
    base = servers.base + PREFIX
    emulator = WeChatPayEmulator(
        mchid=MCHID,
        appid=APPID,
        apiv3_key=APIV3_KEY,
        merchant_public_key_pem=merchant.public_key_pem,
        merchant_cert_serial_no=merchant.cert_serial_no,
        public_base_url=base,
        clock=clock,
        notify_retry_delays=(0.05, 0.05, 0.05),
    )
    app = FastAPI()
    app.include_router(emulator.router())
    servers.switch.target = app
    gateway = make_gateway(emulator, merchant)
    servers.receiver.reset(gateway)
    yield Env(
        emulator,
        gateway,
        clock,
        base,
        servers.receiver_base + "/wechat/notify",
        servers.receiver,
        merchant,
    )
    await gateway.aclose()
    await emulator.aclose()
    servers.switch.target = None


async def _wait_events(receiver: Receiver, count: int) -> None:
    async with asyncio.timeout(5):
        while len(receiver.events) + len(receiver.rejected) < count:
            await receiver.arrived.wait()
            receiver.arrived.clear()


def _token(code_url: str) -> str:
    match = re.fullmatch(r"weixin://wxpay/bizpayurl\?pr=([A-Za-z0-9]+)", code_url)
    assert match is not None, code_url
    return match.group(1)


def _signed_headers(
    env: Env, method: str, path: str, body: str, *, timestamp: int | None = None
) -> dict[str, str]:
    """A merchant Authorization header built by hand (independently of the gateway)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = "N0NCE" + stamp
    key = load_private_key(env.merchant.private_key_pem)
    signature = rsa_sign(key, f"{method}\n{path}\n{stamp}\n{nonce}\n{body}\n")
    authorization = (
        f'WECHATPAY2-SHA256-RSA2048 mchid="{MCHID}",nonce_str="{nonce}",'
        f'signature="{signature}",timestamp="{stamp}",serial_no="{env.merchant.cert_serial_no}"'
    )
    return {"Authorization": authorization, "Content-Type": "application/json"}


# ---------------------------------------------------------------------------------------------
# Creating orders
# ---------------------------------------------------------------------------------------------


async def test_native_order_returns_a_code_url_and_sends_what_wechat_expects(env: Env) -> None:
    request = env.checkout("pay_native_0001")
    checkout = await env.gateway.create(request)

    assert checkout.provider_ref == "pay_native_0001"
    assert checkout.h5_url is None and checkout.checkout_url is None
    assert checkout.code_url is not None
    token = _token(checkout.code_url)
    order = env.emulator.orders["pay_native_0001"]
    assert order.token == token
    assert order.trade_type == "NATIVE"
    assert order.trade_state == "NOTPAY"
    assert order.expires_at == request.expires_at.timestamp()
    (logged,) = env.emulator.requests
    assert logged["method"] == "POST"
    assert logged["path"] == "/v3/pay/transactions/native"
    assert logged["authorized"] is True
    assert logged["status"] == 200
    body = logged["body"]
    assert body["appid"] == APPID
    assert body["mchid"] == MCHID
    assert body["description"] == DESCRIPTION
    assert body["out_trade_no"] == "pay_native_0001"
    assert body["notify_url"] == env.notify_url
    assert body["amount"] == {"total": AMOUNT, "currency": "CNY"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00", body["time_expire"])
    assert datetime.fromisoformat(body["time_expire"]) == request.expires_at.replace(microsecond=0)
    assert "scene_info" not in body


async def test_h5_order_returns_an_h5_url_to_the_pay_page(env: Env) -> None:
    checkout = await env.gateway.create(
        env.checkout("pay_h5_000001", scene="h5", client_ip="203.0.113.7")
    )

    assert checkout.code_url is None
    assert checkout.h5_url is not None
    order = env.emulator.orders["pay_h5_000001"]
    assert order.trade_type == "MWEB"
    assert checkout.h5_url.startswith(f"{env.base}/pay/{order.token}?prepay_id=")
    body = env.emulator.requests[-1]["body"]
    assert env.emulator.requests[-1]["path"] == "/v3/pay/transactions/h5"
    assert body["scene_info"] == {"payer_client_ip": "203.0.113.7", "h5_info": {"type": "Wap"}}

    async with httpx.AsyncClient(timeout=5) as browser:
        page = await browser.get(checkout.h5_url)
    assert page.status_code == 200
    assert "EMULATED" in page.text
    assert DESCRIPTION in page.text
    assert '<button type="submit">Pay ¥12.34</button>' in page.text
    assert page.headers["x-frame-options"] == "DENY"


async def test_create_refuses_what_wechat_cannot_charge_before_sending(env: Env) -> None:
    with pytest.raises(ValueError, match="CNY only"):
        await env.gateway.create(env.checkout("pay_usd_00001", currency="USD"))
    with pytest.raises(ValueError, match="IP address"):
        await env.gateway.create(env.checkout("pay_h5_noip01", scene="h5"))
    assert env.emulator.requests == []


@pytest.mark.parametrize(
    ("overrides", "field_name"),
    [
        ({"description": "x" * 128}, "/description"),
        ({"payment_id": "abc"}, "/out_trade_no"),
        ({"payment_id": "pay/with/slash"}, "/out_trade_no"),
        ({"notify_url": "https://vidgate.example/notify?user=1"}, "/notify_url"),
        ({"notify_url": "not a url"}, "/notify_url"),
        ({"expires_at": datetime.now(UTC) - timedelta(minutes=1)}, "/time_expire"),
        ({"scene": "h5", "client_ip": "not-an-ip"}, "/scene_info/payer_client_ip"),
    ],
)
async def test_create_validation_errors_come_back_as_param_error(
    env: Env, overrides: dict[str, Any], field_name: str
) -> None:
    with pytest.raises(WeChatPayError) as caught:
        await env.gateway.create(env.checkout(**{"payment_id": "pay_invalid_01", **overrides}))
    assert caught.value.status_code == 400
    assert caught.value.code == "PARAM_ERROR"
    assert env.emulator.orders == {}
    assert env.emulator.requests[-1]["status"] == 400


async def test_a_body_without_amount_gets_wechats_error_shape(env: Env) -> None:
    body = json.dumps(
        {
            "appid": APPID,
            "mchid": MCHID,
            "description": DESCRIPTION,
            "out_trade_no": "pay_noamount1",
            "notify_url": env.notify_url,
        }
    )
    headers = _signed_headers(env, "POST", "/v3/pay/transactions/native", body)
    async with httpx.AsyncClient(timeout=5) as client:
        answer = await client.post(
            env.base + "/v3/pay/transactions/native", content=body, headers=headers
        )
    assert answer.status_code == 400
    assert answer.json() == {
        "code": "PARAM_ERROR",
        "message": "amount is required",
        "detail": {"location": "body", "field": "/amount"},
    }
    # Errors are signed too.
    assert answer.headers["wechatpay-serial"] == env.emulator.platform_public_key_id


async def test_another_app_or_merchant_is_refused(env: Env) -> None:
    other_app = env.gateway_with(appid="wx0000000000000000")
    other_merchant = env.gateway_with(mchid="1900000999")
    try:
        with pytest.raises(WeChatPayError) as app_error:
            await other_app.create(env.checkout("pay_otherapp1"))
        with pytest.raises(WeChatPayError) as merchant_error:
            await other_merchant.create(env.checkout("pay_othermch1"))
    finally:
        await other_app.aclose()
        await other_merchant.aclose()
    assert (app_error.value.status_code, app_error.value.code) == (400, "APPID_MCHID_NOT_MATCH")
    assert (merchant_error.value.status_code, merchant_error.value.code) == (401, "SIGN_ERROR")
    assert env.emulator.orders == {}


async def test_a_request_signed_with_another_key_is_refused(env: Env) -> None:
    impostor = env.gateway_with(private_key_pem=generate_merchant_keys().private_key_pem)
    try:
        with pytest.raises(GatewayError) as caught:
            await impostor.create(env.checkout("pay_impostor1"))
    finally:
        await impostor.aclose()
    assert isinstance(caught.value, WeChatPayError)
    assert (caught.value.status_code, caught.value.code) == (401, "SIGN_ERROR")
    assert "SIGN_ERROR" in str(caught.value)
    assert env.emulator.requests[-1]["authorized"] is False
    assert env.emulator.orders == {}


async def test_a_stale_or_altered_request_signature_is_refused(env: Env) -> None:
    body = json.dumps({"mchid": MCHID})
    path = "/v3/pay/transactions/out-trade-no/pay_whatever1/close"
    stale = _signed_headers(env, "POST", path, body, timestamp=int(time.time()) - 301)
    fresh = _signed_headers(env, "POST", path, body)
    async with httpx.AsyncClient(timeout=5) as client:
        old = await client.post(env.base + path, content=body, headers=stale)
        # A valid signature over a different body.
        altered = await client.post(
            env.base + path, content=json.dumps({"mchid": "1900000999"}), headers=fresh
        )
        missing = await client.post(env.base + path, content=body)
    for answer in (old, altered, missing):
        assert answer.status_code == 401
        assert answer.json()["code"] == "SIGN_ERROR"


async def test_reusing_an_out_trade_no(env: Env) -> None:
    first = await env.gateway.create(env.checkout("pay_reuse_0001"))
    again = await env.gateway.create(env.checkout("pay_reuse_0001"))
    assert again.code_url == first.code_url

    with pytest.raises(WeChatPayError) as different_amount:
        await env.gateway.create(env.checkout("pay_reuse_0001", amount_minor=AMOUNT + 1))
    assert (different_amount.value.status_code, different_amount.value.code) == (
        400,
        "INVALID_REQUEST",
    )
    with pytest.raises(WeChatPayError) as other_product:
        await env.gateway.create(
            env.checkout("pay_reuse_0001", scene="h5", client_ip="203.0.113.7")
        )
    assert other_product.value.code == "INVALID_REQUEST"
    assert env.emulator.orders["pay_reuse_0001"].total == AMOUNT


# ---------------------------------------------------------------------------------------------
# Query and close
# ---------------------------------------------------------------------------------------------


async def test_query_reads_pending_then_paid(env: Env) -> None:
    await env.gateway.create(env.checkout("pay_query_0001"))

    pending = await env.gateway.query("pay_query_0001", "pay_query_0001")
    assert pending.state == "pending"
    assert pending.amount_minor == AMOUNT
    assert pending.currency == "CNY"
    assert pending.paid_at is None
    assert pending.transaction_id is None
    assert pending.raw["trade_state"] == "NOTPAY"
    assert env.emulator.requests[-1]["query"] == f"?mchid={MCHID}"

    env.clock.advance(42)
    paid_order = await env.emulator.pay("pay_query_0001")
    paid = await env.gateway.query("pay_query_0001", "pay_query_0001")
    assert paid.state == "paid"
    assert paid.amount_minor == AMOUNT
    assert paid.currency == "CNY"
    assert paid.transaction_id == paid_order.transaction_id
    assert paid.transaction_id is not None and re.fullmatch(r"4200\d{24}", paid.transaction_id)
    assert paid.paid_at == datetime.fromtimestamp(env.clock.now, UTC)
    assert paid.raw["trade_state"] == "SUCCESS"
    assert paid.raw["amount"]["payer_total"] == AMOUNT


async def test_query_of_an_unknown_order(env: Env) -> None:
    with pytest.raises(WeChatOrderNotFound) as caught:
        await env.gateway.query("pay_nobody_001", "pay_nobody_001")
    assert (caught.value.status_code, caught.value.code) == (404, "ORDER_NOT_EXIST")


async def test_a_closed_order_cannot_be_paid(env: Env) -> None:
    checkout = await env.gateway.create(env.checkout("pay_close_0001"))
    assert checkout.code_url is not None

    await env.gateway.close("pay_close_0001", "pay_close_0001")
    assert env.emulator.requests[-1]["status"] == 204
    assert env.emulator.requests[-1]["body"] == {"mchid": MCHID}
    closed = await env.gateway.query("pay_close_0001", "pay_close_0001")
    assert closed.state == "expired"
    assert closed.raw["trade_state"] == "CLOSED"

    with pytest.raises(PaymentRefused, match="closed"):
        await env.emulator.pay("pay_close_0001")
    page_url = f"{env.base}/pay/{_token(checkout.code_url)}"
    async with httpx.AsyncClient(timeout=5) as browser:
        page = await browser.get(page_url)
        attempt = await browser.post(page_url, data={})
    assert page.status_code == 200
    assert "closed this order" in page.text
    assert "<button" not in page.text
    assert attempt.status_code == 409
    assert "can no longer be paid" in attempt.text
    assert env.emulator.orders["pay_close_0001"].trade_state == "CLOSED"

    await env.gateway.close("pay_close_0001", "pay_close_0001")  # closing twice is fine
    with pytest.raises(WeChatPayError) as reopened:
        await env.gateway.create(env.checkout("pay_close_0001"))
    assert reopened.value.code == "ORDER_CLOSED"


async def test_a_paid_order_cannot_be_closed(env: Env) -> None:
    await env.gateway.create(env.checkout("pay_paidclose1"))
    await env.emulator.pay("pay_paidclose1")
    with pytest.raises(WeChatPayError) as caught:
        await env.gateway.close("pay_paidclose1", "pay_paidclose1")
    assert (caught.value.status_code, caught.value.code) == (400, "ORDERPAID")
    assert env.emulator.orders["pay_paidclose1"].trade_state == "SUCCESS"
    with pytest.raises(PaymentRefused, match="already paid"):
        await env.emulator.pay("pay_paidclose1")


async def test_an_expired_order_cannot_be_paid(env: Env) -> None:
    request = env.checkout(
        "pay_expire_001",
        expires_at=datetime.fromtimestamp(env.clock.now, UTC) + timedelta(minutes=5),
    )
    checkout = await env.gateway.create(request)
    assert checkout.code_url is not None
    env.clock.advance(5 * 60)

    page_url = f"{env.base}/pay/{_token(checkout.code_url)}"
    async with httpx.AsyncClient(timeout=5) as browser:
        page = await browser.get(page_url)
        attempt = await browser.post(page_url, data={})
    assert "expired" in page.text
    assert "<button" not in page.text
    assert attempt.status_code == 409
    with pytest.raises(PaymentRefused, match="expired"):
        await env.emulator.pay("pay_expire_001")
    # Until the merchant closes it, WeChat (as emulated) still reports it unpaid.
    still = await env.gateway.query("pay_expire_001", "pay_expire_001")
    assert still.state == "pending"


# ---------------------------------------------------------------------------------------------
# Paying and the notification
# ---------------------------------------------------------------------------------------------


async def test_paying_on_the_page_delivers_a_verified_notification(env: Env) -> None:
    checkout = await env.gateway.create(env.checkout("pay_notify_001"))
    assert checkout.code_url is not None
    page_url = f"{env.base}/pay/{_token(checkout.code_url)}"
    env.clock.advance(7)

    async with httpx.AsyncClient(timeout=5) as browser:
        page = await browser.get(page_url)
        assert '<button type="submit">Pay ¥12.34</button>' in page.text
        action = re.search(r'<form method="post" action="([^"]+)"', page.text)
        assert action is not None
        done = await browser.post(f"{env.base.split(PREFIX)[0]}{action.group(1)}", data={})
    assert done.status_code == 200
    assert "Paid at" in done.text
    await _wait_events(env.receiver, 1)
    await env.emulator.wait_idle()

    order = env.emulator.orders["pay_notify_001"]
    assert env.receiver.rejected == []
    (event,) = env.receiver.events
    assert event.event_id == order.notification_id
    assert event.state == "paid"
    assert event.payment_id == "pay_notify_001"
    assert event.provider_ref == "pay_notify_001"
    assert event.amount_minor == AMOUNT
    assert event.currency == "CNY"
    assert event.transaction_id == order.transaction_id
    assert event.paid_at == datetime.fromtimestamp(env.clock.now, UTC)
    assert event.raw["event_type"] == "TRANSACTION.SUCCESS"
    assert event.raw["resource"]["mchid"] == MCHID
    assert event.raw["resource"]["appid"] == APPID
    assert event.raw["resource"]["trade_state"] == "SUCCESS"
    (delivery,) = env.emulator.deliveries
    assert delivery["status_code"] == 204
    assert delivery["attempt"] == 1


async def test_h5_pay_page_returns_the_browser_to_the_merchant(env: Env) -> None:
    checkout = await env.gateway.create(
        env.checkout("pay_h5_return1", scene="h5", client_ip="2001:db8::1")
    )
    assert checkout.h5_url is not None
    back = "https://vidgate.example/billing/done?p=pay_h5_return1"
    async with httpx.AsyncClient(timeout=5) as browser:
        page = await browser.get(checkout.h5_url, params={"redirect_url": back})
        hidden = re.search(r'name="redirect_url" value="([^"]+)"', page.text)
        assert hidden is not None
        path = urlsplit(checkout.h5_url).path
        done = await browser.post(f"{env.base.split(PREFIX)[0]}{path}", data={"redirect_url": back})
    assert done.status_code == 303
    assert done.headers["location"] == back
    await _wait_events(env.receiver, 1)
    assert env.receiver.events[0].payment_id == "pay_h5_return1"


async def test_a_failed_delivery_is_retried_with_the_same_notification(env: Env) -> None:
    await env.gateway.create(env.checkout("pay_retry_0001"))
    env.receiver.fail_next = 2
    await env.emulator.pay("pay_retry_0001")
    await env.emulator.wait_idle()

    assert [d["status_code"] for d in env.emulator.deliveries] == [500, 500, 204]
    assert [d["attempt"] for d in env.emulator.deliveries] == [1, 2, 3]
    assert len({d["notification_id"] for d in env.emulator.deliveries}) == 1
    (event,) = env.receiver.events
    assert event.event_id == env.emulator.orders["pay_retry_0001"].notification_id


async def test_an_unreachable_notify_url_is_given_up_after_the_retries(env: Env) -> None:
    await env.gateway.create(env.checkout("pay_unreach01", notify_url=closed_port_url() + "/n"))
    await env.emulator.pay("pay_unreach01")
    await env.emulator.wait_idle()
    attempts = env.emulator.deliveries
    assert [d["attempt"] for d in attempts] == [1, 2, 3, 4]
    assert all(d["status_code"] is None and "ConnectError" in d["error"] for d in attempts)
    # The payment itself stands.
    assert (await env.gateway.query("pay_unreach01", "pay_unreach01")).state == "paid"


# ---------------------------------------------------------------------------------------------
# Notification attacks
# ---------------------------------------------------------------------------------------------


@pytest.fixture
async def paid(env: Env) -> str:
    await env.gateway.create(env.checkout("pay_attack_001"))
    await env.emulator.pay("pay_attack_001")
    await env.emulator.wait_idle()
    return "pay_attack_001"


async def test_a_genuine_notification_verifies(env: Env, paid: str) -> None:
    headers, body = env.emulator.notification_for(paid)
    event = env.gateway.verify_notification(headers, body)
    order = env.emulator.orders[paid]
    assert (event.event_id, event.state, event.payment_id, event.amount_minor) == (
        order.notification_id,
        "paid",
        paid,
        AMOUNT,
    )
    # Header names in any case (Starlette lower-cases them).
    lowered = {k.lower(): v for k, v in headers.items()}
    assert env.gateway.verify_notification(lowered, body).event_id == event.event_id


async def test_a_signed_notification_with_another_amount_is_reported_as_is(
    env: Env, paid: str
) -> None:
    # Authentic as far as the gateway can tell; comparing with the order is the service's job.
    headers, body = env.emulator.notification_for(paid, tamper_amount=1)
    assert env.gateway.verify_notification(headers, body).amount_minor == 1


def _replace_header(headers: dict[str, str], name: str, value: str | None) -> dict[str, str]:
    changed = {k: v for k, v in headers.items() if k != name}
    if value is not None:
        changed[name] = value
    return changed


def _alter_body(body: bytes, change: Any) -> bytes:
    envelope = json.loads(body)
    change(envelope)
    return json.dumps(envelope).encode()


def _flip_ciphertext(envelope: dict[str, Any]) -> None:
    raw = bytearray(base64.b64decode(envelope["resource"]["ciphertext"]))
    raw[0] ^= 0x01
    envelope["resource"]["ciphertext"] = base64.b64encode(bytes(raw)).decode()


async def test_forged_and_replayed_notifications_are_invalid(env: Env, paid: str) -> None:
    now = int(time.time())
    emulator = env.emulator
    cases: dict[str, tuple[dict[str, str], bytes]] = {
        "forged signature": emulator.notification_for(paid, sign=False),
        "forged, amount changed": emulator.notification_for(paid, tamper_amount=1, sign=False),
        "unknown key id": emulator.notification_for(paid, key_id="PUB_KEY_ID_0114999999"),
        "stale timestamp": emulator.notification_for(paid, timestamp=now - 400),
        "future timestamp": emulator.notification_for(paid, timestamp=now + 400),
        "encrypted with another APIv3 key": emulator.notification_for(
            paid, apiv3_key=OTHER_APIV3_KEY
        ),
        "another merchant": emulator.notification_for(paid, overrides={"mchid": "1900000999"}),
        "another app": emulator.notification_for(paid, overrides={"appid": "wx0000000000000000"}),
    }
    headers, body = emulator.notification_for(paid)
    cases["ciphertext altered after signing"] = (headers, _alter_body(body, _flip_ciphertext))
    flipped = _alter_body(body, _flip_ciphertext)
    cases["ciphertext altered, then re-signed"] = (emulator.signature_headers(flipped), flipped)
    cases["signature not base64"] = (
        _replace_header(headers, "Wechatpay-Signature", "***not base64***"),
        body,
    )
    cases["other signature type"] = (
        _replace_header(headers, "Wechatpay-Signature-Type", "WECHATPAY2-SM2-WITH-SM3"),
        body,
    )
    cases["timestamp not a number"] = (
        _replace_header(headers, "Wechatpay-Timestamp", "soon"),
        body,
    )
    for name in ("Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature"):
        cases[f"missing {name}"] = (_replace_header(headers, name, None), body)
    cases["missing Wechatpay-Serial"] = (
        _replace_header(headers, "Wechatpay-Serial", None),
        body,
    )
    cases["no headers"] = ({}, body)

    for case, (case_headers, case_body) in cases.items():
        with pytest.raises(InvalidNotification):
            env.gateway.verify_notification(case_headers, case_body)
            pytest.fail(f"accepted: {case}")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe\x00",
        b"[1, 2, 3]",
        b'{"id": "EV-1", "resource_type": "encrypt-resource"}',
        b'{"id": "EV-1", "resource_type": "encrypt-resource", "resource": []}',
        b'{"id": "EV-1", "resource_type": "plain", "resource": {}}',
        b'{"id": 7, "resource_type": "encrypt-resource", "resource": {}}',
        (
            b'{"id": "EV-1", "resource_type": "encrypt-resource", "resource": '
            b'{"algorithm": "AEAD_AES_256_GCM", "ciphertext": "%%%", "nonce": "abcdefghijkl",'
            b' "associated_data": "transaction"}}'
        ),
        (
            b'{"id": "EV-1", "resource_type": "encrypt-resource", "resource": '
            b'{"algorithm": "AEAD_AES_256_GCM", "ciphertext": "AAAA", "nonce": "",'
            b' "associated_data": "transaction"}}'
        ),
        (
            b'{"id": "EV-1", "resource_type": "encrypt-resource", "resource": '
            b'{"algorithm": "AEAD_AES_256_CBC", "ciphertext": "AAAA", "nonce": "abcdefghijkl",'
            b' "associated_data": "transaction"}}'
        ),
    ],
)
async def test_malformed_bodies_signed_by_the_platform_are_invalid(env: Env, body: bytes) -> None:
    with pytest.raises(InvalidNotification):
        env.gateway.verify_notification(env.emulator.signature_headers(body), body)


async def test_acknowledge_and_reject(env: Env) -> None:
    ack = env.gateway.acknowledge()
    assert (ack.status_code, ack.body) == (204, b"")
    nack = env.gateway.reject("签名错误")
    assert nack.status_code == 400
    assert nack.content_type == "application/json"
    assert json.loads(nack.body) == {"code": "FAIL", "message": "签名错误"}


# ---------------------------------------------------------------------------------------------
# Answers that must not be trusted, and outages
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["tampered_body", "bad_signature", "unknown_serial"])
async def test_an_unauthentic_answer_to_create_is_an_error(env: Env, fault: str) -> None:
    env.emulator.set_next_fault(fault)
    with pytest.raises(GatewayError, match="not authentic"):
        await env.gateway.create(env.checkout("pay_mitm_00001"))


async def test_a_query_answer_turned_to_success_in_transit_is_caught(env: Env) -> None:
    await env.gateway.create(env.checkout("pay_mitm_00002"))
    env.emulator.set_next_fault("tampered_body")
    with pytest.raises(GatewayError, match="not authentic"):
        await env.gateway.query("pay_mitm_00002", "pay_mitm_00002")
    assert (await env.gateway.query("pay_mitm_00002", "pay_mitm_00002")).state == "pending"


async def test_a_gateway_with_the_wrong_platform_key_trusts_nothing(env: Env) -> None:
    other = WeChatPayEmulator(
        mchid=MCHID,
        appid=APPID,
        apiv3_key=APIV3_KEY,
        merchant_public_key_pem=env.merchant.public_key_pem,
        public_base_url=env.base,
    )
    misconfigured = env.gateway_with(platform_public_key_pem=other.platform_public_key_pem)
    try:
        with pytest.raises(GatewayError, match="not authentic"):
            await misconfigured.create(env.checkout("pay_wrongkey01"))
    finally:
        await misconfigured.aclose()


async def test_wechat_errors_and_outages_are_gateway_errors(env: Env) -> None:
    env.emulator.set_next_fault("system_error")
    with pytest.raises(WeChatPayError) as busy:
        await env.gateway.create(env.checkout("pay_outage_001"))
    assert (busy.value.status_code, busy.value.code) == (500, "SYSTEM_ERROR")
    env.emulator.set_next_fault("frequency_limited")
    with pytest.raises(WeChatPayError) as limited:
        await env.gateway.query("pay_outage_001", "pay_outage_001")
    assert (limited.value.status_code, limited.value.code) == (429, "FREQUENCY_LIMITED")

    down = env.gateway_with(base_url=closed_port_url())
    try:
        with pytest.raises(GatewayError, match="failed"):
            await down.create(env.checkout("pay_outage_002"))
    finally:
        await down.aclose()


async def test_control_endpoints(env: Env) -> None:
    await env.gateway.create(env.checkout("pay_control_01"))
    async with httpx.AsyncClient(base_url=env.base, timeout=5) as client:
        fault = await client.post("/_control/faults", json={"next_request": "nonsense"})
        assert fault.status_code == 422
        paid = await client.post("/_control/orders/pay_control_01/pay")
        assert paid.status_code == 200
        assert paid.json()["trade_state"] == "SUCCESS"
        again = await client.post("/_control/orders/pay_control_01/pay")
        assert again.status_code == 409
        listed = (await client.get("/_control/orders")).json()
        logged = (await client.get("/_control/requests")).json()
    assert [o["out_trade_no"] for o in listed["orders"]] == ["pay_control_01"]
    assert listed["orders"][0]["pay_page"] == env.emulator.pay_page_url("pay_control_01")
    assert [r["path"] for r in logged["requests"]] == ["/v3/pay/transactions/native"]
    await _wait_events(env.receiver, 1)


def test_gateway_configuration_is_checked(merchant: MerchantKeys) -> None:
    good: dict[str, Any] = {
        "mchid": MCHID,
        "appid": APPID,
        "apiv3_key": APIV3_KEY,
        "private_key_pem": merchant.private_key_pem,
        "cert_serial_no": merchant.cert_serial_no,
        "platform_public_key_pem": merchant.public_key_pem,
        "platform_public_key_id": "PUB_KEY_ID_0114",
    }
    for bad in (
        {"apiv3_key": "too-short"},
        {"private_key_pem": "not a key"},
        {"platform_public_key_pem": "not a key"},
        {"platform_public_key_id": ""},
    ):
        with pytest.raises(ValueError):
            WeChatPayGateway(**{**good, **bad})


def test_processes_sharing_a_platform_key_emulate_one_wechat(merchant: MerchantKeys) -> None:
    shared = generate_platform_key()

    def emulator(key: str | None) -> WeChatPayEmulator:
        return WeChatPayEmulator(
            mchid=MCHID,
            appid=APPID,
            apiv3_key=APIV3_KEY,
            merchant_public_key_pem=merchant.public_key_pem,
            public_base_url="http://127.0.0.1:1/_emulator/wechatpay",
            platform_private_key_pem=key,
        )

    api, worker, fresh = emulator(shared), emulator(shared), emulator(None)
    assert api.platform_public_key_pem == worker.platform_public_key_pem
    assert api.platform_public_key_id == worker.platform_public_key_id
    assert re.fullmatch(r"PUB_KEY_ID_0114\d{26}", api.platform_public_key_id)
    assert fresh.platform_public_key_id != api.platform_public_key_id
