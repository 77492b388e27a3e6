"""The procrastinate app: every feature's job blueprint on one PostgreSQL-backed queue."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from procrastinate import App, JobContext, PsycopgConnector
from procrastinate.exceptions import AlreadyEnqueued

from vidgate.db.engine import Database, libpq_url

logger = structlog.get_logger(__name__)

POOL_TIMEOUT_SECONDS = 10.0

if TYPE_CHECKING:
    from vidgate.config import Settings
    from vidgate.media.storage import Storage
    from vidgate.net.safe_http import SafeHttpClient
    from vidgate.payments.gateway import PaymentGateway
    from vidgate.providers.registry import Providers


@dataclass
class WorkerDeps:
    """What jobs use, built once per worker process (or shared with the API's runtime)."""

    settings: Settings
    db: Database
    storage: Storage
    providers: Providers
    client: SafeHttpClient  # outbound HTTP to URLs vidgate does not control
    webhook_client: SafeHttpClient  # the same for webhooks: no private targets in production
    payment_gateways: dict[str, PaymentGateway] = field(default_factory=dict)


def deps_of(context: JobContext) -> WorkerDeps:
    deps: WorkerDeps = context.additional_context["deps"]
    return deps


def database_of(context: JobContext) -> Database:
    """The worker's Database, handed to every job through the worker's context."""
    return deps_of(context).db


def build_job_app(database_url: str) -> App:
    from vidgate.auth.jobs import blueprint as auth_jobs
    from vidgate.payments.jobs import blueprint as payment_jobs
    from vidgate.tasks.jobs import blueprint as task_jobs
    from vidgate.users.jobs import blueprint as user_jobs
    from vidgate.webhooks.jobs import blueprint as webhook_jobs

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


def worker_options(deps: WorkerDeps, *, concurrency: int = 10) -> dict[str, Any]:
    stall = deps.settings.task_stall_seconds
    return {
        "concurrency": concurrency,
        "additional_context": {"deps": deps},
        "install_signal_handlers": False,
        "delete_jobs": "successful",
        # Heartbeats often enough that a worker silent for `stall` seconds is surely gone.
        "update_heartbeat_interval": max(1.0, stall / 4),
        "stalled_worker_timeout": stall,
    }


async def defer_once(
    app: App, task_name: str, queueing_lock: str, delay: float = 0.0, **kwargs: Any
) -> bool:
    """Queue a job unless one with the same lock is already queued (False: that one will do)."""
    deferrer = app.configure_task(
        task_name,
        queueing_lock=queueing_lock,
        schedule_in={"seconds": delay} if delay > 0 else None,
    )
    try:
        await deferrer.defer_async(**kwargs)
    except AlreadyEnqueued:
        return False
    return True


async def retry_stalled(app: App, task_name: str, stall_seconds: float) -> None:
    """Run again the `task_name` jobs whose worker has stopped sending heartbeats."""
    manager = app.job_manager
    for job in await manager.get_stalled_jobs(
        task_name=task_name, seconds_since_heartbeat=stall_seconds
    ):
        try:
            await manager.retry_job(job)
        except Exception as exc:  # e.g. a queued job holds the same lock: that one runs
            logger.info("jobs.stalled_job_not_retried", job_id=job.id, error=str(exc))
