"""Outgoing webhooks: a signing secret per user, one delivery per task event, every attempt."""

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
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from vidgate.db.base import Base, created_at_column

DELIVERY_STATUSES = ("pending", "succeeded", "failed")


class WebhookSecret(Base):
    """A user's signing secret. The current one has no `retired_at`; a rotated one keeps signing
    (as a second signature) until `retired_at` + the overlap, so receivers can switch over."""

    __tablename__ = "webhook_secrets"
    __table_args__ = (
        Index(
            "uq_webhook_secrets_current",
            "user_id",
            unique=True,
            postgresql_where=text("retired_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    secret: Mapped[str] = mapped_column(String(100))  # `whsec_` + base64 of 32 random bytes
    created_at: Mapped[datetime] = created_at_column()
    retired_at: Mapped[datetime | None] = mapped_column(default=None)
    signs_until: Mapped[datetime | None] = mapped_column(default=None)


class WebhookDelivery(Base):
    """One event for one task, sent to the task's `webhook_url` until it succeeds or gives up.

    `event_id` is the `webhook-id` header: the same on every attempt and redelivery, so a
    receiver can drop duplicates. (task, event type) is unique: an event is recorded once even
    when two workers race to record it.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("task_id", "event_type", name="uq_webhook_deliveries_task_event"),
        CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status_known"),
        Index(
            "ix_webhook_deliveries_pending",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    event_id: Mapped[str] = mapped_column(String(40), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tasks.id"), index=True)
    event_type: Mapped[str] = mapped_column(String(30))
    url: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(server_default=func.now())
    # While an attempt's request is out: until when that attempt owns the delivery.
    sending_until: Mapped[datetime | None] = mapped_column(default=None)
    last_status_code: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = created_at_column()
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)


class WebhookAttempt(Base):
    """One POST of a delivery: when, what came back, how long it took."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery_id_id", "delivery_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_deliveries.id"))
    attempted_at: Mapped[datetime] = mapped_column()
    status_code: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    duration_ms: Mapped[int] = mapped_column(Integer)
