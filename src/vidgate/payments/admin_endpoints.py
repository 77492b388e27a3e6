"""`/api/admin/payments`: the console's view of every order (support and up) and operators'
refunds (admins), each refund with its audit row."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter

from vidgate.admin.access import GUARD_ERRORS, Admin, Support
from vidgate.admin.service import actor_of
from vidgate.deps import DbSession, RuntimeDep
from vidgate.errors import documented
from vidgate.kit import Page
from vidgate.payments import flows, service
from vidgate.payments.currency import to_major
from vidgate.payments.errors import (
    GatewayNotConfigured,
    GatewayRefusedRefund,
    PaymentNotFound,
    PaymentNotRefundable,
    PaymentUnderDispute,
    RefundNotFound,
    RefundNotUnanswered,
    RefundOutcomeUnknown,
    RefundTooLarge,
)
from vidgate.payments.models import Payment, PaymentEvent, PaymentRefund
from vidgate.payments.schemas import (
    AdminPaymentDetail,
    AdminPaymentPage,
    AdminPaymentView,
    PaymentEventView,
    PaymentStatus,
    RefundIn,
    RefundView,
)
from vidgate.vendors import GatewayName

router = APIRouter(prefix="/api/admin/payments", tags=["admin"])


def admin_view(payment: Payment) -> AdminPaymentView:
    return AdminPaymentView(
        payment_id=str(payment.id),
        user_id=str(payment.user_id),
        provider=payment.provider,
        status=payment.status,
        amount_minor=payment.amount_minor,
        amount=float(to_major(payment.amount_minor, payment.currency)),
        currency=payment.currency,
        credits=payment.credits,
        scene=payment.scene,
        provider_ref=payment.provider_ref,
        transaction_id=payment.transaction_id,
        created_at=payment.created_at,
        expires_at=payment.expires_at,
        paid_at=payment.paid_at,
    )


def refund_view(row: PaymentRefund) -> RefundView:
    return RefundView(
        refund_id=str(row.id),
        kind=row.kind,
        status=row.status,
        amount_minor=row.amount_minor,
        amount=float(to_major(row.amount_minor, row.currency)),
        currency=row.currency,
        gateway_id=row.gateway_id,
        credits_taken=row.credits_taken,
        credits_shortfall=row.credits_shortfall,
        reason=row.reason,
        actor=row.actor,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def event_view(event: PaymentEvent) -> PaymentEventView:
    return PaymentEventView(
        id=event.id,
        event_id=event.event_id,
        state=event.state,
        outcome=event.outcome,
        received_at=event.received_at,
        payload=event.payload,
    )


@router.get("", response_model=AdminPaymentPage, responses=documented(*GUARD_ERRORS))
async def search_payments(
    operator: Support,
    session: DbSession,
    page: Page,
    status: PaymentStatus | None = None,
    provider: GatewayName | None = None,
    user_id: uuid.UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> AdminPaymentPage:
    """Every user's orders, newest first, by status, gateway, user and creation time
    (`since` inclusive, `until` exclusive)."""
    where = service.PaymentFilter(status, provider, user_id, since, until)
    rows, total = await service.search_payments(session, where, page)
    return AdminPaymentPage(
        payments=[admin_view(p) for p in rows],
        total=total,
        page=page.page,
        page_size=page.page_size,
    )


@router.get(
    "/{payment_id}",
    response_model=AdminPaymentDetail,
    responses=documented(*GUARD_ERRORS, PaymentNotFound),
)
async def get_payment(
    payment_id: uuid.UUID, operator: Support, session: DbSession
) -> AdminPaymentDetail:
    """One order with the gateway notifications about it, its refunds and disputes, and what
    remains refundable."""
    found = await service.payment_record(session, payment_id)
    return AdminPaymentDetail(
        **admin_view(found.payment).model_dump(),
        refundable_minor=found.refundable_minor,
        events=[event_view(e) for e in found.events],
        refunds=[refund_view(r) for r in found.refunds],
    )


@router.post(
    "/{payment_id}/refund",
    response_model=RefundView,
    responses=documented(
        *GUARD_ERRORS,
        PaymentNotFound,
        PaymentNotRefundable,
        PaymentUnderDispute,
        RefundTooLarge,
        GatewayNotConfigured,
        GatewayRefusedRefund,
        RefundOutcomeUnknown,
    ),
)
async def refund_payment(
    payment_id: uuid.UUID,
    body: RefundIn,
    operator: Admin,
    session: DbSession,
    runtime: RuntimeDep,
) -> RefundView:
    """Refund `amount_minor` of a paid order (all that remains when omitted) through its
    gateway. The credits it bought go back in proportion, as far as the user still has them
    available; the rest is shown as `credits_shortfall`. `status` is `succeeded` once the
    gateway has refunded, `pending` while it works on it (WeChat Pay reports later)."""
    row = await flows.refund_payment(
        runtime,
        session,
        payment_id,
        actor_of(operator),
        amount_minor=body.amount_minor,
        reason=body.reason,
    )
    return refund_view(row)


@router.post(
    "/{payment_id}/refunds/{refund_id}/retry",
    response_model=RefundView,
    responses=documented(
        *GUARD_ERRORS,
        RefundNotFound,
        RefundNotUnanswered,
        GatewayNotConfigured,
        GatewayRefusedRefund,
        RefundOutcomeUnknown,
    ),
)
async def retry_refund(
    payment_id: uuid.UUID,
    refund_id: uuid.UUID,
    operator: Admin,
    session: DbSession,
    runtime: RuntimeDep,
) -> RefundView:
    """Ask the gateway again for a refund it did not answer (503 on the first try). The same
    refund id goes with it, so the gateway cannot refund twice."""
    row = await flows.retry_refund(
        runtime, session, refund_id, actor_of(operator), payment_id=payment_id
    )
    return refund_view(row)
