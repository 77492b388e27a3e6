"""What an account can fail on: it is not there (any more).

Each docstring is what the OpenAPI document says about the error on the routes that declare it.
"""

from __future__ import annotations

from vidgate.errors import NotFound


class UserNotFound(NotFound):
    """The account does not exist, or was deleted while the request was being handled."""

    detail = "User not found"
