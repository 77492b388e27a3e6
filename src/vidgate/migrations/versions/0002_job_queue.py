"""job queue: procrastinate's tables and functions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

The schema comes from the pinned procrastinate package. A later procrastinate upgrade adds a
migration here that runs that release's own migration scripts.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from procrastinate.schema import SchemaManager

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    raw = op.get_bind().connection.dbapi_connection
    assert raw is not None
    # Sent as one simple query: the script holds `%` and `:` that parameter parsing would mangle.
    cursor = raw.cursor()
    try:
        cursor.execute(SchemaManager.get_schema())
    finally:
        cursor.close()


def downgrade() -> None:
    for obj in (
        "TABLE procrastinate_events",
        "TABLE procrastinate_periodic_defers",
        "TABLE procrastinate_jobs",
        "TABLE procrastinate_workers",
    ):
        op.execute(f"DROP {obj} CASCADE")
