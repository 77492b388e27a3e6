"""Worker jobs for webhooks: `deliver_webhook` (one attempt, re-queued on the retry schedule)
and `sweep_webhooks`, which gives every due delivery without a job a new one."""

from __future__ import annotations

import uuid

import structlog
from procrastinate import App, Blueprint, JobContext
from sqlalchemy import text

from vidgate.jobs import defer_once, deps_of, retry_stalled
from vidgate.webhooks import service

logger = structlog.get_logger(__name__)


async def schedule_delivery(app: App, delivery_id: uuid.UUID | str, delay: float = 0.0) -> bool:
    """Queue an attempt; False when one is queued already (that one will do)."""
    lock = service.queueing_lock(delivery_id)
    return await defer_once(app, service.DELIVER, lock, delay, delivery_id=str(delivery_id))


async def deliver_webhook(context: JobContext, delivery_id: str) -> None:
    deps = deps_of(context)
    outcome = await service.attempt(deps.db, deps.webhook_client, uuid.UUID(delivery_id))
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
    deps = deps_of(context)
    await retry_stalled(context.app, service.DELIVER, deps.settings.task_stall_seconds)
    async with deps.db.session() as session:
        stranded = (await session.scalars(_STRANDED)).all()
    count = 0
    for delivery_id in stranded:
        count += await schedule_delivery(context.app, delivery_id)
    if count:
        logger.warning("webhooks.requeued", count=count)
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
