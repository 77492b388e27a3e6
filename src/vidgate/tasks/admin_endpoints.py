"""`/api/admin/tasks`: every user's tasks with filters, one task with its vendor attempts, and
a force-cancel that returns the task's credits whatever its vendor can still do."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from vidgate.admin.access import GUARD_ERRORS, Support
from vidgate.admin.schemas import OperatorAction
from vidgate.admin.service import actor_of
from vidgate.deps import DbSession, RuntimeDep
from vidgate.errors import documented
from vidgate.kit import Page, TaskKind
from vidgate.media.storage import Storage
from vidgate.tasks import flows, service
from vidgate.tasks.errors import TaskAlreadyFinished, TaskNotFound
from vidgate.tasks.models import Task, TaskAttempt, TaskStatus
from vidgate.tasks.schemas import AttemptOut, OperatorTaskList, OperatorTaskView

router = APIRouter(prefix="/api/admin/tasks", tags=["admin"])


def _view(
    task: Task, storage: Storage, attempts: list[TaskAttempt] | None = None
) -> OperatorTaskView:
    return OperatorTaskView(
        **service.view(task, storage).model_dump(),
        channel=task.channel,
        provider=task.provider,
        upstream_id=task.upstream_id,
        upstream_status=task.upstream_status,
        upstream_request=task.upstream_request,
        attempts=[
            AttemptOut(
                channel=a.channel,
                adapter=a.adapter,
                outcome=a.outcome,
                error_code=a.error_code,
                error_message=a.error_message,
                upstream_id=a.upstream_id,
                started_at=a.started_at,
                finished_at=a.finished_at,
            )
            for a in attempts or []
        ],
    )


@router.get("", response_model=OperatorTaskList, responses=documented(*GUARD_ERRORS))
async def list_tasks(
    operator: Support,
    session: DbSession,
    runtime: RuntimeDep,
    page: Page,
    status: TaskStatus | None = None,
    kind: TaskKind | None = None,
    model: Annotated[str | None, Query(max_length=64)] = None,
    channel: Annotated[str | None, Query(max_length=64)] = None,
    user_id: uuid.UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> OperatorTaskList:
    """Every user's tasks, newest first, filtered by status, kind, model, channel, user and
    creation time."""
    where = service.TaskFilter(status, kind, model, channel, user_id, since, until)
    rows, total = await service.list_all(session, where, page)
    return OperatorTaskList(
        tasks=[_view(t, runtime.storage) for t in rows],
        total=total,
        page=page.page,
        page_size=page.page_size,
    )


@router.get(
    "/{task_id}", response_model=OperatorTaskView, responses=documented(*GUARD_ERRORS, TaskNotFound)
)
async def read_task(
    operator: Support, session: DbSession, runtime: RuntimeDep, task_id: uuid.UUID
) -> OperatorTaskView:
    """One task with the channel it ran on and every vendor attempt it took."""
    task = await service.any_task(session, task_id)
    return _view(task, runtime.storage, await service.attempts_of(session, task_id))


@router.post(
    "/{task_id}/cancel",
    response_model=OperatorTaskView,
    responses=documented(*GUARD_ERRORS, TaskNotFound, TaskAlreadyFinished),
)
async def force_cancel(
    body: OperatorAction,
    operator: Support,
    session: DbSession,
    runtime: RuntimeDep,
    task_id: uuid.UUID,
) -> OperatorTaskView:
    """Cancel an open task now with all its credits back (the vendor is asked to stop it; what
    it still renders is the operator's cost)."""
    task = await flows.cancel_by_operator(
        runtime, session, actor_of(operator), task_id, body.reason
    )
    return _view(task, runtime.storage, await service.attempts_of(session, task_id))
