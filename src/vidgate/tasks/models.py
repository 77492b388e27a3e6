"""The `tasks` table (one row per video job) and `idempotency_keys` (replayable create calls)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from vidgate.db.base import Base, created_at_column


class TaskStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMEOUT = "TIMEOUT"
    CANCELED = "CANCELED"


OPEN_STATUSES = (TaskStatus.PENDING, TaskStatus.RUNNING)
RETRYABLE_STATUSES = (TaskStatus.FAILED, TaskStatus.TIMEOUT, TaskStatus.CANCELED)


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint(
            "status IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'TIMEOUT', 'CANCELED')",
            name="status_known",
        ),
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress_range"),
        CheckConstraint(
            "credits_reserved >= 0 AND credits_charged >= 0 AND credits_refunded >= 0",
            name="credits_nonnegative",
        ),
        Index("ix_tasks_user_id_created_at", "user_id", text("created_at DESC"), "id"),
        Index(
            "ix_tasks_open",
            "status",
            postgresql_where=text("status IN ('PENDING', 'RUNNING')"),
        ),
        Index(
            "ix_tasks_stored_results",
            "completed_at",
            postgresql_where=text("result_key IS NOT NULL AND result_expired_at IS NULL"),
        ),
        Index(
            "ix_tasks_expired_results",
            "result_key",
            postgresql_where=text("result_expired_at IS NOT NULL"),
        ),
        Index(
            "ix_tasks_channel_open",
            "channel",
            postgresql_where=text("status IN ('PENDING', 'RUNNING') AND channel IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(20))
    provider: Mapped[str] = mapped_column(String(20))  # the adapter of the channel it runs on
    model: Mapped[str] = mapped_column(String(64))  # the catalog model asked for
    # The catalog channel the task was sent (or is being sent) through; None before that.
    channel: Mapped[str | None] = mapped_column(String(64))
    # The inputs as the caller gave them (the create request's fields).
    params: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # What goes upstream: the provider request, with inputs resolved to URLs the vendor fetches.
    upstream_request: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(12), default=TaskStatus.PENDING)
    progress: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    upstream_id: Mapped[str | None] = mapped_column(String(200))
    upstream_status: Mapped[str | None] = mapped_column(String(32))
    # Set when a worker starts sending the task upstream; with no upstream_id it marks an attempt
    # whose outcome is unknown, which is never resent automatically.
    submit_started_at: Mapped[datetime | None]
    result_key: Mapped[str | None] = mapped_column(String(200))
    result_size: Mapped[int | None] = mapped_column(BigInteger)
    result_duration_seconds: Mapped[float | None] = mapped_column(Float)
    # Set when the result was deleted from storage (retention or account anonymisation).
    result_expired_at: Mapped[datetime | None]
    error_code: Mapped[str | None] = mapped_column(String(100))
    error_message: Mapped[str | None] = mapped_column(Text)
    billing_mode: Mapped[str] = mapped_column(String(10))  # "metered" | "prepaid"
    unit_price: Mapped[int] = mapped_column(Integer)  # credits per second, or per task
    reference_seconds: Mapped[float | None] = mapped_column(Float)
    credits_estimated: Mapped[int] = mapped_column(Integer)
    credits_reserved: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    credits_charged: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    credits_refunded: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    estimated_seconds: Mapped[int] = mapped_column(Integer)
    webhook_url: Mapped[str | None] = mapped_column(Text)
    retry_of: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tasks.id"))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    deadline_at: Mapped[datetime]
    cancel_requested_at: Mapped[datetime | None]
    # When the vendor said it cannot stop the task (or has no cancel): the task runs on and is
    # charged for what it makes; set once, so the worker stops asking and keeps polling.
    cancel_refused_at: Mapped[datetime | None]
    # The labels the stored result carries (`vidgate.labels.pipeline`), or the labelling failures
    # counted so far ({"failures": n}) while it is being retried; None: labelling was off.
    labels: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(
        server_default=func.now(), onupdate=func.now(), nullable=False
    )
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]


class IdempotencyKey(Base):
    """One `Idempotency-Key` a user sent to a create endpoint, and the response it got."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # SHA-256 of method, path and the request body: the same key with another request is refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    # Until a response is stored the key is in flight; `locked_until` frees it if its request died.
    response_status: Mapped[int | None] = mapped_column(SmallInteger)
    response_body: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    locked_until: Mapped[datetime]
    created_at: Mapped[datetime] = created_at_column()


class TaskAttempt(Base):
    """One try to hand a task to a vendor channel, and how it ended."""

    __tablename__ = "task_attempts"
    __table_args__ = (
        CheckConstraint(
            "outcome IN ('sending', 'accepted', 'not_sent', 'throttled', 'channel_error',"
            " 'rejected', 'ambiguous')",
            name="outcome_known",
        ),
        Index("ix_task_attempts_task_id", "task_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tasks.id"))
    channel: Mapped[str] = mapped_column(String(64))
    adapter: Mapped[str] = mapped_column(String(20))
    # sending (in flight), accepted, not_sent / throttled / channel_error (the next channel may
    # take it), rejected (the task failed), ambiguous (never sent again anywhere)
    outcome: Mapped[str] = mapped_column(String(20))
    error_code: Mapped[str | None] = mapped_column(String(100))
    error_message: Mapped[str | None] = mapped_column(Text)
    upstream_id: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(server_default=func.now())
    finished_at: Mapped[datetime | None]
