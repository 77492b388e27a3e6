"""`payments` (one row per credit-pack order) and `payment_events` (every verified gateway
notification, first of all, unique on the gateway's event id)."""

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


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'completed', 'failed', 'expired')", name="status_known"
        ),
        CheckConstraint("amount_minor > 0 AND credits > 0", name="positive"),
        Index("ix_payments_user_id_created_at", "user_id", "created_at"),
        Index("ix_payments_pending", "created_at", postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    provider: Mapped[str] = mapped_column(String(10))  # wechat | stripe
    status: Mapped[str] = mapped_column(String(10), default="pending")
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
