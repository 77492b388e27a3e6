"""redemption codes: batches of codes worth credits that operators make, the codes with their
use counts, and each user's redemption of a code (once per code and user)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "code_batches",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("credits", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by_id", sa.Uuid(), nullable=True),  # none from the command line
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("credits > 0", name=op.f("ck_code_batches_credits_positive")),
        sa.CheckConstraint("count > 0", name=op.f("ck_code_batches_count_positive")),
        sa.CheckConstraint("max_uses > 0", name=op.f("ck_code_batches_max_uses_positive")),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_code_batches_created_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_code_batches")),
    )
    op.create_index("ix_code_batches_created_at", "code_batches", ["created_at"])

    op.create_table(
        "redemption_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("batch_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),  # upper case, no dashes
        sa.Column("uses", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("uses >= 0", name=op.f("ck_redemption_codes_uses_not_negative")),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["code_batches.id"],
            name=op.f("fk_redemption_codes_batch_id_code_batches"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_redemption_codes")),
        sa.UniqueConstraint("code", name=op.f("uq_redemption_codes_code")),
    )
    op.create_index("ix_redemption_codes_batch_id", "redemption_codes", ["batch_id"])

    op.create_table(
        "code_redemptions",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("code_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["code_id"],
            ["redemption_codes.id"],
            name=op.f("fk_code_redemptions_code_id_redemption_codes"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_code_redemptions_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_code_redemptions")),
        # A user applies a code once, however many uses it has.
        sa.UniqueConstraint("code_id", "user_id", name=op.f("uq_code_redemptions_code_id_user_id")),
    )
    op.create_index("ix_code_redemptions_user_id", "code_redemptions", ["user_id"])


def downgrade() -> None:
    op.drop_table("code_redemptions")
    op.drop_table("redemption_codes")
    op.drop_table("code_batches")
