"""The procrastinate app: every feature's job blueprint on one PostgreSQL-backed queue."""

from __future__ import annotations

from procrastinate import App, PsycopgConnector

from vidgate.auth.jobs import blueprint as auth_jobs
from vidgate.db.engine import libpq_url
from vidgate.payments.jobs import blueprint as payment_jobs
from vidgate.tasks.jobs import blueprint as task_jobs
from vidgate.users.jobs import blueprint as user_jobs
from vidgate.webhooks.jobs import blueprint as webhook_jobs

POOL_TIMEOUT_SECONDS = 10.0


def build_job_app(database_url: str) -> App:
    connector = PsycopgConnector(
        conninfo=libpq_url(database_url),
        # (procrastinate already checks each connection it takes from the pool.)
        # A defer or a fetch waits this long for a connection, then fails (the sweeper redoes it).
        timeout=POOL_TIMEOUT_SECONDS,
    )
    app = App(connector=connector)
    # Blueprints are built per app: procrastinate renames a blueprint's tasks when an app adopts
    # it, so one shared between two apps (API and tests, several databases) would break both.
    app.add_tasks_from(user_jobs(), namespace="users")
    app.add_tasks_from(auth_jobs(), namespace="auth")
    app.add_tasks_from(task_jobs(), namespace="tasks")
    app.add_tasks_from(webhook_jobs(), namespace="webhooks")
    app.add_tasks_from(payment_jobs(), namespace="payments")
    return app
