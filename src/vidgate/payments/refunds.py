"""Refunds and disputes of paid orders, and the credits they take back (nothing here commits).

The money rule: when money of an order goes back to the payer (a refund succeeds, or a dispute
is opened), the credits it bought go back too, in proportion — `credits × refunded / amount`,
rounded down while the order is partly refunded, all of them once it is fully refunded — but
only as far as the user still has *available* credits (balance less what running tasks hold).
What could not be taken is kept on the refund row as `credits_shortfall` (and logged) for an
operator to look at. Counting on the running total (not refund by refund) makes partial refunds
that add up to the whole take exactly the order's credits.

Every change to a refund row happens with the order's row locked (`FOR UPDATE`), so concurrent
refunds, notifications and operator actions of one order run one after the other: the amount
refunded can never pass the amount paid, and a state is applied once. The credits move as one
ledger row keyed by the refund (`payment_refund:<id>`, `payment_dispute:<id>`, and
`payment_dispute_won:<id>` for a dispute won), in the same transaction as the row's new state.
A notification seen before (the same gateway refund or dispute id in the same state) changes
nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Literal

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vidgate.admin.service import Actor, record
from vidgate.credits import service as ledger
from vidgate.credits.service import LedgerKind
from vidgate.kit import parse_uuid
from vidgate.payments.currency import to_major
from vidgate.payments.errors import (
    PaymentNotFound,
    PaymentNotRefundable,
    PaymentUnderDispute,
    RefundNotFound,
    RefundNotUnanswered,
    RefundTooLarge,
)
from vidgate.payments.gateway import GatewayRefund, RefundNotice, RefundState
from vidgate.payments.models import PAID_STATUSES, Payment, PaymentRefund
from vidgate.users.models import User
from vidgate.vendors import GatewayName

logger = structlog.get_logger(__name__)

RefundOutcome = Literal[
    "refund_recorded",  # a refund or dispute changed state
    "refund_unchanged",  # seen before in this state (a repeated notification)
    "refund_ignored",  # a state it cannot move to (e.g. succeeded → pending)
    "unknown_payment",
    "gateway_mismatch",
]

# Which state a row may move to from which: the gateway is the record of money, so a refund
# that failed here (say, an error answer) may still turn out to have succeeded.
_MOVES: dict[str, frozenset[str]] = {
    "pending": frozenset({"succeeded", "failed", "won", "lost"}),
    "failed": frozenset({"succeeded"}),
    "succeeded": frozenset(),
    "won": frozenset(),
    "lost": frozenset(),
}


def _money_gone(refunds: Sequence[PaymentRefund], excluding: PaymentRefund | None = None) -> int:
    """Minor units no longer ours: refunds made, and disputes open or lost."""
    return sum(
        r.amount_minor
        for r in refunds
        if r is not excluding
        and (
            (r.kind == "refund" and r.status == "succeeded")
            or (r.kind == "dispute" and r.status in ("pending", "lost"))
        )
    )


def _money_held(refunds: Sequence[PaymentRefund]) -> int:
    """Minor units a new refund cannot use: refunds made or under way, disputes open or lost."""
    return sum(
        r.amount_minor
        for r in refunds
        if (r.kind == "refund" and r.status in ("pending", "succeeded"))
        or (r.kind == "dispute" and r.status in ("pending", "lost"))
    )


def refundable(payment: Payment, refunds: Sequence[PaymentRefund]) -> int:
    """What an operator may still refund of the order, in minor units."""
    if payment.status not in PAID_STATUSES:
        return 0
    return max(0, payment.amount_minor - _money_held(refunds))


def credits_for(payment: Payment, money_minor: int) -> int:
    """The credits `money_minor` of the order bought: rounded down, all of them for the whole."""
    if money_minor >= payment.amount_minor:
        return payment.credits
    return payment.credits * max(0, money_minor) // payment.amount_minor


def status_after(payment: Payment, refunds: Sequence[PaymentRefund]) -> str:
    """The order's status given its refunds and disputes (for an order that was paid)."""
    if any(r.kind == "dispute" and r.status == "pending" for r in refunds):
        return "disputed"
    gone = _money_gone(refunds)
    if gone >= payment.amount_minor:
        return "refunded"
    return "partially_refunded" if gone > 0 else "completed"


async def lock_payment(session: AsyncSession, payment_id: uuid.UUID) -> Payment | None:
    """The order, its row locked until the transaction ends (and read afresh)."""
    return await session.scalar(
        select(Payment)
        .where(Payment.id == payment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def refunds_of(session: AsyncSession, payment_id: uuid.UUID) -> list[PaymentRefund]:
    """The order's refunds and disputes, oldest first (read afresh)."""
    rows = await session.scalars(
        select(PaymentRefund)
        .where(PaymentRefund.payment_id == payment_id)
        .order_by(PaymentRefund.created_at, PaymentRefund.id)
        .execution_options(populate_existing=True)
    )
    return list(rows)


def refund_view(row: PaymentRefund) -> dict[str, object]:
    """The row as the audit log keeps it."""
    return {
        "refund_id": str(row.id),
        "kind": row.kind,
        "status": row.status,
        "amount_minor": row.amount_minor,
        "currency": row.currency,
        "gateway_id": row.gateway_id,
        "credits_taken": row.credits_taken,
        "credits_shortfall": row.credits_shortfall,
    }


async def open_refund(
    session: AsyncSession,
    payment_id: uuid.UUID,
    actor: Actor,
    *,
    amount_minor: int | None,
    reason: str,
) -> tuple[Payment, PaymentRefund]:
    """Check and record an operator's refund of `amount_minor` (None: all that is left) as
    `pending`, before the gateway is asked; the order's row stays locked until the caller
    commits, so two refunds of one order cannot both pass the check."""
    payment = await lock_payment(session, payment_id)
    if payment is None:
        raise PaymentNotFound()
    if payment.status not in PAID_STATUSES:
        raise PaymentNotRefundable(payment.status)
    refunds = await refunds_of(session, payment.id)
    if payment.status == "disputed":
        raise PaymentUnderDispute()
    left = refundable(payment, refunds)
    amount = left if amount_minor is None else amount_minor
    if amount <= 0 or amount > left:
        raise RefundTooLarge(amount, left, payment.currency)
    row = PaymentRefund(
        id=uuid.uuid4(),
        payment_id=payment.id,
        kind="refund",
        amount_minor=amount,
        currency=payment.currency,
        status="pending",
        reason=reason,
        actor=actor.name,
    )
    session.add(row)
    await session.flush()
    logger.info(
        "payments.refund_requested",
        payment_id=str(payment.id),
        refund_id=str(row.id),
        amount_minor=amount,
        actor=actor.name,
    )
    return payment, row


async def unanswered_refund(
    session: AsyncSession, refund_id: uuid.UUID, payment_id: uuid.UUID | None = None
) -> tuple[Payment, PaymentRefund]:
    """An operator's refund (of order `payment_id`, when given) the gateway never answered
    (`pending`, no gateway id), its order's row locked; RefundNotUnanswered for any other."""
    row = await session.get(PaymentRefund, refund_id)
    if row is None or (payment_id is not None and row.payment_id != payment_id):
        raise RefundNotFound()
    payment = await lock_payment(session, row.payment_id)
    if payment is None:
        raise RefundNotFound()
    await session.refresh(row)
    if row.kind != "refund" or row.status != "pending" or row.gateway_id is not None:
        raise RefundNotUnanswered(row.status)
    return payment, row


async def record_answer(
    session: AsyncSession,
    refund_id: uuid.UUID,
    actor: Actor,
    answer: GatewayRefund | None,
    *,
    refusal: str | None = None,
) -> PaymentRefund:
    """Record the gateway's answer to an operator's refund (`answer`; `refusal` when it said
    no; neither when it did not answer, which leaves the refund pending) and the operator's
    audit row, in the caller's transaction."""
    row = await session.get_one(PaymentRefund, refund_id)
    payment = await lock_payment(session, row.payment_id)
    assert payment is not None
    refunds = await refunds_of(session, payment.id)
    row = next(r for r in refunds if r.id == refund_id)
    before = refund_view(row)
    if answer is not None:
        if row.gateway_id is None:
            row.gateway_id = answer.gateway_id
        await _move(session, payment, refunds, row, answer.state)
    elif refusal is not None:
        await _move(session, payment, refunds, row, "failed")
    await session.flush()
    after = refund_view(row)
    if refusal is not None:
        after["refusal"] = refusal[:500]
    await record(
        session,
        actor,
        "payment.refund",
        "payment",
        payment.id,
        reason=row.reason,
        before=before,
        after=after,
    )
    return row


async def apply_notice(
    session: AsyncSession, gateway: GatewayName, notice: RefundNotice
) -> RefundOutcome:
    """Apply what a verified notification says about a refund or dispute of an order."""
    payment = await _notice_payment(session, gateway, notice)
    if payment is None:
        logger.warning(
            "payments.refund_for_unknown_payment",
            provider=gateway,
            gateway_id=notice.gateway_id,
            payment_id=notice.payment_id,
            transaction_id=notice.transaction_id,
        )
        return "unknown_payment"
    if payment.provider != gateway:
        logger.error(
            "payments.gateway_mismatch",
            alert=True,
            payment_id=str(payment.id),
            provider=payment.provider,
            reported_by=gateway,
        )
        return "gateway_mismatch"
    refunds = await refunds_of(session, payment.id)
    row = _known_row(refunds, notice)
    if row is None:
        amount = notice.amount_minor
        if amount is None and notice.refunded_total is not None:
            # Stripe listed no refunds: the new one is what the total adds to those known.
            known = sum(
                r.amount_minor
                for r in refunds
                if r.kind == "refund" and r.status in ("pending", "succeeded")
            )
            amount = notice.refunded_total - known
        if amount is None or amount <= 0:
            return "refund_unchanged"
        if payment.status not in PAID_STATUSES:
            # Money back for an order never credited here: nothing to take back.
            logger.error(
                "payments.refund_of_unpaid_order",
                alert=True,
                payment_id=str(payment.id),
                status=payment.status,
                gateway_id=notice.gateway_id,
            )
        row = PaymentRefund(
            id=uuid.uuid4(),
            payment_id=payment.id,
            kind=notice.kind,
            gateway_id=notice.gateway_id,
            amount_minor=amount,
            currency=notice.currency or payment.currency,
            status="pending",
            reason=f"{notice.kind} made at {gateway}",
            actor=gateway,
        )
        session.add(row)
        refunds.append(row)
        await session.flush()
        if notice.kind == "dispute" and notice.state != "won":
            # Opened (or first heard of closed and lost): its money is gone until it is won.
            await _take_back(session, payment, refunds, row)
        _set_status(payment, refunds)
        await session.flush()
        if notice.state == "pending":
            return "refund_recorded"
    elif row.gateway_id is None:
        row.gateway_id = notice.gateway_id
    if row.status == notice.state:
        return "refund_unchanged"
    if notice.state not in _MOVES[row.status]:
        logger.warning(
            "payments.refund_move_ignored",
            refund_id=str(row.id),
            status=row.status,
            reported=notice.state,
        )
        return "refund_ignored"
    await _move(session, payment, refunds, row, notice.state)
    await session.flush()
    return "refund_recorded"


async def _notice_payment(
    session: AsyncSession, gateway: GatewayName, notice: RefundNotice
) -> Payment | None:
    payment_id = await payment_of_notice(session, gateway, notice)
    return await lock_payment(session, payment_id) if payment_id is not None else None


async def payment_of_notice(
    session: AsyncSession, gateway: GatewayName, notice: RefundNotice
) -> uuid.UUID | None:
    """The id of the order a notice names (for the inbox row), without locking it."""
    payment_id = parse_uuid(notice.payment_id)
    if payment_id is None and notice.transaction_id:
        payment_id = await session.scalar(
            select(Payment.id).where(
                Payment.transaction_id == notice.transaction_id, Payment.provider == gateway
            )
        )
    return payment_id


def _known_row(refunds: Sequence[PaymentRefund], notice: RefundNotice) -> PaymentRefund | None:
    """The row a notice is about: by vidgate's refund id, else by the gateway's id."""
    refund_id = parse_uuid(notice.refund_id)
    for row in refunds:
        if refund_id is not None and row.id == refund_id:
            return row
    for row in refunds:
        if row.gateway_id == notice.gateway_id:
            return row
    return None


async def _move(
    session: AsyncSession,
    payment: Payment,
    refunds: list[PaymentRefund],
    row: PaymentRefund,
    state: RefundState,
) -> None:
    """Move a row to `state`, with the credits that go with it, and update the order."""
    if row.status == state or state not in _MOVES[row.status]:
        return
    previous = row.status
    if row.kind == "refund" and state == "succeeded":
        await _take_back(session, payment, refunds, row)
    row.status = state
    if row.kind == "dispute" and previous == "pending" and state == "won":
        await _give_back(session, payment, row)
    _set_status(payment, refunds)
    await session.flush()
    logger.info(
        "payments.refund_moved",
        payment_id=str(payment.id),
        refund_id=str(row.id),
        kind=row.kind,
        status=state,
        credits_taken=row.credits_taken,
        credits_shortfall=row.credits_shortfall,
    )


def _set_status(payment: Payment, refunds: Sequence[PaymentRefund]) -> None:
    if payment.status in PAID_STATUSES:
        payment.status = status_after(payment, refunds)


async def _take_back(
    session: AsyncSession, payment: Payment, refunds: Sequence[PaymentRefund], row: PaymentRefund
) -> None:
    """Take back the credits `row`'s money bought, as far as the user has them available."""
    if payment.status not in PAID_STATUSES:
        return  # never credited here
    before = _money_gone(refunds, excluding=row)
    due = credits_for(payment, before + row.amount_minor) - credits_for(payment, before)
    if due <= 0:
        return
    user = await session.scalar(
        select(User)
        .where(User.id == payment.user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert user is not None
    taken = min(due, user.credits - user.credits_reserved)
    if taken > 0:
        result = await ledger.charge(
            session,
            payment.user_id,
            taken,
            key=f"payment_{row.kind}:{row.id}",
            kind=LedgerKind.PAYMENT_REFUND,
            reference=str(payment.id),
            note=f"{payment.provider} {row.kind} of"
            f" {to_major(row.amount_minor, row.currency)} {row.currency} of order {payment.id}",
            locked_user=user,
        )
        taken = -result.entry.delta
    row.credits_taken = max(0, taken)
    row.credits_shortfall = due - row.credits_taken
    if row.credits_shortfall:
        logger.warning(
            "payments.refund_shortfall",
            alert=True,
            payment_id=str(payment.id),
            refund_id=str(row.id),
            user_id=str(payment.user_id),
            credits_due=due,
            credits_taken=row.credits_taken,
            credits_shortfall=row.credits_shortfall,
        )


async def _give_back(session: AsyncSession, payment: Payment, row: PaymentRefund) -> None:
    """A dispute won: the credits it took go back to the user."""
    if row.credits_taken <= 0:
        return
    await ledger.grant(
        session,
        payment.user_id,
        row.credits_taken,
        key=f"payment_dispute_won:{row.id}",
        kind=LedgerKind.DISPUTE_WON,
        reference=str(payment.id),
        note=f"dispute {row.gateway_id} of order {payment.id} won",
    )
