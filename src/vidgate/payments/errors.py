"""What ordering credit packs and reading orders can fail on.

Each docstring is what the OpenAPI document says about the error on the routes that declare it.
"""

from __future__ import annotations

from decimal import Decimal

from vidgate.errors import (
    BadRequest,
    Conflict,
    NotFound,
    NotImplementedFeature,
    ServiceUnavailable,
)
from vidgate.payments.currency import to_major


class PackNotOnSale(BadRequest):
    """No credit pack on sale has these credits at this amount in this currency."""

    def __init__(self, credits: int, amount: Decimal, currency: str, offers: str) -> None:
        super().__init__(
            f"No credit pack of {credits} credits for {amount} {currency}. Packs: {offers}"
        )


class CurrencyNotSold(BadRequest):
    """The gateway does not sell in this currency (WeChat Pay sells in CNY only)."""

    detail = "WeChat Pay sells in CNY only"


class WayBackOffSite(BadRequest):
    """A return_url or cancel_url is not on vidgate's own origin or a front end of this
    deployment."""

    def __init__(self, field: str, allowed: list[str]) -> None:
        super().__init__(f"{field} must be on {' or '.join(allowed)}")


class GatewayNotConfigured(NotImplementedFeature):
    """This payment gateway is not configured on this server."""

    def __init__(self, label: str) -> None:
        super().__init__(f"{label} is not configured on this server")


class GatewayRefusedOrder(ServiceUnavailable):
    """The payment gateway did not accept the order (it refused, or did not answer)."""

    def __init__(self, label: str) -> None:
        super().__init__(f"{label} did not accept the order; try again later")


class PaymentNotFound(NotFound):
    """There is no order with this id, or it is not the caller's."""

    detail = "Payment not found"


class PaymentNotRefundable(Conflict):
    """Only a paid order can be refunded; this one was never paid (pending, failed or
    expired)."""

    def __init__(self, status: str) -> None:
        super().__init__(f"Only a paid order can be refunded; this one is {status}")


class PaymentUnderDispute(Conflict):
    """The order is under dispute at the gateway: it cannot be refunded until the dispute is
    closed."""

    detail = "The order is under dispute; refund it once the dispute is closed"


class RefundTooLarge(Conflict):
    """The refund is more than what remains refundable of the order (refunds made or under way
    and disputes count against it), or nothing remains."""

    def __init__(self, amount_minor: int, left_minor: int, currency: str) -> None:
        super().__init__(
            f"Cannot refund {to_major(amount_minor, currency)} {currency}:"
            f" {to_major(left_minor, currency)} {currency} of the order remains refundable"
        )


class GatewayRefusedRefund(Conflict):
    """The payment gateway refused the refund; nothing was refunded and the refund is recorded
    as failed."""

    def __init__(self, label: str, message: str) -> None:
        super().__init__(f"{label} refused the refund: {message}")


class RefundOutcomeUnknown(ServiceUnavailable):
    """The payment gateway did not answer the refund request: the refund stays pending (and
    keeps its amount from being refunded again) until the gateway's notification settles it."""

    def __init__(self, label: str) -> None:
        super().__init__(
            f"{label} did not answer; the refund stays pending until {label} reports on it"
        )


class RefundNotFound(NotFound):
    """There is no refund with this id for this order."""

    detail = "Refund not found"


class RefundNotUnanswered(Conflict):
    """Only a refund the gateway never answered (pending, without the gateway's id) can be asked
    for again; this one has been answered."""

    def __init__(self, status: str) -> None:
        super().__init__(f"The gateway has answered this refund (it is {status}); nothing to retry")
