"""Migrations run from an empty database, twice without harm, and match the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from vidgate.db.engine import sqlalchemy_url
from vidgate.db.migrate import head_revision, include_name, upgrade_to_head
from vidgate.db.models import Base

from .fixtures.databases import scratch_database


def test_migrations_from_empty_reach_head_and_match_models(database_url: str) -> None:
    with scratch_database(database_url, "vidgate_migrate", migrated=False) as url:
        upgrade_to_head(url)
        upgrade_to_head(url)  # a second run is a no-op
        engine = create_engine(sqlalchemy_url(url))
        with engine.connect() as conn:
            version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            context = MigrationContext.configure(
                conn, opts={"include_name": include_name, "compare_type": True}
            )
            diff = compare_metadata(context, Base.metadata)
            jobs_table = conn.exec_driver_sql(
                "SELECT to_regclass('procrastinate_jobs') IS NOT NULL"
            ).scalar()
        engine.dispose()
        assert version == head_revision()
        assert diff == []
        assert jobs_table
