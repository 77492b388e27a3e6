"""The job app: every feature's jobs registered under their namespace, in every app built; what
periodic jobs say when they run."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import croniter
from structlog.testing import capture_logs

from vidgate.auth.jobs import purge_sign_in_records
from vidgate.auth.models import DevSmsMessage, SmsCode
from vidgate.db.engine import Database
from vidgate.job_registry import build_job_app
from vidgate.runtime import Runtime

from .fixtures.signin import e164, random_phone

JOBS = {
    "auth:purge_sign_in_records",
    "media:purge_expired_tus_uploads",
    "tasks:advance_task",
    "tasks:purge_idempotency_keys",
    "tasks:sweep_tasks",
    "users:anonymize_deleted_accounts",
    "media:expire_media",
    "payments:reconcile_payments",
    "media:sweep_upload_intents",
    "webhooks:deliver_webhook",
    "webhooks:sweep_webhooks",
}
PERIODIC = JOBS - {"tasks:advance_task", "webhooks:deliver_webhook"}


def test_each_job_app_has_every_job_under_its_own_name() -> None:
    """A process may build several apps (the API and a worker CLI, several test databases);
    building the second must neither rename the first one's jobs nor register them twice."""
    first = build_job_app("postgresql://localhost/one")
    second = build_job_app("postgresql://localhost/two")
    for app in (first, second):
        ours = {name: task for name, task in app.tasks.items() if "builtin" not in name}
        assert {name: task.name for name, task in ours.items()} == {n: n for n in JOBS}
        assert all(task.blueprint is app for task in ours.values())
        periodic = {p.task.name for p in app.periodic_registry.periodic_tasks.values()}
        assert periodic == PERIODIC


def test_periodic_jobs_run_when_they_say() -> None:
    """Every 15 s for the sweeper (croniter reads seconds from a sixth field at the end: a
    leading `*/15` would mean minutes 0, 15, 30, 45 — every second of them, then nothing)."""
    app = build_job_app("postgresql://localhost/one")
    crons = {p.task.name: p.cron for p in app.periodic_registry.periodic_tasks.values()}
    start = datetime(2026, 12, 2, 12, 11, 29)

    def next_runs(name: str, count: int) -> list[str]:
        it = croniter.croniter(crons[name], start)
        return [it.get_next(datetime).strftime("%H:%M:%S") for _ in range(count)]

    assert next_runs("tasks:sweep_tasks", 4) == ["12:11:30", "12:11:45", "12:12:00", "12:12:15"]
    assert next_runs("auth:purge_sign_in_records", 2) == ["12:20:00", "12:30:00"]
    assert next_runs("tasks:purge_idempotency_keys", 2) == ["12:41:00", "13:41:00"]
    assert next_runs("users:anonymize_deleted_accounts", 2) == ["12:17:00", "13:17:00"]
    assert next_runs("media:expire_media", 2) == ["12:53:00", "13:53:00"]
    assert next_runs("webhooks:sweep_webhooks", 2) == ["12:12:00", "12:13:00"]
    assert next_runs("payments:reconcile_payments", 2) == ["12:12:00", "12:13:00"]
    assert next_runs("media:purge_expired_tus_uploads", 2) == ["12:20:00", "12:30:00"]
    assert next_runs("media:sweep_upload_intents", 2) == ["12:20:00", "12:30:00"]


def _job_context(runtime: Runtime, db: Database) -> Any:
    return SimpleNamespace(additional_context={"runtime": dataclasses.replace(runtime, db=db)})


async def test_the_sign_in_purge_says_what_it_dropped_and_nothing_when_idle(
    runtime: Runtime, rollback_db: Database
) -> None:
    phone = e164(random_phone())
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    async with rollback_db.transaction() as session:
        session.add(
            SmsCode(
                phone=phone, code_hmac="0" * 64, created_at=two_days_ago, expires_at=two_days_ago
            )
        )
        session.add(DevSmsMessage(phone=phone, code="123456", sent_at=two_days_ago))
    context = _job_context(runtime, rollback_db)

    with capture_logs() as first:
        await purge_sign_in_records(context, 0)
    with capture_logs() as second:
        await purge_sign_in_records(context, 0)

    said = [e for e in first if e["event"] == "auth.sign_in_records_purged"]
    assert len(said) == 1 and said[0]["log_level"] == "info", first
    assert said[0]["codes"] >= 1 and said[0]["outbox"] >= 1
    assert second == []
