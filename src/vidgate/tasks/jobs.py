"""Worker jobs for tasks: `advance_task` (one lifecycle step, re-queued until the task ends) and
the `sweep_tasks` safety net that gives every open task a job again after a crash or lost defer."""

from __future__ import annotations

import asyncio
import uuid

import structlog
from procrastinate import App, Blueprint, JobContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from vidgate.jobs import defer_in_transaction, defer_once, retry_stalled, runtime_of
from vidgate.tasks import idempotency, lifecycle

logger = structlog.get_logger(__name__)

ADVANCE = "tasks:advance_task"


def queueing_lock(task_id: uuid.UUID | str) -> str:
    return f"task:{task_id}"


async def schedule_advance(app: App, task_id: uuid.UUID | str, delay: float = 0.0) -> bool:
    """Queue the task's next step; False when a step is already queued (that one will do)."""
    return await defer_once(app, ADVANCE, queueing_lock(task_id), delay, task_id=str(task_id))


# A next step due this soon runs in the same job: queueing it (a defer, a fetch and a finish)
# costs more than the wait, and a task that finishes quickly is settled by the job that sent it.
INLINE_WAIT_SECONDS = 1.0
INLINE_STEPS = 3


async def queue_first_step(session: AsyncSession, task_id: uuid.UUID) -> None:
    """Queue a new task's first step in the transaction that creates it."""
    await defer_in_transaction(session, ADVANCE, queueing_lock(task_id), task_id=str(task_id))


async def advance_task(context: JobContext, task_id: str) -> None:
    runtime = runtime_of(context)
    step = await lifecycle.advance(runtime, uuid.UUID(task_id))
    for _ in range(INLINE_STEPS):
        if step.again_in is None or step.again_in > INLINE_WAIT_SECONDS:
            break
        await asyncio.sleep(step.again_in)
        step = await lifecycle.advance(runtime, uuid.UUID(task_id))
    if step.again_in is not None:
        await schedule_advance(context.app, task_id, step.again_in)


# Open tasks with no live job: none queued, and none running on a worker still sending heartbeats.
_ORPHANS = text(
    """
    SELECT t.id FROM tasks t
    WHERE t.status IN ('PENDING', 'RUNNING')
      AND NOT EXISTS (
        SELECT 1 FROM procrastinate_jobs j
        WHERE j.queueing_lock = 'task:' || t.id::text
          AND (j.status = 'todo'
               OR (j.status = 'doing' AND EXISTS (
                     SELECT 1 FROM procrastinate_workers w
                     WHERE w.id = j.worker_id
                       AND w.last_heartbeat > now() - make_interval(secs => :stall)))))
    """
)


async def sweep_tasks(context: JobContext, timestamp: int) -> int:
    """Every 15 s: requeue jobs of dead workers; give open tasks without a live job a new one.
    Says so when it did either (a run that found nothing says nothing above debug)."""
    runtime = runtime_of(context)
    stall = runtime.settings.task_stall_seconds
    stalled = await retry_stalled(context.app, ADVANCE, stall)
    async with runtime.db.session() as session:
        orphans = (await session.scalars(_ORPHANS, {"stall": stall})).all()
    count = 0
    for task_id in orphans:
        count += await schedule_advance(context.app, task_id)
    if count or stalled:
        logger.warning("tasks.requeued", count=count, stalled=stalled)
    return count


async def purge_idempotency_keys(context: JobContext, timestamp: int) -> int:
    """Hourly: forget Idempotency-Keys older than they are kept (claims ignore them already)."""
    runtime = runtime_of(context)
    async with runtime.db.transaction() as session:
        count = await idempotency.purge(session, keep_hours=runtime.settings.idempotency_key_hours)
    if count:
        logger.info("tasks.idempotency_keys_purged", count=count)
    return count


def blueprint() -> Blueprint:
    """This module's jobs on a new blueprint (one per job app: adopting one renames its tasks)."""
    jobs = Blueprint()
    jobs.task(name="advance_task", pass_context=True)(advance_task)
    # Every 15 s: croniter reads seconds from a sixth field at the end.
    jobs.periodic(cron="* * * * * */15")(
        jobs.task(name="sweep_tasks", pass_context=True, queueing_lock="sweep_tasks")(sweep_tasks)
    )
    jobs.periodic(cron="41 * * * *")(
        jobs.task(name="purge_idempotency_keys", pass_context=True, queueing_lock="purge_keys")(
            purge_idempotency_keys
        )
    )
    return jobs
