"""The credits ledger: the one way any feature moves credits.

Every movement is a `credit_ledger` row whose `idempotency_key` is unique, written in the caller's
transaction together with the change to `users.credits` / `users.credits_reserved`. So
`users.credits == SUM(delta)` and `users.credits_reserved == SUM(reserved_delta)` always hold, and
replaying an operation with the same key changes nothing. Nothing here commits.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from vidgate.credits.models import LedgerEntry
from vidgate.errors import PaymentRequired
from vidgate.kit import PageRequest
from vidgate.users.errors import UserNotFound
from vidgate.users.models import User


class LedgerKind(StrEnum):
    SIGNUP_BONUS = "signup_bonus"
    PURCHASE = "purchase"
    ADJUSTMENT = "adjustment"
    REDEMPTION = "redemption"
    CHARGE = "charge"
    REFUND = "refund"
    RESERVE = "reserve"
    RELEASE = "release"
    PAYMENT_REFUND = "payment_refund"  # credits of a refunded or disputed order taken back
    DISPUTE_WON = "dispute_won"  # ... and given back when the dispute is won


# Kinds whose movements count as spending (net of refunds) in the balance summary.
SPENDING_KINDS = (LedgerKind.CHARGE, LedgerKind.REFUND)


class InsufficientCredits(PaymentRequired):
    """The available credits (the balance less what open tasks hold) do not cover the price;
    nothing was charged."""

    def __init__(self, required: int, available: int, what: str | None = None):
        needed = f"{required} credits" + (f" ({what})" if what else "")
        super().__init__(
            f"Insufficient credits. Required: {needed}. Available: {available} credits."
        )
        self.required = required
        self.available = available


class LedgerError(ValueError):
    """A movement that no state of the account could allow (a bug in the caller)."""


@dataclass(frozen=True)
class LedgerResult:
    entry: LedgerEntry
    applied: bool  # False when the key had been used before: nothing changed this time


async def _earlier_use(session: AsyncSession, user_id: uuid.UUID, key: str) -> LedgerResult | None:
    """The row an earlier call wrote under `key`, if any; a key names one user's movement only."""
    entry = await session.scalar(select(LedgerEntry).where(LedgerEntry.idempotency_key == key))
    if entry is None:
        return None
    if entry.user_id != user_id:
        raise LedgerError(f"ledger key {key!r} already belongs to another user")
    return LedgerResult(entry, applied=False)


async def _lock_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await session.scalar(
        select(User)
        .where(User.id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if user is None:
        raise UserNotFound()
    return user


async def _apply(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    kind: LedgerKind,
    key: str,
    delta: int,
    reserved_delta: int = 0,
    reference: str | None = None,
    note: str | None = None,
    required_available: int = 0,
    what: str | None = None,
    locked_user: User | None = None,
) -> LedgerResult:
    """Lock the user's row, check, then write the ledger row and the new counters together.

    The row lock serialises movements of one user, so concurrent charges cannot both spend the
    same credits, and a key used before is found by the insert (unique index) rather than by a
    read first: one statement writes the row and the counters. A caller that holds the user's
    row locked in this transaction already passes it as `locked_user`.
    """
    user = locked_user if locked_user is not None else await _lock_user(session, user_id)
    available = user.credits - user.credits_reserved
    credits_after = user.credits + delta
    reserved_after = user.credits_reserved + reserved_delta
    refusal: Exception | None = None
    if required_available > available:
        refusal = InsufficientCredits(required_available, available, what)
    elif reserved_after < 0:
        refusal = LedgerError(
            f"cannot release {-reserved_delta}: only {user.credits_reserved} reserved"
        )
    elif credits_after < 0 or reserved_after > credits_after:
        refusal = InsufficientCredits(-delta if delta < 0 else reserved_delta, available, what)
    if refusal is not None:
        # A repeat of a movement already made is not refused: it is answered with that movement.
        existing = await _earlier_use(session, user_id, key)
        if existing is not None:
            return existing
        raise refusal
    # The row and the user's new counters in one statement: the counters move only when the
    # row was written (its key is new).
    written = (
        insert(LedgerEntry)
        .values(
            user_id=user_id,
            delta=delta,
            reserved_delta=reserved_delta,
            kind=kind.value,
            reference=reference,
            idempotency_key=key,
            balance_after=credits_after,
            reserved_after=reserved_after,
            note=note,
        )
        .on_conflict_do_nothing(index_elements=[LedgerEntry.idempotency_key])
        .returning(*LedgerEntry.__table__.columns)
        .cte("written")
    )
    moved = (
        update(User)
        .where(User.id == user_id, exists(select(written.c.id)))
        .values(credits=credits_after, credits_reserved=reserved_after)
        .cte("moved")
    )
    entry = await session.scalar(
        select(aliased(LedgerEntry, written)).add_cte(moved),
        execution_options={"populate_existing": True},
    )
    if entry is None:  # the key was used before (perhaps by a transaction that just committed)
        existing = await _earlier_use(session, user_id, key)
        assert existing is not None
        return existing
    set_committed_value(user, "credits", credits_after)
    set_committed_value(user, "credits_reserved", reserved_after)
    return LedgerResult(entry, applied=True)


def _positive(amount: int) -> int:
    if amount <= 0:
        raise ValueError(f"amount must be positive, got {amount}")
    return amount


async def grant(
    session: AsyncSession,
    user_id: uuid.UUID,
    amount: int,
    *,
    key: str,
    kind: LedgerKind = LedgerKind.ADJUSTMENT,
    reference: str | None = None,
    note: str | None = None,
) -> LedgerResult:
    """Add credits (signup bonus, purchase, operator grant)."""
    return await _apply(
        session,
        user_id,
        kind=kind,
        key=key,
        delta=_positive(amount),
        reference=reference,
        note=note,
    )


async def charge(
    session: AsyncSession,
    user_id: uuid.UUID,
    amount: int,
    *,
    key: str,
    kind: LedgerKind = LedgerKind.CHARGE,
    reference: str | None = None,
    note: str | None = None,
    what: str | None = None,
    locked_user: User | None = None,
) -> LedgerResult:
    """Take credits now (a prepaid price; an operator's deduction is an `adjustment`);
    InsufficientCredits if the available credits do not cover them."""
    _positive(amount)
    return await _apply(
        session,
        user_id,
        kind=kind,
        key=key,
        delta=-amount,
        reference=reference,
        note=note,
        required_available=amount,
        what=what,
        locked_user=locked_user,
    )


async def refund(
    session: AsyncSession,
    user_id: uuid.UUID,
    amount: int,
    *,
    key: str,
    reference: str | None = None,
    note: str | None = None,
) -> LedgerResult:
    """Give back a charge (failure, timeout, cancel). The key makes a second refund a no-op."""
    return await _apply(
        session,
        user_id,
        kind=LedgerKind.REFUND,
        key=key,
        delta=_positive(amount),
        reference=reference,
        note=note,
    )


async def reserve(
    session: AsyncSession,
    user_id: uuid.UUID,
    amount: int,
    *,
    key: str,
    reference: str | None = None,
    what: str | None = None,
    locked_user: User | None = None,
) -> LedgerResult:
    """Hold credits for a metered job: they stay in the balance but are no longer available."""
    _positive(amount)
    return await _apply(
        session,
        user_id,
        kind=LedgerKind.RESERVE,
        key=key,
        delta=0,
        reserved_delta=amount,
        reference=reference,
        required_available=amount,
        what=what,
        locked_user=locked_user,
    )


async def release(
    session: AsyncSession,
    user_id: uuid.UUID,
    amount: int,
    *,
    key: str,
    reference: str | None = None,
    note: str | None = None,
) -> LedgerResult:
    """Drop a hold without charging (the metered job failed, timed out or was canceled)."""
    return await _apply(
        session,
        user_id,
        kind=LedgerKind.RELEASE,
        key=key,
        delta=0,
        reserved_delta=-_positive(amount),
        reference=reference,
        note=note,
    )


async def settle(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    reserved: int,
    actual: int,
    key: str,
    reference: str | None = None,
    note: str | None = None,
) -> LedgerResult:
    """Close a hold of `reserved` and charge `actual` in one row.

    A finished job is never left unpaid for lack of headroom nor pushed below zero: when `actual`
    exceeds what the user has once the hold is dropped, the charge is capped at that amount (the
    row's delta says what was really taken).
    """
    _positive(reserved)
    if actual < 0:
        raise ValueError(f"actual must not be negative, got {actual}")
    existing = await _earlier_use(session, user_id, key)
    if existing is not None:
        return existing
    user = await _lock_user(session, user_id)
    headroom = user.credits - (user.credits_reserved - reserved)
    return await _apply(
        session,
        user_id,
        kind=LedgerKind.CHARGE,
        key=key,
        delta=-min(actual, headroom),
        reserved_delta=-reserved,
        reference=reference,
        note=note,
    )


@dataclass(frozen=True)
class Balance:
    credits: int
    credits_reserved: int
    total_earned: int
    total_spent: int

    @property
    def available(self) -> int:
        return self.credits - self.credits_reserved


async def balance(session: AsyncSession, user: User) -> Balance:
    """The user's counters plus lifetime totals; `total_earned - total_spent == credits`."""
    spending = LedgerEntry.kind.in_([k.value for k in SPENDING_KINDS])
    row = (
        await session.execute(
            select(
                func.coalesce(func.sum(LedgerEntry.delta).filter(~spending), 0),
                func.coalesce(func.sum(LedgerEntry.delta).filter(spending), 0),
            ).where(LedgerEntry.user_id == user.id)
        )
    ).one()
    return Balance(
        credits=user.credits,
        credits_reserved=user.credits_reserved,
        total_earned=int(row[0]),
        total_spent=-int(row[1]),
    )


@dataclass(frozen=True)
class Drift:
    user_id: uuid.UUID
    credits: int
    ledger_sum: int
    credits_reserved: int
    ledger_reserved_sum: int


async def find_drift(session: AsyncSession) -> list[Drift]:
    """Users whose counters differ from what their ledger rows add up to."""
    sums = (
        select(
            LedgerEntry.user_id.label("user_id"),
            func.sum(LedgerEntry.delta).label("delta_sum"),
            func.sum(LedgerEntry.reserved_delta).label("reserved_sum"),
        )
        .group_by(LedgerEntry.user_id)
        .subquery()
    )
    delta_sum = func.coalesce(sums.c.delta_sum, 0)
    reserved_sum = func.coalesce(sums.c.reserved_sum, 0)
    rows = await session.execute(
        select(User.id, User.credits, delta_sum, User.credits_reserved, reserved_sum)
        .outerjoin(sums, sums.c.user_id == User.id)
        .where((User.credits != delta_sum) | (User.credits_reserved != reserved_sum))
        .order_by(User.created_at)
    )
    return [Drift(r[0], r[1], int(r[2]), r[3], int(r[4])) for r in rows]


async def history(
    session: AsyncSession, user_id: uuid.UUID, page: PageRequest
) -> tuple[list[LedgerEntry], int]:
    """One page of the user's ledger rows, newest first, and how many there are in all."""
    total = await session.scalar(
        select(func.count()).select_from(LedgerEntry).where(LedgerEntry.user_id == user_id)
    )
    rows = await session.scalars(
        page.apply(
            select(LedgerEntry)
            .where(LedgerEntry.user_id == user_id)
            .order_by(LedgerEntry.id.desc())
        )
    )
    return list(rows), total or 0


async def stream_history(session: AsyncSession, user_id: uuid.UUID) -> AsyncIterator[LedgerEntry]:
    """Every ledger row of the user, newest first, fetched 500 at a time."""
    result = await session.stream_scalars(
        select(LedgerEntry)
        .where(LedgerEntry.user_id == user_id)
        .order_by(LedgerEntry.id.desc())
        .execution_options(yield_per=500)
    )
    async for entry in result:
        yield entry
