"""What jobs use: the worker's dependencies, their context, and deferring and retrying jobs.

A leaf for the features' jobs modules to import; the app that gathers their blueprints is
`vidgate.job_registry`, which nothing in the features imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from procrastinate import App, JobContext
from procrastinate.exceptions import AlreadyEnqueued

from vidgate.db.engine import Database

logger = structlog.get_logger(__name__)

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
