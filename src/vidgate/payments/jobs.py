"""`reconcile_payments`: ask the gateway about orders still pending after a few minutes.

Notifications can be lost (an outage, a misconfigured notify URL); the gateway's own record is
what counts. Paid orders are credited through the same `settle` as notifications; unpaid orders
past their expiry are closed at the gateway first, so they can no longer be paid, then expired.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog
from procrastinate import Blueprint, JobContext
from sqlalchemy import select

from vidgate.jobs import runtime_of
from vidgate.payments import service
from vidgate.payments.gateway import GatewayError
from vidgate.payments.models import Payment

logger = structlog.get_logger(__name__)

BATCH = 200


async def reconcile_payments(context: JobContext, timestamp: int) -> int:
    """Every minute: settle what the gateways know about older pending orders; how many moved."""
    runtime = runtime_of(context)
    now = datetime.now(UTC)
    cutoff = now - timedelta(seconds=runtime.settings.payment_reconcile_after_seconds)
    async with runtime.db.session() as session:
        pending = (
            await session.scalars(
                select(Payment)
                .where(Payment.status == "pending", Payment.created_at < cutoff)
                .order_by(Payment.created_at)
                .limit(BATCH)
            )
        ).all()
    moved = 0
    for payment in pending:
        gateway = runtime.payment_gateways.get(payment.provider)
        if gateway is None:
            continue
        report: service.Report | None = None
        try:
            if payment.provider_ref is None:  # the gateway never accepted it
                if now >= payment.expires_at:
                    report = service.Report("expired", None, None)
            else:
                known = await gateway.query(payment.id.hex, payment.provider_ref)
                report = service.Report(
                    known.state,
                    known.amount_minor,
                    known.currency,
                    known.paid_at,
                    known.transaction_id,
                )
                if known.state == "pending" and now >= payment.expires_at:
                    # Closed first: if it was paid meanwhile the close fails and the next run
                    # finds it paid.
                    await gateway.close(payment.id.hex, payment.provider_ref)
                    report = service.Report("expired", None, None)
        except GatewayError as exc:
            logger.warning("payments.reconcile_failed", payment_id=str(payment.id), error=str(exc))
            continue
        if report is None:
            continue
        async with runtime.db.transaction() as session:
            outcome = await service.settle(session, payment.id, report, gateway=gateway.name)
        if outcome in ("credited", "expired", "failed", "amount_mismatch"):
            moved += 1
            logger.info("payments.reconciled", payment_id=str(payment.id), outcome=outcome)
    return moved


def blueprint() -> Blueprint:
    """This module's jobs on a new blueprint (one per job app: adopting one renames its tasks)."""
    jobs = Blueprint()
    jobs.periodic(cron="* * * * *")(
        jobs.task(name="reconcile_payments", pass_context=True, queueing_lock="reconcile")(
            reconcile_payments
        )
    )
    return jobs
