"""`POST /api/users/redeem`: a signed-in user applies a redemption code to their account."""

from __future__ import annotations

from fastapi import APIRouter

from vidgate.auth.dependencies import CurrentUser
from vidgate.codes import service
from vidgate.codes.errors import (
    CodeAlreadyRedeemed,
    CodeDisabled,
    CodeExpired,
    CodeNotFound,
    CodeUsedUp,
    TooManyRedemptionAttempts,
)
from vidgate.codes.schemas import RedeemIn, RedeemOut
from vidgate.deps import DbSession, RuntimeDep
from vidgate.errors import documented

router = APIRouter(prefix="/api/users", tags=["users"])


@router.post(
    "/redeem",
    response_model=RedeemOut,
    responses=documented(
        CodeNotFound,
        CodeAlreadyRedeemed,
        CodeExpired,
        CodeUsedUp,
        CodeDisabled,
        TooManyRedemptionAttempts,
    ),
)
async def redeem(
    body: RedeemIn, user: CurrentUser, session: DbSession, runtime: RuntimeDep
) -> RedeemOut:
    """Redeem a code: its credits are added to the balance at once. Each code works once per
    account, up to its number of uses, until it expires. Every attempt counts against a limit
    (10 per 10 minutes), so codes cannot be guessed."""
    await service.limit_attempts(runtime.db, user.id)
    done = await service.redeem(session, user.id, body.code)
    return RedeemOut(credits_added=done.credits_added, credits=done.credits, code=done.code)
