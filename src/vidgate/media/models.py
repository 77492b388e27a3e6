"""The `uploads` table: one row per file a user uploaded; `tus_uploads`: resumable uploads on
their way there; `upload_intents`: direct uploads to the bucket that were presigned and not yet
checked."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from vidgate.db.base import Base, created_at_column


class Upload(Base):
    __tablename__ = "uploads"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    storage_key: Mapped[str] = mapped_column(String(200), unique=True)
    file_type: Mapped[str] = mapped_column(String(8))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    original_filename: Mapped[str | None] = mapped_column(String(255))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    codec: Mapped[str | None] = mapped_column(String(32))
    fps: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = created_at_column()
    # Set when the object was deleted from storage (retention, account anonymisation, or found
    # missing by `vidgate storage gc`); the row stays for the record and for "expired" answers.
    expired_at: Mapped[datetime | None]


Index("ix_uploads_stored", Upload.created_at, postgresql_where=text("expired_at IS NULL"))


class TusUpload(Base):
    """A resumable (tus) upload: its bytes so far live in a file of the API host's data
    directory, its state here so that every API process on the host agrees on it. `claimed_by`
    is set while one PATCH is receiving bytes (a guarded update, so a second PATCH is refused);
    `upload_id` once the last byte arrived and the `uploads` row was made."""

    __tablename__ = "tus_uploads"
    __table_args__ = (
        CheckConstraint("upload_offset >= 0 AND upload_offset <= length", name="offset_in_range"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    length: Mapped[int] = mapped_column(BigInteger)
    upload_offset: Mapped[int] = mapped_column(BigInteger, default=0)
    upload_metadata: Mapped[dict[str, str]] = mapped_column(JSON)
    claimed_by: Mapped[uuid.UUID | None]
    claimed_at: Mapped[datetime | None]
    upload_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("uploads.id"))
    expires_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime] = created_at_column()


class UploadIntent(Base):
    """A presigned direct upload (`POST /api/uploads/presign`): the key the policy fixed and what
    the client declared, until `complete` checks the object and records its `uploads` row, or
    the sweeper removes the object after `expires_at` (and its grace) without one."""

    __tablename__ = "upload_intents"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    storage_key: Mapped[str] = mapped_column(String(200), unique=True)
    file_type: Mapped[str] = mapped_column(String(8))
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(index=True)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    upload_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("uploads.id", ondelete="CASCADE"), default=None
    )
    created_at: Mapped[datetime] = created_at_column()
