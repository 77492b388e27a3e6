"""The `users` table: identity, profile and the two credit counters the ledger keeps right."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from vidgate.db.base import Base, created_at_column


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("credits >= 0", name="credits_nonnegative"),
        CheckConstraint("credits_reserved >= 0", name="reserved_nonnegative"),
        CheckConstraint("credits_reserved <= credits", name="reserved_within_balance"),
        CheckConstraint("region IN ('CN', 'US', 'EU', 'ASIA')", name="region_known"),
        CheckConstraint("role IN ('user', 'support', 'admin')", name="role_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    phone: Mapped[str | None] = mapped_column(String(20), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    google_sub: Mapped[str | None] = mapped_column(String(255), unique=True)
    username: Mapped[str] = mapped_column(String(50))
    avatar_url: Mapped[str | None] = mapped_column(Text)
    region: Mapped[str] = mapped_column(String(8), default="CN")
    credits: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    credits_reserved: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = created_at_column()
    last_login_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]
    purge_after: Mapped[datetime | None]
    anonymized_at: Mapped[datetime | None]
    role: Mapped[str] = mapped_column(String(16), default="user", server_default="user")
    suspended_at: Mapped[datetime | None]  # set: no token or key of the user works


Index("ix_users_email_lower", func.lower(User.email))
Index("ix_users_operators", User.role, postgresql_where=User.role != "user")
