"""task change notifications: NOTIFY with the task's id whenever a task row changes

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

API processes cache task status reads (vidgate.tasks.cache) and evict on these; a trigger, so no
write path (API, worker, sweeper, operator SQL) can forget to announce a change.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION vidgate_notify_task_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('vidgate_task_changes', OLD.id::text);
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER tasks_notify_change AFTER UPDATE OR DELETE ON tasks"
        " FOR EACH ROW EXECUTE FUNCTION vidgate_notify_task_change()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER tasks_notify_change ON tasks")
    op.execute("DROP FUNCTION vidgate_notify_task_change()")
