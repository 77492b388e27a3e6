"""`/api/payments`: credit packs, orders through WeChat Pay or Stripe, gateway notifications."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Request, Response

from vidgate.auth.dependencies import CurrentUser
from vidgate.db.session import Session
from vidgate.deps import DbSession, RuntimeDep
from vidgate.errors import documented
from vidgate.kit import Page
from vidgate.payments import flows, service
from vidgate.payments.currency import to_major
from vidgate.payments.errors import (
    CurrencyNotSold,
    GatewayNotConfigured,
    GatewayRefusedOrder,
    PackNotOnSale,
    PaymentNotFound,
    WayBackOffSite,
)
from vidgate.payments.models import Payment
from vidgate.payments.schemas import CreatePayment, PackList, PackView, PaymentList, PaymentView
from vidgate.runtime import Runtime
from vidgate.vendors import GatewayName

logger = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/payments", tags=["payments"])


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
    provider: GatewayName,
    body: CreatePayment,
    user: CurrentUser,
    request: Request,
    runtime: Runtime,
    session: Session,
) -> Payment:
    base = runtime.settings.public_base_url or str(request.base_url)
    client_ip = request.client.host if request.client else None
    return await flows.create_order(
        runtime, session, provider, user.id, body, base_url=base, client_ip=client_ip
    )


@router.post(
    "/wechat/create",
    response_model=PaymentView,
    responses=documented(
        PackNotOnSale, CurrencyNotSold, WayBackOffSite, GatewayNotConfigured, GatewayRefusedOrder
    ),
)
async def create_wechat(
    body: CreatePayment,
    user: CurrentUser,
    request: Request,
    runtime: RuntimeDep,
    session: DbSession,
) -> PaymentView:
    """Order a credit pack through WeChat Pay: `code_url` (QR code) or, with `scene: h5`,
    `h5_url`. The credits arrive when WeChat Pay confirms the payment."""
    return view(await _create("wechat", body, user, request, runtime, session))


@router.post(
    "/stripe/create",
    response_model=PaymentView,
    responses=documented(PackNotOnSale, WayBackOffSite, GatewayNotConfigured, GatewayRefusedOrder),
)
async def create_stripe(
    body: CreatePayment,
    user: CurrentUser,
    request: Request,
    runtime: RuntimeDep,
    session: DbSession,
) -> PaymentView:
    """Order a credit pack through Stripe Checkout: send the browser to `checkout_url`."""
    return view(await _create("stripe", body, user, request, runtime, session))


async def _notification(
    provider: GatewayName, request: Request, runtime: Runtime, session: Session
) -> Response:
    body = await request.body()
    answer = await flows.receive_notification(runtime, session, provider, request.headers, body)
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
    page: Page,
) -> PaymentList:
    """Your orders, newest first."""
    rows, total = await service.list_payments(session, user.id, page)
    return PaymentList(
        payments=[view(p) for p in rows], total=total, page=page.page, page_size=page.page_size
    )


@router.get("/{payment_id}", response_model=PaymentView, responses=documented(PaymentNotFound))
async def get_payment(payment_id: str, user: CurrentUser, session: DbSession) -> PaymentView:
    """One of your orders, with its credits, provider and paid_at (docs/api.md §6.3)."""
    return view(await service.owned_payment(session, payment_id, user.id))
