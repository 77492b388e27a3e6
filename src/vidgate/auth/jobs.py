"""Periodic clean-up of sign-in bookkeeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog
from procrastinate import Blueprint, JobContext
from sqlalchemy import delete

from vidgate.auth.models import DevSmsMessage, SmsCode
from vidgate.jobs import database_of
from vidgate.ratelimit import purge_expired

logger = structlog.get_logger(__name__)

KEEP_SMS_CODES = timedelta(days=1)  # longer than any send-limit window


async def purge_sign_in_records(context: JobContext, timestamp: int) -> int:
    """Every 10 minutes: drop ended rate-limit windows and codes too old to matter; how many
    rows went (logged when any did: a run with nothing to drop says nothing at info)."""
    cutoff = datetime.now(UTC) - KEEP_SMS_CODES
    async with database_of(context).transaction() as session:
        windows = await purge_expired(session)
        codes = await session.execute(delete(SmsCode).where(SmsCode.created_at < cutoff))
        outbox = await session.execute(delete(DevSmsMessage).where(DevSmsMessage.sent_at < cutoff))
    counts = {"windows": windows, "codes": _rowcount(codes), "outbox": _rowcount(outbox)}
    if any(counts.values()):
        logger.info("auth.sign_in_records_purged", **counts)
    return sum(counts.values())


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def blueprint() -> Blueprint:
    """This module's jobs on a new blueprint (one per job app: adopting one renames its tasks)."""
    jobs = Blueprint()
    jobs.periodic(cron="*/10 * * * *")(
        jobs.task(name="purge_sign_in_records", pass_context=True, queueing_lock="purge_sign_in")(
            purge_sign_in_records
        )
    )
    return jobs
