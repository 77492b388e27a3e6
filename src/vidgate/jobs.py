"""What jobs use: the runtime through their context, worker options, deferring and retrying jobs.

A leaf for the features' jobs modules to import; the app that gathers their blueprints is
`vidgate.job_registry`, which nothing in the features imports.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import structlog
from procrastinate import App, JobContext
from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from vidgate.db.engine import Database

logger = structlog.get_logger(__name__)

if TYPE_CHECKING:
    from vidgate.runtime import Runtime


def runtime_of(context: JobContext) -> Runtime:
    """The worker's runtime, handed to every job through the worker's context."""
    runtime: Runtime = context.additional_context["runtime"]
    return runtime


def database_of(context: JobContext) -> Database:
    return runtime_of(context).db


def worker_options(runtime: Runtime, *, concurrency: int = 10) -> dict[str, Any]:
    stall = runtime.settings.task_stall_seconds
    return {
        "concurrency": concurrency,
        "additional_context": {"runtime": runtime},
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


_DEFER_IN_TRANSACTION = text(
    "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW('default', :task_name, 0, NULL,"
    " :queueing_lock, CAST(:args AS jsonb), NULL)::procrastinate_job_to_defer_v1])"
)


async def defer_in_transaction(
    session: AsyncSession, task_name: str, queueing_lock: str, **kwargs: Any
) -> None:
    """Queue a job in the caller's transaction (procrastinate's own defer function, on the same
    connection): it exists exactly when what it is for was committed, so it can be neither lost
    between a commit and the queueing nor run for a row that was rolled back. The lock must be
    new (a job queued under it already would abort the transaction)."""
    await session.execute(
        _DEFER_IN_TRANSACTION,
        {"task_name": task_name, "queueing_lock": queueing_lock, "args": json.dumps(kwargs)},
    )


async def retry_stalled(app: App, task_name: str, stall_seconds: float) -> int:
    """Run again the `task_name` jobs whose worker has stopped sending heartbeats; how many."""
    manager = app.job_manager
    retried = 0
    for job in await manager.get_stalled_jobs(
        task_name=task_name, seconds_since_heartbeat=stall_seconds
    ):
        try:
            await manager.retry_job(job)
        except Exception as exc:  # e.g. a queued job holds the same lock: that one runs
            logger.info("jobs.stalled_job_not_retried", job_id=job.id, error=str(exc))
        else:
            retried += 1
    return retried
