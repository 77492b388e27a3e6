"""The OpenAPI document, with every error an operation can answer and the body it really has.

FastAPI documents only the successful answer, a 422 it believes is always a list of field errors,
and what a route lists in `responses=`. vidgate's errors are rendered by one handler
(`vidgate.errors`) as `{"detail": "…"}`, and its own 422s (a bad phone number, a reused
Idempotency-Key, a malformed upload) carry a string `detail`.

`install_openapi` post-processes FastAPI's document once per process. Which codes an operation
documents comes from facts about it:

- its dependencies: the authentication ones answer 401 (and "JWT + API Key" 403), and everything
  that opens a database connection (a session, or an authentication lookup) can answer 503 when
  the database is unreachable (with `Retry-After`);
- whether it has parameters or a body (422);
- what the route declares in `responses=`: `responses=documented(TaskNotFound, ...)` names the
  domain errors the endpoint and the services it calls raise, each described by its class's
  docstring (`vidgate.errors.documented`). A declared status the dependencies also give (a 401,
  a 422, a 503) gets both descriptions, the derived one first. The tests check that every error
  raised in the package is declared on some route.

Every error answer gets the body it has: `ErrorBody`, or `ValidationErrorBody` for a 422.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, Field

from vidgate.auth.dependencies import api_key, current_user, user_with_key
from vidgate.deps import get_db_session

REF = "#/components/schemas/"


class ErrorBody(BaseModel):
    """Every error vidgate answers except a 422: one human-readable sentence."""

    detail: str = Field(description="What went wrong, in a sentence")


class FieldError(BaseModel):
    """One field a request got wrong, as the validation handler reports it."""

    loc: list[str | int] = Field(description='Where: e.g. ["body", "prompt"]')
    msg: str = Field(description="What is wrong with it")
    type: str = Field(description="A stable error kind, e.g. missing, string_too_long")


class ValidationErrorBody(BaseModel):
    """A 422: the field errors of a request that does not fit the schema, or one sentence when
    vidgate itself refuses the content (an invalid phone number, a reused Idempotency-Key, a
    malformed upload)."""

    detail: str | list[FieldError]


# Operations whose 503 is their own answer rather than an error body.
OWN_503 = {"GET /readyz": "Not ready: the database does not answer or is not migrated"}

AUTHENTICATION: dict[Callable[..., Any], str] = {
    current_user: "A Bearer access token that is missing, expired, forged or of an ended session",
    api_key: "An X-API-Key that is missing, unknown, revoked or expired, or a bad Bearer token",
    user_with_key: "No API key, an invalid key or Bearer token, or a client key without a Bearer"
    " token",
}
# Dependencies that open a database connection (authentication looks up sessions and keys).
DATABASE = frozenset({get_db_session, *AUTHENTICATION})

DESCRIPTIONS = {
    400: "The body is not text a JSON parser can read (for example, not UTF-8)",
    401: "Not authenticated",
    403: "The API key belongs to another user than the Bearer token",
    422: "The request does not fit the schema (field errors), or its content is refused",
    503: "The database is unavailable; retry after Retry-After seconds",
}


def install_openapi(app: FastAPI) -> None:
    """Serve FastAPI's document with the errors documented, built on first use and kept."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_errors(generate(), app)
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document_errors(document: dict[str, Any], app: FastAPI) -> None:
    """Add the error answers of every operation of `app` to `document`, in place."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in (ErrorBody, ValidationErrorBody):
        schema = model.model_json_schema(ref_template=REF + "{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    # Included routers are kept as such (not copied into app.routes): walk them as FastAPI does.
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        path = route.path_format
        for method in sorted(route.methods or ()):
            operation = document["paths"].get(path, {}).get(method.lower())
            if operation is not None:
                _document_operation(f"{method} {path}", operation, route.dependant)
    # FastAPI's 422 schemas are replaced everywhere; drop them unless something else uses them.
    for name in ("HTTPValidationError", "ValidationError"):
        definition = schemas.pop(name, None)
        if definition is not None and json.dumps(REF + name) in json.dumps(document):
            schemas[name] = definition


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _document_operation(name: str, operation: dict[str, Any], dependant: Dependant) -> None:
    calls = set(_calls(dependant))
    errors: dict[int, list[str]] = {}

    def add(status: int, description: str) -> None:
        errors.setdefault(status, []).append(description)

    auth = [text for call, text in AUTHENTICATION.items() if call in calls]
    if auth:
        add(401, f"{DESCRIPTIONS[401]}: {auth[0][0].lower()}{auth[0][1:]}")
    if user_with_key in calls:
        add(403, DESCRIPTIONS[403])
    if dependant.body_params:
        # FastAPI answers this itself when decoding the body fails other than as bad JSON.
        add(400, DESCRIPTIONS[400])
    if operation.get("parameters") or operation.get("requestBody"):
        add(422, DESCRIPTIONS[422])
    touches_database = bool(calls & DATABASE)
    if touches_database:
        add(503, DESCRIPTIONS[503])

    responses: dict[str, Any] = operation.setdefault("responses", {})
    # What the route declared itself (its domain errors) gets the body it really has as well.
    for code in responses:
        if code.isdigit() and int(code) >= 400:
            errors.setdefault(int(code), [])
    for status, descriptions in errors.items():
        declared = responses.setdefault(str(status), {})
        # The derived descriptions first, then what the route declared (FastAPI's stock 422
        # text is not a declaration).
        own = declared.get("description")
        if own and own != "Validation Error":
            descriptions = [*descriptions, own]
        declared["description"] = " ".join(_sentence(text) for text in descriptions)
        body = ValidationErrorBody if status == 422 else ErrorBody
        content = declared.setdefault("content", {})
        json_body = content.setdefault("application/json", {})
        if json_body.get("schema", {}).get("$ref") in (None, REF + "HTTPValidationError"):
            json_body["schema"] = {"$ref": REF + body.__name__}
        for header, definition in _headers(status, touches_database).items():
            declared.setdefault("headers", {}).setdefault(header, definition)
    if name in OWN_503:
        ok_schema = responses["200"]["content"]["application/json"]["schema"]
        responses.setdefault(
            "503",
            {
                "description": OWN_503[name],
                "content": {"application/json": {"schema": ok_schema}},
            },
        )
    operation["responses"] = dict(sorted(responses.items()))


def _sentence(text: str) -> str:
    return text if text.endswith(".") else text + "."


def _headers(status: int, touches_database: bool) -> dict[str, Any]:
    """The headers vidgate sends with `status`: every 401 names the scheme, every 429 and a
    database 503 say when to retry (other 503s, from a vendor, do not)."""
    if status == 401:
        return {
            "WWW-Authenticate": {
                "description": "Always `Bearer`",
                "required": True,
                "schema": {"type": "string"},
            }
        }
    if status == 429:
        return {
            "Retry-After": {
                "description": "Seconds until the limit lets a request through again",
                "required": True,
                "schema": {"type": "integer", "minimum": 1},
            }
        }
    if status == 503 and touches_database:
        return {
            "Retry-After": {
                "description": "Seconds to wait before retrying (sent when the database is"
                " unavailable)",
                "required": False,
                "schema": {"type": "integer", "minimum": 1},
            }
        }
    return {}
