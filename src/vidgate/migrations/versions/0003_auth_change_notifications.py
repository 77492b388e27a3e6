"""auth change notifications: NOTIFY when a user or a session row changes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

API processes cache who a session belongs to and evict on these notifications
(vidgate.auth.principal_cache). Triggers rather than application code, so that no write path,
present or future, can forget to announce a change.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION vidgate_notify_auth_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify(
                'vidgate_auth_changes',
                CASE TG_TABLE_NAME WHEN 'users' THEN 'u:' ELSE 's:' END || NEW.id::text
            );
            RETURN NULL;
        END $$
        """
    )
    for table in ("users", "auth_sessions"):
        op.execute(
            f"CREATE TRIGGER {table}_notify_auth_change AFTER UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION vidgate_notify_auth_change()"
        )


def downgrade() -> None:
    for table in ("users", "auth_sessions"):
        op.execute(f"DROP TRIGGER {table}_notify_auth_change ON {table}")
    op.execute("DROP FUNCTION vidgate_notify_auth_change()")
