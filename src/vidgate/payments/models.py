"""`payments` (one row per credit-pack order), `payment_events` (every verified gateway
notification, first of all, unique on the gateway's event id) and `payment_refunds` (every
refund or dispute of a paid order, unique on the gateway's refund or dispute id)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from vidgate.db.base import Base, created_at_column

# pending → completed | failed | expired; a completed order may then be refunded in part or in
# full, or disputed (until the dispute closes).
PAYMENT_STATUSES = (
    "pending",
    "completed",
    "failed",
    "expired",
    "partially_refunded",
    "refunded",
    "disputed",
)
# The statuses of an order whose money was received (its credits were granted).
PAID_STATUSES = ("completed", "partially_refunded", "refunded", "disputed")
REFUND_KINDS = ("refund", "dispute")
REFUND_STATUSES = ("pending", "succeeded", "failed", "won", "lost")


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint(f"status IN ({_quoted(PAYMENT_STATUSES)})", name="status_known"),
        CheckConstraint("amount_minor > 0 AND credits > 0", name="positive"),
        Index("ix_payments_user_id_created_at", "user_id", "created_at"),
        Index("ix_payments_pending", "created_at", postgresql_where=text("status = 'pending'")),
        Index("ix_payments_created_at", "created_at"),
        Index("ix_payments_transaction_id", "transaction_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    provider: Mapped[str] = mapped_column(String(10))  # wechat | stripe
    status: Mapped[str] = mapped_column(String(20), default="pending")
    amount_minor: Mapped[int] = mapped_column(Integer)  # fen, cents
    currency: Mapped[str] = mapped_column(String(3))
    credits: Mapped[int] = mapped_column(Integer)
    scene: Mapped[str | None] = mapped_column(String(10), default=None)  # wechat: native | h5
    provider_ref: Mapped[str | None] = mapped_column(String(255), default=None)
    pay_url: Mapped[str | None] = mapped_column(Text, default=None)  # code_url/h5_url/checkout
    return_url: Mapped[str | None] = mapped_column(Text, default=None)
    transaction_id: Mapped[str | None] = mapped_column(String(255), default=None)
    expires_at: Mapped[datetime] = mapped_column()
    paid_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class PaymentEvent(Base):
    """The inbox: a notification is stored (once per gateway event id) before it acts."""

    __tablename__ = "payment_events"
    __table_args__ = (
        UniqueConstraint("provider", "event_id", name="uq_payment_events_provider_event"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(10))
    event_id: Mapped[str] = mapped_column(String(255))
    payment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("payments.id"), index=True, default=None
    )
    state: Mapped[str | None] = mapped_column(String(10), default=None)
    outcome: Mapped[str] = mapped_column(Text)  # what vidgate did with it
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    received_at: Mapped[datetime] = created_at_column()


class PaymentRefund(Base):
    """Money of a paid order going back to the payer: a refund (asked for by an operator, or
    made at the gateway) or a dispute (the payer's bank claws it back until it is decided).

    `credits_taken` is what the ledger took back from the user for it (`payment_refund:<id>`
    or `payment_dispute:<id>`); `credits_shortfall` what was due but no longer available (spent
    or held by running tasks), kept for an operator to look at.
    """

    __tablename__ = "payment_refunds"
    __table_args__ = (
        CheckConstraint(f"kind IN ({_quoted(REFUND_KINDS)})", name="kind_known"),
        CheckConstraint(f"status IN ({_quoted(REFUND_STATUSES)})", name="status_known"),
        CheckConstraint("amount_minor > 0", name="positive"),
        CheckConstraint(
            "credits_taken >= 0 AND credits_shortfall >= 0", name="credits_nonnegative"
        ),
        Index("ix_payment_refunds_payment_id_created_at", "payment_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    payment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payments.id"))
    kind: Mapped[str] = mapped_column(String(10))  # refund | dispute
    # WeChat refund_id, Stripe re_… or dp_…; None until the gateway has answered.
    gateway_id: Mapped[str | None] = mapped_column(String(255), unique=True, default=None)
    amount_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    credits_taken: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    credits_shortfall: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    actor: Mapped[str] = mapped_column(String(100))  # the operator, or the gateway's name
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
