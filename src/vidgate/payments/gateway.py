"""What vidgate needs from a payment gateway, whichever it is (WeChat Pay, Stripe).

Adapters live beside this file (`wechat.py`, `stripe_gateway.py`); the payments service only
speaks this protocol. Amounts are integers in the currency's minor unit (fen, cents).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from vidgate.vendors import GatewayName

# "refunded": the gateway took the money and has since given (some of) it back (WeChat's
# trade_state REFUND); never a reason to grant credits.
PaymentState = Literal["pending", "paid", "failed", "expired", "refunded"]
# Where a refund or dispute stands at the gateway: a refund is `pending` until the money is on
# its way back (`succeeded`) or it is given up (`failed`); a dispute is `pending` until it is
# closed `won` (the money stays with us) or `lost`.
RefundState = Literal["pending", "succeeded", "failed", "won", "lost"]
RefundKind = Literal["refund", "dispute"]


class GatewayError(Exception):
    """The gateway could not be reached or answered with an error (the caller may retry)."""


class RefundRefused(GatewayError):
    """The gateway answered that it will not make this refund (a definite no, not an outage):
    e.g. more than the charge has left, or the order is too old."""


class InvalidNotification(Exception):
    """A notification that failed verification (signature, timestamp, decryption, merchant or
    app id): it must change nothing."""


@dataclass(frozen=True)
class CheckoutRequest:
    payment_id: str  # vidgate's id as 32 hex digits; WeChat's out_trade_no, Stripe's
    # client_reference_id
    amount_minor: int
    currency: str  # ISO 4217, upper case
    credits: int
    description: str  # shown to the payer, e.g. "vidgate 1,100 credits"
    notify_url: str  # where the gateway sends notifications (WeChat); informational for Stripe
    expires_at: datetime  # aware, UTC
    return_url: str | None = None  # where the payer's browser goes afterwards
    cancel_url: str | None = None  # Stripe: where Checkout's back link goes
    scene: Literal["native", "h5"] = "native"  # WeChat: QR code (native) or mobile browser (h5)
    client_ip: str | None = None  # WeChat H5 needs the payer's IP


@dataclass(frozen=True)
class Checkout:
    provider_ref: str  # WeChat: out_trade_no (= payment_id); Stripe: the Checkout Session id
    code_url: str | None = None  # WeChat native: render as a QR code
    h5_url: str | None = None  # WeChat H5: open in the mobile browser
    checkout_url: str | None = None  # Stripe: redirect the browser here


@dataclass(frozen=True)
class GatewayPayment:
    """The gateway's view of one order, from a query (reconciliation)."""

    state: PaymentState
    amount_minor: int | None
    currency: str | None
    paid_at: datetime | None = None
    transaction_id: str | None = None  # WeChat transaction_id / Stripe payment_intent
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RefundRequest:
    """Give back `amount_minor` of a paid order (of `total_minor`)."""

    payment_id: str  # vidgate's id as 32 hex digits (WeChat's out_trade_no)
    refund_id: str  # vidgate's refund id as 32 hex digits: out_refund_no, the idempotency key
    provider_ref: str | None  # WeChat: out_trade_no; Stripe: the Checkout Session id
    transaction_id: str | None  # WeChat transaction_id / Stripe payment_intent
    amount_minor: int
    total_minor: int
    currency: str
    reason: str  # the operator's words (WeChat shows them to the payer; Stripe keeps metadata)
    notify_url: str  # where WeChat sends the refund's outcome


@dataclass(frozen=True)
class GatewayRefund:
    """The gateway's answer about one refund."""

    gateway_id: str  # WeChat refund_id / Stripe re_…
    state: RefundState
    amount_minor: int
    currency: str
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RefundNotice:
    """What a verified notification says about a refund or a dispute of a paid order.

    The order is named by vidgate's id (`payment_id`, WeChat) or by the gateway's payment
    (`transaction_id`, Stripe's PaymentIntent). `refund_id` is vidgate's own refund id when the
    refund was asked for by vidgate (WeChat's out_refund_no, Stripe's metadata); None for a
    refund made at the gateway (Stripe's dashboard). When Stripe does not list a charge's
    refunds, `refunded_total` carries the charge's cumulative amount refunded instead and
    `amount_minor` is None: the new refund is whatever that total adds to what vidgate knows.
    """

    kind: RefundKind
    gateway_id: str
    state: RefundState
    amount_minor: int | None
    currency: str | None
    payment_id: str | None = None
    transaction_id: str | None = None
    refund_id: str | None = None
    refunded_total: int | None = None


@dataclass(frozen=True)
class VerifiedEvent:
    """A notification whose authenticity was proven; what it says happened."""

    event_id: str  # unique per event at the gateway (WeChat notification id / Stripe evt_…)
    state: PaymentState | None  # None: an event vidgate does not act on
    payment_id: str | None  # vidgate's id, as the gateway echoes it back
    provider_ref: str | None
    amount_minor: int | None
    currency: str | None
    paid_at: datetime | None = None
    transaction_id: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    # Refunds and disputes this notification reports (then `state` is None).
    refunds: tuple[RefundNotice, ...] = ()


@dataclass(frozen=True)
class Acknowledgement:
    """What to answer the gateway once a notification is safely stored."""

    status_code: int
    body: bytes = b""
    content_type: str = "application/json"


class PaymentGateway(Protocol):
    @property
    def name(self) -> GatewayName: ...

    async def create(self, request: CheckoutRequest) -> Checkout: ...

    async def query(self, payment_id: str, provider_ref: str) -> GatewayPayment: ...

    async def close(self, payment_id: str, provider_ref: str) -> None:
        """Stop an unpaid order from being paid (WeChat close / Stripe expire)."""
        ...

    async def refund(self, request: RefundRequest) -> GatewayRefund:
        """Ask for a refund; the same `refund_id` again must not refund twice. RefundRefused
        for a definite refusal, GatewayError when the outcome is unknown."""
        ...

    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> VerifiedEvent:
        """Raise InvalidNotification unless the notification is authentic and meant for us."""
        ...

    def acknowledge(self) -> Acknowledgement: ...

    def reject(self, message: str) -> Acknowledgement:
        """The answer to a notification that failed verification (the gateway may resend)."""
        ...

    async def aclose(self) -> None: ...
