"""models and channels: which catalog model a task is for, the channel it runs on, each vendor
attempt it took, and every channel's health (circuit breaker) shared by all processes

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What the single vendor of each kind was before there was a catalog.
LEGACY_MODELS = {
    "animate-move": ("wan2.2-animate-move", "dashscope-animate-move"),
    "animate-mix": ("wan2.2-animate-mix", "dashscope-animate-mix"),
    "text-to-video": ("sora-2", "kie-sora-2"),
    "image-to-video": ("sora-2", "kie-sora-2"),
}


def upgrade() -> None:
    op.add_column("tasks", sa.Column("model", sa.String(64), nullable=True))
    op.add_column("tasks", sa.Column("channel", sa.String(64), nullable=True))
    for kind, (model, channel) in LEGACY_MODELS.items():
        op.execute(
            sa.text("UPDATE tasks SET model = :model WHERE kind = :kind").bindparams(
                model=model, kind=kind
            )
        )
        op.execute(
            sa.text(
                "UPDATE tasks SET channel = :channel WHERE kind = :kind"
                " AND (upstream_id IS NOT NULL OR submit_started_at IS NOT NULL)"
            ).bindparams(channel=channel, kind=kind)
        )
    op.alter_column("tasks", "model", nullable=False)
    # Tasks holding a channel's slot: sent (or being sent) and not finished.
    op.create_index(
        "ix_tasks_channel_open",
        "tasks",
        ["channel"],
        postgresql_where=sa.text("status IN ('PENDING', 'RUNNING') AND channel IS NOT NULL"),
    )
    op.create_table(
        "task_attempts",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("task_id", sa.Uuid, sa.ForeignKey("tasks.id"), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("adapter", sa.String(20), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("error_code", sa.String(100), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("upstream_id", sa.String(200), nullable=True),
        sa.Column(
            "started_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('sending', 'accepted', 'not_sent', 'throttled', 'channel_error',"
            " 'rejected', 'ambiguous')",
            name="outcome_known",
        ),
    )
    op.create_index("ix_task_attempts_task_id", "task_attempts", ["task_id", "id"])
    op.create_table(
        "channel_health",
        sa.Column("channel", sa.String(64), primary_key=True),
        sa.Column("failures", sa.Integer, server_default="0", nullable=False),
        sa.Column("open_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("probing_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("disabled", sa.Boolean, server_default=sa.false(), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    )


def downgrade() -> None:
    op.drop_table("channel_health")
    op.drop_index("ix_task_attempts_task_id", table_name="task_attempts")
    op.drop_table("task_attempts")
    op.drop_index("ix_tasks_channel_open", table_name="tasks")
    op.drop_column("tasks", "channel")
    op.drop_column("tasks", "model")
