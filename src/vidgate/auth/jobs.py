"""Periodic clean-up of sign-in bookkeeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from procrastinate import Blueprint, JobContext
from sqlalchemy import delete

from vidgate.auth.models import DevSmsMessage, SmsCode
from vidgate.jobs import database_of
from vidgate.ratelimit import purge_expired

blueprint = Blueprint()

KEEP_SMS_CODES = timedelta(days=1)  # longer than any send-limit window


@blueprint.periodic(cron="*/10 * * * *")
@blueprint.task(name="purge_sign_in_records", pass_context=True, queueing_lock="purge_sign_in")
async def purge_sign_in_records(context: JobContext, timestamp: int) -> None:
    """Every 10 minutes: drop ended rate-limit windows and codes too old to matter."""
    cutoff = datetime.now(UTC) - KEEP_SMS_CODES
    async with database_of(context).session() as session:
        await purge_expired(session)
        await session.execute(delete(SmsCode).where(SmsCode.created_at < cutoff))
        await session.execute(delete(DevSmsMessage).where(DevSmsMessage.sent_at < cutoff))
        await session.commit()
