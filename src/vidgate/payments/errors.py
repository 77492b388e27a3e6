"""What ordering credit packs and reading orders can fail on.

Each docstring is what the OpenAPI document says about the error on the routes that declare it.
"""

from __future__ import annotations

from decimal import Decimal

from vidgate.errors import BadRequest, NotFound, NotImplementedFeature, ServiceUnavailable


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
