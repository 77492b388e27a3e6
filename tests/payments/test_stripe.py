"""The Stripe Checkout gateway against the Stripe emulator, both over real HTTP on loopback.

A second small app plays vidgate's notification endpoint: it receives the emulator's webhooks and
answers them through the gateway (verify, then acknowledge or reject), recording what it saw.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response

from vidgate.emulators.stripe import PREFIX, StripeApiError, StripeEmulator, sign
from vidgate.payments.gateway import (
    CheckoutRequest,
    GatewayError,
    InvalidNotification,
    VerifiedEvent,
)
from vidgate.payments.stripe_gateway import API_VERSION, StripeGateway, checkout_expiry

from ..fixtures.loopback import Switch, closed_port_url, serve_on_loopback

SECRET_KEY = "sk_test_emulator_0123456789abcdef"
WEBHOOK_SECRET = "whsec_emulator_0123456789abcdef"
SUCCESS_URL = "https://app.example.com/billing/success?session_id={CHECKOUT_SESSION_ID}"
CANCEL_URL = "https://app.example.com/billing/cancel"


# ---------------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------------


@dataclass
class Delivery:
    """One webhook request as the receiver saw it and what it answered."""

    headers: dict[str, str]
    body: bytes
    status: int
    event: VerifiedEvent | None
    error: str | None


@dataclass
class Receiver:
    """vidgate's Stripe notification endpoint, reduced to the gateway calls it makes."""

    gateway: StripeGateway | None = None
    fail_first: int = 0  # answer 500 to this many requests before verifying anything
    deliveries: list[Delivery] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/stripe/webhook")
        async def webhook(request: Request) -> Response:
            body = await request.body()
            headers = dict(request.headers)
            if self.fail_first > 0:
                self.fail_first -= 1
                self.deliveries.append(Delivery(headers, body, 500, None, "refused"))
                return Response(status_code=500)
            assert self.gateway is not None
            try:
                event = self.gateway.verify_notification(request.headers, body)
            except InvalidNotification as exc:
                answer = self.gateway.reject(str(exc))
                self.deliveries.append(Delivery(headers, body, answer.status_code, None, str(exc)))
            else:
                answer = self.gateway.acknowledge()
                self.deliveries.append(Delivery(headers, body, answer.status_code, event, None))
            return Response(answer.body, answer.status_code, media_type=answer.content_type)

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


class ShiftedClock:
    """Wall-clock unix time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class Env:
    emulator: StripeEmulator
    gateway: StripeGateway
    api_base: str  # where the emulator is mounted: the SDK's api base
    receiver: Receiver
    clock: ShiftedClock
    http: httpx.AsyncClient  # a browser / raw API client

    def gateway_with(self, **kwargs: Any) -> StripeGateway:
        return _gateway(self.api_base, **kwargs)

    @property
    def api_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {SECRET_KEY}"}


def _gateway(api_base: str, **kwargs: Any) -> StripeGateway:
    kwargs.setdefault("secret_key", SECRET_KEY)
    kwargs.setdefault("webhook_secret", WEBHOOK_SECRET)
    kwargs.setdefault("success_url_default", SUCCESS_URL)
    kwargs.setdefault("cancel_url_default", CANCEL_URL)
    return StripeGateway(api_base=api_base, **kwargs)


@pytest.fixture
async def env(servers: Servers) -> AsyncIterator[Env]:
    api_base = servers.base + PREFIX
    clock = ShiftedClock()
    emulator = StripeEmulator(
        secret_key=SECRET_KEY,
        webhook_secret=WEBHOOK_SECRET,
        public_base_url=api_base,
        webhook_url=servers.receiver_base + "/stripe/webhook",
        clock=clock,
        webhook_retry_seconds=0.05,
    )
    app = FastAPI()
    app.include_router(emulator.router())
    servers.switch.target = app
    receiver = servers.receiver
    receiver.deliveries.clear()
    receiver.fail_first = 0
    gateway = _gateway(api_base)
    receiver.gateway = gateway
    async with httpx.AsyncClient(timeout=10) as http:
        yield Env(emulator, gateway, api_base, receiver, clock, http)
    await gateway.aclose()
    await emulator.aclose()
    receiver.gateway = None
    servers.switch.target = None


# One deadline for every request a test builds: two orders built a moment apart must not differ
# (Stripe refuses a reused idempotency key whose parameters changed).
_EXPIRES_AT = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)


def _request(payment_id: str = "pay_0001", **overrides: Any) -> CheckoutRequest:
    values: dict[str, Any] = {
        "payment_id": payment_id,
        "amount_minor": 999,
        "currency": "USD",
        "credits": 1000,
        "description": "vidgate 1,000 credits",
        "notify_url": "https://api.example.com/api/payments/stripe/notify",
        "expires_at": _EXPIRES_AT,
    }
    values.update(overrides)
    return CheckoutRequest(**values)


def _session_id(checkout_url: str) -> str:
    return checkout_url.rsplit("/", 1)[1]


# ---------------------------------------------------------------------------------------------
# create
# ---------------------------------------------------------------------------------------------


async def test_create_sends_the_checkout_form_and_returns_the_hosted_page(env: Env) -> None:
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    checkout = await env.gateway.create(_request(expires_at=expires))

    assert checkout.provider_ref.startswith("cs_test_")
    assert checkout.checkout_url == f"{env.api_base}/c/pay/{checkout.provider_ref}"
    assert checkout.code_url is None and checkout.h5_url is None

    [sent] = env.emulator.requests
    assert sent["method"] == "POST"
    assert sent["path"] == PREFIX + "/v1/checkout/sessions"
    assert sent["idempotency_key"] == "pay_0001"
    assert sent["stripe_version"] == API_VERSION
    assert sent["status"] == 200
    assert sent["form"] == {
        "mode": "payment",
        "line_items[0][quantity]": "1",
        "line_items[0][price_data][currency]": "usd",
        "line_items[0][price_data][unit_amount]": "999",
        "line_items[0][price_data][product_data][name]": "vidgate 1,000 credits",
        "client_reference_id": "pay_0001",
        "metadata[payment_id]": "pay_0001",
        "metadata[credits]": "1000",
        "success_url": SUCCESS_URL,
        "cancel_url": CANCEL_URL,
        "expires_at": str(int(expires.timestamp())),
    }

    session = env.emulator.sessions[checkout.provider_ref]
    assert session["object"] == "checkout.session"
    assert session["status"] == "open"
    assert session["payment_status"] == "unpaid"
    assert session["amount_total"] == 999
    assert session["currency"] == "usd"
    assert session["client_reference_id"] == "pay_0001"
    assert session["metadata"] == {"payment_id": "pay_0001", "credits": "1000"}
    assert session["expires_at"] == int(expires.timestamp())
    assert session["payment_intent"] is None
    assert session["livemode"] is False


async def test_return_and_cancel_urls_replace_the_defaults(env: Env) -> None:
    url = "https://app.example.com/paid?order=pay_0002&s={CHECKOUT_SESSION_ID}"
    back = "https://app.example.com/buy?gave_up=pay_0002"
    checkout = await env.gateway.create(_request("pay_0002", return_url=url, cancel_url=back))
    session = env.emulator.sessions[checkout.provider_ref]
    assert (session["success_url"], session["cancel_url"]) == (url, back)


async def test_retried_create_returns_the_same_session(env: Env) -> None:
    first = await env.gateway.create(_request())
    again = await env.gateway.create(_request())

    assert again == first
    assert len(env.emulator.sessions) == 1
    assert [r["idempotency_key"] for r in env.emulator.requests] == ["pay_0001", "pay_0001"]

    # The same key with other parameters is a different request: Stripe refuses it.
    with pytest.raises(GatewayError, match="HTTP 400"):
        await env.gateway.create(_request(amount_minor=1999))
    assert len(env.emulator.sessions) == 1


async def test_a_failed_create_is_retried_by_the_sdk_under_the_same_key(env: Env) -> None:
    env.emulator.fail_next_creates(1)
    checkout = await env.gateway.create(_request())

    assert [(r["status"], r["idempotency_key"]) for r in env.emulator.requests] == [
        (500, "pay_0001"),
        (200, "pay_0001"),
    ]
    assert list(env.emulator.sessions) == [checkout.provider_ref]


async def test_create_failures_become_gateway_errors(env: Env) -> None:
    gateway = env.gateway_with(max_network_retries=0)
    try:
        control = await env.http.post(
            f"{env.api_base}/_control/faults", json={"create_failures": 1}
        )
        assert control.status_code == 200
        with pytest.raises(GatewayError, match="HTTP 500"):
            await gateway.create(_request())
        assert env.emulator.sessions == {}
    finally:
        await gateway.aclose()


async def test_a_wrong_secret_key_is_refused(env: Env) -> None:
    gateway = env.gateway_with(secret_key="sk_test_not_the_right_key_0000")
    try:
        with pytest.raises(GatewayError, match="HTTP 401"):
            await gateway.create(_request())
    finally:
        await gateway.aclose()
    [sent] = env.emulator.requests
    assert sent["authorized"] is False
    assert env.emulator.sessions == {}


async def test_an_unreachable_stripe_is_a_gateway_error() -> None:
    gateway = _gateway(closed_port_url(), max_network_retries=0)
    try:
        with pytest.raises(GatewayError, match="creating the checkout session failed"):
            await gateway.create(_request())
        with pytest.raises(GatewayError):
            await gateway.query("pay_0001", "cs_test_nothing")
    finally:
        await gateway.aclose()


def test_expiry_is_kept_inside_stripes_window() -> None:
    now = 1_700_000_000.0
    in_two_hours = datetime.fromtimestamp(now + 7200, UTC)
    assert checkout_expiry(in_two_hours, now) == int(now) + 7200

    # Too soon: moved past 30 minutes (+ travel margin), on a 5-minute step so retries agree.
    soon = checkout_expiry(datetime.fromtimestamp(now + 600, UTC), now)
    assert soon % 300 == 0
    assert now + 30 * 60 + 120 <= soon < now + 30 * 60 + 120 + 300
    assert checkout_expiry(datetime.fromtimestamp(now + 601, UTC), now + 5) == soon

    # Too late: pulled back under 24 hours.
    late = checkout_expiry(datetime.fromtimestamp(now + 3 * 86400, UTC), now)
    assert late == int(now) + 86400 - 120


async def test_a_too_soon_expiry_is_accepted_by_stripe(env: Env) -> None:
    checkout = await env.gateway.create(
        _request(expires_at=datetime.now(UTC) + timedelta(minutes=5))
    )
    left = env.emulator.sessions[checkout.provider_ref]["expires_at"] - time.time()
    assert 30 * 60 < left < 40 * 60


# ---------------------------------------------------------------------------------------------
# query and close
# ---------------------------------------------------------------------------------------------


async def test_query_follows_the_session_from_open_to_paid(env: Env) -> None:
    checkout = await env.gateway.create(_request())

    pending = await env.gateway.query("pay_0001", checkout.provider_ref)
    assert (pending.state, pending.amount_minor, pending.currency) == ("pending", 999, "USD")
    assert pending.transaction_id is None

    paid_session = await env.emulator.pay(checkout.provider_ref)
    paid = await env.gateway.query("pay_0001", checkout.provider_ref)
    assert paid.state == "paid"
    assert paid.amount_minor == 999
    assert paid.currency == "USD"
    assert paid.transaction_id == paid_session["payment_intent"]
    assert paid.transaction_id is not None and paid.transaction_id.startswith("pi_")
    assert paid.raw["id"] == checkout.provider_ref
    assert env.emulator.requests[-1]["raw"] == [("expand[0]", "payment_intent")]


async def test_query_refuses_a_session_of_another_payment(env: Env) -> None:
    checkout = await env.gateway.create(_request())
    with pytest.raises(GatewayError, match="not for pay_9999"):
        await env.gateway.query("pay_9999", checkout.provider_ref)
    with pytest.raises(GatewayError, match="HTTP 404"):
        await env.gateway.query("pay_0001", "cs_test_does_not_exist")


async def test_close_expires_the_session_and_it_cannot_be_paid(env: Env) -> None:
    checkout = await env.gateway.create(_request())
    assert checkout.checkout_url is not None

    await env.gateway.close("pay_0001", checkout.provider_ref)
    expired = await env.gateway.query("pay_0001", checkout.provider_ref)
    assert expired.state == "expired"
    assert expired.raw["url"] is None
    await env.gateway.close("pay_0001", checkout.provider_ref)  # closing again is fine

    page = await env.http.get(checkout.checkout_url)
    assert page.status_code == 200
    assert "This checkout session has expired" in page.text
    assert "<button" not in page.text
    submitted = await env.http.post(checkout.checkout_url, data={"method": "card"})
    assert submitted.status_code == 409
    with pytest.raises(StripeApiError):
        await env.emulator.pay(checkout.provider_ref)

    await env.emulator.wait_deliveries()
    [delivery] = env.receiver.deliveries
    assert delivery.status == 200
    assert delivery.event is not None
    assert delivery.event.state == "expired"
    assert delivery.event.payment_id == "pay_0001"
    assert delivery.event.provider_ref == checkout.provider_ref


async def test_closing_a_paid_session_says_it_is_complete(env: Env) -> None:
    checkout = await env.gateway.create(_request())
    await env.emulator.pay(checkout.provider_ref)
    with pytest.raises(GatewayError, match="already complete"):
        await env.gateway.close("pay_0001", checkout.provider_ref)
    assert (await env.gateway.query("pay_0001", checkout.provider_ref)).state == "paid"


async def test_a_session_expires_at_its_time_and_stripe_says_so(env: Env) -> None:
    checkout = await env.gateway.create(_request(expires_at=datetime.now(UTC) + timedelta(hours=1)))
    env.clock.offset = 3601
    assert (await env.gateway.query("pay_0001", checkout.provider_ref)).state == "expired"
    await env.emulator.wait_deliveries()
    assert [d.event.state for d in env.receiver.deliveries if d.event] == ["expired"]


# ---------------------------------------------------------------------------------------------
# The hosted page and webhooks
# ---------------------------------------------------------------------------------------------


async def test_paying_on_the_hosted_page_redirects_and_sends_a_verified_event(env: Env) -> None:
    checkout = await env.gateway.create(_request())
    assert checkout.checkout_url is not None

    page = await env.http.get(checkout.checkout_url)
    assert page.status_code == 200
    assert "EMULATED" in page.text
    assert "vidgate 1,000 credits" in page.text
    assert '<button type="submit" name="method" value="card">Pay $9.99</button>' in page.text
    assert page.headers["x-frame-options"] == "DENY"

    paid = await env.http.post(checkout.checkout_url, data={"method": "card"})
    assert paid.status_code == 303
    assert paid.headers["location"] == SUCCESS_URL.replace(
        "{CHECKOUT_SESSION_ID}", checkout.provider_ref
    )

    await env.emulator.wait_deliveries()
    [delivery] = env.receiver.deliveries
    assert delivery.status == 200
    assert delivery.headers["stripe-signature"].startswith("t=")
    body = json.loads(delivery.body)
    assert body["object"] == "event"
    assert body["type"] == "checkout.session.completed"
    assert body["api_version"] == API_VERSION
    intent = env.emulator.sessions[checkout.provider_ref]["payment_intent"]
    assert delivery.event == VerifiedEvent(
        event_id=body["id"],
        state="paid",
        payment_id="pay_0001",
        provider_ref=checkout.provider_ref,
        amount_minor=999,
        currency="USD",
        paid_at=datetime.fromtimestamp(body["created"], UTC),
        transaction_id=intent,
        raw=delivery.event.raw if delivery.event else {},
    )
    assert delivery.event is not None and delivery.event.event_id.startswith("evt_")

    # The page now says it is paid and cannot be paid twice.
    again = await env.http.post(checkout.checkout_url, data={"method": "card"})
    assert again.status_code == 409
    assert "This payment is complete" in again.text
    assert len(env.emulator.events) == 1


async def test_the_page_shows_zero_decimal_currencies_whole(env: Env) -> None:
    checkout = await env.gateway.create(_request(amount_minor=1500, currency="JPY"))
    assert checkout.checkout_url is not None
    page = await env.http.get(checkout.checkout_url)
    assert "Pay ¥1,500" in page.text


async def test_webhooks_are_retried_until_the_receiver_accepts(env: Env) -> None:
    checkout = await env.gateway.create(_request())
    env.receiver.fail_first = 2
    await env.emulator.pay(checkout.provider_ref)

    assert [d["status"] for d in env.emulator.deliveries] == [500, 500, 200]
    assert len({d["event_id"] for d in env.emulator.deliveries}) == 1
    accepted = env.receiver.deliveries[-1]
    assert accepted.event is not None and accepted.event.state == "paid"


async def test_a_delayed_payment_that_fails(env: Env) -> None:
    checkout = await env.gateway.create(_request())
    await env.emulator.pay(checkout.provider_ref, delayed=True)

    # Completed but not paid yet: an event vidgate does not act on, and still pending.
    [completed] = env.receiver.deliveries
    assert completed.event is not None
    assert completed.event.state is None
    assert completed.event.payment_id == "pay_0001"
    assert (await env.gateway.query("pay_0001", checkout.provider_ref)).state == "pending"

    await env.emulator.settle(checkout.provider_ref, succeeded=False)
    failed = env.receiver.deliveries[-1].event
    assert failed is not None
    assert failed.state == "failed"
    assert failed.raw["type"] == "checkout.session.async_payment_failed"
    assert (await env.gateway.query("pay_0001", checkout.provider_ref)).state == "failed"


async def test_a_delayed_payment_that_succeeds(env: Env) -> None:
    checkout = await env.gateway.create(_request())
    await env.emulator.pay(checkout.provider_ref, delayed=True)
    response = await env.http.post(
        f"{env.api_base}/_control/sessions/{checkout.provider_ref}/settle",
        json={"outcome": "succeeded"},
    )
    assert response.status_code == 200
    succeeded = env.receiver.deliveries[-1].event
    assert succeeded is not None
    assert (succeeded.state, succeeded.amount_minor) == ("paid", 999)
    assert succeeded.raw["type"] == "checkout.session.async_payment_succeeded"
    assert (await env.gateway.query("pay_0001", checkout.provider_ref)).state == "paid"


# ---------------------------------------------------------------------------------------------
# Notification verification
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "state"),
    [
        ("checkout.session.expired", "expired"),
        ("checkout.session.async_payment_failed", "failed"),
        ("checkout.session.async_payment_succeeded", "paid"),
        ("checkout.session.completed", None),  # the session is still unpaid
    ],
)
async def test_event_types_map_to_states(env: Env, event_type: str, state: str | None) -> None:
    checkout = await env.gateway.create(_request())
    headers, body = env.emulator.event_for(checkout.provider_ref, event_type)
    event = env.gateway.verify_notification(headers, body)
    assert event.state == state
    assert event.event_id == json.loads(body)["id"]
    assert (event.payment_id, event.provider_ref) == ("pay_0001", checkout.provider_ref)
    assert (event.amount_minor, event.currency) == (999, "USD")


async def test_other_events_verify_but_carry_no_state(env: Env) -> None:
    body = json.dumps(
        {"id": "evt_other", "object": "event", "type": "charge.refunded", "data": {"object": {}}}
    ).encode()
    headers = {"Stripe-Signature": sign(body, WEBHOOK_SECRET, int(time.time()))}
    event = env.gateway.verify_notification(headers, body)
    assert (event.event_id, event.state, event.payment_id) == ("evt_other", None, None)


async def test_payment_id_falls_back_to_metadata(env: Env) -> None:
    checkout = await env.gateway.create(_request())
    session = {**env.emulator.sessions[checkout.provider_ref], "client_reference_id": None}
    headers, body = env.emulator.event_for(
        checkout.provider_ref, "checkout.session.expired", session=session
    )
    assert env.gateway.verify_notification(headers, body).payment_id == "pay_0001"


def _resigned(body: bytes) -> dict[str, str]:
    return {"Stripe-Signature": sign(body, WEBHOOK_SECRET, int(time.time()))}


@pytest.mark.parametrize(
    "attack",
    [
        "wrong_secret",
        "stale_timestamp",
        "tampered_body",
        "missing_header",
        "forged_signature",
        "v0_only",
        "garbled_header",
        "invalid_json",
        "not_utf8",
        "json_array",
        "not_an_event",
        "session_missing",
    ],
)
async def test_forged_or_broken_notifications_are_refused(env: Env, attack: str) -> None:
    checkout = await env.gateway.create(_request())
    await env.emulator.pay(checkout.provider_ref)
    sid, completed = checkout.provider_ref, "checkout.session.completed"
    headers, body = env.emulator.event_for(sid, completed)
    signed_at = headers["Stripe-Signature"].split(",")[0]
    if attack == "wrong_secret":
        headers, body = env.emulator.event_for(sid, completed, secret="whsec_someone_else")
    elif attack == "stale_timestamp":
        headers, body = env.emulator.event_for(sid, completed, timestamp=int(time.time()) - 301)
    elif attack == "tampered_body":
        body = body.replace(b'"amount_total": 999', b'"amount_total": 99900')
        assert b"99900" in body
    elif attack == "missing_header":
        headers = {"Content-Type": "application/json"}
    elif attack == "forged_signature":
        headers = {"Stripe-Signature": f"{signed_at},v1={'ab' * 32}"}
    elif attack == "v0_only":
        headers = {"Stripe-Signature": headers["Stripe-Signature"].replace("v1=", "v0=")}
    elif attack == "garbled_header":
        headers = {"Stripe-Signature": "not a signature"}
    elif attack == "invalid_json":
        body = b'{"id": "evt_1", "object": "event",'
        headers = _resigned(body)
    elif attack == "not_utf8":
        body = b'{"id": "\xff\xfe"}'
        headers = _resigned(body)
    elif attack == "json_array":
        body = b"[1, 2, 3]"
        headers = _resigned(body)
    elif attack == "not_an_event":
        body = json.dumps({**json.loads(body), "object": "charge"}).encode()
        headers = _resigned(body)
    elif attack == "session_missing":
        event = json.loads(body)
        event["data"] = {"object": {"id": "ch_1", "object": "charge"}}
        body = json.dumps(event).encode()
        headers = _resigned(body)

    with pytest.raises(InvalidNotification):
        env.gateway.verify_notification(headers, body)


async def test_a_refused_notification_is_answered_400_and_an_accepted_one_200(env: Env) -> None:
    checkout = await env.gateway.create(_request())
    headers, body = env.emulator.event_for(checkout.provider_ref, "checkout.session.expired")
    url = env.emulator.webhook_url
    assert url is not None

    accepted = await env.http.post(url, content=body, headers=headers)
    assert (accepted.status_code, accepted.json()) == (200, {"received": True})
    forged = await env.http.post(url, content=body + b" ", headers=headers)
    assert forged.status_code == 400
    assert "signature" in forged.json()["detail"].lower()


# ---------------------------------------------------------------------------------------------
# The emulator's own API checks
# ---------------------------------------------------------------------------------------------


_VALID_FORM = {
    "mode": "payment",
    "success_url": "https://app.example.com/ok",
    "line_items[0][quantity]": "1",
    "line_items[0][price_data][currency]": "usd",
    "line_items[0][price_data][unit_amount]": "500",
    "line_items[0][price_data][product_data][name]": "credits",
}


@pytest.mark.parametrize(
    ("drop", "extra", "param", "status"),
    [
        ("mode", {}, "mode", 400),
        ("success_url", {}, "success_url", 400),
        ("line_items[0][quantity]", {}, "line_items[0][quantity]", 400),
        (None, {"line_items[0][price_data][unit_amount]": "ten"}, None, 400),
        (None, {"expires_at": str(int(time.time()) + 600)}, "expires_at", 400),
        (None, {"success_url": "not a url"}, "success_url", 400),
        (None, {"colour": "blue"}, "colour", 400),
        (None, {"line_items[2][quantity]": "1"}, "line_items", 400),
    ],
)
async def test_the_emulator_validates_creates_like_stripe(
    env: Env, drop: str | None, extra: dict[str, str], param: str | None, status: int
) -> None:
    form = {k: v for k, v in _VALID_FORM.items() if k != drop} | extra
    response = await env.http.post(
        f"{env.api_base}/v1/checkout/sessions", data=form, headers=env.api_headers
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param
    assert env.emulator.sessions == {}


async def test_the_emulator_without_line_items_and_unknown_sessions(env: Env) -> None:
    form = {k: v for k, v in _VALID_FORM.items() if not k.startswith("line_items")}
    missing = await env.http.post(
        f"{env.api_base}/v1/checkout/sessions", data=form, headers=env.api_headers
    )
    assert missing.status_code == 400
    assert missing.json()["error"]["param"] == "line_items"

    unknown = await env.http.get(
        f"{env.api_base}/v1/checkout/sessions/cs_test_nope", headers=env.api_headers
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "resource_missing"

    no_key = await env.http.get(f"{env.api_base}/v1/checkout/sessions/cs_test_nope")
    assert no_key.status_code == 401
    assert no_key.json()["error"]["type"] == "invalid_request_error"


async def test_the_emulator_replays_idempotent_creates(env: Env) -> None:
    url = f"{env.api_base}/v1/checkout/sessions"
    headers = {**env.api_headers, "Idempotency-Key": "k-1"}
    first = await env.http.post(url, data=_VALID_FORM, headers=headers)
    second = await env.http.post(url, data=_VALID_FORM, headers=headers)
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["request-id"] == first.headers["request-id"]

    other = await env.http.post(
        url, data={**_VALID_FORM, "client_reference_id": "x"}, headers=headers
    )
    assert other.status_code == 400
    assert other.json()["error"]["type"] == "idempotency_error"
    assert len(env.emulator.sessions) == 1
