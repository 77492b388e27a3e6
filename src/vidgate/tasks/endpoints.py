"""Create, follow, list, cancel and retry video tasks (docs/api.md §3.1, §3.3 and §4)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy import bindparam, func, select

from vidgate.auth.dependencies import (
    ApiKeyAuth,
    CurrentUser,
    OptionalBearer,
    UserWithKey,
    user_for_access_token,
)
from vidgate.auth.principal import Principal
from vidgate.credits.pricing import TaskKind, price_of
from vidgate.deps import DbSession, Runtime, RuntimeDep
from vidgate.errors import BadRequest, NotFound, Unprocessable
from vidgate.tasks import idempotency, lifecycle, service
from vidgate.tasks.jobs import schedule_advance
from vidgate.tasks.models import OPEN_STATUSES, RETRYABLE_STATUSES, Task, TaskStatus
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
_BODIES: dict[TaskKind, type[service.CreateBody]] = {
    "animate-move": AnimateRequest,
    "animate-mix": AnimateRequest,
    "text-to-video": TextToVideoRequest,
    "image-to-video": ImageToVideoRequest,
}
_CREATED_MESSAGE: dict[TaskKind, str] = {
    "text-to-video": "Text-to-video task created successfully. Credits deducted.",
    "image-to-video": "Image-to-video task created successfully. Credits deducted.",
}


def _created_message(kind: TaskKind, task: Task) -> str:
    if kind in _CREATED_MESSAGE:
        return _CREATED_MESSAGE[kind]
    return (
        f"{kind.capitalize()} task created successfully. {task.credits_reserved} credits reserved;"
        f" the charge is {task.unit_price} credits per second of output, taken when it finishes."
    )


async def _start(runtime: Runtime, task_id: uuid.UUID) -> None:
    """Queue the first step; if that fails the sweeper picks the task up within seconds."""
    if runtime.jobs is None:
        return
    try:
        await schedule_advance(runtime.jobs, task_id)
    except Exception:
        logger.exception("tasks.defer_failed", task_id=str(task_id))


async def _create(
    request: Request,
    runtime: Runtime,
    session: DbSession,
    user: Principal,
    kind: TaskKind,
    body: service.CreateBody,
    key: str | None,
    *,
    retry_of: Task | None = None,
) -> Any:
    webhook = body.webhook_url
    if webhook and not runtime.settings.is_development and not webhook.startswith("https://"):
        raise Unprocessable("webhook_url must be an https URL")
    if key is not None:
        key = idempotency.validate_key(key)
        print_ = idempotency.fingerprint(
            request.method, request.url.path, body.model_dump(mode="json")
        )
        replay = await idempotency.claim(
            runtime.db,
            user.id,
            key,
            print_,
            keep_hours=runtime.settings.idempotency_key_hours,
        )
        if replay is not None:
            return JSONResponse(
                replay.body, status_code=replay.status, headers={"Idempotent-Replayed": "true"}
            )
    replayed = False
    try:
        prepared = await service.prepare(runtime.media_resolver, user.id, kind, body)
        try:
            task = await service.create(
                session,
                runtime.settings,
                user.id,
                prepared,
                retry_of=retry_of.id if retry_of else None,
                idempotency_key=key,
            )
        except service.AlreadyRetried as exc:  # a concurrent retry of the same task won
            task, replayed = exc.task, True
        if retry_of is not None:
            response: CreateTaskResponse | RetryResponse = RetryResponse(
                new_task_id=str(task.id), credits_estimated=task.credits_estimated
            )
        else:
            response = CreateTaskResponse(
                task_id=str(task.id),
                message=_created_message(kind, task),
                credits_estimated=task.credits_estimated,
                estimated_time=task.estimated_seconds,
                status=task.status,
                billing_mode="metered" if task.billing_mode == "metered" else "prepaid",
            )
        if key is not None:
            await idempotency.record(session, user.id, key, 200, response.model_dump(mode="json"))
        await session.commit()
    except BaseException:
        await session.rollback()
        if key is not None:
            await idempotency.release(runtime.db, user.id, key)
        raise
    if replayed:
        return _retried_before(task)
    await _start(runtime, task.id)
    return response


def _retried_before(task: Task) -> JSONResponse:
    """The answer to a retry of a task that was retried already: its first retry."""
    body = RetryResponse(new_task_id=str(task.id), credits_estimated=task.credits_estimated)
    return JSONResponse(body.model_dump(mode="json"), headers={"Idempotent-Replayed": "true"})


def _create_route(kind: TaskKind, body_type: type[service.CreateBody], summary: str) -> None:
    price_note = ", ".join(
        f"{tier}: {price_of(kind, tier).credits}"
        for tier in (("wan-std", "wan-pro") if body_type is AnimateRequest else ("standard", "hd"))
    )

    async def create(
        request: Request,
        body: service.CreateBody,
        user: UserWithKey,
        runtime: RuntimeDep,
        session: DbSession,
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Any:
        return await _create(request, runtime, session, user, kind, body, idempotency_key)

    # Each route validates its own body type (annotations are strings under `from __future__`).
    create.__annotations__["body"] = body_type
    unit = "credits per second" if body_type is AnimateRequest else "credits"
    create.__doc__ = f"{summary} Price ({unit}): {price_note}."
    videos.add_api_route(
        f"/{kind}",
        create,
        methods=["POST"],
        response_model=CreateTaskResponse,
        name=f"create_{kind.replace('-', '_')}",
        summary=summary,
        responses={
            402: {"description": "Insufficient credits"},
            409: {"description": "Same Idempotency-Key still in flight"},
            429: {"description": "Too many active tasks"},
        },
    )


_create_route("animate-move", AnimateRequest, "Animate a character image with a video's motion.")
_create_route("animate-mix", AnimateRequest, "Put the character of an image into a video.")
_create_route("text-to-video", TextToVideoRequest, "Generate a video from a prompt (Sora 2).")
_create_route("image-to-video", ImageToVideoRequest, "Animate images from a prompt (Sora 2).")


_TASK_BY_ID = select(Task.__table__).where(Task.id == bindparam("task_id"))  # built once


async def _task_for_key(
    runtime: Runtime,
    key: ApiKeyAuth,
    credentials: HTTPAuthorizationCredentials | None,
    task_id: str,
) -> TaskByIdView:
    """A personal key sees its owner's tasks; a client key any task by its unguessable id, and
    only the signed-in user's when a Bearer token comes along."""
    parsed = service.parse_task_id(task_id)
    owner = await _owner_for_key(runtime, key, credentials)
    if parsed is None:
        raise NotFound("Task not found")
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
            raise NotFound("Task not found")
        owner = user.id
    return owner


async def _read_view(runtime: Runtime, parsed: uuid.UUID, owner: uuid.UUID | None) -> TaskView:
    """The task as the status endpoints show it, from the per-process cache when it is there."""
    cache = runtime.task_views
    cached = cache.get(parsed)
    if cached is None:
        generation = cache.generation
        async with runtime.db.autocommit_engine.connect() as conn:
            row = (await conn.execute(_TASK_BY_ID, {"task_id": parsed})).first()
        if row is None:
            raise NotFound("Task not found")
        cached = row.user_id, service.view(row, runtime.storage)  # type: ignore[arg-type]
        cache.put(parsed, *cached, generation)
    task_owner, view = cached
    if owner is not None and task_owner != owner:
        raise NotFound("Task not found")
    return view


@videos.get("/tasks/{task_id}", response_model=TaskByIdView)
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
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 10,
    status: TaskStatus | None = None,
) -> TaskList:
    """The signed-in user's tasks, newest first; `total` counts the filtered set."""
    where = [Task.user_id == user.id]
    if status is not None:
        where.append(Task.status == status)
    total = await session.scalar(select(func.count()).select_from(Task).where(*where))
    rows = await session.scalars(
        select(Task)
        .where(*where)
        .order_by(Task.created_at.desc(), Task.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return TaskList(
        tasks=[service.view(t, runtime.storage) for t in rows],
        total=total or 0,
        page=page,
        page_size=page_size,
    )


@tasks.get("/{task_id}", response_model=TaskByIdView)
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
    responses={200: {"content": {"text/event-stream": {}}, "description": "Event stream"}},
)
async def task_events(
    task_id: str, key: ApiKeyAuth, request: Request, credentials: OptionalBearer
) -> StreamingResponse:
    """Server-Sent Events: a `task` event with the task as `GET /api/tasks/{id}` shows it now
    and on every change of status, progress or cancel outcome, a comment every 15 s to keep
    proxies from closing the stream, and the end of the stream once the task has finished."""
    runtime: Runtime = request.app.state.runtime
    parsed = service.parse_task_id(task_id)
    owner = await _owner_for_key(runtime, key, credentials)
    if parsed is None:
        raise NotFound("Task not found")
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


@tasks.delete("/{task_id}", response_model=CancelResponse)
async def cancel_task(
    task_id: str, user: CurrentUser, runtime: RuntimeDep, session: DbSession
) -> CancelResponse:
    """Cancel a pending or running task (400 once it has finished). Credits come back only when
    the task is stopped before the vendor bills it: a task never sent is canceled at once; one the
    vendor has is canceled when the vendor confirms. A vendor that cannot stop it (kie.ai never
    can, DashScope not once it runs) leaves it running: `cancel_outcome` is `not_cancelable`,
    and the task finishes and is charged for what it makes (refunded if it fails)."""
    task, ask_vendor = await service.request_cancel(session, task_id, user.id, runtime.storage)
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
    task = await session.get_one(Task, task.id, populate_existing=True)  # as it stands now
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


@tasks.post("/{task_id}/retry", response_model=RetryResponse)
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
    # Read on a session of its own: the request's must hold no connection while the inputs
    # are fetched again.
    async with runtime.db.session() as lookup:
        old = await service.owned_task(lookup, task_id, user.id)
        earlier = await service.earlier_retry(lookup, old.id)
    if earlier is not None:
        return _retried_before(earlier)
    if old.status not in RETRYABLE_STATUSES:
        raise BadRequest(
            f"Task is {old.status}; only FAILED, TIMEOUT or CANCELED tasks can be retried"
        )
    kind: TaskKind = old.kind  # type: ignore[assignment]
    body = _BODIES[kind].model_validate({**old.params, "webhook_url": old.webhook_url})
    return await _create(request, runtime, session, user, kind, body, idempotency_key, retry_of=old)
