"""`code_batches`, `redemption_codes` and `code_redemptions`.

A batch says what each of its codes is worth and how often it may be used; a code counts its
uses; a redemption is one user applying one code, at most once (unique per code and user).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from vidgate.db.base import Base, created_at_column


class CodeBatch(Base):
    """Codes made together: the credits each is worth, its uses, expiry, and who made them."""

    __tablename__ = "code_batches"
    __table_args__ = (
        CheckConstraint("credits > 0", name="credits_positive"),
        CheckConstraint("count > 0", name="count_positive"),
        CheckConstraint("max_uses > 0", name="max_uses_positive"),
        Index("ix_code_batches_created_at", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    credits: Mapped[int] = mapped_column(Integer)  # added by each redemption
    count: Mapped[int] = mapped_column(Integer)  # codes in the batch
    max_uses: Mapped[int] = mapped_column(Integer)  # redemptions per code, by different users
    expires_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_by: Mapped[str] = mapped_column(String(100))  # as the audit log names the actor
    created_at: Mapped[datetime] = created_at_column()
    disabled_at: Mapped[datetime | None]


class RedemptionCode(Base):
    """One code (stored without dashes, upper case) and how many times it has been used."""

    __tablename__ = "redemption_codes"
    __table_args__ = (
        CheckConstraint("uses >= 0", name="uses_not_negative"),
        Index("ix_redemption_codes_batch_id", "batch_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    batch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("code_batches.id"))
    code: Mapped[str] = mapped_column(String(32), unique=True)
    uses: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = created_at_column()
    disabled_at: Mapped[datetime | None]


class CodeRedemption(Base):
    """A user applied a code: at most once per code and user."""

    __tablename__ = "code_redemptions"
    __table_args__ = (
        UniqueConstraint("code_id", "user_id", name="uq_code_redemptions_code_id_user_id"),
        Index("ix_code_redemptions_user_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    code_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("redemption_codes.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = created_at_column()
