"""Worker jobs for webhooks: `deliver_webhook` (one attempt, re-queued on the retry schedule)
and `sweep_webhooks`, which gives every due delivery without a job a new one."""

from __future__ import annotations

import uuid

import structlog
from procrastinate import Blueprint, JobContext
from sqlalchemy import text

from vidgate.jobs import retry_stalled, runtime_of
from vidgate.webhooks import flows, service
from vidgate.webhooks.service import schedule_delivery

logger = structlog.get_logger(__name__)


async def deliver_webhook(context: JobContext, delivery_id: str) -> None:
    runtime = runtime_of(context)
    outcome = await flows.attempt(runtime.db, runtime.webhook_outbound, uuid.UUID(delivery_id))
    if outcome is not None and outcome.retry_in is not None:
        await schedule_delivery(context.app, delivery_id, outcome.retry_in)


# Pending deliveries that are due (a minute of grace) and have no job queued or running.
_STRANDED = text(
    """
    SELECT d.id FROM webhook_deliveries d
    WHERE d.status = 'pending' AND d.next_attempt_at < now() - interval '1 minute'
      AND NOT EXISTS (
        SELECT 1 FROM procrastinate_jobs j
        WHERE j.queueing_lock = 'webhook:' || d.id::text AND j.status IN ('todo', 'doing'))
    LIMIT 1000
    """
)


async def sweep_webhooks(context: JobContext, timestamp: int) -> int:
    """Every minute: rerun attempts of dead workers; queue due deliveries that lost their job."""
    runtime = runtime_of(context)
    stalled = await retry_stalled(context.app, service.DELIVER, runtime.settings.task_stall_seconds)
    async with runtime.db.session() as session:
        stranded = (await session.scalars(_STRANDED)).all()
    count = 0
    for delivery_id in stranded:
        count += await schedule_delivery(context.app, delivery_id)
    if count or stalled:
        logger.warning("webhooks.requeued", count=count, stalled=stalled)
    return count


def blueprint() -> Blueprint:
    """This module's jobs on a new blueprint (one per job app: adopting one renames its tasks)."""
    jobs = Blueprint()
    jobs.task(name="deliver_webhook", pass_context=True)(deliver_webhook)
    jobs.periodic(cron="* * * * *")(
        jobs.task(name="sweep_webhooks", pass_context=True, queueing_lock="sweep_webhooks")(
            sweep_webhooks
        )
    )
    return jobs
