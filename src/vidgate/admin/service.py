"""The audit log: every operator action writes one row in the transaction that makes the change,
so a change is never kept without its record (or recorded without being kept)."""

from __future__ import annotations

import getpass
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vidgate.admin.models import AuditEntry
from vidgate.auth.principal import Principal
from vidgate.kit import PageRequest
from vidgate.observability import current_request_id


@dataclass(frozen=True)
class Actor:
    """Who acts: an operator signed in to the console, or someone at the command line."""

    id: uuid.UUID | None
    name: str
    role: str = "admin"  # the command line can do everything


def actor_of(operator: Principal) -> Actor:
    name = operator.email or operator.phone or operator.username
    return Actor(operator.id, name[:100], operator.role)


def command_line() -> Actor:
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return Actor(None, f"cli:{who}"[:100])


async def record(
    session: AsyncSession,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: object,
    *,
    reason: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add the audit row of an action (committed with the caller's transaction)."""
    entry = AuditEntry(
        actor_id=actor.id,
        actor=actor.name,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        reason=reason,
        before=before,
        after=after,
        request_id=current_request_id.get(),
    )
    session.add(entry)
    await session.flush()
    return entry


@dataclass(frozen=True)
class AuditFilter:
    actor_id: uuid.UUID | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def entries(
    session: AsyncSession, where: AuditFilter, page: PageRequest
) -> tuple[list[AuditEntry], int]:
    """One page of the log, newest first, and how many rows match in all."""
    conditions = []
    if where.actor_id is not None:
        conditions.append(AuditEntry.actor_id == where.actor_id)
    if where.action:
        conditions.append(AuditEntry.action == where.action)
    if where.target_type:
        conditions.append(AuditEntry.target_type == where.target_type)
    if where.target_id:
        conditions.append(AuditEntry.target_id == where.target_id)
    if where.since is not None:
        conditions.append(AuditEntry.at >= where.since)
    if where.until is not None:
        conditions.append(AuditEntry.at < where.until)
    total = await session.scalar(select(func.count()).select_from(AuditEntry).where(*conditions))
    rows = await session.scalars(
        page.apply(
            select(AuditEntry)
            .where(*conditions)
            .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        )
    )
    return list(rows), int(total or 0)
