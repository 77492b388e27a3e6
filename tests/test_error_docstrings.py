"""Every error vidgate answers with says, in its docstring, when it happens: the OpenAPI document
describes a route's errors with those docstrings (`vidgate.errors.documented`)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

import vidgate
from vidgate.errors import BadRequest, VidgateError, describe, documented

PACKAGE = Path(vidgate.__file__).parent


def import_every_module() -> None:
    """Import the whole package (not the migrations, which run only under Alembic), so every
    error class is defined."""
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if "migrations" in parts:
            continue
        if parts[-1] == "__init__":
            parts.pop()
        importlib.import_module(".".join(parts))


def subclasses(cls: type[VidgateError]) -> Iterator[type[VidgateError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)


def vidgate_errors() -> list[type[VidgateError]]:
    import_every_module()
    found = {cls for cls in subclasses(VidgateError) if cls.__module__.startswith("vidgate.")}
    return sorted(found, key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")


def test_the_package_has_named_errors() -> None:
    names = {cls.__name__ for cls in vidgate_errors()}
    assert {"TaskNotFound", "InsufficientCredits", "InvalidPhoneNumber"} <= names


@pytest.mark.parametrize("error", vidgate_errors(), ids=lambda cls: cls.__qualname__)
def test_every_error_says_when_it_happens(error: type[VidgateError]) -> None:
    # Its own docstring: a class's __doc__ is not inherited.
    doc = describe(error)
    assert doc, f"{error.__module__}.{error.__qualname__} has no docstring"
    assert doc.endswith("."), f"{error.__qualname__}: end the sentence with a period"


def test_documented_takes_only_named_errors_with_docstrings() -> None:
    with pytest.raises(TypeError, match="generic BadRequest"):
        documented(BadRequest)

    class Undocumented(BadRequest):
        pass

    with pytest.raises(TypeError, match="no docstring"):
        documented(Undocumented)
