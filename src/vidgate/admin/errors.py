"""What the console can refuse: the caller is not an operator, not one of high enough rank, or
has not passed the second factor.

Each docstring is what the OpenAPI document says about the error on the routes that declare it.
"""

from __future__ import annotations

from vidgate.errors import BadRequest, Conflict, Forbidden, TooManyRequests, Unprocessable


class OperatorsOnly(Forbidden):
    """The caller is signed in but is not an operator (support or admin)."""

    detail = "Operators only"


class AdminsOnly(Forbidden):
    """The action needs the admin role; the caller is support."""

    detail = "Admins only"


class SecondFactorRequired(Forbidden):
    """This server asks operators for a TOTP code: enrol (`/api/admin/totp/enroll`) or verify
    (`/api/admin/totp/verify`) in this session first."""

    detail = "Second factor required: verify a TOTP code first"


class SecondFactorNotEnrolled(Conflict):
    """The operator has no confirmed TOTP factor yet: enrol first."""

    detail = "No second factor enrolled"


class SecondFactorAlreadyEnrolled(Conflict):
    """The operator has a confirmed TOTP factor; an admin must reset it before a new one."""

    detail = "A second factor is already enrolled"


class SecondFactorRejected(BadRequest):
    """The TOTP code (or recovery code) is wrong, expired or was used already."""

    detail = "Invalid or already used code"


class TooManySecondFactorTries(TooManyRequests):
    """Too many codes tried for this operator in a short time; wait and try again."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many codes tried. Try again in {retry_after} seconds.", retry_after=retry_after
        )


class DateRangeInvalid(Unprocessable):
    """`until` is before `since`, or the range is longer than 366 days."""

    detail = "The date range must run forwards and span at most 366 days"
