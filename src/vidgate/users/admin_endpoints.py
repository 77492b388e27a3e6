"""`/api/admin/users`: find an account, see everything about it, adjust its credits, change its
role, suspend or restore it, sign it out everywhere, delete it. Every change is audited."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from vidgate.admin.access import GUARD_ERRORS, Admin, Support
from vidgate.admin.schemas import OperatorAction
from vidgate.admin.service import actor_of
from vidgate.apikeys import service as apikeys
from vidgate.credits import service as ledger
from vidgate.deps import DbSession, RuntimeDep
from vidgate.errors import documented
from vidgate.kit import Page, PageRequest
from vidgate.payments import service as payments
from vidgate.tasks import service as tasks
from vidgate.users import service
from vidgate.users.errors import (
    AdjustmentOverSupportLimit,
    AlreadyInThatState,
    OwnRoleUnchangeable,
    UserNotFound,
)
from vidgate.users.models import User
from vidgate.users.schemas import (
    AdminPaymentRow,
    AdminTaskRow,
    ApiKeyRow,
    CreditAdjustment,
    CreditAdjustmentOut,
    LedgerEntryOut,
    RoleChange,
    SessionOut,
    SignedOutOut,
    UserDetailOut,
    UserSearchOut,
    UserSummaryOut,
)

router = APIRouter(prefix="/api/admin/users", tags=["admin"])

RECENT = PageRequest(1, 20)  # what a user's page shows of each list


def _summary(user: User) -> UserSummaryOut:
    return UserSummaryOut(
        id=str(user.id),
        phone=user.phone,
        email=user.email,
        username=user.username,
        role=user.role,
        credits=user.credits,
        credits_reserved=user.credits_reserved,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        suspended_at=user.suspended_at,
        deleted_at=user.deleted_at,
    )


@router.get("", response_model=UserSearchOut, responses=documented(*GUARD_ERRORS))
async def search_users(
    operator: Support,
    session: DbSession,
    page: Page,
    q: Annotated[str, Query(max_length=320)] = "",
) -> UserSearchOut:
    """Accounts by id, phone (any part of the digits), email or username; newest first."""
    rows, total = await service.search(session, q, page)
    return UserSearchOut(
        users=[_summary(u) for u in rows], total=total, page=page.page, page_size=page.page_size
    )


@router.get(
    "/{user_id}", response_model=UserDetailOut, responses=documented(*GUARD_ERRORS, UserNotFound)
)
async def user_detail(operator: Support, session: DbSession, user_id: uuid.UUID) -> UserDetailOut:
    """An account with its balance, latest ledger rows, tasks and payments, open sessions and
    personal API keys."""
    user = await service.find_account(session, user_id)
    balance = await ledger.balance(session, user)
    entries, _ = await ledger.history(session, user_id, RECENT)
    task_rows, _ = await tasks.list_tasks(session, user_id, None, RECENT)
    payment_rows, _ = await payments.list_payments(session, user_id, RECENT)
    return UserDetailOut(
        user=_summary(user),
        total_earned=balance.total_earned,
        total_spent=balance.total_spent,
        available=balance.available,
        ledger=[LedgerEntryOut.model_validate(e, from_attributes=True) for e in entries],
        tasks=[
            AdminTaskRow(
                task_id=str(t.id),
                task_type=t.kind,
                model=t.model,
                channel=t.channel,
                status=t.status,
                credits_charged=t.credits_charged,
                credits_refunded=t.credits_refunded,
                created_at=t.created_at,
            )
            for t in task_rows
        ],
        payments=[
            AdminPaymentRow(
                payment_id=str(p.id),
                provider=p.provider,
                status=p.status,
                amount_minor=p.amount_minor,
                currency=p.currency,
                credits=p.credits,
                created_at=p.created_at,
                paid_at=p.paid_at,
            )
            for p in payment_rows
        ],
        sessions=[
            SessionOut(
                id=str(s.id),
                method=s.method,
                created_at=s.created_at,
                expires_at=s.expires_at,
                ip=s.ip,
                user_agent=s.user_agent,
            )
            for s in await service.open_sessions(session, user_id)
        ],
        api_keys=[
            ApiKeyRow(
                id=str(k.id),
                name=k.name,
                prefix=k.prefix,
                created_at=k.created_at,
                last_used_at=k.last_used_at,
            )
            for k in await apikeys.list_keys(session, user_id=user_id)
        ],
    )


@router.post(
    "/{user_id}/credits",
    response_model=CreditAdjustmentOut,
    responses=documented(
        *GUARD_ERRORS, UserNotFound, AdjustmentOverSupportLimit, ledger.InsufficientCredits
    ),
)
async def adjust_credits(
    body: CreditAdjustment,
    operator: Support,
    session: DbSession,
    runtime: RuntimeDep,
    user_id: uuid.UUID,
) -> CreditAdjustmentOut:
    """Grant (a positive amount) or deduct (a negative one) credits, with a reason; a deduction
    never takes more than the user has available. Support may move up to
    `VIDGATE_SUPPORT_ADJUST_LIMIT` credits at a time."""
    result, user = await service.adjust_credits(
        session,
        actor_of(operator),
        user_id,
        body.amount,
        body.reason,
        support_limit=runtime.settings.support_adjust_limit,
        key=body.idempotency_key,
    )
    return CreditAdjustmentOut(
        applied=result.applied,
        ledger_entry_id=result.entry.id,
        credits=user.credits,
        credits_reserved=user.credits_reserved,
    )


@router.put(
    "/{user_id}/role",
    response_model=UserSummaryOut,
    responses=documented(*GUARD_ERRORS, UserNotFound, OwnRoleUnchangeable),
)
async def change_role(
    body: RoleChange, operator: Admin, session: DbSession, runtime: RuntimeDep, user_id: uuid.UUID
) -> UserSummaryOut:
    """Make the account a user, support or admin."""
    user = await service.set_role(
        session, runtime.principals, actor_of(operator), user_id, body.role, body.reason
    )
    return _summary(user)


@router.post(
    "/{user_id}/suspend",
    response_model=UserSummaryOut,
    responses=documented(*GUARD_ERRORS, UserNotFound, OwnRoleUnchangeable, AlreadyInThatState),
)
async def suspend(
    body: OperatorAction,
    operator: Admin,
    session: DbSession,
    runtime: RuntimeDep,
    user_id: uuid.UUID,
) -> UserSummaryOut:
    """Suspend the account: its sessions end and its tokens and keys stop working at once."""
    user = await service.set_suspended(
        session, runtime.principals, actor_of(operator), user_id, True, body.reason
    )
    return _summary(user)


@router.post(
    "/{user_id}/restore",
    response_model=UserSummaryOut,
    responses=documented(*GUARD_ERRORS, UserNotFound, OwnRoleUnchangeable, AlreadyInThatState),
)
async def restore(
    body: OperatorAction,
    operator: Admin,
    session: DbSession,
    runtime: RuntimeDep,
    user_id: uuid.UUID,
) -> UserSummaryOut:
    """Lift a suspension: the user may sign in again."""
    user = await service.set_suspended(
        session, runtime.principals, actor_of(operator), user_id, False, body.reason
    )
    return _summary(user)


@router.post(
    "/{user_id}/sign-out",
    response_model=SignedOutOut,
    responses=documented(*GUARD_ERRORS, UserNotFound),
)
async def sign_out_everywhere(
    body: OperatorAction,
    operator: Admin,
    session: DbSession,
    runtime: RuntimeDep,
    user_id: uuid.UUID,
) -> SignedOutOut:
    """End every session of the account (its API keys keep working)."""
    ended = await service.sign_out_everywhere(
        session, runtime.principals, actor_of(operator), user_id, body.reason
    )
    return SignedOutOut(sessions_ended=ended)


@router.post(
    "/{user_id}/delete",
    response_model=UserSummaryOut,
    responses=documented(*GUARD_ERRORS, UserNotFound, OwnRoleUnchangeable, AlreadyInThatState),
)
async def delete_user(
    body: OperatorAction,
    operator: Admin,
    session: DbSession,
    runtime: RuntimeDep,
    user_id: uuid.UUID,
) -> UserSummaryOut:
    """Delete the account as its owner could: it stops working now and is anonymised after
    `VIDGATE_ACCOUNT_PURGE_DAYS`."""
    user = await service.delete_by_operator(
        session,
        runtime.principals,
        actor_of(operator),
        user_id,
        body.reason,
        runtime.settings.account_purge_days,
    )
    return _summary(user)
