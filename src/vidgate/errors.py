"""Domain errors carry their HTTP status and a stable message; one handler renders them.

Services raise these; endpoints never build error responses by hand. The body is always the
contract's `{"detail": ...}`.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


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

    app.add_exception_handler(VidgateError, on_vidgate_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
