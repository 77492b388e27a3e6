"""Tasks and their money: creation with its charge or hold, and every guarded state change.

A state change and its ledger movement happen in one transaction, on the task's row lock, and only
from the states the change allows; ledger keys are derived from the task id, so a settlement or a
refund happens at most once however many workers or requests race for it. Nothing here commits.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Collection
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vidgate.admin import service as audit
from vidgate.admin.service import Actor
from vidgate.catalog.schema import Catalog, Model, Price
from vidgate.config import Settings
from vidgate.credits import service as ledger
from vidgate.db.engine import Database
from vidgate.kit import PageRequest, TaskKind, parse_uuid
from vidgate.media.storage import Storage
from vidgate.providers.base import VideoRequest
from vidgate.tasks.cache import TaskCache
from vidgate.tasks.errors import (
    ModelNotOffered,
    OutsideModelLimits,
    TaskAlreadyFinished,
    TaskNotFound,
    TooManyActiveTasks,
)
from vidgate.tasks.inputs import (
    ANIMATE_IMAGE,
    ANIMATE_VIDEO,
    SORA_IMAGE,
    MediaResolver,
)
from vidgate.tasks.models import OPEN_STATUSES, Task, TaskAttempt, TaskStatus
from vidgate.tasks.schemas import (
    AnimateRequest,
    ImageToVideoRequest,
    TaskView,
    TextToVideoRequest,
    describe_cancel,
)
from vidgate.users.errors import UserNotFound
from vidgate.users.models import User
from vidgate.webhooks import service as webhooks

logger = structlog.get_logger(__name__)

PREPAID_ESTIMATED_SECONDS = 180  # the base API's "预计 180 秒" (about 180 s)
CreateBody = AnimateRequest | TextToVideoRequest | ImageToVideoRequest


@dataclass(frozen=True)
class Prepared:
    """A create request checked and resolved, ready to be priced and stored."""

    kind: TaskKind
    params: dict[str, Any]
    request: VideoRequest
    tier: str
    reference_seconds: float | None
    webhook_url: str | None
    model: Model
    duration: int | None = None  # seconds asked for (text and image to video)

    @property
    def price(self) -> Price:
        return self.model.price(self.tier, self.duration)

    @property
    def estimated_seconds(self) -> int:
        if self.reference_seconds is None:
            return PREPAID_ESTIMATED_SECONDS
        # Wan2.2-Animate renders at roughly 20-30 s per output second, after a short queue.
        return 60 + math.ceil(25 * self.reference_seconds)

    @property
    def price_note(self) -> str:
        """What the 402 detail names after the amount, as the base API words it for Sora:
        `20 credits (standard quality)`; for animate, the seconds and the rate."""
        price = self.price
        if price.mode == "metered":
            assert self.reference_seconds is not None
            return f"{self.reference_seconds:.1f} s at {price.credits} credits/s, {self.tier}"
        if self.duration is not None and self.duration != self.model.limits.duration:
            return f"{self.tier} quality, {self.duration} s"
        return f"{self.tier} quality"

    @property
    def estimate(self) -> int:
        price = self.price
        if price.mode == "metered":
            assert self.reference_seconds is not None
            return price.for_seconds(self.reference_seconds)
        return price.credits


def choose_model(catalog: Catalog, kind: TaskKind, body: CreateBody) -> Model:
    """The catalog model the request asks for (the kind's default when it names none), with the
    request checked against the model's limits."""
    if body.model is None:
        model = catalog.default_for(kind)
    else:
        found = catalog.get(body.model)
        if found is None or kind not in found.kinds:
            raise ModelNotOffered(
                f"Unknown model '{body.model}' for {kind}; GET /api/videos/models lists them"
            )
        if not found.offered:
            raise ModelNotOffered(f"Model '{body.model}' is no longer offered")
        model = found
    limits = model.limits
    if isinstance(body, TextToVideoRequest):
        if len(body.prompt) > limits.prompt_max_chars:
            raise OutsideModelLimits(
                f"prompt is longer than {model.id} accepts ({limits.prompt_max_chars} characters)"
            )
        if body.duration is not None and body.duration not in limits.durations:
            offered = ", ".join(str(d) for d in limits.durations)
            raise OutsideModelLimits(f"duration must be one of {offered} seconds for {model.id}")
        if body.aspect_ratio not in limits.aspect_ratios:
            raise OutsideModelLimits(
                f"aspect_ratio {body.aspect_ratio} is not offered by {model.id}"
            )
    return model


async def prepare(
    resolver: MediaResolver,
    catalog: Catalog,
    user_id: uuid.UUID,
    kind: TaskKind,
    body: CreateBody,
) -> Prepared:
    """Check the request against its model and inputs against the vendor's limits (fetching
    remote URLs) before money moves.

    Takes no session: a remote fetch may last many seconds, and must not hold a connection."""
    model = choose_model(catalog, kind, body)
    params = body.model_dump(exclude={"webhook_url"})
    if isinstance(body, AnimateRequest):
        image = await resolver.resolve(
            body.image_url,
            user_id=user_id,
            field="image_url",
            file_type="image",
            limits=ANIMATE_IMAGE,
        )
        video = await resolver.resolve(
            body.video_url,
            user_id=user_id,
            field="video_url",
            file_type="video",
            limits=ANIMATE_VIDEO,
        )
        request = VideoRequest(
            kind=kind,
            image_url=image.upstream_url,
            video_url=video.upstream_url,
            mode=body.mode,
            check_image=body.check_image,
        )
        return Prepared(
            kind, params, request, body.mode, video.info.duration_seconds, body.webhook_url, model
        )
    image_urls: tuple[str, ...] = ()
    if isinstance(body, ImageToVideoRequest):
        resolved = [
            await resolver.resolve(
                url, user_id=user_id, field=f"image_urls[{i}]", file_type="image", limits=SORA_IMAGE
            )
            for i, url in enumerate(body.image_urls)
        ]
        image_urls = tuple(r.upstream_url for r in resolved)
    duration = body.duration or model.limits.duration
    request = VideoRequest(
        kind=kind,
        prompt=body.prompt,
        image_urls=image_urls,
        aspect_ratio=body.aspect_ratio,
        quality=body.quality,
        duration=duration,
    )
    return Prepared(
        kind, params, request, body.quality, None, body.webhook_url, model, body.duration
    )


class AlreadyRetried(Exception):
    """The task was retried before: its first retry stands for this one too."""

    def __init__(self, task: Task) -> None:
        super().__init__(f"task {task.retry_of} was retried as {task.id}")
        self.task = task


async def earlier_retry(session: AsyncSession, task_id: uuid.UUID) -> Task | None:
    """The task that retried `task_id`, if any."""
    return await session.scalar(
        select(Task).where(Task.retry_of == task_id).order_by(Task.created_at).limit(1)
    )


def ledger_key(task_id: uuid.UUID, movement: str) -> str:
    """The one ledger key of each movement a task can make (charge, reserve, settle, ...)."""
    return f"task:{task_id}:{movement}"


async def create(
    session: AsyncSession,
    settings: Settings,
    user_id: uuid.UUID,
    prepared: Prepared,
    *,
    retry_of: uuid.UUID | None = None,
    idempotency_key: str | None = None,
) -> Task:
    """Insert the task and take its price (prepaid) or hold its estimate (metered).

    The user's row is locked first, so the active-task cap and the credit check see every other
    create of the same user that commits before this one.
    """
    user = await session.scalar(
        select(User)
        .where(User.id == user_id, User.deleted_at.is_(None))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if user is None:
        raise UserNotFound()
    if retry_of is not None:
        # Under the user's lock: of two retries of one task sent at once, the second sees the
        # first's task here and is answered with it (AlreadyRetried), charging nothing.
        earlier = await earlier_retry(session, retry_of)
        if earlier is not None:
            raise AlreadyRetried(earlier)
    price = prepared.price
    estimate = prepared.estimate
    what = prepared.price_note
    available = user.credits - user.credits_reserved
    if estimate > available:  # before the cap: topping up is what this caller needs to hear
        raise ledger.InsufficientCredits(estimate, available, what)
    active = await session.scalar(
        select(func.count())
        .select_from(Task)
        .where(Task.user_id == user_id, Task.status.in_(OPEN_STATUSES))
    )
    if (active or 0) >= settings.max_active_tasks_per_user:
        raise TooManyActiveTasks(settings.max_active_tasks_per_user)
    task_id = uuid.uuid4()
    timeout = (
        settings.task_timeout_animate_seconds
        if price.mode == "metered"
        else settings.task_timeout_sora_seconds
    )
    task = Task(
        id=task_id,
        user_id=user_id,
        kind=prepared.kind,
        # The adapter of the channel it is routed to replaces this when it is sent.
        provider=next(c.adapter for c in prepared.model.channels),
        model=prepared.model.id,
        params=prepared.params,
        upstream_request=asdict(prepared.request),
        status=TaskStatus.PENDING,
        progress=0,
        billing_mode=price.mode,
        unit_price=price.credits,
        reference_seconds=prepared.reference_seconds,
        credits_estimated=estimate,
        credits_reserved=estimate if price.mode == "metered" else 0,
        credits_charged=0 if price.mode == "metered" else estimate,
        credits_refunded=0,
        estimated_seconds=prepared.estimated_seconds,
        webhook_url=prepared.webhook_url,
        retry_of=retry_of,
        idempotency_key=idempotency_key,
        attempts=0,
        deadline_at=datetime.now(UTC) + timedelta(seconds=timeout),
    )
    session.add(task)  # inserted by the ledger's flush, with the user's new balance
    if price.mode == "metered":
        await ledger.reserve(
            session,
            user_id,
            estimate,
            key=ledger_key(task_id, "reserve"),
            reference=str(task_id),
            what=what,
            locked_user=user,
        )
    else:
        await ledger.charge(
            session,
            user_id,
            estimate,
            key=ledger_key(task_id, "charge"),
            reference=str(task_id),
            note=what,
            what=what,
            locked_user=user,
        )
    return task


async def lock_task(session: AsyncSession, task_id: uuid.UUID) -> Task | None:
    return await session.scalar(
        select(Task)
        .where(Task.id == task_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def _give_back(session: AsyncSession, task: Task, why: str) -> None:
    """Release the hold (metered) or refund what was charged (prepaid); once per task."""
    if task.credits_reserved:
        await ledger.release(
            session,
            task.user_id,
            task.credits_reserved,
            key=ledger_key(task.id, "release"),
            reference=str(task.id),
            note=why,
        )
        task.credits_reserved = 0
    refundable = task.credits_charged - task.credits_refunded
    if refundable > 0:
        await ledger.refund(
            session,
            task.user_id,
            refundable,
            key=ledger_key(task.id, "refund"),
            reference=str(task.id),
            note=why,
        )
        task.credits_refunded += refundable


async def close(
    session: AsyncSession,
    task_id: uuid.UUID,
    status: TaskStatus,
    storage: Storage,
    *,
    expected: Collection[TaskStatus] = OPEN_STATUSES,
    error_code: str | None = None,
    error_message: str | None = None,
) -> Task | None:
    """End a task without a result (FAILED, TIMEOUT, CANCELED) and give its credits back.

    None when the task is not in an `expected` state: someone else already moved it.
    """
    assert status in (TaskStatus.FAILED, TaskStatus.TIMEOUT, TaskStatus.CANCELED)
    task = await lock_task(session, task_id)
    if task is None or task.status not in expected:
        return None
    await _give_back(session, task, f"{status.lower()}: {error_code or 'no result'}")
    task.status = status
    task.error_code = error_code
    task.error_message = error_message
    task.completed_at = datetime.now(UTC)
    await session.flush()
    await record_event(session, task, storage)
    return task


async def succeed(
    session: AsyncSession,
    task_id: uuid.UUID,
    storage: Storage,
    *,
    result_key: str,
    result_size: int,
    duration_seconds: float | None,
    billed_seconds: float | None,
    labels: dict[str, Any] | None = None,
) -> Task | None:
    """RUNNING → SUCCEEDED with the stored result and the labels it carries (None: labelling
    is off); a metered task is charged its real length."""
    task = await lock_task(session, task_id)
    if task is None or task.status != TaskStatus.RUNNING:
        return None
    if task.billing_mode == "metered":
        seconds = billed_seconds if billed_seconds is not None else duration_seconds or 0.0
        actual = math.ceil(round(seconds * task.unit_price, 6))
        result = await ledger.settle(
            session,
            task.user_id,
            reserved=task.credits_reserved,
            actual=actual,
            key=ledger_key(task.id, "settle"),
            reference=str(task.id),
            note=f"{task.kind}: {seconds:g} s at {task.unit_price} credits/s",
        )
        task.credits_charged = -result.entry.delta
        task.credits_reserved = 0
        if actual > task.credits_charged:
            logger.warning(
                "tasks.charge_capped",
                task_id=str(task.id),
                actual=actual,
                charged=-result.entry.delta,
            )
    task.status = TaskStatus.SUCCEEDED
    task.progress = 100
    task.result_key = result_key
    task.result_size = result_size
    task.result_duration_seconds = duration_seconds
    task.labels = labels
    task.completed_at = datetime.now(UTC)
    await session.flush()
    await record_event(session, task, storage)
    return task


async def record_event(session: AsyncSession, task: Task, storage: Storage) -> bool:
    """Record the webhook event for the task's current status, its data the task's view."""
    return await webhooks.record_task_event(
        session, task, lambda current: view(current, storage).model_dump(mode="json")
    )


async def owned_task(session: AsyncSession, task_id: str, user_id: uuid.UUID) -> Task:
    """The user's task, or 404 (also for another user's task: ids are not confirmed to others)."""
    parsed = parse_uuid(task_id)
    task = await session.get(Task, parsed) if parsed else None
    if task is None or task.user_id != user_id:
        raise TaskNotFound()
    return task


async def list_tasks(
    session: AsyncSession,
    user_id: uuid.UUID,
    status: TaskStatus | None,
    page: PageRequest,
) -> tuple[list[Task], int]:
    """One page of the user's tasks (with `status`, only those), newest first, and how many
    there are in all."""
    where = [Task.user_id == user_id]
    if status is not None:
        where.append(Task.status == status)
    total = await session.scalar(select(func.count()).select_from(Task).where(*where))
    rows = await session.scalars(
        page.apply(select(Task).where(*where).order_by(Task.created_at.desc(), Task.id.desc()))
    )
    return list(rows), total or 0


_TASK_BY_ID = select(Task.__table__).where(Task.id == bindparam("task_id"))  # built once


async def read_view(
    db: Database, cache: TaskCache, storage: Storage, task_id: uuid.UUID
) -> tuple[uuid.UUID, TaskView] | None:
    """A task's owner and view, from the per-process cache when it is there (the status read is
    the hottest path: one autocommit round trip on a miss). None: no such task."""
    cached = cache.get(task_id)
    if cached is None:
        generation = cache.generation
        async with db.autocommit_engine.connect() as conn:
            row = (await conn.execute(_TASK_BY_ID, {"task_id": task_id})).first()
        if row is None:
            return None
        cached = row.user_id, view(row, storage)  # type: ignore[arg-type]
        cache.put(task_id, *cached, generation)
    return cached


async def request_cancel(
    session: AsyncSession, task_id: str, user_id: uuid.UUID, storage: Storage
) -> tuple[Task, bool]:
    """Record the user's cancel, and cancel at once a task nothing was sent upstream for.

    Returns the task and whether its vendor still has to be asked: a task the vendor has (or
    may have: a submission in flight) is stopped only by the vendor's word, since the vendor
    bills what it keeps rendering. A task whose vendor already refused is left as it is: asking
    again cannot change the answer.
    """
    task = await owned_task(session, task_id, user_id)
    task = await lock_task(session, task.id) or task
    if task.status not in OPEN_STATUSES:
        raise TaskAlreadyFinished(task.status)
    if task.cancel_requested_at is None:
        task.cancel_requested_at = datetime.now(UTC)
        await session.flush()
    if task.status == TaskStatus.PENDING and task.submit_started_at is None:
        closed = await close(
            session,
            task.id,
            TaskStatus.CANCELED,
            storage,
            expected=(TaskStatus.PENDING,),
            error_code="canceled",
            error_message="Canceled by the user",
        )
        assert closed is not None
        return closed, False
    return task, task.cancel_refused_at is None


def view(task: Task, storage: Storage) -> TaskView:
    cancel_outcome, cancel_message = describe_cancel(
        task.status, task.cancel_requested_at, task.cancel_refused_at
    )
    return TaskView(
        task_id=str(task.id),
        user_id=str(task.user_id),
        task_type=task.kind,
        status=task.status,
        progress=task.progress,
        result_url=(
            storage.public_url(task.result_key)
            if task.result_key and task.result_expired_at is None
            else None
        ),
        error_message=task.error_message,
        created_at=task.created_at,
        updated_at=task.updated_at,
        completed_at=task.completed_at,
        error_code=task.error_code,
        billing_mode="metered" if task.billing_mode == "metered" else "prepaid",
        credits_estimated=task.credits_estimated,
        credits_reserved=task.credits_reserved,
        credits_charged=task.credits_charged,
        credits_refunded=task.credits_refunded,
        estimated_time=task.estimated_seconds,
        result_duration_seconds=task.result_duration_seconds,
        inputs=task.params,
        retry_of=str(task.retry_of) if task.retry_of else None,
        model=task.model,
        cancel_requested=task.cancel_requested_at is not None and task.status in OPEN_STATUSES,
        cancel_outcome=cancel_outcome,
        cancel_message=cancel_message,
        result_expired=task.result_expired_at is not None,
        result_expired_at=task.result_expired_at,
        labelled=is_labelled(task),
    )


def is_labelled(task: Task) -> bool:
    """Whether the task's stored result carries the labels vidgate adds."""
    return task.result_key is not None and bool(task.labels and "labelled_at" in task.labels)


# --- the console --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskFilter:
    """Which tasks an operator lists (every field optional)."""

    status: TaskStatus | None = None
    kind: str | None = None
    model: str | None = None
    channel: str | None = None
    user_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None


async def list_all(
    session: AsyncSession, where: TaskFilter, page: PageRequest
) -> tuple[list[Task], int]:
    """One page of every user's tasks matching `where`, newest first, and the number in all."""
    conditions: list[Any] = []
    for column, value in (
        (Task.status, where.status),
        (Task.kind, where.kind),
        (Task.model, where.model),
        (Task.channel, where.channel),
        (Task.user_id, where.user_id),
    ):
        if value is not None:
            conditions.append(column == value)
    if where.since is not None:
        conditions.append(Task.created_at >= where.since)
    if where.until is not None:
        conditions.append(Task.created_at < where.until)
    total = await session.scalar(select(func.count()).select_from(Task).where(*conditions))
    rows = await session.scalars(
        page.apply(select(Task).where(*conditions).order_by(Task.created_at.desc(), Task.id.desc()))
    )
    return list(rows), total or 0


async def any_task(session: AsyncSession, task_id: uuid.UUID) -> Task:
    task = await session.get(Task, task_id)
    if task is None:
        raise TaskNotFound()
    return task


async def attempts_of(session: AsyncSession, task_id: uuid.UUID) -> list[TaskAttempt]:
    rows = await session.scalars(
        select(TaskAttempt).where(TaskAttempt.task_id == task_id).order_by(TaskAttempt.id)
    )
    return list(rows)


async def close_by_operator(
    session: AsyncSession, actor: Actor, task_id: uuid.UUID, reason: str, storage: Storage
) -> Task:
    """End an open task as CANCELED and give all its credits back, whatever its vendor can still
    do (the operator takes the vendor's cost); audited."""
    task = await lock_task(session, task_id)
    if task is None:
        raise TaskNotFound()
    if task.status not in OPEN_STATUSES:
        raise TaskAlreadyFinished(task.status)
    before = {
        "status": task.status,
        "credits_charged": task.credits_charged,
        "credits_reserved": task.credits_reserved,
    }
    closed = await close(
        session,
        task_id,
        TaskStatus.CANCELED,
        storage,
        error_code="canceled_by_operator",
        error_message="Canceled by an operator; the task's credits were returned",
    )
    assert closed is not None  # locked and open just above
    await audit.record(
        session,
        actor,
        "task.canceled",
        "task",
        task_id,
        reason=reason,
        before=before,
        after={"status": closed.status, "credits_refunded": closed.credits_refunded},
    )
    return closed
