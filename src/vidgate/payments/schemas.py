"""Payment API bodies (docs/api.md §6, plus what a client needs to finish paying)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from vidgate.admin.schemas import Reason
from vidgate.tasks.schemas import HttpUrlStr
from vidgate.vendors import GatewayName

Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
PaymentStatus = Literal[
    "pending", "completed", "failed", "expired", "partially_refunded", "refunded", "disputed"
]


class CreatePayment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=2)]  # yuan, dollars
    currency: Currency = "CNY"
    credits: Annotated[int, Field(gt=0)]
    # Where the payer's browser goes after paying, and (Stripe) after giving up; `{PAYMENT_ID}`
    # is replaced with the new payment's id. Default: the web app's buy page for this payment.
    return_url: HttpUrlStr | None = None
    cancel_url: HttpUrlStr | None = None
    # WeChat Pay only: `native` (a QR code to scan) or `h5` (pay in a phone's browser).
    scene: Literal["native", "h5"] = "native"


class PaymentView(BaseModel):
    payment_id: str
    status: PaymentStatus
    amount: float
    currency: str
    credits: int
    provider: GatewayName
    code_url: str | None = None  # WeChat native: show as a QR code
    h5_url: str | None = None  # WeChat H5: open on the phone
    checkout_url: str | None = None  # Stripe: redirect here
    expires_at: datetime
    created_at: datetime
    paid_at: datetime | None = None


class PaymentList(BaseModel):
    payments: list[PaymentView]
    total: int
    page: int
    page_size: int


class PackView(BaseModel):
    credits: int
    prices: dict[str, float]  # currency → price in major units
    providers: list[GatewayName]  # gateways that sell it in some currency


class PackList(BaseModel):
    packages: list[PackView]


# --- the console (`/api/admin/payments`) ---------------------------------------------------


class AdminPaymentView(BaseModel):
    payment_id: str
    user_id: str
    provider: GatewayName
    status: PaymentStatus
    amount_minor: int  # fen, cents
    amount: float
    currency: str
    credits: int
    scene: str | None
    provider_ref: str | None  # WeChat out_trade_no / Stripe Checkout Session
    transaction_id: str | None  # WeChat transaction_id / Stripe PaymentIntent
    created_at: datetime
    expires_at: datetime
    paid_at: datetime | None


class AdminPaymentPage(BaseModel):
    payments: list[AdminPaymentView]
    total: int
    page: int
    page_size: int


class PaymentEventView(BaseModel):
    """A verified gateway notification about the order and what vidgate did with it."""

    id: int
    event_id: str
    state: str | None
    outcome: str
    received_at: datetime
    payload: dict[str, Any]


class RefundView(BaseModel):
    """A refund (by an operator or at the gateway) or a dispute of the order."""

    refund_id: str
    kind: Literal["refund", "dispute"]
    status: Literal["pending", "succeeded", "failed", "won", "lost"]
    amount_minor: int
    amount: float
    currency: str
    gateway_id: str | None  # WeChat refund_id / Stripe re_… or dp_…
    credits_taken: int  # taken back from the user's balance
    credits_shortfall: int  # due but no longer available (spent or held by running tasks)
    reason: str | None
    actor: str
    created_at: datetime
    updated_at: datetime


class AdminPaymentDetail(AdminPaymentView):
    refundable_minor: int  # what an operator may still refund
    events: list[PaymentEventView]
    refunds: list[RefundView]


class RefundIn(BaseModel):
    """An operator's refund: `amount_minor` in the currency's minor unit (fen, cents); omitted,
    all that remains refundable."""

    model_config = ConfigDict(strict=True, extra="forbid")

    amount_minor: Annotated[int, Field(gt=0)] | None = None
    reason: Reason
