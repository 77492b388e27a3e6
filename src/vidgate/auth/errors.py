"""What signing in and authenticating can fail on.

Each docstring is what the OpenAPI document says about the error on the routes that declare it.
The errors of the authentication dependencies (a missing or bad token or key) are not declared
on routes: `vidgate.openapi` documents the 401 and 403 of every route that depends on them.
Google's own errors are in `auth.google`, the phone number's in `auth.phones`.
"""

from __future__ import annotations

from vidgate.errors import (
    BadRequest,
    Forbidden,
    NotAuthenticated,
    ServiceUnavailable,
    TooManyRequests,
)

# Sign-in


class TooManyRequestsFromAddress(TooManyRequests):
    """This address has made as many sign-in requests as allowed for now."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many requests from this address. Try again in {retry_after} seconds.",
            retry_after=retry_after,
        )


class TooManyCodesForNumber(TooManyRequests):
    """This number has been sent as many codes as allowed in an hour."""

    def __init__(self, wait: int) -> None:
        super().__init__(
            f"Too many verification codes requested for this number. Try again in {wait} seconds.",
            retry_after=wait,
        )


class CodeResendTooSoon(TooManyRequests):
    """A code was sent to this number less than the resend interval ago."""

    def __init__(self, wait: int) -> None:
        super().__init__(
            f"Please wait {wait} seconds before requesting another code.", retry_after=wait
        )


class SmsCountryNotAllowed(BadRequest):
    """SMS sign-in is not offered for the phone number's country."""

    detail = "SMS sign-in is not available for this country"


class SmsNotSent(ServiceUnavailable):
    """The SMS provider did not take the message."""

    detail = "Could not send the verification code; try again later"


class SmsCodeRejected(BadRequest):
    """The code is wrong, expired or used, or too many wrong codes were tried."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)


class GoogleStateUnknown(BadRequest):
    """The sign-in's state is unknown, expired or used already."""

    detail = "Unknown, expired or already used state; start the sign-in again"


class RedirectUriMismatch(BadRequest):
    """The redirect_uri is not the one the sign-in started with."""

    detail = "redirect_uri does not match the one the sign-in started with"


# Refreshing and sessions


class RefreshTokenInvalid(NotAuthenticated):
    """The refresh token is not one vidgate issued."""

    detail = "Invalid refresh token"


class RefreshTokenReused(NotAuthenticated):
    """The refresh token was used before, after its grace window: its session is revoked."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)


class SessionEnded(NotAuthenticated):
    """The session was signed out, revoked or expired, or its account was deleted."""

    detail = "Session has ended; sign in again"


class AccountSuspended(Forbidden):
    """An operator suspended the account: it cannot sign in or refresh until restored."""

    detail = "This account is suspended"


# Authentication (raised by the dependencies; documented from them, not declared)


class BearerTokenMissing(NotAuthenticated):
    """No Bearer access token was sent."""

    detail = "Not authenticated"


class AccessTokenExpired(NotAuthenticated):
    """The access token has expired; refresh it."""

    detail = "Access token expired"


class AccessTokenInvalid(NotAuthenticated):
    """The access token is not one vidgate signed, or not an access token."""

    detail = "Invalid access token"


class ApiKeyMissing(NotAuthenticated):
    """No X-API-Key header was sent."""

    detail = "Missing API key (X-API-Key header)"


class ApiKeyInvalid(NotAuthenticated):
    """The API key is unknown, revoked or expired, or its owner's account was deleted."""

    detail = "Invalid API key"


class ClientKeyNeedsBearer(NotAuthenticated):
    """A client key was sent without the Bearer access token that says who the user is."""

    detail = "Not authenticated: a client key needs a Bearer access token"


class ApiKeyOfAnotherUser(Forbidden):
    """The personal API key belongs to another user than the Bearer token."""

    detail = "This API key belongs to another user"
