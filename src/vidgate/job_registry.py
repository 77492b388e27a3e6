"""The procrastinate app: every feature's job blueprint on one PostgreSQL-backed queue."""

from __future__ import annotations

import time
import weakref
from typing import Any

import psycopg
from procrastinate import App, PsycopgConnector
from psycopg_pool import AsyncConnectionPool

from vidgate.auth.jobs import blueprint as auth_jobs
from vidgate.db.engine import STALE_AFTER_SECONDS, libpq_url
from vidgate.logging import treat_as_routine
from vidgate.media.jobs import blueprint as media_jobs
from vidgate.payments.jobs import blueprint as payment_jobs
from vidgate.tasks.jobs import blueprint as task_jobs
from vidgate.users.jobs import blueprint as user_jobs
from vidgate.webhooks.jobs import blueprint as webhook_jobs

POOL_TIMEOUT_SECONDS = 10.0

# When each pooled connection was last given back.
_returned_at: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], float] = (
    weakref.WeakKeyDictionary()
)


async def _note_return(connection: psycopg.AsyncConnection[Any]) -> None:
    _returned_at[connection] = time.monotonic()


async def _check_if_idle(connection: psycopg.AsyncConnection[Any]) -> None:
    """Ping a connection that sat idle before handing it out (the server may have dropped it);
    one in steady use goes out as is, as the API's pools do: a ping per checkout doubles the
    round trips of a job's every defer, fetch and finish."""
    returned = _returned_at.get(connection)
    if returned is None or time.monotonic() - returned >= STALE_AFTER_SECONDS:
        await AsyncConnectionPool.check_connection(connection)


async def _autocommit(connection: psycopg.AsyncConnection[Any]) -> None:
    await connection.set_autocommit(True)


def _pool(**options: Any) -> AsyncConnectionPool[Any]:
    """procrastinate's pool, with two changes. Its connections are in autocommit: every query it
    sends is one statement (a function call that does its own locking), so a defer, a fetch or a
    finish is one round trip instead of three (BEGIN, the call, COMMIT). And only connections
    that sat idle are pinged when taken (`_check_if_idle`)."""
    return AsyncConnectionPool(
        **{**options, "configure": _autocommit, "check": _check_if_idle, "reset": _note_return}
    )


def build_job_app(database_url: str) -> App:
    connector = PsycopgConnector(
        conninfo=libpq_url(database_url),
        # (procrastinate already checks each connection it takes from the pool.)
        # A defer or a fetch waits this long for a connection, then fails (the sweeper redoes it).
        timeout=POOL_TIMEOUT_SECONDS,
        pool_factory=_pool,
    )
    app = App(connector=connector)
    # Blueprints are built per app: procrastinate renames a blueprint's tasks when an app adopts
    # it, so one shared between two apps (API and tests, several databases) would break both.
    app.add_tasks_from(user_jobs(), namespace="users")
    app.add_tasks_from(auth_jobs(), namespace="auth")
    app.add_tasks_from(task_jobs(), namespace="tasks")
    app.add_tasks_from(webhook_jobs(), namespace="webhooks")
    app.add_tasks_from(payment_jobs(), namespace="payments")
    app.add_tasks_from(media_jobs(), namespace="media")
    # Every periodic run would otherwise put two procrastinate lines at info; the jobs log what
    # they did themselves.
    treat_as_routine(p.task.name for p in app.periodic_registry.periodic_tasks.values())
    return app
