"""Payment work that spans transactions: an order is committed `pending` before the gateway hears
of it (so its notification always finds it), and the gateway's answer is recorded in a second
commit; an operator's refund likewise; a notification is verified, recorded and acknowledged."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import urlsplit

import structlog

from vidgate.admin.service import Actor
from vidgate.config import web_origin
from vidgate.db.session import Session
from vidgate.payments import refunds, service
from vidgate.payments.currency import to_minor
from vidgate.payments.errors import (
    CurrencyNotSold,
    GatewayNotConfigured,
    GatewayRefusedOrder,
    GatewayRefusedRefund,
    RefundOutcomeUnknown,
    WayBackOffSite,
)
from vidgate.payments.gateway import (
    Acknowledgement,
    CheckoutRequest,
    GatewayError,
    InvalidNotification,
    PaymentGateway,
    RefundRefused,
    RefundRequest,
)
from vidgate.payments.models import Payment, PaymentRefund
from vidgate.payments.schemas import CreatePayment
from vidgate.runtime import Runtime
from vidgate.vendors import PAYMENT_GATEWAYS, GatewayName

logger = structlog.get_logger(__name__)

# Replaced in return_url and cancel_url with the new payment's id.
PAYMENT_ID_PLACEHOLDER = "{PAYMENT_ID}"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
NOTIFY_PATHS = {"wechat": "/api/payments/wechat/notify", "stripe": "/api/payments/stripe/webhook"}


def check_way_back(body: CreatePayment, allowed: list[str], *, any_loopback: bool) -> None:
    """The payer's browser may only be sent back to vidgate's own pages or a front end of this
    deployment (`VIDGATE_CORS_ORIGINS`): a checkout page must not lead to a lookalike site."""
    for field in ("return_url", "cancel_url"):
        url = getattr(body, field)
        if url is None or web_origin(url) in allowed:
            continue
        if any_loopback and urlsplit(url).hostname in LOOPBACK_HOSTS:
            continue
        raise WayBackOffSite(field, allowed)


def gateway_for(runtime: Runtime, provider: GatewayName) -> PaymentGateway:
    gateway = runtime.payment_gateways.get(provider)
    if gateway is None:
        raise GatewayNotConfigured(PAYMENT_GATEWAYS[provider].label)
    return gateway


async def create_order(
    runtime: Runtime,
    session: Session,
    provider: GatewayName,
    user_id: uuid.UUID,
    body: CreatePayment,
    *,
    base_url: str,
    client_ip: str | None,
) -> Payment:
    """Check the order against the packs on sale and the allowed ways back, commit it `pending`,
    then ask the gateway for a checkout and commit its answer (`failed` if it refused)."""
    gateway = gateway_for(runtime, provider)
    if provider == "wechat" and body.currency != "CNY":
        raise CurrencyNotSold()
    pack = service.find_pack(runtime.settings, body.credits, body.amount, body.currency)
    settings = runtime.settings
    base = base_url.rstrip("/")
    check_way_back(
        body,
        allowed=[web_origin(base), *settings.cors_origins],
        any_loopback=settings.is_development,  # `npm run dev` serves the pages on its own port
    )
    payment_id = uuid.uuid4()
    back = f"{base}/buy/?payment={PAYMENT_ID_PLACEHOLDER}"
    return_url = (body.return_url or back).replace(PAYMENT_ID_PLACEHOLDER, str(payment_id))
    cancel_url = (body.cancel_url or back).replace(PAYMENT_ID_PLACEHOLDER, str(payment_id))
    payment = Payment(
        id=payment_id,
        user_id=user_id,
        provider=provider,
        status="pending",
        amount_minor=to_minor(body.amount, body.currency),
        currency=body.currency,
        credits=pack.credits,
        scene=body.scene if provider == "wechat" else None,
        return_url=return_url,
        expires_at=datetime.now(UTC) + timedelta(minutes=settings.payment_order_minutes),
    )
    session.add(payment)
    await session.commit()  # before the gateway knows the order: a notification finds it
    order = CheckoutRequest(
        payment_id=payment.id.hex,  # 32 characters: WeChat's out_trade_no allows no more
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        credits=payment.credits,
        description=f"vidgate {payment.credits:,} credits",
        notify_url=base + NOTIFY_PATHS[provider],
        expires_at=payment.expires_at,
        return_url=return_url,
        cancel_url=cancel_url,
        scene=body.scene,
        client_ip=client_ip,
    )
    try:
        checkout = await gateway.create(order)
    except GatewayError as exc:
        payment.status = "failed"
        await session.commit()
        logger.warning("payments.create_failed", provider=provider, error=str(exc))
        raise GatewayRefusedOrder(PAYMENT_GATEWAYS[provider].label) from exc
    payment.provider_ref = checkout.provider_ref
    payment.pay_url = checkout.code_url or checkout.h5_url or checkout.checkout_url
    await session.commit()
    return payment


async def receive_notification(
    runtime: Runtime,
    session: Session,
    provider: GatewayName,
    headers: Mapping[str, str],
    body: bytes,
) -> Acknowledgement:
    """Verify a gateway's notification and record it (settling the payment it confirms) in the
    caller's transaction; the answer the gateway expects, a refusal when it does not verify."""
    gateway = gateway_for(runtime, provider)
    try:
        event = gateway.verify_notification(headers, body)
    except InvalidNotification as exc:
        logger.warning("payments.notification_refused", provider=provider, reason=str(exc))
        return gateway.reject(str(exc))
    payload: dict[str, Any] = {"event": dict(event.raw)} if event.raw else {}
    outcome = await service.record_notification(session, provider, event, payload)
    logger.info(
        "payments.notification",
        provider=provider,
        event_id=event.event_id,
        payment_id=event.payment_id,
        outcome=outcome,
    )
    return gateway.acknowledge()


async def refund_payment(
    runtime: Runtime,
    session: Session,
    payment_id: uuid.UUID,
    actor: Actor,
    *,
    amount_minor: int | None,
    reason: str,
) -> PaymentRefund:
    """An operator's refund of `amount_minor` of a paid order (None: all that remains).

    The refund is checked and committed `pending` first (the order's row locked meanwhile, so
    concurrent refunds cannot together pass its amount), then the gateway is asked, then its
    answer is committed with the credits it takes back and the operator's audit row. A gateway
    that says no leaves the refund `failed` (GatewayRefusedRefund); one that does not answer
    leaves it `pending` (RefundOutcomeUnknown): `retry_refund` asks again.
    """
    payment, row = await refunds.open_refund(
        session, payment_id, actor, amount_minor=amount_minor, reason=reason
    )
    request = _refund_request(runtime, payment, row)
    await session.commit()  # before the gateway hears of it: its notification finds the row
    return await _ask_for_refund(runtime, session, payment, row.id, request, actor)


async def retry_refund(
    runtime: Runtime,
    session: Session,
    refund_id: uuid.UUID,
    actor: Actor,
    *,
    payment_id: uuid.UUID | None = None,
) -> PaymentRefund:
    """Ask the gateway again for a refund it never answered (still `pending`, no gateway id):
    the same refund id, so a gateway that did receive the first request does not refund
    twice."""
    payment, row = await refunds.unanswered_refund(session, refund_id, payment_id)
    request = _refund_request(runtime, payment, row)
    await session.commit()
    return await _ask_for_refund(runtime, session, payment, row.id, request, actor)


def _refund_request(runtime: Runtime, payment: Payment, row: PaymentRefund) -> RefundRequest:
    provider = cast(GatewayName, payment.provider)
    gateway_for(runtime, provider)  # 501 before anything is asked of a gateway not configured
    return RefundRequest(
        payment_id=payment.id.hex,
        refund_id=row.id.hex,
        provider_ref=payment.provider_ref,
        transaction_id=payment.transaction_id,
        amount_minor=row.amount_minor,
        total_minor=payment.amount_minor,
        currency=payment.currency,
        reason=row.reason or "refund",
        notify_url=runtime.settings.base_url.rstrip("/") + NOTIFY_PATHS[provider],
    )


async def _ask_for_refund(
    runtime: Runtime,
    session: Session,
    payment: Payment,
    refund_id: uuid.UUID,
    request: RefundRequest,
    actor: Actor,
) -> PaymentRefund:
    provider = cast(GatewayName, payment.provider)
    gateway = gateway_for(runtime, provider)
    label = PAYMENT_GATEWAYS[provider].label
    try:
        answer = await gateway.refund(request)
    except RefundRefused as exc:
        logger.warning("payments.refund_refused", refund_id=str(refund_id), error=str(exc))
        await refunds.record_answer(session, refund_id, actor, None, refusal=str(exc))
        await session.commit()
        raise GatewayRefusedRefund(label, str(exc)) from exc
    except GatewayError as exc:
        logger.error(
            "payments.refund_unanswered", alert=True, refund_id=str(refund_id), error=str(exc)
        )
        await refunds.record_answer(session, refund_id, actor, None, refusal=None)
        await session.commit()
        raise RefundOutcomeUnknown(label) from exc
    row = await refunds.record_answer(session, refund_id, actor, answer)
    await session.commit()
    await session.refresh(row)  # the times the database set
    return row
