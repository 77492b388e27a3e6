"""The OpenAPI document describes every error an operation answers, with the body it has.

Routes declare their domain errors (`responses=documented(TaskNotFound, ...)`); the checks here
find every error class the package raises in its source and require each to be declared on some
route, and every declared one to be raised and to be in the document.
"""

from __future__ import annotations

import ast
import importlib
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

import vidgate
import vidgate.errors
from vidgate.app import create_app, openapi_document
from vidgate.config import Settings
from vidgate.credits.service import InsufficientCredits
from vidgate.errors import DeclaredErrors, VidgateError, describe, documented
from vidgate.media.errors import StorageQuotaExceeded
from vidgate.media.multipart import UploadTooLarge
from vidgate.moderation.errors import ScreeningUnavailable
from vidgate.openapi import ErrorBody, ValidationErrorBody
from vidgate.tasks.errors import (
    IdempotencyKeyInFlight,
    RemoteFetchesBusy,
    TaskAlreadyFinished,
    TaskNotFound,
)

from ..fixtures.source import parse

REF = "#/components/schemas/"
PACKAGE = Path(vidgate.__file__).parent
# Operations that answer from memory alone: no database, so no 503.
NO_DATABASE = {
    "GET /healthz",
    "GET /api/payments/packages",
    "GET /api/web/config",
    "OPTIONS /api/uploads/tus/",  # the tus capabilities: constants, no authentication
}
# Where errors are raised that no route declares: the authentication dependencies (the document
# derives their 401 and 403 from the dependencies a route has) and /metrics (not in the document).
UNDECLARED_SOURCES = {"vidgate.auth.dependencies", "vidgate.auth.tokens", "vidgate.observability"}
# What the document derives for an operation rather than reading from a declaration.
DERIVED_STATUSES = {"400", "401", "403", "422", "503"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    """The app `openapi_document` describes (a development server), for its routes."""
    settings = Settings(env="development", data_dir=tmp_path_factory.mktemp("openapi"))
    return create_app(settings, "postgresql://unused/unused")


def operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def body_validator(document: dict[str, Any], name: str) -> OAS31Validator:
    """Validates instances against a component schema (its references resolve in the root)."""
    return OAS31Validator({"$ref": REF + name, "components": document["components"]})


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_operations_taking_input_document_422_as_a_message_or_field_errors(
    document: dict[str, Any],
) -> None:
    for name, operation in operations(document).items():
        if not (operation.get("parameters") or operation.get("requestBody")):
            continue
        answer = operation["responses"].get("422")
        assert answer is not None, name
        schema = answer["content"]["application/json"]["schema"]
        assert schema == {"$ref": REF + "ValidationErrorBody"}, name
    validator = body_validator(document, "ValidationErrorBody")
    field_errors = {"detail": [{"loc": ["body", "prompt"], "msg": "Field required", "type": "x"}]}
    assert validator.is_valid(field_errors)
    assert validator.is_valid({"detail": "Invalid phone number: 123"})
    assert not validator.is_valid({"detail": 422})
    assert not validator.is_valid({})


def test_operations_reaching_the_database_document_503_with_retry_after(
    document: dict[str, Any],
) -> None:
    without = set()
    for name, operation in operations(document).items():
        answer = operation["responses"].get("503")
        if answer is None:
            without.add(name)
            continue
        if name == "GET /readyz":  # its own report, the 200 body
            continue
        assert answer["content"]["application/json"]["schema"] == {"$ref": REF + "ErrorBody"}
        assert answer["headers"]["Retry-After"]["schema"]["type"] == "integer", name
    assert without == NO_DATABASE


def test_every_error_answer_has_a_json_body(document: dict[str, Any]) -> None:
    for name, operation in operations(document).items():
        for status, answer in operation["responses"].items():
            if int(status) < 400 or name == "GET /readyz":
                continue
            schema = answer["content"]["application/json"]["schema"]
            expected = "ValidationErrorBody" if status == "422" else "ErrorBody"
            assert schema == {"$ref": REF + expected}, (name, status)
            assert answer["description"], (name, status)


def test_error_bodies_are_what_the_handlers_send(document: dict[str, Any]) -> None:
    validator = body_validator(document, "ErrorBody")
    assert validator.is_valid({"detail": "Task not found"})
    assert not validator.is_valid({"detail": ["Task not found"]})
    schemas = document["components"]["schemas"]
    assert schemas["ErrorBody"] == ErrorBody.model_json_schema(ref_template=REF + "{model}")
    assert "ValidationErrorBody" in schemas and ValidationErrorBody.__name__ in schemas
    # FastAPI's own 422 schema (a list only) is gone.
    assert "HTTPValidationError" not in schemas


def test_authentication_is_documented_where_it_is_required(document: dict[str, Any]) -> None:
    ops = operations(document)
    for name, operation in ops.items():
        if operation.get("security"):
            answer = operation["responses"]["401"]
            assert answer["headers"]["WWW-Authenticate"]["required"] is True, name
    # "JWT + API Key": a personal key of someone else next to a Bearer token.
    assert "403" in ops["POST /api/videos/text-to-video"]["responses"]
    assert "403" in ops["POST /api/videos/upload"]["responses"]
    assert "403" not in ops["GET /api/auth/me"]["responses"]
    assert "401" not in ops["GET /healthz"]["responses"]


def test_rate_limited_operations_document_429_with_retry_after(document: dict[str, Any]) -> None:
    ops = operations(document)
    for name in (
        "POST /api/auth/sms/send",
        "POST /api/auth/sms/login",
        "POST /api/auth/google/login",
        "POST /api/videos/text-to-video",
        "POST /api/tasks/{task_id}/retry",
    ):
        answer = ops[name]["responses"]["429"]
        assert answer["headers"]["Retry-After"]["required"] is True, name


def test_what_routes_declare_is_kept(document: dict[str, Any]) -> None:
    ops = operations(document)
    create = ops["POST /api/videos/text-to-video"]["responses"]
    assert create["402"]["description"] == describe(InsufficientCredits)
    assert create["409"]["description"] == describe(IdempotencyKeyInFlight)
    upload = ops["POST /api/videos/upload"]["responses"]
    assert upload["413"]["description"] == (
        f"{describe(UploadTooLarge)} {describe(StorageQuotaExceeded)}"
    )
    events = ops["GET /api/tasks/{task_id}/events"]["responses"]
    assert "text/event-stream" in events["200"]["content"]
    assert events["404"]["description"] == describe(TaskNotFound)


def test_a_declared_status_adds_to_the_derived_description(document: dict[str, Any]) -> None:
    ops = operations(document)
    cancel = ops["DELETE /api/tasks/{task_id}"]["responses"]
    assert cancel["400"]["description"] == describe(TaskAlreadyFinished)
    assert cancel["404"]["description"] == describe(TaskNotFound)
    # The database's 503, then the server's own (its remote fetches are busy, the prompt screen
    # did not answer), in that order.
    busy = ops["POST /api/videos/text-to-video"]["responses"]["503"]["description"]
    assert busy.startswith("The database is unavailable")
    fetching = busy.index(describe(RemoteFetchesBusy))
    assert busy.endswith(describe(ScreeningUnavailable)), busy
    assert fetching < busy.index(describe(ScreeningUnavailable))


def test_documented_builds_one_entry_per_status() -> None:
    class Gone(vidgate.errors.NotFound):
        """Gone for good."""

    class Busy(vidgate.errors.Conflict):
        """Busy now."""

    class Elsewhere(vidgate.errors.NotFound):
        """Moved."""

    responses = documented(Gone, Busy, Elsewhere)
    assert responses == {
        404: {"description": "Gone for good. Moved."},
        409: {"description": "Busy now."},
    }
    declared = responses[404]
    assert isinstance(declared, DeclaredErrors)
    assert declared.errors == (Gone, Elsewhere)


# What the package raises and what its routes declare.


def modules() -> Iterator[tuple[str, Path]]:
    """Every module of the package but the migrations (which run only under Alembic)."""
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if "migrations" in parts:
            continue
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path


def resolve(node: ast.expr, namespace: dict[str, Any]) -> Any:
    """What a name or dotted name means in a module (None when it is anything else)."""
    if isinstance(node, ast.Name):
        return namespace.get(node.id)
    if isinstance(node, ast.Attribute):
        return getattr(resolve(node.value, namespace), node.attr, None)
    return None


def raised_errors() -> dict[type[VidgateError], set[str]]:
    """Every error class the package's source constructs, with the modules that do (a raise
    of a class, or of an instance made first, as the ledger does)."""
    found: dict[type[VidgateError], set[str]] = defaultdict(set)
    for name, path in modules():
        namespace = vars(importlib.import_module(name))
        for node in ast.walk(parse(path.read_text(), str(path))):
            target = None
            if isinstance(node, ast.Call):
                target = resolve(node.func, namespace)
            elif isinstance(node, ast.Raise) and node.exc is not None:
                target = resolve(node.exc, namespace)
            if isinstance(target, type) and issubclass(target, VidgateError):
                found[target].add(name)
    return found


def declarations(app: FastAPI) -> dict[str, tuple[type[VidgateError], ...]]:
    """The errors each operation of the document declares, by operation."""
    declared: dict[str, tuple[type[VidgateError], ...]] = {}
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        errors = tuple(
            error
            for entry in route.responses.values()
            if isinstance(entry, DeclaredErrors)
            for error in entry.errors
        )
        for method in route.methods or ():
            declared[f"{method} {route.path_format}"] = errors
    return declared


@pytest.fixture(scope="module")
def raised() -> dict[type[VidgateError], set[str]]:
    return raised_errors()


def test_the_source_scan_finds_what_is_raised(raised: dict[type[VidgateError], set[str]]) -> None:
    assert raised[TaskNotFound] >= {"vidgate.tasks.service", "vidgate.tasks.endpoints"}
    assert "vidgate.credits.service" in raised[InsufficientCredits]  # made, then raised


def test_only_named_errors_are_raised(raised: dict[type[VidgateError], set[str]]) -> None:
    generic = {
        error.__name__: sorted(where)
        for error, where in raised.items()
        if error.__module__ == vidgate.errors.__name__ and where != {vidgate.errors.__name__}
    }
    assert generic == {}, "raise a named error (a feature's errors.py), not a generic one"


def test_every_error_raised_is_declared_on_a_route(
    app: FastAPI, raised: dict[type[VidgateError], set[str]]
) -> None:
    declared = {error for errors in declarations(app).values() for error in errors}
    undeclared = {
        f"{error.__module__}.{error.__qualname__}": sorted(where)
        for error, where in raised.items()
        if error.__module__ != vidgate.errors.__name__
        and not where <= UNDECLARED_SOURCES
        and not any(issubclass(error, family) for family in declared)
    }
    assert undeclared == {}, "declare these on the routes that answer them: responses=documented()"


def test_every_declared_error_is_raised(
    app: FastAPI, raised: dict[type[VidgateError], set[str]]
) -> None:
    for name, errors in declarations(app).items():
        for error in errors:
            # A family (InputRejected) is declared for its members.
            assert any(issubclass(made, error) for made in raised), (name, error.__name__)


def test_declared_errors_are_in_the_document_and_nothing_else_is(
    app: FastAPI, document: dict[str, Any]
) -> None:
    ops = operations(document)
    declared = declarations(app)
    assert set(declared) == set(ops)
    for name, errors in declared.items():
        responses = ops[name]["responses"]
        for error in errors:
            answer = responses[str(error.status_code)]
            assert describe(error) in answer["description"], (name, error.__name__)
        statuses = {str(error.status_code) for error in errors}
        for status in responses:
            if int(status) >= 400 and name != "GET /readyz":
                assert status in statuses | DERIVED_STATUSES, (name, status)


def test_the_document_is_built_once(tmp_path: Path) -> None:
    app = create_app(Settings(env="development", data_dir=tmp_path), "postgresql://unused/unused")
    assert app.openapi() is app.openapi()
