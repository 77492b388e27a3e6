"""Alembic environment: runs against `config.attributes["url"]` (set by vidgate.db.migrate)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

from vidgate.db.engine import sqlalchemy_url
from vidgate.db.migrate import include_name
from vidgate.db.models import Base

config = context.config
target_metadata = Base.metadata

# Any number of processes may start at once against one database: one migrates, the others wait.
_MIGRATION_LOCK = 7_206_120_941


def run_migrations_online() -> None:
    url = str(config.attributes.get("url") or config.get_main_option("sqlalchemy.url"))
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
        connection.commit()
        try:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                compare_type=True,
                include_name=include_name,
                transaction_per_migration=True,
            )
            with context.begin_transaction():
                context.run_migrations()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
            connection.commit()
    engine.dispose()


run_migrations_online()
