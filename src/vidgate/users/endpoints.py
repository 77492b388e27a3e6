"""`/api/users/*`: profile, credits, ledger history, account deletion (docs/api.md §5)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from vidgate.auth.dependencies import CurrentUser
from vidgate.credits import service as ledger
from vidgate.credits.models import LedgerEntry
from vidgate.deps import DbSession, RuntimeDep
from vidgate.kit import PageRequest, page_query
from vidgate.users import service
from vidgate.users.models import User
from vidgate.users.schemas import (
    CreditsResponse,
    LedgerEntryOut,
    MessageResponse,
    ProfileResponse,
    ProfileUpdate,
    TransactionsResponse,
)

router = APIRouter(prefix="/api/users", tags=["users"])

# The ledger is paged further and 20 rows at a time by default.
LEDGER_PAGE = page_query(max_page=1_000_000, default_size=20)
DELETION_MESSAGE = "Account deletion requested. Your account will be deleted within 30 days."


def _profile(user: User) -> ProfileResponse:
    return ProfileResponse(
        id=str(user.id),
        email=user.email,
        username=user.username,
        avatar_url=user.avatar_url,
        region=user.region,
        credits=user.credits,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        phone_number=user.phone,
    )


@router.get("/profile", response_model=ProfileResponse)
async def get_profile(user: CurrentUser, session: DbSession) -> ProfileResponse:
    return _profile(await service.account(session, user.id))


@router.put("/profile", response_model=ProfileResponse)
async def update_profile(
    body: ProfileUpdate, user: CurrentUser, session: DbSession, runtime: RuntimeDep
) -> ProfileResponse:
    """Change username (3–50 characters) and/or avatar_url (http or https); other fields stay."""
    updated = await service.update_profile(
        session, runtime.principals, user.id, changes=body.model_dump(exclude_unset=True)
    )
    return _profile(updated)


@router.get("/credits", response_model=CreditsResponse)
async def get_credits(user: CurrentUser, session: DbSession) -> CreditsResponse:
    account = await service.account(session, user.id)
    summary = await ledger.balance(session, account)
    return CreditsResponse(
        user_id=str(user.id),
        credits=summary.credits,
        total_earned=summary.total_earned,
        total_spent=summary.total_spent,
        credits_reserved=summary.credits_reserved,
        available=summary.available,
    )


def _entry(row: LedgerEntry) -> LedgerEntryOut:
    return LedgerEntryOut(
        id=row.id,
        delta=row.delta,
        reserved_delta=row.reserved_delta,
        kind=row.kind,
        reference=row.reference,
        balance_after=row.balance_after,
        reserved_after=row.reserved_after,
        note=row.note,
        created_at=row.created_at,
    )


@router.get("/credits/transactions", response_model=TransactionsResponse)
async def list_transactions(
    user: CurrentUser,
    session: DbSession,
    page: Annotated[PageRequest, Depends(LEDGER_PAGE)],
) -> TransactionsResponse:
    """The user's credit movements, newest first."""
    rows, total = await ledger.history(session, user.id, page)
    return TransactionsResponse(
        transactions=[_entry(r) for r in rows],
        total=total,
        page=page.page,
        page_size=page.page_size,
    )


CSV_COLUMNS = [
    "id",
    "created_at",
    "kind",
    "delta",
    "reserved_delta",
    "balance_after",
    "reserved_after",
    "reference",
    "note",
]


@router.get(
    "/credits/transactions.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
async def export_transactions(user: CurrentUser, runtime: RuntimeDep) -> StreamingResponse:
    """Every credit movement of the user as CSV, newest first, streamed."""

    async def rows() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        async with runtime.db.session() as session:
            async for entry in ledger.stream_history(session, user.id):
                writer.writerow(
                    [
                        entry.id,
                        entry.created_at.isoformat(),
                        entry.kind,
                        entry.delta,
                        entry.reserved_delta,
                        entry.balance_after,
                        entry.reserved_after,
                        entry.reference or "",
                        entry.note or "",
                    ]
                )
                if buffer.tell() > 16384:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()

    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="credits.csv"'},
    )


@router.delete("/account", response_model=MessageResponse)
async def delete_account(
    user: CurrentUser, session: DbSession, runtime: RuntimeDep
) -> MessageResponse:
    """Soft delete: signing in again within the grace period restores the account."""
    purge_days = runtime.settings.account_purge_days
    await service.request_deletion(session, runtime.principals, user.id, purge_days)
    return MessageResponse(message=DELETION_MESSAGE)
