"""The console's overview: per day (UTC) over a range, how the business went — sign-ups, active
users, tasks by kind and status, failure and refund rates, credits sold and spent, revenue by
gateway and currency, and how long successful tasks took (p50/p95).

A handful of grouped queries, each one pass over its table's rows in the range."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Date, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vidgate.credits.models import LedgerEntry
from vidgate.payments.models import Payment
from vidgate.tasks.models import Task, TaskStatus
from vidgate.users.models import User

MAX_DAYS = 366
GRANT_KINDS = ("signup_bonus", "adjustment", "redemption")


@dataclass
class Day:
    day: date
    signups: int = 0
    active_users: int = 0
    tasks: int = 0
    tasks_by_kind: dict[str, int] = field(default_factory=dict)
    tasks_by_status: dict[str, int] = field(default_factory=dict)
    failure_rate: float = 0.0  # of the day's tasks that ended, the share FAILED or TIMEOUT
    refund_rate: float = 0.0  # of the day's tasks, the share with credits given back
    credits_sold: int = 0
    credits_granted: int = 0
    credits_spent: int = 0  # charged less refunded
    revenue_minor: dict[str, int] = field(default_factory=dict)  # "stripe:USD" -> cents
    duration_p50_seconds: float | None = None
    duration_p95_seconds: float | None = None


def _day(column: Any) -> Any:
    return cast(func.timezone("UTC", column), Date)


async def overview(session: AsyncSession, first: date, last: date) -> list[Day]:
    """One `Day` for every date from `first` to `last` (inclusive, UTC)."""
    start = datetime.combine(first, time(), UTC)
    end = datetime.combine(last + timedelta(days=1), time(), UTC)
    days = {
        first + timedelta(days=n): Day(first + timedelta(days=n))
        for n in range((last - first).days + 1)
    }

    day = _day(User.created_at)
    for d, n in await session.execute(
        select(day, func.count())
        .where(User.created_at >= start, User.created_at < end)
        .group_by(day)
    ):
        days[d].signups = n

    day = _day(Task.created_at)
    in_range = (Task.created_at >= start, Task.created_at < end)
    for d, active, total, refunded in await session.execute(
        select(
            day,
            func.count(func.distinct(Task.user_id)),
            func.count(),
            func.count().filter(Task.credits_refunded > 0),
        )
        .where(*in_range)
        .group_by(day)
    ):
        days[d].active_users, days[d].tasks = active, total
        days[d].refund_rate = round(refunded / total, 4) if total else 0.0
    ended: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    for d, kind, status, n in await session.execute(
        select(day, Task.kind, Task.status, func.count())
        .where(*in_range)
        .group_by(day, Task.kind, Task.status)
    ):
        by_kind, by_status = days[d].tasks_by_kind, days[d].tasks_by_status
        by_kind[kind] = by_kind.get(kind, 0) + n
        by_status[status] = by_status.get(status, 0) + n
        if status not in (TaskStatus.PENDING, TaskStatus.RUNNING):
            ended[d][0] += n
            if status in (TaskStatus.FAILED, TaskStatus.TIMEOUT):
                ended[d][1] += n
    for d, (finished, failed) in ended.items():
        days[d].failure_rate = round(failed / finished, 4) if finished else 0.0

    done = _day(Task.completed_at)
    seconds = func.extract("epoch", Task.completed_at - Task.created_at)
    for d, p50, p95 in await session.execute(
        select(
            done,
            func.percentile_cont(0.5).within_group(seconds),
            func.percentile_cont(0.95).within_group(seconds),
        )
        .where(
            Task.status == TaskStatus.SUCCEEDED,
            Task.completed_at >= start,
            Task.completed_at < end,
        )
        .group_by(done)
    ):
        days[d].duration_p50_seconds = round(float(p50), 1)
        days[d].duration_p95_seconds = round(float(p95), 1)

    day = _day(LedgerEntry.created_at)
    for d, kind, total in await session.execute(
        select(day, LedgerEntry.kind, func.sum(LedgerEntry.delta))
        .where(LedgerEntry.created_at >= start, LedgerEntry.created_at < end)
        .group_by(day, LedgerEntry.kind)
    ):
        if kind == "purchase":
            days[d].credits_sold += int(total)
        elif kind in GRANT_KINDS:
            days[d].credits_granted += int(total)
        elif kind in ("charge", "refund"):
            days[d].credits_spent -= int(total)

    day = _day(Payment.paid_at)
    for d, provider, currency, total in await session.execute(
        select(day, Payment.provider, Payment.currency, func.sum(Payment.amount_minor))
        .where(Payment.paid_at >= start, Payment.paid_at < end, Payment.paid_at.is_not(None))
        .group_by(day, Payment.provider, Payment.currency)
    ):
        days[d].revenue_minor[f"{provider}:{currency}"] = int(total)
    return list(days.values())


CSV_COLUMNS = (
    "day",
    "signups",
    "active_users",
    "tasks",
    "failure_rate",
    "refund_rate",
    "credits_sold",
    "credits_granted",
    "credits_spent",
    "duration_p50_seconds",
    "duration_p95_seconds",
)


def csv_rows(days: list[Day]) -> tuple[list[str], list[list[Any]]]:
    """The overview as a table: fixed columns, then one per task kind, status and revenue key."""
    kinds = sorted({k for d in days for k in d.tasks_by_kind})
    statuses = sorted({s for d in days for s in d.tasks_by_status})
    revenue = sorted({r for d in days for r in d.revenue_minor})
    header = [
        *CSV_COLUMNS,
        *(f"tasks_{k}" for k in kinds),
        *(f"status_{s}" for s in statuses),
        *(f"revenue_minor_{r.replace(':', '_')}" for r in revenue),
    ]
    rows = [
        [
            *(getattr(d, c) if getattr(d, c) is not None else "" for c in CSV_COLUMNS),
            *(d.tasks_by_kind.get(k, 0) for k in kinds),
            *(d.tasks_by_status.get(s, 0) for s in statuses),
            *(d.revenue_minor.get(r, 0) for r in revenue),
        ]
        for d in days
    ]
    return header, rows
