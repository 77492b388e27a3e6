"""Errors of the provenance endpoint."""

from __future__ import annotations

from vidgate.errors import NotFound


class NoResult(NotFound):
    """The task has no stored result (yet, or any more) whose labels could be checked."""

    detail = "The task has no result to verify"
