"""`/api/admin/me`, the operator's second factor (`/api/admin/totp/...`) and the audit log.

Every console route (here and in each feature's `admin_endpoints.py`) is guarded by
`vidgate.admin.access`: 401 without a Bearer token, 403 for a plain user, for support on an admin
route, and (where this server asks for it) before the session has passed TOTP.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from vidgate.admin import factors, overview, service
from vidgate.admin.access import (
    GUARD_ERRORS,
    OperatorSigningIn,
    Support,
    passed_second_factor,
)
from vidgate.admin.errors import (
    DateRangeInvalid,
    SecondFactorAlreadyEnrolled,
    SecondFactorNotEnrolled,
    SecondFactorRejected,
    TooManySecondFactorTries,
)
from vidgate.admin.schemas import AuditEntryOut, AuditPage, DayOut, OperatorOut, OverviewOut
from vidgate.deps import DbSession, RuntimeDep
from vidgate.errors import documented
from vidgate.kit import Page
from vidgate.ratelimit import over_limit

router = APIRouter(prefix="/api/admin", tags=["admin"])

# Codes an operator may try per window before waiting (TOTP has 10^6 codes: this keeps guessing
# hopeless).
TRIES, TRIES_WINDOW = 10, 300


class CodeIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    code: str = Field(min_length=6, max_length=32)


class EnrolmentOut(BaseModel):
    secret: str
    otpauth_uri: str
    qr_svg: str


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str]


class VerifiedOut(BaseModel):
    verified: bool
    recovery_codes_left: int


@router.get("/me", response_model=OperatorOut, responses=documented(*GUARD_ERRORS[:1]))
async def me(operator: OperatorSigningIn, session: DbSession, runtime: RuntimeDep) -> OperatorOut:
    """Who the operator is, and where they stand with the second factor."""
    return OperatorOut(
        id=str(operator.id),
        name=service.actor_of(operator).name,
        role=operator.role,
        second_factor_required=runtime.settings.console_needs_second_factor,
        second_factor_enrolled=await factors.enrolled(session, operator.id),
        second_factor_passed=await passed_second_factor(runtime, operator),
    )


@router.post(
    "/totp/enroll",
    response_model=EnrolmentOut,
    responses=documented(GUARD_ERRORS[0], SecondFactorAlreadyEnrolled),
)
async def totp_enroll(
    operator: OperatorSigningIn, session: DbSession, runtime: RuntimeDep
) -> EnrolmentOut:
    """A new TOTP secret with its QR code, to be confirmed with a first code."""
    enrolment = await factors.enrol(
        session, runtime.settings.secret_key, operator.id, service.actor_of(operator).name
    )
    return EnrolmentOut(secret=enrolment.secret, otpauth_uri=enrolment.uri, qr_svg=enrolment.qr_svg)


async def _limit_tries(runtime: RuntimeDep, operator_id: uuid.UUID) -> None:
    wait = await over_limit(
        runtime.db, f"totp:{operator_id}", limit=TRIES, window_seconds=TRIES_WINDOW
    )
    if wait is not None:
        raise TooManySecondFactorTries(wait)


@router.post(
    "/totp/confirm",
    response_model=RecoveryCodesOut,
    responses=documented(
        GUARD_ERRORS[0],
        SecondFactorNotEnrolled,
        SecondFactorAlreadyEnrolled,
        SecondFactorRejected,
        TooManySecondFactorTries,
    ),
)
async def totp_confirm(
    body: CodeIn, operator: OperatorSigningIn, session: DbSession, runtime: RuntimeDep
) -> RecoveryCodesOut:
    """Confirm the enrolment with a code from the app; returns the recovery codes, once. The
    session has then passed the second factor."""
    await _limit_tries(runtime, operator.id)
    codes = await factors.confirm(
        session, runtime.settings.secret_key, operator.id, body.code, operator.session_id
    )
    await service.record(session, service.actor_of(operator), "totp.enrolled", "user", operator.id)
    return RecoveryCodesOut(recovery_codes=codes)


@router.post(
    "/totp/verify",
    response_model=VerifiedOut,
    responses=documented(
        GUARD_ERRORS[0], SecondFactorNotEnrolled, SecondFactorRejected, TooManySecondFactorTries
    ),
)
async def totp_verify(
    body: CodeIn, operator: OperatorSigningIn, session: DbSession, runtime: RuntimeDep
) -> VerifiedOut:
    """Pass the second factor in this session with a TOTP code or a recovery code."""
    await _limit_tries(runtime, operator.id)
    left = await factors.verify(
        session, runtime.settings.secret_key, operator.id, body.code, operator.session_id
    )
    return VerifiedOut(verified=True, recovery_codes_left=left)


@router.get("/audit", response_model=AuditPage, responses=documented(*GUARD_ERRORS))
async def audit_log(
    operator: Support,
    session: DbSession,
    page: Page,
    actor_id: uuid.UUID | None = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    target_type: Annotated[str | None, Query(max_length=32)] = None,
    target_id: Annotated[str | None, Query(max_length=100)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> AuditPage:
    """The audit log, newest first, filtered by actor, action, target and time."""
    where = service.AuditFilter(actor_id, action, target_type, target_id, since, until)
    rows, total = await service.entries(session, where, page)
    return AuditPage(
        entries=[
            AuditEntryOut(
                id=row.id,
                at=row.at,
                actor_id=str(row.actor_id) if row.actor_id else None,
                actor=row.actor,
                action=row.action,
                target_type=row.target_type,
                target_id=row.target_id,
                reason=row.reason,
                before=row.before,
                after=row.after,
                request_id=row.request_id,
            )
            for row in rows
        ],
        total=total,
        page=page.page,
        page_size=page.page_size,
    )


def _range(since: date | None, until: date | None) -> tuple[date, date]:
    last = until or datetime.now(UTC).date()
    first = since or last - timedelta(days=29)
    if first > last or (last - first).days >= overview.MAX_DAYS:
        raise DateRangeInvalid()
    return first, last


@router.get(
    "/overview", response_model=OverviewOut, responses=documented(*GUARD_ERRORS, DateRangeInvalid)
)
async def business_overview(
    operator: Support, session: DbSession, since: date | None = None, until: date | None = None
) -> OverviewOut:
    """Per day (UTC) from `since` to `until` (default: the last 30 days): sign-ups, active users,
    tasks by kind and status, failure and refund rates, credits sold, granted and spent, revenue
    by gateway and currency, p50/p95 time to a finished video."""
    first, last = _range(since, until)
    days = await overview.overview(session, first, last)
    return OverviewOut(
        since=first, until=last, days=[DayOut.model_validate(asdict(d)) for d in days]
    )


@router.get(
    "/overview.csv",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}}},
        **documented(*GUARD_ERRORS, DateRangeInvalid),
    },
)
async def business_overview_csv(
    operator: Support, session: DbSession, since: date | None = None, until: date | None = None
) -> Response:
    """The overview as CSV, one row per day."""
    first, last = _range(since, until)
    header, rows = overview.csv_rows(await overview.overview(session, first, last))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="vidgate-{first}-{last}.csv"'},
    )
