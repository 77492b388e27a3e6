"""media retention: when an upload or a task's result was deleted from storage

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06

A row outlives its object: `uploads.expired_at` and `tasks.result_expired_at` record that the
object was deleted (retention, account anonymisation, or `vidgate storage gc` finding it gone),
so views can say "expired" instead of handing out a dead link. The partial indexes serve the
retention job's scans of what is still stored, and `/media`'s look-up of an expired result.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("uploads", sa.Column("expired_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "tasks", sa.Column("result_expired_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(
        "ix_uploads_stored",
        "uploads",
        ["created_at"],
        postgresql_where=sa.text("expired_at IS NULL"),
    )
    op.create_index(
        "ix_tasks_stored_results",
        "tasks",
        ["completed_at"],
        postgresql_where=sa.text("result_key IS NOT NULL AND result_expired_at IS NULL"),
    )
    op.create_index(
        "ix_tasks_expired_results",
        "tasks",
        ["result_key"],
        postgresql_where=sa.text("result_expired_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_expired_results", table_name="tasks")
    op.drop_index("ix_tasks_stored_results", table_name="tasks")
    op.drop_index("ix_uploads_stored", table_name="uploads")
    op.drop_column("tasks", "result_expired_at")
    op.drop_column("uploads", "expired_at")
