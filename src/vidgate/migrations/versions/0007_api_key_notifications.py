"""api key change notifications: NOTIFY when a key is revoked, expires or is deleted

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

API processes cache API keys by hash (vidgate.auth.principal_cache) and evict on these. Only the
columns that decide whether a key is live notify: `last_used_at` is written once a minute per key
and process and must not empty the cache.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION vidgate_notify_key_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('vidgate_auth_changes', 'k:' || OLD.id::text);
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER api_keys_notify_change"
        " AFTER UPDATE OF key_hash, kind, user_id, revoked_at, expires_at OR DELETE ON api_keys"
        " FOR EACH ROW EXECUTE FUNCTION vidgate_notify_key_change()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER api_keys_notify_change ON api_keys")
    op.execute("DROP FUNCTION vidgate_notify_key_change()")
