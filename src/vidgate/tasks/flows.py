"""Work on tasks that spans transactions: creating one (with its Idempotency-Key), cancelling one,
retrying one.

Each flow is given the request's session and commits it itself at the points the work requires:
a create keeps its key's claim in a transaction of its own and releases it if the create fails;
a cancel commits the user's request before it asks the vendor, so no transaction waits on a
vendor. Jobs are queued by after-commit hooks, never for a task that was rolled back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic import BaseModel

from vidgate.admin.service import Actor
from vidgate.db.session import Session
from vidgate.kit import TaskKind
from vidgate.runtime import Runtime
from vidgate.tasks import idempotency, lifecycle, service
from vidgate.tasks.errors import TaskNotRetryable, WebhookUrlNotHttps
from vidgate.tasks.jobs import queue_first_step, schedule_advance
from vidgate.tasks.models import RETRYABLE_STATUSES, Task
from vidgate.tasks.schemas import (
    AnimateRequest,
    CreateTaskResponse,
    ImageToVideoRequest,
    RetryResponse,
    TextToVideoRequest,
)

logger = structlog.get_logger(__name__)

BODIES: dict[TaskKind, type[service.CreateBody]] = {
    "animate-move": AnimateRequest,
    "animate-mix": AnimateRequest,
    "text-to-video": TextToVideoRequest,
    "image-to-video": ImageToVideoRequest,
}
_CREATED_MESSAGE: dict[TaskKind, str] = {
    "text-to-video": "Text-to-video task created successfully. Credits deducted.",
    "image-to-video": "Image-to-video task created successfully. Credits deducted.",
}


@dataclass(frozen=True)
class Answer:
    """What a create or retry answers: its response, or a stored one given again (`replayed`:
    the same Idempotency-Key, or a retry of a task retried before)."""

    body: BaseModel | dict[str, Any]
    replayed: bool = False
    status_code: int = 200


@dataclass(frozen=True)
class IdempotencyKey:
    """The Idempotency-Key a create came with, and the request it names (method and path; the
    body is added when the flow knows it)."""

    key: str
    method: str
    path: str


def _created_message(kind: TaskKind, task: Task) -> str:
    if kind in _CREATED_MESSAGE:
        return _CREATED_MESSAGE[kind]
    return (
        f"{kind.capitalize()} task created successfully. {task.credits_reserved} credits reserved;"
        f" the charge is {task.unit_price} credits per second of output, taken when it finishes."
    )


async def _start(runtime: Runtime, task_id: uuid.UUID) -> None:
    """Queue the task's next step now; if queueing fails the sweeper picks the task up within
    seconds."""
    try:
        await schedule_advance(runtime.jobs, task_id)
    except Exception:
        logger.exception("tasks.defer_failed", task_id=str(task_id))


async def create_task(
    runtime: Runtime,
    session: Session,
    user_id: uuid.UUID,
    kind: TaskKind,
    body: service.CreateBody,
    key: IdempotencyKey | None,
    *,
    retry_of: Task | None = None,
) -> Answer:
    """Resolve the inputs, then create the task and charge or reserve its credits in one
    transaction, committed here. With a key, a repeat of the same request answers what the first
    one did; a retry of a task that was retried already answers with that first retry."""
    webhook = body.webhook_url
    if webhook and not runtime.settings.is_development and not webhook.startswith("https://"):
        raise WebhookUrlNotHttps()
    claimed: str | None = None
    if key is not None:
        claimed = idempotency.validate_key(key.key)
        print_ = idempotency.fingerprint(key.method, key.path, body.model_dump(mode="json"))
        replay = await idempotency.claim(
            runtime.db,
            user_id,
            claimed,
            print_,
            keep_hours=runtime.settings.idempotency_key_hours,
        )
        if replay is not None:
            return Answer(replay.body, replayed=True, status_code=replay.status)
    try:
        # Before anything is fetched or charged; a refusal gives the key back like any failure.
        # Every kind with a prompt: image-to-video's body is a TextToVideoRequest too.
        if isinstance(body, TextToVideoRequest):
            await runtime.prompt_screen.screen(runtime.db, user_id, kind, body.prompt)
        # No session work before this: remote inputs are fetched holding no connection.
        prepared = await service.prepare(
            runtime.media_resolver, runtime.catalog, user_id, kind, body
        )
        try:
            task = await service.create(
                session,
                runtime.settings,
                user_id,
                prepared,
                retry_of=retry_of.id if retry_of else None,
                idempotency_key=claimed,
            )
        except service.AlreadyRetried as exc:  # a concurrent retry of the same task won
            answer = Answer(_retry_response(exc.task), replayed=True)
        else:
            await queue_first_step(session, task.id)  # with the task, or not at all
            answer = Answer(_retry_response(task) if retry_of else _create_response(kind, task))
        if claimed is not None:
            assert isinstance(answer.body, BaseModel)
            stored = answer.body.model_dump(mode="json")
            await idempotency.record(session, user_id, claimed, 200, stored)
        await session.commit()
    except BaseException:
        await session.rollback()
        if claimed is not None:
            await idempotency.release(runtime.db, user_id, claimed)
        raise
    return answer


def _create_response(kind: TaskKind, task: Task) -> CreateTaskResponse:
    return CreateTaskResponse(
        task_id=str(task.id),
        message=_created_message(kind, task),
        credits_estimated=task.credits_estimated,
        estimated_time=task.estimated_seconds,
        status=task.status,
        billing_mode="metered" if task.billing_mode == "metered" else "prepaid",
    )


def _retry_response(task: Task) -> RetryResponse:
    return RetryResponse(new_task_id=str(task.id), credits_estimated=task.credits_estimated)


async def retry_task(
    runtime: Runtime,
    session: Session,
    user_id: uuid.UUID,
    task_id: str,
    key: IdempotencyKey | None,
) -> Answer:
    """Run a failed, timed-out or canceled task again as a new task, charged again; a task is
    retried once, and retrying it again answers with that same new task."""
    # Read on a session of its own: the request's must hold no connection while the inputs
    # are fetched again.
    async with runtime.db.session() as lookup:
        old = await service.owned_task(lookup, task_id, user_id)
        earlier = await service.earlier_retry(lookup, old.id)
    if earlier is not None:
        return Answer(_retry_response(earlier), replayed=True)
    if old.status not in RETRYABLE_STATUSES:
        raise TaskNotRetryable(old.status)
    kind: TaskKind = old.kind  # type: ignore[assignment]
    body = BODIES[kind].model_validate({**old.params, "webhook_url": old.webhook_url})
    return await create_task(runtime, session, user_id, kind, body, key, retry_of=old)


async def cancel_task(runtime: Runtime, session: Session, user_id: uuid.UUID, task_id: str) -> Task:
    """Record the user's cancel (committed at once), then ask the vendor to stop the task when
    it has it. Returns the task as it stands afterwards."""
    task, ask_vendor = await service.request_cancel(session, task_id, user_id, runtime.storage)
    await session.commit()
    if ask_vendor:
        # Asked here rather than left to the worker, whose next step may be a poll interval away:
        # DashScope cancels only while the task is queued, and the caller hears the real outcome.
        attempt = None
        if task.upstream_id is not None:
            provider = lifecycle.provider_for(runtime.providers, task)
            attempt = await lifecycle.cancel_upstream(runtime.db, runtime.storage, provider, task)
        if attempt is None or attempt.verdict == lifecycle.CancelVerdict.LATER:
            await _start(runtime, task.id)  # a submission in flight, or no answer: the worker asks
    return await session.get_one(Task, task.id, populate_existing=True)


async def cancel_by_operator(
    runtime: Runtime, session: Session, actor: Actor, task_id: uuid.UUID, reason: str
) -> Task:
    """Close the task CANCELED with its credits back (committed at once), then ask its vendor to
    stop it; the vendor's answer no longer changes the task or its money."""
    task = await service.close_by_operator(session, actor, task_id, reason, runtime.storage)
    await session.commit()
    if task.upstream_id is not None:
        # Its answer is recorded as for a user's cancel; the task is closed and refunded already.
        provider = lifecycle.provider_for(runtime.providers, task)
        await lifecycle.cancel_upstream(runtime.db, runtime.storage, provider, task)
    return await session.get_one(Task, task.id, populate_existing=True)
