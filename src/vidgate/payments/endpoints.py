"""`/api/payments`: credit packs, orders through WeChat Pay or Stripe, gateway notifications."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import structlog
from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import func, select

from vidgate.auth.dependencies import CurrentUser
from vidgate.config import web_origin
from vidgate.deps import DbSession, Runtime, RuntimeDep
from vidgate.errors import BadRequest, NotFound, NotImplementedFeature, ServiceUnavailable
from vidgate.payments import service
from vidgate.payments.currency import to_major, to_minor
from vidgate.payments.gateway import (
    CheckoutRequest,
    GatewayError,
    InvalidNotification,
    PaymentGateway,
)
from vidgate.payments.models import Payment
from vidgate.payments.schemas import CreatePayment, PackList, PackView, PaymentList, PaymentView

logger = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/payments", tags=["payments"])

GATEWAY_NAMES = {"wechat": "WeChat Pay", "stripe": "Stripe"}
# Replaced in return_url and cancel_url with the new payment's id.
PAYMENT_ID_PLACEHOLDER = "{PAYMENT_ID}"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
NOTIFY_PATHS = {"wechat": "/api/payments/wechat/notify", "stripe": "/api/payments/stripe/webhook"}


def view(payment: Payment) -> PaymentView:
    urls: dict[str, str | None] = {}
    if payment.status == "pending" and payment.pay_url:  # only while it can still be paid
        if payment.provider == "stripe":
            urls["checkout_url"] = payment.pay_url
        elif payment.scene == "h5":
            urls["h5_url"] = payment.pay_url
        else:
            urls["code_url"] = payment.pay_url
    return PaymentView(
        payment_id=str(payment.id),
        status=payment.status,
        amount=float(to_major(payment.amount_minor, payment.currency)),
        currency=payment.currency,
        credits=payment.credits,
        provider=payment.provider,
        expires_at=payment.expires_at,
        created_at=payment.created_at,
        paid_at=payment.paid_at,
        **urls,
    )


def check_way_back(body: CreatePayment, allowed: list[str], *, any_loopback: bool) -> None:
    """The payer's browser may only be sent back to vidgate's own pages or a front end of this
    deployment (`VIDGATE_CORS_ORIGINS`): a checkout page must not lead to a lookalike site."""
    for field in ("return_url", "cancel_url"):
        url = getattr(body, field)
        if url is None or web_origin(url) in allowed:
            continue
        if any_loopback and urlsplit(url).hostname in LOOPBACK_HOSTS:
            continue
        raise BadRequest(f"{field} must be on {' or '.join(allowed)}")


def _gateway(runtime: Runtime, provider: str) -> PaymentGateway:
    gateway = runtime.payment_gateways.get(provider)
    if gateway is None:
        raise NotImplementedFeature(f"{GATEWAY_NAMES[provider]} is not configured on this server")
    return gateway


@router.get("/packages", response_model=PackList)
async def packages(runtime: RuntimeDep) -> PackList:
    """The credit packs on sale and their prices (1 credit = ¥0.1)."""
    providers = sorted(runtime.payment_gateways)
    return PackList(
        packages=[
            PackView(
                credits=pack.credits,
                prices={currency: float(price) for currency, price in pack.prices.items()},
                providers=[p for p in providers if p != "wechat" or "CNY" in pack.prices],
            )
            for pack in runtime.settings.payment_packs
        ]
    )


async def _create(
    provider: Literal["wechat", "stripe"],
    body: CreatePayment,
    user: CurrentUser,
    request: Request,
    runtime: Runtime,
    session: DbSession,
) -> PaymentView:
    gateway = _gateway(runtime, provider)
    if provider == "wechat" and body.currency != "CNY":
        raise BadRequest("WeChat Pay sells in CNY only")
    pack = service.find_pack(runtime.settings, body.credits, body.amount, body.currency)
    settings = runtime.settings
    base = (settings.public_base_url or str(request.base_url)).rstrip("/")
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
        user_id=user.id,
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
        client_ip=request.client.host if request.client else None,
    )
    try:
        checkout = await gateway.create(order)
    except GatewayError as exc:
        payment.status = "failed"
        await session.commit()
        logger.warning("payments.create_failed", provider=provider, error=str(exc))
        raise ServiceUnavailable(
            f"{GATEWAY_NAMES[provider]} did not accept the order; try again later"
        ) from exc
    payment.provider_ref = checkout.provider_ref
    payment.pay_url = checkout.code_url or checkout.h5_url or checkout.checkout_url
    await session.commit()
    return view(payment)


@router.post("/wechat/create", response_model=PaymentView)
async def create_wechat(
    body: CreatePayment,
    user: CurrentUser,
    request: Request,
    runtime: RuntimeDep,
    session: DbSession,
) -> PaymentView:
    """Order a credit pack through WeChat Pay: `code_url` (QR code) or, with `scene: h5`,
    `h5_url`. The credits arrive when WeChat Pay confirms the payment."""
    return await _create("wechat", body, user, request, runtime, session)


@router.post("/stripe/create", response_model=PaymentView)
async def create_stripe(
    body: CreatePayment,
    user: CurrentUser,
    request: Request,
    runtime: RuntimeDep,
    session: DbSession,
) -> PaymentView:
    """Order a credit pack through Stripe Checkout: send the browser to `checkout_url`."""
    return await _create("stripe", body, user, request, runtime, session)


async def _notification(
    provider: Literal["wechat", "stripe"], request: Request, runtime: Runtime, session: DbSession
) -> Response:
    gateway = _gateway(runtime, provider)
    body = await request.body()
    try:
        event = gateway.verify_notification(request.headers, body)
    except InvalidNotification as exc:
        logger.warning("payments.notification_refused", provider=provider, reason=str(exc))
        answer = gateway.reject(str(exc))
    else:
        payload: dict[str, Any] = {"event": dict(event.raw)} if event.raw else {}
        outcome = await service.record_notification(session, provider, event, payload)
        await session.commit()
        logger.info(
            "payments.notification",
            provider=provider,
            event_id=event.event_id,
            payment_id=event.payment_id,
            outcome=outcome,
        )
        answer = gateway.acknowledge()
    return Response(answer.body, status_code=answer.status_code, media_type=answer.content_type)


@router.post("/wechat/notify", include_in_schema=False)
async def wechat_notify(request: Request, runtime: RuntimeDep, session: DbSession) -> Response:
    return await _notification("wechat", request, runtime, session)


@router.post("/stripe/webhook", include_in_schema=False)
async def stripe_webhook(request: Request, runtime: RuntimeDep, session: DbSession) -> Response:
    return await _notification("stripe", request, runtime, session)


@router.get("", response_model=PaymentList)
async def list_payments(
    user: CurrentUser,
    session: DbSession,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 10,
) -> PaymentList:
    """Your orders, newest first."""
    total = await session.scalar(
        select(func.count()).select_from(Payment).where(Payment.user_id == user.id)
    )
    rows = await session.scalars(
        select(Payment)
        .where(Payment.user_id == user.id)
        .order_by(Payment.created_at.desc(), Payment.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return PaymentList(
        payments=[view(p) for p in rows], total=total or 0, page=page, page_size=page_size
    )


@router.get("/{payment_id}", response_model=PaymentView)
async def get_payment(payment_id: str, user: CurrentUser, session: DbSession) -> PaymentView:
    """One of your orders, with its credits, provider and paid_at (docs/api.md §6.3)."""
    parsed = service.parse_payment_id(payment_id)
    payment = await session.get(Payment, parsed) if parsed else None
    if payment is None or payment.user_id != user.id:
        raise NotFound("Payment not found")
    return view(payment)
