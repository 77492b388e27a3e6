"""What managing personal API keys can fail on.

Each docstring is what the OpenAPI document says about the error on the routes that declare it.
"""

from __future__ import annotations

from vidgate.errors import BadRequest, NotAuthenticated, NotFound


class TooManyApiKeys(BadRequest):
    """The account has as many active personal keys as allowed; revoke one first."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"You already have {limit} active API keys; revoke one first")


class ApiKeyNotFound(NotFound):
    """There is no active key with this id, or it is not the caller's."""

    detail = "API key not found"


class KeyOwnerDeleted(NotAuthenticated):
    """The account was deleted while a key was being created for it, which ended its sessions."""
