"""payment refunds: refunds and disputes of paid orders, and the statuses they give an order

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = "status IN ('pending', 'completed', 'failed', 'expired')"
NEW_STATUSES = (
    "status IN ('pending', 'completed', 'failed', 'expired', 'partially_refunded', "
    "'refunded', 'disputed')"
)


def upgrade() -> None:
    op.alter_column(
        "payments", "status", type_=sa.String(20), existing_type=sa.String(10), nullable=False
    )
    op.drop_constraint("status_known", "payments", type_="check")
    op.create_check_constraint("status_known", "payments", NEW_STATUSES)
    op.create_index("ix_payments_created_at", "payments", ["created_at"])
    op.create_index("ix_payments_transaction_id", "payments", ["transaction_id"])

    op.create_table(
        "payment_refunds",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("payment_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("gateway_id", sa.String(length=255), nullable=True),
        sa.Column("amount_minor", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("credits_taken", sa.Integer(), server_default="0", nullable=False),
        sa.Column("credits_shortfall", sa.Integer(), server_default="0", nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('refund', 'dispute')", name=op.f("ck_payment_refunds_kind_known")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'succeeded', 'failed', 'won', 'lost')",
            name=op.f("ck_payment_refunds_status_known"),
        ),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_payment_refunds_positive")),
        sa.CheckConstraint(
            "credits_taken >= 0 AND credits_shortfall >= 0",
            name=op.f("ck_payment_refunds_credits_nonnegative"),
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_payment_refunds_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_refunds")),
        sa.UniqueConstraint("gateway_id", name=op.f("uq_payment_refunds_gateway_id")),
    )
    op.create_index(
        "ix_payment_refunds_payment_id_created_at",
        "payment_refunds",
        ["payment_id", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_payment_refunds_payment_id_created_at", table_name="payment_refunds")
    op.drop_table("payment_refunds")
    op.drop_index("ix_payments_transaction_id", table_name="payments")
    op.drop_index("ix_payments_created_at", table_name="payments")
    op.execute(
        "UPDATE payments SET status = 'completed' WHERE status IN "
        "('partially_refunded', 'refunded', 'disputed')"
    )
    op.drop_constraint("status_known", "payments", type_="check")
    op.create_check_constraint("status_known", "payments", OLD_STATUSES)
    op.alter_column(
        "payments", "status", type_=sa.String(10), existing_type=sa.String(20), nullable=False
    )
