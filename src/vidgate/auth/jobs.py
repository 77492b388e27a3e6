"""Periodic clean-up of sign-in bookkeeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from procrastinate import Blueprint, JobContext
from sqlalchemy import delete

from vidgate.auth.models import DevSmsMessage, SmsCode
from vidgate.jobs import database_of
from vidgate.ratelimit import purge_expired

KEEP_SMS_CODES = timedelta(days=1)  # longer than any send-limit window


async def purge_sign_in_records(context: JobContext, timestamp: int) -> None:
    """Every 10 minutes: drop ended rate-limit windows and codes too old to matter."""
    cutoff = datetime.now(UTC) - KEEP_SMS_CODES
    async with database_of(context).transaction() as session:
        await purge_expired(session)
        await session.execute(delete(SmsCode).where(SmsCode.created_at < cutoff))
        await session.execute(delete(DevSmsMessage).where(DevSmsMessage.sent_at < cutoff))


def blueprint() -> Blueprint:
    """This module's jobs on a new blueprint (one per job app: adopting one renames its tasks)."""
    jobs = Blueprint()
    jobs.periodic(cron="*/10 * * * *")(
        jobs.task(name="purge_sign_in_records", pass_context=True, queueing_lock="purge_sign_in")(
            purge_sign_in_records
        )
    )
    return jobs
