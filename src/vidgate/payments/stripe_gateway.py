"""Stripe Checkout behind vidgate's `PaymentGateway` protocol.

A credit pack is one Checkout Session in `payment` mode with a single inline-priced line item; the
payer's browser goes to the session's hosted page, and credits are granted only from a signed
webhook or a server-side query (reconciliation), never from the browser coming back. Every call
goes through the official SDK's `StripeClient` on its httpx transport with the `*_async` methods,
so nothing blocks the event loop. `api_base` points the client at the emulator
(`vidgate.emulators.stripe`) in development and tests. Protocol notes:
docs/vendors.md §4.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import stripe
from stripe.params.checkout import SessionCreateParams

from vidgate.vendors import GatewayName

from .gateway import (
    Acknowledgement,
    Checkout,
    CheckoutRequest,
    GatewayError,
    GatewayPayment,
    GatewayRefund,
    InvalidNotification,
    PaymentState,
    RefundNotice,
    RefundRefused,
    RefundRequest,
    RefundState,
    VerifiedEvent,
)

# The API version stripe-python 16.1.0 was generated against (its default); pinned here so an SDK
# upgrade cannot silently change the shape of the objects this adapter reads.
API_VERSION = "2026-10-28.endive"
WEBHOOK_TOLERANCE_SECONDS = 300  # Stripe-Signature timestamps older than this are refused
# Stripe's refund statuses as vidgate's.
_REFUND_STATES: dict[str, RefundState] = {
    "pending": "pending",
    "requires_action": "pending",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "failed",
}
METADATA_VALUE_MAX = 500
# Stripe accepts `expires_at` between 30 minutes and 24 hours after the session is created.
MIN_LIFETIME_SECONDS = 30 * 60
MAX_LIFETIME_SECONDS = 24 * 3600
# Room for the request's own travel time, so a clamped value is still inside the window on arrival.
_LIFETIME_MARGIN_SECONDS = 120
# A clamped-up expiry is rounded up to this step, so that a retry a few seconds later sends the
# same parameters under the same idempotency key (Stripe refuses a key reused with other params).
_EXPIRY_STEP_SECONDS = 300


class StripeGateway:
    """Checkout Sessions for credit packs, through stripe-python's async client."""

    # The protocol declares a settable attribute, so mypy wants its exact (wider) type here.
    name: GatewayName = "stripe"

    def __init__(
        self,
        *,
        secret_key: str,
        webhook_secret: str,
        success_url_default: str,
        cancel_url_default: str,
        api_base: str | None = None,
        timeout: float = 15.0,
        max_network_retries: int = 2,
    ) -> None:
        self._webhook_secret = webhook_secret
        self.success_url_default = success_url_default
        self.cancel_url_default = cancel_url_default
        # httpx's AsyncClient; sync calls are refused (allow_sync_methods defaults to False), so a
        # blocking call slipping in fails loudly instead of stalling the loop.
        self._http = stripe.HTTPXClient(timeout=timeout)
        # The SDK retries connection errors, 409 and 5xx itself, re-sending the same
        # Idempotency-Key, so a retried create cannot open a second session.
        self._client = stripe.StripeClient(
            secret_key,
            stripe_version=API_VERSION,
            base_addresses={"api": api_base.rstrip("/")} if api_base else None,
            http_client=self._http,
            max_network_retries=max_network_retries,
        )

    async def create(self, request: CheckoutRequest) -> Checkout:
        params: SessionCreateParams = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": request.currency.lower(),
                        "unit_amount": request.amount_minor,
                        "product_data": {"name": request.description},
                    },
                }
            ],
            "client_reference_id": request.payment_id,
            "metadata": {"payment_id": request.payment_id, "credits": str(request.credits)},
            "success_url": request.return_url or self.success_url_default,
            "cancel_url": request.cancel_url or self.cancel_url_default,
            "expires_at": checkout_expiry(request.expires_at, time.time()),
        }
        try:
            session = await self._client.v1.checkout.sessions.create_async(
                params=params, options={"idempotency_key": request.payment_id}
            )
        except stripe.StripeError as exc:
            raise GatewayError(
                f"stripe: creating the checkout session failed: {_describe(exc)}"
            ) from exc
        if session.client_reference_id != request.payment_id or not session.url:
            # A replayed key answering for another payment would credit the wrong order.
            raise GatewayError(f"stripe: checkout session {session.id} does not match the request")
        return Checkout(provider_ref=session.id, checkout_url=session.url)

    async def query(self, payment_id: str, provider_ref: str) -> GatewayPayment:
        try:
            session = await self._client.v1.checkout.sessions.retrieve_async(
                provider_ref, params={"expand": ["payment_intent"]}
            )
        except stripe.StripeError as exc:
            raise GatewayError(
                f"stripe: retrieving {provider_ref} failed: {_describe(exc)}"
            ) from exc
        if session.client_reference_id != payment_id:
            raise GatewayError(f"stripe: checkout session {provider_ref} is not for {payment_id}")
        raw = session.to_dict()
        return GatewayPayment(
            state=_session_state(raw),
            amount_minor=_int_or_none(raw.get("amount_total")),
            currency=_upper_or_none(raw.get("currency")),
            transaction_id=_intent_id(raw.get("payment_intent")),
            raw=raw,
        )

    async def close(self, payment_id: str, provider_ref: str) -> None:
        """Expire the session. Already expired counts as closed; already complete is an error,
        since the payer has paid (or a delayed payment is under way) and the order must not be
        treated as abandoned."""
        sessions = self._client.v1.checkout.sessions
        try:
            await sessions.expire_async(provider_ref)
            return
        except stripe.InvalidRequestError as exc:
            refusal = exc  # Stripe refuses to expire a session that is not open: find out why
        except stripe.StripeError as exc:
            raise GatewayError(f"stripe: expiring {provider_ref} failed: {_describe(exc)}") from exc
        try:
            session = await sessions.retrieve_async(provider_ref)
        except stripe.StripeError as exc:
            raise GatewayError(
                f"stripe: expiring {provider_ref} failed: {_describe(refusal)}; "
                f"retrieving it failed too: {_describe(exc)}"
            ) from exc
        if session.status == "expired":
            return
        if session.status == "complete":
            raise GatewayError(
                f"stripe: checkout session {provider_ref} is already complete "
                f"(payment_status {session.payment_status}); it cannot be closed"
            )
        raise GatewayError(f"stripe: expiring {provider_ref} failed: {_describe(refusal)}")

    async def refund(self, request: RefundRequest) -> GatewayRefund:
        """Refund part or all of the order's PaymentIntent; vidgate's refund id is the
        idempotency key (a retry cannot refund twice) and rides in the metadata, so the
        `charge.refunded` webhook names the refund vidgate asked for."""
        if not request.transaction_id:
            raise RefundRefused(f"stripe: order {request.payment_id} has no PaymentIntent")
        try:
            refund = await self._client.v1.refunds.create_async(
                params={
                    "payment_intent": request.transaction_id,
                    "amount": request.amount_minor,
                    "metadata": {
                        "payment_id": request.payment_id,
                        "refund_id": request.refund_id,
                        "reason": request.reason[:METADATA_VALUE_MAX],
                    },
                },
                options={"idempotency_key": f"refund-{request.refund_id}"},
            )
        except stripe.StripeError as exc:
            status = exc.http_status or 0
            if 400 <= status < 500 and status not in (409, 429):
                raise RefundRefused(f"stripe: {_describe(exc)}") from exc
            raise GatewayError(f"stripe: refunding failed: {_describe(exc)}") from exc
        raw = refund.to_dict()
        notice = _refund_notice(raw, None)
        if notice is None or notice.amount_minor is None:
            raise GatewayError("stripe: the refund answer is not a refund")
        return GatewayRefund(
            gateway_id=notice.gateway_id,
            state=notice.state,
            amount_minor=notice.amount_minor,
            currency=notice.currency or request.currency,
            raw=raw,
        )

    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> VerifiedEvent:
        signature = _header(headers, "stripe-signature")
        if not signature:
            raise InvalidNotification("missing Stripe-Signature header")
        try:
            # Checks the v1 HMAC over `{t}.{body}` and that t is at most 300 s old, then parses.
            event = self._client.construct_event(
                body, signature, self._webhook_secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
            )
            data = event.to_dict()
        except stripe.SignatureVerificationError as exc:
            raise InvalidNotification(f"bad Stripe-Signature: {exc.user_message or exc}") from None
        except (ValueError, TypeError, AttributeError) as exc:
            # Invalid UTF-8 or JSON, or JSON that is not an object (signed, yet not an event).
            raise InvalidNotification(f"not a Stripe event: {type(exc).__name__}") from None
        return _verified_event(data)

    def acknowledge(self) -> Acknowledgement:
        return Acknowledgement(200, b'{"received": true}')

    def reject(self, message: str) -> Acknowledgement:
        # Anything but 2xx makes Stripe redeliver later, which is what a transient failure wants.
        return Acknowledgement(400, json.dumps({"detail": message}).encode())

    async def aclose(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]  # untyped in the SDK


def checkout_expiry(expires_at: datetime, now: float) -> int:
    """`expires_at` as unix seconds, moved inside the window Stripe accepts (30 min – 24 h ahead).

    An order that must expire sooner than Stripe allows is still closed on time: the payments
    service calls `close()` when its own deadline passes.
    """
    wanted = math.ceil(expires_at.timestamp())
    earliest = now + MIN_LIFETIME_SECONDS + _LIFETIME_MARGIN_SECONDS
    latest = math.floor(now + MAX_LIFETIME_SECONDS - _LIFETIME_MARGIN_SECONDS)
    if wanted < earliest:
        stepped = math.ceil(earliest / _EXPIRY_STEP_SECONDS) * _EXPIRY_STEP_SECONDS
        return min(stepped, latest)
    return min(wanted, latest)


def _verified_event(event: Mapping[str, Any]) -> VerifiedEvent:
    event_id, event_type = event.get("id"), event.get("type")
    if event.get("object") != "event" or not isinstance(event_id, str) or not event_id:
        raise InvalidNotification("not a Stripe event")
    if not isinstance(event_type, str):
        raise InvalidNotification(f"event {event_id} has no type")
    if not event_type.startswith("checkout.session."):
        notices = _refund_notices(event_id, event_type, event.get("data"))
        return VerifiedEvent(event_id, None, None, None, None, None, raw=event, refunds=notices)
    container = event.get("data")
    session = container.get("object") if isinstance(container, Mapping) else None
    if not isinstance(session, Mapping) or session.get("object") != "checkout.session":
        raise InvalidNotification(f"event {event_id} carries no checkout session")
    session_id = session.get("id")
    if not isinstance(session_id, str) or not session_id:
        raise InvalidNotification(f"event {event_id} carries a session without id")

    state: PaymentState | None = None
    if event_type == "checkout.session.completed":
        # Delayed methods (bank debits) complete the session unpaid; their outcome comes later.
        if session.get("payment_status") in ("paid", "no_payment_required"):
            state = "paid"
    elif event_type == "checkout.session.async_payment_succeeded":
        state = "paid"
    elif event_type == "checkout.session.async_payment_failed":
        state = "failed"
    elif event_type == "checkout.session.expired":
        state = "expired"

    payment_id = session.get("client_reference_id")
    if not isinstance(payment_id, str) or not payment_id:
        metadata = session.get("metadata")
        payment_id = metadata.get("payment_id") if isinstance(metadata, Mapping) else None
    created = event.get("created")
    paid_at = (
        datetime.fromtimestamp(created, UTC)
        if state == "paid" and isinstance(created, int) and not isinstance(created, bool)
        else None
    )
    return VerifiedEvent(
        event_id=event_id,
        state=state,
        payment_id=payment_id if isinstance(payment_id, str) and payment_id else None,
        provider_ref=session_id,
        amount_minor=_int_or_none(session.get("amount_total")),
        currency=_upper_or_none(session.get("currency")),
        paid_at=paid_at,
        transaction_id=_intent_id(session.get("payment_intent")),
        raw=event,
    )


def _refund_notices(event_id: str, event_type: str, container: Any) -> tuple[RefundNotice, ...]:
    """The refunds or dispute a `charge.refunded` or `charge.dispute.*` event reports (none for
    other events).

    Since API version 2022-11-15 a charge no longer lists its refunds (webhooks cannot expand
    them), so `charge.refunded` is read by its cumulative `amount_refunded`; a charge that does
    list them (an older version) is read refund by refund. `refund.*` events are not read: their
    refunds would be counted a second time beside the cumulative total.
    """
    obj = container.get("object") if isinstance(container, Mapping) else None
    if not isinstance(obj, Mapping):
        return ()
    if event_type == "charge.refunded":
        if obj.get("object") != "charge":
            return ()
        intent = _intent_id(obj.get("payment_intent"))
        listed = obj.get("refunds")
        data = listed.get("data") if isinstance(listed, Mapping) else None
        if isinstance(data, list) and data:
            found = (_refund_notice(item, intent) for item in data)
            return tuple(notice for notice in found if notice is not None)
        total, charge_id = _int_or_none(obj.get("amount_refunded")), obj.get("id")
        if total is None or not isinstance(charge_id, str):
            raise InvalidNotification(f"event {event_id} carries a charge without refunds")
        # Without the list, the cumulative total stands for the refunds vidgate has not seen.
        return (
            RefundNotice(
                kind="refund",
                gateway_id=f"{charge_id}:refunded:{total}",
                state="succeeded",
                amount_minor=None,
                currency=_upper_or_none(obj.get("currency")),
                transaction_id=intent,
                refunded_total=total,
            ),
        )
    if event_type in ("charge.dispute.created", "charge.dispute.closed"):
        dispute_id = obj.get("id")
        amount = _int_or_none(obj.get("amount"))
        if obj.get("object") != "dispute" or not isinstance(dispute_id, str) or amount is None:
            raise InvalidNotification(f"event {event_id} carries no dispute")
        state: RefundState = "pending"
        if event_type == "charge.dispute.closed":
            status = obj.get("status")
            if status == "lost":
                state = "lost"
            elif status in ("won", "warning_closed"):
                state = "won"
            else:
                return ()
        return (
            RefundNotice(
                kind="dispute",
                gateway_id=dispute_id,
                state=state,
                amount_minor=amount,
                currency=_upper_or_none(obj.get("currency")),
                transaction_id=_intent_id(obj.get("payment_intent")),
            ),
        )
    return ()


def _refund_notice(refund: Any, intent: str | None) -> RefundNotice | None:
    """A Stripe Refund object as a notice; None if it is not one."""
    if not isinstance(refund, Mapping) or refund.get("object") != "refund":
        return None
    refund_id = refund.get("id")
    state = _REFUND_STATES.get(str(refund.get("status")))
    amount = _int_or_none(refund.get("amount"))
    if not isinstance(refund_id, str) or not refund_id or state is None or amount is None:
        return None
    metadata = refund.get("metadata")
    ours = metadata.get("refund_id") if isinstance(metadata, Mapping) else None
    return RefundNotice(
        kind="refund",
        gateway_id=refund_id,
        state=state,
        amount_minor=amount,
        currency=_upper_or_none(refund.get("currency")),
        transaction_id=_intent_id(refund.get("payment_intent")) or intent,
        refund_id=ours if isinstance(ours, str) and ours else None,
    )


def _session_state(session: Mapping[str, Any]) -> PaymentState:
    status = session.get("status")
    if status == "expired":
        return "expired"
    if status != "complete":
        return "pending"
    if session.get("payment_status") in ("paid", "no_payment_required"):
        return "paid"
    # Complete but unpaid: a delayed method is settling, or it failed (Stripe then leaves the
    # session as it is and sends the PaymentIntent back to requires_payment_method).
    intent = session.get("payment_intent")
    if isinstance(intent, Mapping) and intent.get("status") in (
        "requires_payment_method",
        "canceled",
    ):
        return "failed"
    return "pending"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # a plain dict is case-sensitive; HTTP header names are not
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


def _intent_id(value: Any) -> str | None:
    """A PaymentIntent's id, whether the field holds the id or the expanded object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _upper_or_none(value: Any) -> str | None:
    return value.upper() if isinstance(value, str) and value else None


def _describe(exc: stripe.StripeError) -> str:
    status = f"HTTP {exc.http_status}: " if exc.http_status else ""
    return f"{status}{exc.user_message or type(exc).__name__}"
