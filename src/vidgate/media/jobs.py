"""Periodic media maintenance: direct uploads that were never completed, resumable uploads that
were left unfinished, and uploads and results past their retention."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from procrastinate import Blueprint, JobContext

from vidgate.jobs import runtime_of
from vidgate.media import direct, retention
from vidgate.media.tus import flows as tus

logger = structlog.get_logger(__name__)


async def sweep_upload_intents(context: JobContext, timestamp: int) -> int:
    """Every 10 minutes: remove direct uploads whose time ran out, and what the client put in
    the bucket for them (a presigned POST that was never completed leaves an object behind)."""
    runtime = runtime_of(context)
    async with runtime.db.transaction() as session:
        count = await direct.sweep_expired(session, runtime.storage, datetime.now(UTC))
    if count:
        logger.info("uploads.intents_expired", count=count)
    return count


async def purge_expired_tus_uploads(context: JobContext, timestamp: int) -> int:
    """Every 10 minutes: expired resumable uploads and their partial files go."""
    purged = await tus.purge_expired(runtime_of(context))
    if purged:
        logger.info("media.tus_uploads_purged", count=purged)
    return purged


async def expire_media(context: JobContext, timestamp: int) -> int:
    """Hourly: delete the uploads and results past their retention and mark their rows. Safe
    alongside another worker doing the same (rows are claimed with SKIP LOCKED)."""
    runtime = runtime_of(context)
    expired = await retention.expire_due(runtime.db, runtime.storage, runtime.settings)
    if expired.uploads or expired.results:
        logger.info("media.expired", uploads=expired.uploads, results=expired.results)
    return expired.uploads + expired.results


def blueprint() -> Blueprint:
    """This module's jobs on a new blueprint (one per job app: adopting one renames its tasks)."""
    jobs = Blueprint()
    jobs.periodic(cron="*/10 * * * *")(
        jobs.task(name="sweep_upload_intents", pass_context=True, queueing_lock="upload_intents")(
            sweep_upload_intents
        )
    )
    jobs.periodic(cron="*/10 * * * *")(
        jobs.task(name="purge_expired_tus_uploads", pass_context=True, queueing_lock="purge_tus")(
            purge_expired_tus_uploads
        )
    )
    jobs.periodic(cron="53 * * * *")(
        jobs.task(name="expire_media", pass_context=True, queueing_lock="expire_media")(
            expire_media
        )
    )
    return jobs
