"""Bodies of the console's own routes (`/api/admin/me`, `/api/admin/audit`, TOTP)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints

from vidgate.validation import NoNul

# Why an operator did something: required on every action that changes something.
Reason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=3, max_length=1000), NoNul
]


class OperatorAction(BaseModel):
    """An action that needs nothing but its reason."""

    model_config = ConfigDict(strict=True, extra="forbid")

    reason: Reason


class OperatorOut(BaseModel):
    id: str
    name: str
    role: str
    second_factor_required: bool
    second_factor_enrolled: bool
    second_factor_passed: bool


class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    actor_id: str | None
    actor: str
    action: str
    target_type: str
    target_id: str
    reason: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    total: int
    page: int
    page_size: int


class DayOut(BaseModel):
    day: date
    signups: int
    active_users: int
    tasks: int
    tasks_by_kind: dict[str, int]
    tasks_by_status: dict[str, int]
    failure_rate: float
    refund_rate: float
    credits_sold: int
    credits_granted: int
    credits_spent: int
    revenue_minor: dict[str, int]  # "gateway:CURRENCY" -> amount in minor units (fen, cents)
    duration_p50_seconds: float | None
    duration_p95_seconds: float | None


class OverviewOut(BaseModel):
    since: date
    until: date
    days: list[DayOut]
