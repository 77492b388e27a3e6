"""Credit-pack orders: pricing from the catalog, and the one place a payment turns into credits.

Whatever reports a payment's fate — a gateway notification or a reconciliation query — goes
through `settle`, which locks the payment row and grants the credits as one ledger row keyed by
the payment, in the same transaction as `pending → completed`. A second report of the same
payment finds it completed (or the ledger key used) and changes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import structlog
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from vidgate.config import CreditPack, Settings
from vidgate.credits import service as ledger
from vidgate.credits.service import LedgerKind
from vidgate.kit import PageRequest, parse_uuid
from vidgate.payments import refunds
from vidgate.payments.currency import to_major
from vidgate.payments.errors import PackNotOnSale, PaymentNotFound
from vidgate.payments.gateway import PaymentState, VerifiedEvent
from vidgate.payments.models import PAID_STATUSES, Payment, PaymentEvent, PaymentRefund
from vidgate.vendors import GatewayName

logger = structlog.get_logger(__name__)

Outcome = Literal[
    "credited",
    "already_completed",
    "amount_mismatch",
    "gateway_mismatch",
    "failed",
    "expired",
    "ignored",
    "unknown_payment",
    "duplicate",
    "refunded_unpaid",
    "refund_recorded",
    "refund_unchanged",
    "refund_ignored",
]


def find_pack(settings: Settings, credits: int, amount: Decimal, currency: str) -> CreditPack:
    """The catalog pack this (credits, amount, currency) names exactly, or 400."""
    for pack in settings.payment_packs:
        price = pack.prices.get(currency)
        if pack.credits == credits and price is not None and price == amount:
            return pack
    offers = "; ".join(
        f"{p.credits} credits for "
        + " or ".join(f"{price} {cur}" for cur, price in sorted(p.prices.items()))
        for p in settings.payment_packs
    )
    raise PackNotOnSale(credits, amount, currency, offers)


@dataclass(frozen=True)
class Report:
    """What a gateway says about one payment (from a notification or a query)."""

    state: PaymentState | None
    amount_minor: int | None
    currency: str | None
    paid_at: datetime | None = None
    transaction_id: str | None = None


async def settle(
    session: AsyncSession, payment_id: uuid.UUID, report: Report, *, gateway: GatewayName
) -> Outcome:
    """Apply what `gateway` reports about the payment (the caller commits).

    Only the order's own gateway speaks for it: a genuine notification of the other gateway
    that names this order (same id form, another merchant's order) moves nothing."""
    payment = await session.scalar(
        select(Payment).where(Payment.id == payment_id).with_for_update()
    )
    if payment is None:
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
    if report.state == "paid":
        if report.amount_minor != payment.amount_minor or report.currency != payment.currency:
            # Credit nothing: an operator looks at it (the money may need refunding by hand).
            logger.error(
                "payments.amount_mismatch",
                alert=True,
                payment_id=str(payment.id),
                provider=payment.provider,
                expected=f"{payment.amount_minor} {payment.currency}",
                reported=f"{report.amount_minor} {report.currency}",
            )
            return "amount_mismatch"
        if payment.status in PAID_STATUSES:  # refunded or disputed since: granted once only
            return "already_completed"
        # Pending, or marked expired or failed here while the gateway took the money after all:
        # the gateway is the record of money, so the credits are owed.
        await ledger.grant(
            session,
            payment.user_id,
            payment.credits,
            key=f"payment:{payment.id}",
            kind=LedgerKind.PURCHASE,
            reference=str(payment.id),
            note=f"{payment.provider}: {payment.credits} credits for"
            f" {to_major(payment.amount_minor, payment.currency)} {payment.currency}",
        )
        payment.status = "completed"
        payment.paid_at = report.paid_at or datetime.now(UTC)
        payment.transaction_id = report.transaction_id
        await session.flush()
        logger.info("payments.completed", payment_id=str(payment.id), credits=payment.credits)
        return "credited"
    if report.state == "refunded" and payment.status in ("pending", "failed", "expired"):
        # Paid and refunded at the gateway before vidgate heard of the payment (WeChat's
        # trade_state REFUND): nothing was granted, so nothing is owed or taken back; whether
        # the payer got all of it back is for an operator to check.
        logger.error(
            "payments.refunded_before_credited",
            alert=True,
            payment_id=str(payment.id),
            provider=payment.provider,
        )
        payment.status = "refunded"
        payment.transaction_id = report.transaction_id or payment.transaction_id
        await session.flush()
        return "refunded_unpaid"
    if report.state in ("failed", "expired") and payment.status == "pending":
        payment.status = report.state
        await session.flush()
        return report.state
    return "ignored"


async def record_notification(
    session: AsyncSession, provider: GatewayName, event: VerifiedEvent, payload: dict[str, Any]
) -> Outcome:
    """Store a verified notification in the inbox (once per event id), then act on it."""
    inbox_id = await session.scalar(
        insert(PaymentEvent)
        .values(
            provider=provider,
            event_id=event.event_id,
            state=event.state,
            outcome="received",
            payload=payload,
        )
        .on_conflict_do_nothing(constraint="uq_payment_events_provider_event")
        .returning(PaymentEvent.id)
    )
    if inbox_id is None:
        return "duplicate"
    if event.refunds:
        return await _record_refund_notices(session, provider, event, inbox_id)
    payment_id = parse_uuid(event.payment_id)
    outcome: Outcome = "unknown_payment"
    if payment_id is not None:
        outcome = await settle(
            session,
            payment_id,
            Report(
                event.state,
                event.amount_minor,
                event.currency,
                event.paid_at,
                event.transaction_id,
            ),
            gateway=provider,
        )
    row = await session.get_one(PaymentEvent, inbox_id)
    row.outcome = outcome
    row.payment_id = payment_id if outcome not in ("unknown_payment", "gateway_mismatch") else None
    await session.flush()
    return outcome


async def _record_refund_notices(
    session: AsyncSession, provider: GatewayName, event: VerifiedEvent, inbox_id: int
) -> Outcome:
    """Apply each refund or dispute the notification reports; the inbox row keeps the last
    outcome that changed something."""
    outcome: Outcome = "refund_unchanged"
    payment_id: uuid.UUID | None = None
    for notice in event.refunds:
        moved = await refunds.apply_notice(session, provider, notice)
        if moved in ("refund_recorded", "refund_ignored") or outcome == "refund_unchanged":
            outcome = moved
        if moved not in ("unknown_payment", "gateway_mismatch"):
            payment_id = payment_id or await refunds.payment_of_notice(session, provider, notice)
    row = await session.get_one(PaymentEvent, inbox_id)
    row.outcome = outcome
    row.payment_id = payment_id
    await session.flush()
    return outcome


async def list_payments(
    session: AsyncSession, user_id: uuid.UUID, page: PageRequest
) -> tuple[list[Payment], int]:
    """One page of the user's orders, newest first, and how many there are in all."""
    total = await session.scalar(
        select(func.count()).select_from(Payment).where(Payment.user_id == user_id)
    )
    rows = await session.scalars(
        page.apply(
            select(Payment)
            .where(Payment.user_id == user_id)
            .order_by(Payment.created_at.desc(), Payment.id.desc())
        )
    )
    return list(rows), total or 0


@dataclass(frozen=True)
class PaymentFilter:
    """What the console's payment search narrows by (all optional)."""

    status: str | None = None
    provider: str | None = None
    user_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None


async def search_payments(
    session: AsyncSession, where: PaymentFilter, page: PageRequest
) -> tuple[list[Payment], int]:
    """One page of every user's orders matching `where`, newest first, and how many match."""
    conditions = []
    if where.status:
        conditions.append(Payment.status == where.status)
    if where.provider:
        conditions.append(Payment.provider == where.provider)
    if where.user_id is not None:
        conditions.append(Payment.user_id == where.user_id)
    if where.since is not None:
        conditions.append(Payment.created_at >= where.since)
    if where.until is not None:
        conditions.append(Payment.created_at < where.until)
    total = await session.scalar(select(func.count()).select_from(Payment).where(*conditions))
    rows = await session.scalars(
        page.apply(
            select(Payment)
            .where(*conditions)
            .order_by(Payment.created_at.desc(), Payment.id.desc())
        )
    )
    return list(rows), int(total or 0)


@dataclass(frozen=True)
class PaymentRecord:
    """One order with everything the console shows about it."""

    payment: Payment
    events: list[PaymentEvent]
    refunds: list[PaymentRefund]
    refundable_minor: int


async def payment_record(session: AsyncSession, payment_id: uuid.UUID) -> PaymentRecord:
    """The order, its notifications (oldest first) and its refunds and disputes; or 404."""
    payment = await session.get(Payment, payment_id)
    if payment is None:
        raise PaymentNotFound()
    events = await session.scalars(
        select(PaymentEvent)
        .where(PaymentEvent.payment_id == payment_id)
        .order_by(PaymentEvent.received_at, PaymentEvent.id)
    )
    rows = await refunds.refunds_of(session, payment_id)
    return PaymentRecord(payment, list(events), rows, refunds.refundable(payment, rows))


async def owned_payment(session: AsyncSession, payment_id: str, user_id: uuid.UUID) -> Payment:
    """The user's order, or 404 (also for another user's: ids are not confirmed to others)."""
    parsed = parse_uuid(payment_id)
    payment = await session.get(Payment, parsed) if parsed else None
    if payment is None or payment.user_id != user_id:
        raise PaymentNotFound()
    return payment
