"""What an account can fail on: it is not there (any more).

Each docstring is what the OpenAPI document says about the error on the routes that declare it.
"""

from __future__ import annotations

from vidgate.errors import Conflict, Forbidden, NotFound


class UserNotFound(NotFound):
    """The account does not exist, or was deleted while the request was being handled."""

    detail = "User not found"


class AdjustmentOverSupportLimit(Forbidden):
    """Support may grant or deduct at most `VIDGATE_SUPPORT_ADJUST_LIMIT` credits at a time;
    larger adjustments need an admin."""

    detail = "Adjustments this large need an admin"


class OwnRoleUnchangeable(Conflict):
    """An operator cannot change their own role or suspend or delete their own account (another
    admin must)."""

    detail = "Operators cannot change their own role or account state"


class AlreadyInThatState(Conflict):
    """The account is already suspended (or not suspended, or deleted)."""

    detail = "The account is already in that state"
