"""Periodic account maintenance."""

from __future__ import annotations

import structlog
from procrastinate import Blueprint, JobContext

from vidgate.jobs import runtime_of
from vidgate.users import service

logger = structlog.get_logger(__name__)


async def anonymize_deleted_accounts(context: JobContext, timestamp: int) -> int:
    """Hourly: strip personal data from accounts deleted more than the grace period ago, and
    delete their media."""
    runtime = runtime_of(context)
    async with runtime.db.transaction() as session:
        count = await service.anonymize_due_accounts(session, runtime.storage)
    if count:
        logger.info("accounts.anonymized", count=count)
    return count


def blueprint() -> Blueprint:
    """This module's jobs on a new blueprint (one per job app: adopting one renames its tasks)."""
    jobs = Blueprint()
    jobs.periodic(cron="17 * * * *")(
        jobs.task(name="anonymize_deleted_accounts", pass_context=True, queueing_lock="anonymize")(
            anonymize_deleted_accounts
        )
    )
    return jobs
