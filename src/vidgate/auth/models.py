"""Sign-in state: sessions, rotating refresh tokens, SMS codes and the development SMS outbox."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vidgate.db.base import Base, created_at_column


class AuthSession(Base):
    """One sign-in. Access tokens name it (`sid`); revoking it ends every token it issued."""

    __tablename__ = "auth_sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    method: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime]
    last_refreshed_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(32))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))
    second_factor_at: Mapped[datetime | None]  # when an operator passed TOTP in this session


class RefreshToken(Base):
    """An opaque refresh token, kept only as its SHA-256; `rotated_at` is set when it is used."""

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    parent_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = created_at_column()
    rotated_at: Mapped[datetime | None]


class SmsCode(Base):
    """A sent sign-in code, kept only as an HMAC. Its rows also drive the per-phone send limits."""

    __tablename__ = "sms_codes"
    __table_args__ = (Index("ix_sms_codes_phone_created_at", "phone", "created_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    phone: Mapped[str] = mapped_column(String(20))
    code_hmac: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    consumed_at: Mapped[datetime | None]
    invalidated_at: Mapped[datetime | None]
    ip: Mapped[str | None] = mapped_column(String(64))


class DevSmsMessage(Base):
    """What the console sender "sent" (development only), read back by the SMS outbox endpoint."""

    __tablename__ = "dev_sms_outbox"
    __table_args__ = (Index("ix_dev_sms_outbox_phone_id", "phone", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    phone: Mapped[str] = mapped_column(String(20))
    code: Mapped[str] = mapped_column(String(12))
    sent_at: Mapped[datetime] = created_at_column()


class OAuthState(Base):
    """A Google redirect-flow attempt: its PKCE verifier and nonce, used once, for 10 minutes."""

    __tablename__ = "oauth_states"

    state: Mapped[str] = mapped_column(String(64), primary_key=True)
    code_verifier: Mapped[str] = mapped_column(String(128))
    nonce: Mapped[str] = mapped_column(String(64))
    redirect_uri: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
