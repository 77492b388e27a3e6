"""moderation blocks: prompts that content screening refused, for the operator

Revision ID: 0020
Revises: 0019
Create Date: 2027-01-20
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "moderation_blocks",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("category", sa.String(200), nullable=False),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("prompt_excerpt", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_moderation_blocks_user_id_users"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_moderation_blocks"),
    )
    op.create_index("ix_moderation_blocks_created_at", "moderation_blocks", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_moderation_blocks_created_at", table_name="moderation_blocks")
    op.drop_table("moderation_blocks")
