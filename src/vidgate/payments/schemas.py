"""Payment API bodies (docs/api.md §6, plus what a client needs to finish paying)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from vidgate.tasks.schemas import HttpUrlStr
from vidgate.vendors import GatewayName

Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


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
    status: Literal["pending", "completed", "failed", "expired"]
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
