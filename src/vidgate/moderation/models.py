"""`moderation_blocks`: every prompt screening refused, for the operator to review."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Identity, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vidgate.db.base import Base, created_at_column

# How much of a refused prompt the operator's record keeps.
EXCERPT_CHARS = 500


class ModerationBlock(Base):
    __tablename__ = "moderation_blocks"
    __table_args__ = (Index("ix_moderation_blocks_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32))  # "wordlist" or the vendor
    category: Mapped[str] = mapped_column(String(200))  # what the caller was told
    rule: Mapped[str] = mapped_column(String(200))  # which entry or labels: the operator's only
    prompt_excerpt: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
