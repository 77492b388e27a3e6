"""The OpenAPI document describes every error an operation answers, with the body it has."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from vidgate.app import create_app, openapi_document
from vidgate.config import Settings
from vidgate.openapi import DOMAIN_ERRORS, ErrorBody, ValidationErrorBody

REF = "#/components/schemas/"
# Operations that answer from memory alone: no database, so no 503.
NO_DATABASE = {"GET /healthz", "GET /api/payments/packages", "GET /api/web/config"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document()


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
    assert create["402"]["description"] == "Insufficient credits"
    assert create["409"]["description"] == "Same Idempotency-Key still in flight"
    assert ops["POST /api/videos/upload"]["responses"]["413"]["description"] == "File too large"
    events = ops["GET /api/tasks/{task_id}/events"]["responses"]["200"]
    assert "text/event-stream" in events["content"]


def test_every_listed_domain_error_names_a_real_operation(document: dict[str, Any]) -> None:
    ops = operations(document)
    assert set(DOMAIN_ERRORS) <= set(ops)
    for name, errors in DOMAIN_ERRORS.items():
        for status in errors:
            assert str(status) in ops[name]["responses"], (name, status)


def test_the_document_is_built_once(tmp_path: Path) -> None:
    app = create_app(Settings(env="development", data_dir=tmp_path), "postgresql://unused/unused")
    assert app.openapi() is app.openapi()
