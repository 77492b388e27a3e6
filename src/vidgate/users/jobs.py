"""Periodic account maintenance."""

from __future__ import annotations

import structlog
from procrastinate import Blueprint, JobContext

from vidgate.jobs import database_of
from vidgate.users import service

logger = structlog.get_logger(__name__)


async def anonymize_deleted_accounts(context: JobContext, timestamp: int) -> int:
    """Hourly: strip personal data from accounts deleted more than the grace period ago."""
    async with database_of(context).transaction() as session:
        count = await service.anonymize_due_accounts(session)
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
