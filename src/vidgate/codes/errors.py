"""What redeeming a code, or managing batches of codes, can fail on.

Each docstring is what the OpenAPI document says about the error on the routes that declare it.
"""

from __future__ import annotations

from vidgate.errors import BadRequest, Conflict, NotFound, TooManyRequests


class CodeNotFound(NotFound):
    """No code is spelled this way (letters and digits; case, dashes and spaces do not matter)."""

    detail = "Code not found"


class CodeAlreadyRedeemed(Conflict):
    """This account has redeemed this code already; a code adds credits once per account."""

    detail = "You have already redeemed this code"


class CodeExpired(BadRequest):
    """The code's batch expired: it can no longer be redeemed."""

    detail = "This code has expired"


class CodeUsedUp(BadRequest):
    """The code has been redeemed as many times as it may be."""

    detail = "This code has been used up"


class CodeDisabled(BadRequest):
    """An operator disabled the code, or its whole batch: it can no longer be redeemed."""

    detail = "This code is no longer valid"


class TooManyRedemptionAttempts(TooManyRequests):
    """Too many codes tried by this account in a short time; wait and try again."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many codes tried. Try again in {retry_after} seconds.", retry_after=retry_after
        )


class BatchNotFound(NotFound):
    """No batch of codes has this id."""

    detail = "Batch not found"


class RedemptionCodeNotFound(NotFound):
    """No redemption code has this id."""

    detail = "Redemption code not found"


class BatchAlreadyDisabled(Conflict):
    """The batch was disabled before; nothing changed."""

    detail = "This batch is already disabled"


class CodeAlreadyDisabled(Conflict):
    """The code was disabled before; nothing changed."""

    detail = "This code is already disabled"


class InvalidBatch(BadRequest):
    """The batch asked for cannot be made: it must expire in the future (or never), and its
    credits, count and uses must be within their limits."""

    detail = "Invalid batch"
