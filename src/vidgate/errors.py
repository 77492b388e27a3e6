"""Domain errors carry their HTTP status and a stable message; one handler renders them.

The classes here are the generic kinds, one per status. Each feature names its own failures as
subclasses of them in its `errors.py` (`tasks.errors.TaskNotFound(NotFound)`), each with a
docstring saying when it happens; services raise those, and routes declare the ones they can
answer with `responses=documented(...)`, which is what the OpenAPI document says about them.
Endpoints never build error responses by hand. The body is always the contract's
`{"detail": ...}`.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import psycopg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from procrastinate.exceptions import ConnectorException
from psycopg_pool import PoolTimeout
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = structlog.get_logger(__name__)

# How long a client is asked to wait before trying again when the database is unreachable.
DATABASE_RETRY_AFTER_SECONDS = 5

# What an unreachable, restarting or saturated database raises, through SQLAlchemy, psycopg or
# procrastinate. A constraint violation or a bad query is a bug, not an outage: not listed.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,  # the pool had no connection to give in time
    psycopg.OperationalError,
    psycopg.InterfaceError,
    PoolTimeout,
    ConnectorException,
)


def is_database_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, DATABASE_UNAVAILABLE)


class VidgateError(Exception):
    """A failure the client is told about: its status, a sentence, and any headers."""

    status_code = 400
    detail = "Bad request"

    def __init__(self, detail: str | None = None, *, headers: Mapping[str, str] | None = None):
        super().__init__(detail or self.detail)
        self.detail = detail or self.detail
        self.headers = dict(headers or {})


class BadRequest(VidgateError):
    """400: the request is well-formed but cannot be carried out as sent."""

    status_code = 400


class NotAuthenticated(VidgateError):
    """401: no credentials, or credentials that are not (or no longer) valid."""

    status_code = 401
    detail = "Not authenticated"

    def __init__(self, detail: str | None = None, *, headers: Mapping[str, str] | None = None):
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer", **(headers or {})})


class PaymentRequired(VidgateError):
    """402: the account lacks the credits the request costs."""

    status_code = 402


class Forbidden(VidgateError):
    """403: the caller is known but may not do this."""

    status_code = 403
    detail = "Not allowed"


class NotFound(VidgateError):
    """404: no such thing, or not one the caller may see."""

    status_code = 404
    detail = "Not found"


class Conflict(VidgateError):
    """409: the request collides with another one still in progress."""

    status_code = 409


class Unprocessable(VidgateError):
    """422: the request's content is refused (not its shape: that is a validation error)."""

    status_code = 422


class TooManyRequests(VidgateError):
    """429: a limit was reached; `Retry-After` says when to try again."""

    status_code = 429

    def __init__(self, detail: str, *, retry_after: int):
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = retry_after


class NotImplementedFeature(VidgateError):
    """501: the feature is not configured on this server."""

    status_code = 501


class ServiceUnavailable(VidgateError):
    """503: something vidgate depends on did not answer; the request may be retried."""

    status_code = 503


class DeclaredErrors(dict[str, Any]):
    """One status of a route's `responses=`: FastAPI's entry (a description), and the error
    classes it was built from, kept for the tests that check every error is declared."""

    def __init__(self, errors: tuple[type[VidgateError], ...]) -> None:
        super().__init__(description=" ".join(describe(error) for error in errors))
        self.errors = errors


def describe(error: type[VidgateError]) -> str:
    """The error's docstring on one line: what the document says about it."""
    return " ".join(inspect.cleandoc(error.__doc__ or "").split())


def documented(*errors: type[VidgateError]) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that can answer with `errors`: one entry per status, described
    by the docstrings of that status's errors in the order given.

    Only named errors are declared (a feature's subclasses), not the generic kinds above. The
    route's authentication (401/403), validation (422) and database (503) answers are derived by
    `vidgate.openapi` and need no declaration; a declared error with one of those statuses adds
    its sentence to the derived one.
    """
    by_status: dict[int, list[type[VidgateError]]] = {}
    for error in errors:
        if error.__module__ == __name__:
            raise TypeError(f"declare a named error, not the generic {error.__name__}")
        if not describe(error):
            raise TypeError(f"{error.__name__} has no docstring to document it with")
        by_status.setdefault(error.status_code, []).append(error)
    return {status: DeclaredErrors(tuple(group)) for status, group in sorted(by_status.items())}


def install_error_handlers(app: FastAPI) -> None:
    async def on_vidgate_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, VidgateError)
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    async def on_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        """Database outages become a 503 the client may retry; anything else is a JSON 500
        (the traceback goes to the log, never to the client)."""
        if is_database_unavailable(exc):
            logger.warning("database.unavailable", path=request.url.path, error=repr(exc)[:300])
            return JSONResponse(
                {"detail": "The service is briefly unavailable; try again shortly"},
                status_code=503,
                headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
            )
        logger.error("request.failed", path=request.url.path, exc_info=exc)
        return JSONResponse({"detail": "Internal server error"}, status_code=500)

    app.add_exception_handler(VidgateError, on_vidgate_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    for database_error in (*DATABASE_UNAVAILABLE, sa_exc.DBAPIError):
        app.add_exception_handler(database_error, on_unexpected_error)
    app.add_exception_handler(Exception, on_unexpected_error)
