"""Checks shared by request bodies."""

from __future__ import annotations

from pydantic import AfterValidator


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold U+0000; refuse it up front instead of failing on write.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# Put in an `Annotated[str, ...]` of every free-text field that is stored.
NoNul = AfterValidator(_no_nul)
