"""task labels: what labels (implicit AIGC metadata, visible mark, C2PA) the result carries

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("labels", postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("tasks", "labels")
