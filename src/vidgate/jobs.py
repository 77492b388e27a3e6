"""The procrastinate app: every feature's job blueprint on one PostgreSQL-backed queue."""

from __future__ import annotations

from typing import Any

from procrastinate import App, JobContext, PsycopgConnector

from vidgate.db.engine import Database, libpq_url


def database_of(context: JobContext) -> Database:
    """The worker's Database, handed to every job through the worker's context."""
    db: Database = context.additional_context["db"]
    return db


def build_job_app(database_url: str) -> App:
    from vidgate.auth.jobs import blueprint as auth_jobs
    from vidgate.users.jobs import blueprint as user_jobs

    app = App(connector=PsycopgConnector(conninfo=libpq_url(database_url)))
    app.add_tasks_from(user_jobs, namespace="users")
    app.add_tasks_from(auth_jobs, namespace="auth")
    return app


def worker_options(db: Database, *, concurrency: int = 10) -> dict[str, Any]:
    return {
        "concurrency": concurrency,
        "additional_context": {"db": db},
        "install_signal_handlers": False,
        "delete_jobs": "successful",
    }
