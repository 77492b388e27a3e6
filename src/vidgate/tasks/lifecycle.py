"""What a worker does with an open task, one step per job run (docs/architecture.md §5).

`advance` looks at the task once, takes the one step its state calls for (submit, poll, collect
the result, cancel, time out) and says when to look again, or that the task is finished. Calls to
the vendor happen outside any transaction; what they lead to is written by the guarded changes
in `service`, so two workers advancing one task still settle it once.

A cancel gives credits back only for what the vendor does not bill: the task is closed CANCELED
when it never reached the vendor or when the vendor confirms it stopped it (`cancel_upstream`).
kie.ai cannot cancel at all and DashScope only while a task is queued; when the vendor says no,
the refusal is recorded once and the task runs on, polled and charged like any other.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import func, insert, literal, literal_column, select, update
from sqlalchemy.sql import Executable

from vidgate.catalog.schema import Channel, Model
from vidgate.labels import pipeline as labelling
from vidgate.labels import run as labelling_process
from vidgate.labels.job import LabelJob
from vidgate.media.probe import MediaRejected, read_head
from vidgate.media.storage import new_object_key
from vidgate.net.safe_http import FetchFailed, UnsafeUrl
from vidgate.providers.base import (
    Ambiguous,
    NotSent,
    ProviderError,
    Rejected,
    TaskState,
    Throttled,
    UpstreamStatus,
    VideoProvider,
    VideoRequest,
)
from vidgate.routing import service as routing
from vidgate.tasks import service
from vidgate.tasks.models import OPEN_STATUSES, Task, TaskAttempt, TaskStatus

if TYPE_CHECKING:
    from vidgate.db.engine import Database
    from vidgate.db.session import Session
    from vidgate.media.storage import Storage
    from vidgate.providers.registry import Providers
    from vidgate.runtime import Runtime

logger = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Step:
    """When to look at the task again (seconds), or None: it is finished."""

    again_in: float | None


DONE = Step(None)


def provider_for(providers: Providers, task: Task) -> VideoProvider:
    """The adapter of the vendor that runs the task (its channel's)."""
    adapter = providers.adapter(task.provider)
    if adapter is None:
        raise NotSent(f"the {task.provider} adapter is not configured on this server")
    return adapter


def _provider(runtime: Runtime, task: Task) -> VideoProvider:
    return provider_for(runtime.providers, task)


def _backoff(runtime: Runtime, attempts: int, hint: float | None = None) -> Step:
    settings = runtime.settings
    delay = min(
        settings.task_poll_max_seconds,
        settings.task_poll_initial_seconds * 1.5 ** max(0, attempts - 1),
    )
    if hint is not None:
        delay = max(delay, min(hint, settings.task_poll_max_seconds))
    return Step(delay)


async def advance(runtime: Runtime, task_id: uuid.UUID) -> Step:
    async with runtime.db.reads() as session:
        task = await session.get(Task, task_id)
    if task is None or task.status not in OPEN_STATUSES:
        return DONE
    # The deadline first: a cancel the vendor cannot be reached for must not outlive it.
    if datetime.now(UTC) >= task.deadline_at:
        return await _time_out(runtime, task)
    if task.cancel_requested_at is not None and task.cancel_refused_at is None:
        return await _cancel(runtime, task)
    if task.status == TaskStatus.PENDING:
        return await _submit(runtime, task)
    return await _poll(runtime, task)


async def _close(runtime: Runtime, task: Task, status: TaskStatus, code: str, message: str) -> Step:
    async with runtime.db.session() as session:
        closed = await service.close(
            session, task.id, status, runtime.storage, error_code=code, error_message=message
        )
        await session.commit()
    if closed is not None:
        logger.info("tasks.closed", task_id=str(task.id), status=status.value, code=code)
    return DONE


CANCELED_BY_USER = "Canceled by the user"


class CancelVerdict(StrEnum):
    """What asking the vendor to stop a task came to."""

    CANCELED = "canceled"  # the vendor stopped it: the task is closed CANCELED, credits back
    REFUSED = "refused"  # the vendor cannot stop it: recorded; it runs on and is charged
    LATER = "later"  # no answer (not sent, throttled, lost): ask again later


@dataclass(frozen=True)
class CancelAttempt:
    verdict: CancelVerdict
    retry_after: float | None = None  # seconds the vendor asked us to wait, when it said


async def cancel_upstream(
    db: Database, storage: Storage, provider: VideoProvider, task: Task
) -> CancelAttempt:
    """Ask the vendor to stop a task it has, and act on its answer.

    Only the vendor's confirmation closes the task CANCELED with its credits back: a task the
    vendor keeps rendering is a task the vendor bills. A refusal (kie.ai never cancels; DashScope
    not past PENDING; a `Rejected` call) is recorded once, so nobody asks again and the worker
    keeps polling; an error that says nothing about the task is left for a later try. The DELETE
    request calls this at once (a task still queued at DashScope is caught before it starts), and
    the worker calls it for cancels the request could not settle.
    """
    assert task.upstream_id is not None
    try:
        try:
            stopped = await provider.cancel(task.upstream_id)
        except Rejected as exc:
            logger.warning("tasks.upstream_cancel_rejected", task_id=str(task.id), error=str(exc))
            stopped = False
        if not stopped:
            # Two cancels at once (two requests, or a request and the worker): the second hears
            # "cannot cancel" about the task the first just canceled. The vendor's state says.
            try:
                state = await provider.fetch(task.upstream_id)
            except Rejected:
                state = None
            stopped = state is not None and state.status == UpstreamStatus.CANCELED
    except (NotSent, Throttled, Ambiguous) as exc:
        logger.info("tasks.upstream_cancel_retry", task_id=str(task.id), error=str(exc))
        return CancelAttempt(
            CancelVerdict.LATER, exc.retry_after if isinstance(exc, Throttled) else None
        )
    closed: Task | None = None
    recorded: uuid.UUID | None = None
    async with db.session() as session:
        if stopped:
            closed = await service.close(
                session,
                task.id,
                TaskStatus.CANCELED,
                storage,
                error_code="canceled",
                error_message=CANCELED_BY_USER,
            )
        else:
            recorded = await session.scalar(
                update(Task)
                .where(
                    Task.id == task.id,
                    Task.status.in_(OPEN_STATUSES),
                    Task.cancel_refused_at.is_(None),
                )
                .values(cancel_refused_at=datetime.now(UTC))
                .returning(Task.id)
            )
        await session.commit()
    if stopped:
        if closed is not None:
            logger.info("tasks.closed", task_id=str(task.id), status="CANCELED", code="canceled")
        return CancelAttempt(CancelVerdict.CANCELED)
    if recorded is not None:
        logger.info("tasks.cancel_refused", task_id=str(task.id), provider=provider.name)
    return CancelAttempt(CancelVerdict.REFUSED)


async def _cancel(runtime: Runtime, task: Task) -> Step:
    if task.upstream_id is None:
        if task.status == TaskStatus.PENDING and _submitting(runtime, task):
            return Step(1.0)  # a submission is in flight: ask the vendor once it returns
        # Nothing reached the vendor (or a submission whose outcome is unknown, which is never
        # resent and is refunded like any unconfirmed submission): nothing is billed.
        return await _close(runtime, task, TaskStatus.CANCELED, "canceled", CANCELED_BY_USER)
    attempt = await cancel_upstream(runtime.db, runtime.storage, _provider(runtime, task), task)
    if attempt.verdict == CancelVerdict.CANCELED:
        return DONE
    if attempt.verdict == CancelVerdict.LATER:
        async with runtime.db.session() as session:
            await session.execute(
                update(Task).where(Task.id == task.id).values(attempts=Task.attempts + 1)
            )
            await session.commit()
    return _backoff(runtime, task.attempts + 1, attempt.retry_after)  # refused: polling goes on


async def _cancel_upstream(runtime: Runtime, task: Task) -> None:
    """Best effort, for a task vidgate has closed already: its outcome changes nothing here."""
    if task.upstream_id is None or task.cancel_refused_at is not None:
        return
    try:
        await _provider(runtime, task).cancel(task.upstream_id)
    except ProviderError as exc:
        logger.info("tasks.upstream_cancel_failed", task_id=str(task.id), error=str(exc))


async def _time_out(runtime: Runtime, task: Task) -> Step:
    """Past the deadline the credits come back, as the product promises, even though a vendor
    that cannot cancel may still be rendering (and billing) the task. Deadlines are hours past
    any normal run, so this is a vendor fault and no way to get videos for free."""
    await _cancel_upstream(runtime, task)
    minutes = max(1, round((task.deadline_at - task.created_at).total_seconds() / 60))
    return await _close(
        runtime,
        task,
        TaskStatus.TIMEOUT,
        "timeout",
        f"The task did not finish within {minutes} minutes; its credits were returned",
    )


def _submitting(runtime: Runtime, task: Task) -> bool:
    """Whether a submission started recently enough that it may still be in flight."""
    if task.submit_started_at is None:
        return False
    age = (datetime.now(UTC) - task.submit_started_at).total_seconds()
    return age < runtime.settings.provider_timeout_seconds * 2 + 30


# How long a task whose channels are all busy (slots taken, breakers open) waits to look again.
BUSY_WAIT_SECONDS = 2.0


def _breaker(runtime: Runtime) -> routing.Breaker:
    settings = runtime.settings
    return routing.Breaker(
        threshold=settings.channel_breaker_failures,
        cooldown=timedelta(seconds=settings.channel_breaker_cooldown_seconds),
        probe_window=timedelta(seconds=settings.provider_timeout_seconds * 2 + 30),
    )


async def _claim(runtime: Runtime, task: Task, model: Model, tried: set[str]) -> Claim:
    """Take the next channel that can run the task and claim the task for sending through it:
    the claim and its attempt row in one statement, or, for a channel that counts slots or is
    half open, in one transaction with the lock that decides it (`routing.take_channel`)."""
    now = datetime.now(UTC)
    configured = runtime.providers.configured
    async with runtime.db.reads() as session:
        chosen = await routing.choose_channel(
            session, model, configured=configured, tried=tried, now=now
        )
        if isinstance(chosen, routing.NoneFree):
            return chosen
        if isinstance(chosen, routing.Taken):
            attempt_id = await session.scalar(_claim_statement(task.id, chosen.channel, now))
            return None if attempt_id is None else _Sending(chosen, attempt_id)
    async with runtime.db.session() as session:
        taken = await routing.take_channel(
            session,
            model,
            task.id,
            configured=configured,
            tried=tried,
            now=now,
            breaker=_breaker(runtime),
        )
        if isinstance(taken, routing.NoneFree):
            await session.commit()  # health rows made for the first time are kept
            return taken
        attempt_id = await session.scalar(_claim_statement(task.id, taken.channel, now))
        if attempt_id is None:
            await session.rollback()
            return None
        await session.commit()
        return _Sending(taken, attempt_id)


def _claim_statement(task_id: uuid.UUID, channel: Channel, now: datetime) -> Executable:
    """Claim a task nobody is sending for `channel` and open its attempt, as one statement that
    answers the attempt's id (none: the task is not PENDING, or another worker holds it)."""
    claimed = (
        update(Task)
        .where(
            Task.id == task_id,
            Task.status == TaskStatus.PENDING,
            Task.submit_started_at.is_(None),
        )
        .values(
            submit_started_at=now,
            attempts=Task.attempts + 1,
            channel=channel.id,
            provider=channel.adapter,
        )
        .returning(Task.id)
        .cte("claimed")
    )
    return (
        insert(TaskAttempt)
        .from_select(
            ["task_id", "channel", "adapter", "outcome"],
            select(
                claimed.c.id,
                literal(channel.id),
                literal(channel.adapter),
                literal("sending"),
            ),
        )
        .returning(TaskAttempt.id)
    )


@dataclass(frozen=True)
class _Sending:
    taken: routing.Taken
    attempt_id: int

    @property
    def channel(self) -> Channel:
        return self.taken.channel


Claim = _Sending | routing.NoneFree | None


async def _finish_attempt(
    runtime: Runtime,
    sending: _Sending,
    outcome: str,
    *,
    task_id: uuid.UUID,
    error: ProviderError | None = None,
    upstream_id: str | None = None,
    release: bool = False,
) -> None:
    """Record how an attempt ended and what it means for its channel's breaker; with `release`
    the task's claim is given up so another channel (or a later run) may send it."""
    async with runtime.db.transaction() as session:
        await _record_attempt(
            runtime, session, sending, outcome, error=error, upstream_id=upstream_id
        )
        if release:
            await session.execute(
                update(Task)
                .where(Task.id == task_id, Task.upstream_id.is_(None))
                .values(submit_started_at=None, channel=None)
            )


async def _record_attempt(
    runtime: Runtime,
    session: Session,
    sending: _Sending,
    outcome: str,
    *,
    error: ProviderError | None = None,
    upstream_id: str | None = None,
) -> None:
    """The attempt's outcome and its channel's breaker, in the caller's transaction."""
    now = datetime.now(UTC)
    await session.execute(
        update(TaskAttempt)
        .where(TaskAttempt.id == sending.attempt_id)
        .values(
            outcome=outcome,
            finished_at=now,
            upstream_id=upstream_id,
            error_code=error.code[:100] if error is not None and error.code else None,
            error_message=_upstream_message(error) if error is not None else None,
        )
    )
    if outcome in CHANNEL_ANSWERED:
        # The vendor took the job or refused the user's input: either way the channel works, so
        # its breaker closes (a half-open probe refused for its input must not hold the channel
        # for the rest of the probe window). A closed breaker with no failure has nothing to reset.
        if not sending.taken.healthy:
            await routing.succeeded(session, sending.channel.id)
    elif outcome in FAILOVER_OUTCOMES or outcome == "ambiguous":
        opened = await routing.failed(
            session,
            sending.channel.id,
            str(error or outcome),
            now=now,
            breaker=_breaker(runtime),
        )
        if opened:
            logger.warning("channels.breaker_opened", channel=sending.channel.id)


# Outcomes that show the channel answering as it should: its breaker closes.
CHANNEL_ANSWERED = frozenset({"accepted", "rejected"})
# Outcomes after which the next channel may take the task: the vendor surely did not accept it.
FAILOVER_OUTCOMES = frozenset({"not_sent", "throttled", "channel_error"})


def _failover_outcome(exc: ProviderError) -> str | None:
    if isinstance(exc, NotSent):
        return "not_sent"
    if isinstance(exc, Throttled):
        return "throttled"
    if isinstance(exc, Rejected) and (exc.code or "").startswith("channel_"):
        return "channel_error"  # the channel's key, account or model, not the user's input
    return None


async def _submit(runtime: Runtime, task: Task) -> Step:
    """Send the task through the first channel of its model that takes it, moving to the next
    only when the vendor surely did not accept it; never resending an ambiguous submit."""
    model = runtime.catalog.get(task.model)
    if model is None:
        return await _close(
            runtime,
            task,
            TaskStatus.FAILED,
            "model_unavailable",
            "The model is no longer offered; the task's credits were returned",
        )
    tried: set[str] = set()
    outcomes: list[str] = []
    hint: float | None = None
    while True:
        claim = await _claim(runtime, task, model, tried)
        if claim is None:  # another worker holds the task
            if task.submit_started_at is not None and not _submitting(runtime, task):
                logger.error("tasks.submit_outcome_unknown", task_id=str(task.id))
                return await _close(
                    runtime,
                    task,
                    TaskStatus.FAILED,
                    "submit_unknown",
                    "The task could not be confirmed by the provider; its credits were returned",
                )
            return _backoff(runtime, 1)
        if isinstance(claim, routing.NoneFree):
            if claim.why == "busy":
                return Step(BUSY_WAIT_SECONDS)
            if outcomes and not all(o == "channel_error" for o in outcomes):
                return _backoff(runtime, task.attempts + len(outcomes), hint)
            return await _close(
                runtime,
                task,
                TaskStatus.FAILED,
                "no_channel",
                "No provider could take the task; its credits were returned",
            )
        channel = claim.channel
        task.provider, task.channel = channel.adapter, channel.id
        stored = task.upstream_request
        request = VideoRequest(
            **{
                **stored,
                "image_urls": tuple(stored.get("image_urls", ())),
                "model": channel.vendor_model,
                "extra": channel.extra,
                # The operator may have this channel's vendor add the visible AI-generated mark.
                "watermark": labelling.vendor_marks(runtime.settings, channel.id),
            }
        )
        provider = runtime.providers.adapter(channel.adapter)
        assert provider is not None  # take_channel skips channels without an adapter
        try:
            submitted = await provider.submit(request)
        except ProviderError as exc:
            outcome = _failover_outcome(exc)
            if outcome is not None:
                await _finish_attempt(
                    runtime, claim, outcome, task_id=task.id, error=exc, release=True
                )
                logger.info(
                    "tasks.channel_failed",
                    task_id=str(task.id),
                    channel=channel.id,
                    outcome=outcome,
                    error=str(exc),
                )
                tried.add(channel.id)
                outcomes.append(outcome)
                if isinstance(exc, Throttled) and exc.retry_after is not None:
                    hint = max(hint or 0.0, exc.retry_after)
                continue
            if isinstance(exc, Ambiguous):
                # Resending could create (and bill) a second upstream task: never done, anywhere.
                await _finish_attempt(runtime, claim, "ambiguous", task_id=task.id, error=exc)
                logger.error("tasks.submit_ambiguous", task_id=str(task.id), error=str(exc))
                return await _close(
                    runtime,
                    task,
                    TaskStatus.FAILED,
                    "submit_unknown",
                    "The provider did not confirm the task in time; its credits were returned",
                )
            # Refused for the task's own sake (input, moderation): no other channel is tried.
            await _finish_attempt(runtime, claim, "rejected", task_id=task.id, error=exc)
            return await _close(
                runtime, task, TaskStatus.FAILED, exc.code or "rejected", _upstream_message(exc)
            )
        break
    async with runtime.db.session() as session:
        # The attempt's outcome and the task's start in one transaction.
        await _record_attempt(
            runtime, session, claim, "accepted", upstream_id=submitted.upstream_id
        )
        running = await session.scalar(
            update(Task)
            .where(Task.id == task.id, Task.status == TaskStatus.PENDING)
            .values(
                upstream_id=submitted.upstream_id,
                status=TaskStatus.RUNNING,
                upstream_status=UpstreamStatus.PENDING.value,
                started_at=datetime.now(UTC),
                progress=5,
                attempts=0,
            )
            .returning(Task),
            execution_options={"populate_existing": True},
        )
        started = running is not None
        if running is not None:
            await service.record_event(session, running, runtime.storage)
        else:  # closed meanwhile (say, its deadline passed): keep the upstream id, cancel it
            await session.execute(
                update(Task)
                .where(Task.id == task.id, Task.upstream_id.is_(None))
                .values(upstream_id=submitted.upstream_id)
            )
        await session.commit()
    if not started:
        task.upstream_id = submitted.upstream_id
        await _cancel_upstream(runtime, task)
        return DONE
    logger.info("tasks.submitted", task_id=str(task.id), upstream_id=submitted.upstream_id)
    if running is not None and running.cancel_requested_at is not None:
        # A cancel waited for this submission: ask now, while the vendor may still have it queued.
        return await _cancel(runtime, running)
    return _backoff(runtime, 1)


def _upstream_message(exc: ProviderError) -> str:
    text = str(exc).strip() or "The provider refused the task"
    return text[:1000]


def _progress(task: Task, state: TaskState) -> int:
    """Never backwards, never 100 before the result is stored; estimated when the vendor is mute."""
    if state.progress is not None:
        guess = 5 + int(state.progress * 0.9)
    elif state.status == UpstreamStatus.PENDING or task.started_at is None:
        guess = 5
    else:
        elapsed = (datetime.now(UTC) - task.started_at).total_seconds()
        guess = 10 + int(85 * min(1.0, elapsed / max(1, task.estimated_seconds)))
    return max(task.progress, min(95, guess))


async def _poll(runtime: Runtime, task: Task) -> Step:
    assert task.upstream_id is not None
    try:
        state = await _provider(runtime, task).fetch(task.upstream_id)
    except (NotSent, Throttled, Ambiguous) as exc:
        hint = exc.retry_after if isinstance(exc, Throttled) else None
        return _backoff(runtime, task.attempts + 1, hint)
    except Rejected as exc:
        return await _close(
            runtime, task, TaskStatus.FAILED, exc.code or "rejected", _upstream_message(exc)
        )
    if state.status == UpstreamStatus.SUCCEEDED:
        return await _collect(runtime, task, state)
    if state.status == UpstreamStatus.FAILED:
        message = state.error_message or "The provider could not make the video"
        return await _close(
            runtime, task, TaskStatus.FAILED, state.error_code or "upstream_failed", message
        )
    if state.status == UpstreamStatus.CANCELED:
        if task.cancel_requested_at is not None:  # the user's cancel, confirmed by another caller
            return await _close(runtime, task, TaskStatus.CANCELED, "canceled", CANCELED_BY_USER)
        return await _close(
            runtime,
            task,
            TaskStatus.CANCELED,
            "upstream_canceled",
            "The provider canceled the task",
        )
    if state.status == UpstreamStatus.UNKNOWN:
        return await _close(
            runtime,
            task,
            TaskStatus.FAILED,
            "upstream_unknown",
            "The provider no longer knows this task; its credits were returned",
        )
    async with runtime.db.session() as session:
        await session.execute(
            update(Task)
            .where(Task.id == task.id, Task.status == TaskStatus.RUNNING)
            .values(
                # Never backwards, even past a write made since this step read the task.
                progress=func.greatest(Task.progress, _progress(task, state)),
                upstream_status=state.status.value,
                attempts=Task.attempts + 1,
            )
        )
        await session.commit()
    return _backoff(runtime, task.attempts + 1)


async def _collect(runtime: Runtime, task: Task, state: TaskState) -> Step:
    """Copy the result into vidgate storage (vendor URLs expire), probe it, label it, settle.

    Labelling works on the local copy before anything is stored: when it fails the step is
    retried (from the download) and, after `label_attempts` failures, the task fails with its
    credits back. With labels on, an unlabelled video is never stored as a result.
    """
    if not state.result_url:
        return await _close(
            runtime, task, TaskStatus.FAILED, "no_result", "The provider finished without a video"
        )
    tmp_dir = runtime.settings.data_dir / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=tmp_dir, prefix="result-", suffix=".part")
    path = Path(name)
    try:
        os.close(handle)
        try:
            await runtime.outbound.download(
                state.result_url, path, max_bytes=runtime.settings.max_result_bytes
            )
        except (FetchFailed, UnsafeUrl) as exc:
            # Transient or not, the deadline ends the retries (vendor URLs live for hours).
            logger.warning("tasks.result_download_failed", task_id=str(task.id), error=str(exc))
            return _backoff(runtime, task.attempts + 1)
        try:
            head = await asyncio.to_thread(read_head, path)
            info = await runtime.prober.probe(path, head, "video")
        except MediaRejected as exc:
            return await _close(
                runtime,
                task,
                TaskStatus.FAILED,
                "bad_result",
                f"The provider's video is unusable: {exc}",
            )
        labels: dict[str, Any] | None = None
        if labelling.enabled(runtime.settings):
            try:
                labels = await asyncio.to_thread(
                    labelling_process.label, runtime.settings, path, _label_job(runtime, task)
                )
                head = await asyncio.to_thread(read_head, path)
                info = await runtime.prober.probe(path, head, "video")
            except Exception as exc:  # any crash of a step: retried, then the task fails
                return await _labelling_failed(runtime, task, exc)
        key = new_object_key("results", info.extension)
        stored = await runtime.storage.put_file(key, path, content_type=info.content_type)
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)
    async with runtime.db.session() as session:
        done = await service.succeed(
            session,
            task.id,
            runtime.storage,
            result_key=stored.key,
            result_size=stored.size,
            duration_seconds=info.duration_seconds,
            billed_seconds=state.billed_seconds,
            labels=labels,
        )
        await session.commit()
    if done is None:  # another worker (or a cancel) got there first
        await runtime.storage.delete(stored.key)
        return DONE
    logger.info(
        "tasks.succeeded",
        task_id=str(task.id),
        seconds=info.duration_seconds,
        charged=done.credits_charged,
    )
    return DONE


def _label_job(runtime: Runtime, task: Task) -> LabelJob:
    model = runtime.catalog.get(task.model)
    return LabelJob(
        task_id=str(task.id),
        model_id=task.model,
        model_name=model.name.en if model is not None else task.model,
        channel=task.channel,
    )


LABEL_FAILED_MESSAGE = "The video could not be labelled as AI-generated; its credits were returned"


async def _labelling_failed(runtime: Runtime, task: Task, exc: Exception) -> Step:
    """Count the failure on the task; try again later, or fail the task once they are spent."""
    logger.warning("tasks.labelling_failed", task_id=str(task.id), error=repr(exc), exc_info=exc)
    counted = func.coalesce(Task.labels["failures"].as_integer(), 0) + 1
    async with runtime.db.session() as session:
        failures = await session.scalar(
            update(Task)
            .where(Task.id == task.id, Task.status == TaskStatus.RUNNING)
            .values(labels=func.jsonb_build_object(literal_column("'failures'"), counted))
            .returning(Task.labels["failures"].as_integer())
        )
        await session.commit()
    if failures is None:  # closed meanwhile
        return DONE
    if failures >= runtime.settings.label_attempts:
        return await _close(runtime, task, TaskStatus.FAILED, "label_failed", LABEL_FAILED_MESSAGE)
    return _backoff(runtime, failures)
