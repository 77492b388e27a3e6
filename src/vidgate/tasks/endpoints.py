"""Create, follow, list, cancel and retry video tasks (docs/api.md §3.1, §3.3 and §4)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel

from vidgate.auth.dependencies import (
    ApiKeyAuth,
    CurrentUser,
    OptionalBearer,
    UserWithKey,
    user_for_access_token,
)
from vidgate.auth.principal import Principal
from vidgate.credits.service import InsufficientCredits
from vidgate.db.session import Session
from vidgate.deps import DbSession, RuntimeDep
from vidgate.errors import documented
from vidgate.kit import Page, TaskKind, parse_uuid
from vidgate.moderation.errors import PromptRefused, ScreeningUnavailable
from vidgate.runtime import Runtime
from vidgate.tasks import flows, idempotency, service
from vidgate.tasks.errors import (
    IdempotencyKeyInFlight,
    IdempotencyKeyMalformed,
    IdempotencyKeyReused,
    InputRejected,
    ModelNotOffered,
    OutsideModelLimits,
    RemoteFetchesBusy,
    TaskAlreadyFinished,
    TaskNotFound,
    TaskNotRetryable,
    TooManyActiveTasks,
    TooManyFetchesForAccount,
    WebhookUrlNotHttps,
)
from vidgate.tasks.models import OPEN_STATUSES, TaskStatus
from vidgate.tasks.schemas import (
    AnimateRequest,
    CancelResponse,
    CreateTaskResponse,
    ImageToVideoRequest,
    RetryResponse,
    TaskByIdView,
    TaskList,
    TaskView,
    TextToVideoRequest,
)
from vidgate.users.errors import UserNotFound

logger = structlog.get_logger(__name__)

videos = APIRouter(prefix="/api/videos", tags=["videos"])
tasks = APIRouter(prefix="/api/tasks", tags=["tasks"])

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias=idempotency.HEADER,
        description="Repeat a create safely: the same key and body return the first response.",
    ),
]
# What a create answers besides authentication, validation and database errors (a retry too).
_CREATE_ERRORS = (
    InputRejected,
    ModelNotOffered,
    OutsideModelLimits,
    PromptRefused,
    IdempotencyKeyMalformed,
    InsufficientCredits,
    UserNotFound,
    IdempotencyKeyInFlight,
    WebhookUrlNotHttps,
    IdempotencyKeyReused,
    TooManyActiveTasks,
    TooManyFetchesForAccount,
    RemoteFetchesBusy,
    ScreeningUnavailable,
)


_PER_SECOND = (
    "Priced per second of output by the model and `mode`, reserved on the reference video's"
    " length and settled on the result's; GET /api/videos/models lists models and prices."
)
_PER_TASK = (
    "Charged up front by the model, `quality` and `duration`, refunded if the task fails;"
    " GET /api/videos/models lists models and prices."
)


def _respond(answer: flows.Answer) -> Any:
    """The flow's answer as HTTP: a replayed one verbatim, marked `Idempotent-Replayed`."""
    if not answer.replayed:
        return answer.body
    body = answer.body
    content = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
    return JSONResponse(
        content, status_code=answer.status_code, headers={"Idempotent-Replayed": "true"}
    )


def _key(request: Request, key: str | None) -> flows.IdempotencyKey | None:
    return None if key is None else flows.IdempotencyKey(key, request.method, request.url.path)


async def _create(
    request: Request,
    runtime: Runtime,
    session: Session,
    user: Principal,
    kind: TaskKind,
    body: service.CreateBody,
    key: str | None,
) -> Any:
    named = _key(request, key)
    return _respond(await flows.create_task(runtime, session, user.id, kind, body, named))


@videos.post(
    "/animate-move",
    response_model=CreateTaskResponse,
    summary="Animate a character image with a video's motion.",
    description="Animate a character image with a video's motion. " + _PER_SECOND,
    responses=documented(*_CREATE_ERRORS),
)
async def create_animate_move(
    request: Request,
    body: AnimateRequest,
    user: UserWithKey,
    runtime: RuntimeDep,
    session: DbSession,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Any:
    return await _create(request, runtime, session, user, "animate-move", body, idempotency_key)


@videos.post(
    "/animate-mix",
    response_model=CreateTaskResponse,
    summary="Put the character of an image into a video.",
    description="Put the character of an image into a video. " + _PER_SECOND,
    responses=documented(*_CREATE_ERRORS),
)
async def create_animate_mix(
    request: Request,
    body: AnimateRequest,
    user: UserWithKey,
    runtime: RuntimeDep,
    session: DbSession,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Any:
    return await _create(request, runtime, session, user, "animate-mix", body, idempotency_key)


@videos.post(
    "/text-to-video",
    response_model=CreateTaskResponse,
    description="Generate a video from a prompt. " + _PER_TASK,
    responses=documented(*_CREATE_ERRORS),
)
async def create_text_to_video(
    request: Request,
    body: TextToVideoRequest,
    user: UserWithKey,
    runtime: RuntimeDep,
    session: DbSession,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Any:
    return await _create(request, runtime, session, user, "text-to-video", body, idempotency_key)


@videos.post(
    "/image-to-video",
    response_model=CreateTaskResponse,
    description="Animate images from a prompt. " + _PER_TASK,
    responses=documented(*_CREATE_ERRORS),
)
async def create_image_to_video(
    request: Request,
    body: ImageToVideoRequest,
    user: UserWithKey,
    runtime: RuntimeDep,
    session: DbSession,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Any:
    return await _create(request, runtime, session, user, "image-to-video", body, idempotency_key)


async def _task_for_key(
    runtime: Runtime,
    key: ApiKeyAuth,
    credentials: HTTPAuthorizationCredentials | None,
    task_id: str,
) -> TaskByIdView:
    """A personal key sees its owner's tasks; a client key any task by its unguessable id, and
    only the signed-in user's when a Bearer token comes along."""
    parsed = parse_uuid(task_id)
    owner = await _owner_for_key(runtime, key, credentials)
    if parsed is None:
        raise TaskNotFound()
    return _as_seen_by(owner, await _read_view(runtime, parsed, owner))


def _as_seen_by(owner: uuid.UUID | None, view: TaskView) -> TaskByIdView:
    """Everything to the owner; to a client key alone (no owner), progress and outcome only."""
    return view if owner is not None else view.for_client_key()


async def _owner_for_key(
    runtime: Runtime, key: ApiKeyAuth, credentials: HTTPAuthorizationCredentials | None
) -> uuid.UUID | None:
    """Whose tasks the caller may read: the key's or the token's owner; None for any (a client
    key alone)."""
    owner = key.user_id
    if credentials is not None:
        user = await user_for_access_token(runtime, credentials.credentials)
        if owner is not None and owner != user.id:
            raise TaskNotFound()
        owner = user.id
    return owner


async def _read_view(runtime: Runtime, parsed: uuid.UUID, owner: uuid.UUID | None) -> TaskView:
    """The task as the status endpoints show it; another owner's task is not found."""
    found = await service.read_view(runtime.db, runtime.task_views, runtime.storage, parsed)
    if found is None or (owner is not None and found[0] != owner):
        raise TaskNotFound()
    return found[1]


@videos.get("/tasks/{task_id}", response_model=TaskByIdView, responses=documented(TaskNotFound))
async def video_task_status(
    task_id: str,
    key: ApiKeyAuth,
    request: Request,
    credentials: OptionalBearer,
) -> TaskByIdView:
    """A task's status and progress, its result URL once it succeeded (docs/api.md §3.3)."""
    return await _task_for_key(request.app.state.runtime, key, credentials, task_id)


@tasks.get("/user/tasks", response_model=TaskList)
async def list_tasks(
    user: CurrentUser,
    runtime: RuntimeDep,
    session: DbSession,
    page: Page,
    status: TaskStatus | None = None,
) -> TaskList:
    """The signed-in user's tasks, newest first; `total` counts the filtered set."""
    rows, total = await service.list_tasks(session, user.id, status, page)
    return TaskList(
        tasks=[service.view(t, runtime.storage) for t in rows],
        total=total,
        page=page.page,
        page_size=page.page_size,
    )


@tasks.get("/{task_id}", response_model=TaskByIdView, responses=documented(TaskNotFound))
async def task_detail(
    task_id: str,
    key: ApiKeyAuth,
    request: Request,
    credentials: OptionalBearer,
) -> TaskByIdView:
    """Task details (docs/api.md §4.1), with credits charged and refunded and the inputs."""
    return await _task_for_key(request.app.state.runtime, key, credentials, task_id)


SSE_HEARTBEAT_SECONDS = 15.0
_TERMINAL = frozenset(s.value for s in TaskStatus) - {s.value for s in OPEN_STATUSES}


@tasks.get(
    "/{task_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Event stream"},
        **documented(TaskNotFound),
    },
)
async def task_events(
    task_id: str, key: ApiKeyAuth, request: Request, credentials: OptionalBearer
) -> StreamingResponse:
    """Server-Sent Events: a `task` event with the task as `GET /api/tasks/{id}` shows it now
    and on every change of status, progress or cancel outcome, a comment every 15 s to keep
    proxies from closing the stream, and the end of the stream once the task has finished."""
    runtime: Runtime = request.app.state.runtime
    parsed = parse_uuid(task_id)
    owner = await _owner_for_key(runtime, key, credentials)
    if parsed is None:
        raise TaskNotFound()
    await _read_view(runtime, parsed, owner)  # 404 before the stream starts

    async def stream() -> AsyncIterator[bytes]:
        sent: tuple[str, int, str | None] | None = None
        yield b"retry: 3000\n\n"
        with runtime.task_events.follow(parsed) as changed:
            while True:
                changed.clear()
                view = _as_seen_by(owner, await _read_view(runtime, parsed, owner))
                # A cancel the vendor refused changes neither status nor progress: it counts too.
                shown = (view.status, view.progress, view.cancel_outcome)
                if shown != sent:
                    sent = shown
                    event_id = ":".join(str(part) for part in shown if part is not None)
                    data = view.model_dump_json()
                    yield f"event: task\nid: {event_id}\ndata: {data}\n\n".encode()
                    if view.status in _TERMINAL:
                        return
                if not await runtime.task_events.wait(changed, SSE_HEARTBEAT_SECONDS):
                    yield b": keep-alive\n\n"

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@tasks.delete(
    "/{task_id}",
    response_model=CancelResponse,
    responses=documented(TaskNotFound, TaskAlreadyFinished),
)
async def cancel_task(
    task_id: str, user: CurrentUser, runtime: RuntimeDep, session: DbSession
) -> CancelResponse:
    """Cancel a pending or running task (400 once it has finished). Credits come back only when
    the task is stopped before the vendor bills it: a task never sent is canceled at once; one the
    vendor has is canceled when the vendor confirms. A vendor that cannot stop it (kie.ai never
    can, DashScope not once it runs) leaves it running: `cancel_outcome` is `not_cancelable`,
    and the task finishes and is charged for what it makes (refunded if it fails)."""
    task = await flows.cancel_task(runtime, session, user.id, task_id)
    shown = service.view(task, runtime.storage)
    message = "Task cancellation requested"
    if shown.cancel_outcome == "not_cancelable":
        message += ", but the provider cannot stop a running task: it will finish and be charged"
    return CancelResponse(
        message=message,
        status=task.status,
        cancel_outcome=shown.cancel_outcome,
        cancel_message=shown.cancel_message,
    )


@tasks.post(
    "/{task_id}/retry",
    response_model=RetryResponse,
    responses=documented(TaskNotFound, TaskNotRetryable, *_CREATE_ERRORS),
)
async def retry_task(
    request: Request,
    task_id: str,
    user: CurrentUser,
    runtime: RuntimeDep,
    session: DbSession,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Any:
    """Run a failed, timed-out or canceled task again as a new task, charged again. A task is
    retried once: retrying it again (a double click, a client's retry) answers with that same
    new task, `Idempotent-Replayed: true`, and charges nothing."""
    key = _key(request, idempotency_key)
    return _respond(await flows.retry_task(runtime, session, user.id, task_id, key))
