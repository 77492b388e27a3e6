"""operators: a role on every user, suspension, the append-only audit log, and operators'
second factor (TOTP secret, recovery codes) with the moment a session passed it

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("role", sa.String(16), nullable=False, server_default="user"))
    op.create_check_constraint("role_known", "users", "role IN ('user', 'support', 'admin')")
    op.add_column("users", sa.Column("suspended_at", sa.DateTime(timezone=True)))
    op.create_index(
        "ix_users_operators", "users", ["role"], postgresql_where=sa.text("role <> 'user'")
    )
    op.add_column("auth_sessions", sa.Column("second_factor_at", sa.DateTime(timezone=True)))

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("actor_id", sa.Uuid, sa.ForeignKey("users.id")),
        sa.Column("actor", sa.String(100), nullable=False),  # who, as shown (cli: the OS user)
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_type", sa.String(32), nullable=False),
        sa.Column("target_id", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("before", postgresql.JSONB),
        sa.Column("after", postgresql.JSONB),
        sa.Column("request_id", sa.String(100)),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_target", "audit_log", ["target_type", "target_id"])
    op.create_index("ix_audit_log_actor", "audit_log", ["actor_id", "at"])
    # Append-only: rows may be added, never changed or removed (a user's deletion keeps them).
    op.execute(
        """
        CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_log is append-only';
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
    )

    op.create_table(
        "operator_factors",
        sa.Column(
            "user_id", sa.Uuid, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("totp_secret", sa.Text, nullable=False),  # encrypted with the secret key
        sa.Column("confirmed_at", sa.DateTime(timezone=True)),
        sa.Column("last_step", sa.BigInteger),  # the last time step accepted: no code twice
        sa.Column(
            "recovery_codes",
            postgresql.ARRAY(sa.String(64)),
            nullable=False,
            server_default="{}",
        ),  # SHA-256 of the unused ones
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )


def downgrade() -> None:
    op.drop_table("operator_factors")
    op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
    op.execute("DROP FUNCTION audit_log_append_only()")
    op.drop_table("audit_log")
    op.drop_column("auth_sessions", "second_factor_at")
    op.drop_index("ix_users_operators", table_name="users")
    op.drop_column("users", "suspended_at")
    op.drop_constraint("role_known", "users", type_="check")
    op.drop_column("users", "role")
