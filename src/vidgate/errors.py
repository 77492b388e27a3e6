"""Domain errors carry their HTTP status and a stable message; one handler renders them.

Services raise these; endpoints never build error responses by hand. The body is always the
contract's `{"detail": ...}`.
"""

from __future__ import annotations

from collections.abc import Mapping

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
    status_code = 400
    detail = "Bad request"

    def __init__(self, detail: str | None = None, *, headers: Mapping[str, str] | None = None):
        super().__init__(detail or self.detail)
        self.detail = detail or self.detail
        self.headers = dict(headers or {})


class BadRequest(VidgateError):
    status_code = 400


class NotAuthenticated(VidgateError):
    status_code = 401
    detail = "Not authenticated"

    def __init__(self, detail: str | None = None, *, headers: Mapping[str, str] | None = None):
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer", **(headers or {})})


class PaymentRequired(VidgateError):
    status_code = 402


class Forbidden(VidgateError):
    status_code = 403
    detail = "Not allowed"


class NotFound(VidgateError):
    status_code = 404
    detail = "Not found"


class Conflict(VidgateError):
    status_code = 409


class Unprocessable(VidgateError):
    status_code = 422


class TooManyRequests(VidgateError):
    status_code = 429

    def __init__(self, detail: str, *, retry_after: int):
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = retry_after


class NotImplementedFeature(VidgateError):
    status_code = 501


class ServiceUnavailable(VidgateError):
    status_code = 503


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
