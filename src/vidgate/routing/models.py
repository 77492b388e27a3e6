"""`channel_health`: one row per vendor channel, shared by every process, holding its circuit
breaker and serialising the count of its concurrency slots."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, Text, false, func
from sqlalchemy.orm import Mapped, mapped_column

from vidgate.db.base import Base


class ChannelHealth(Base):
    __tablename__ = "channel_health"

    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, server_default="0")  # in a row
    open_until: Mapped[datetime | None]  # breaker open (no traffic) until then
    probing_until: Mapped[datetime | None]  # half-open: one probe is out until then
    last_error: Mapped[str | None] = mapped_column(Text)
    disabled: Mapped[bool] = mapped_column(Boolean, server_default=false())  # by an operator
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
