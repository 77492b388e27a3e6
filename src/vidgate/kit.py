"""Small shared pieces that several features repeat: the task kinds, parsing an id that may be
malformed, and list paging.

A leaf module: it imports no other vidgate module, so any module may import it.

No `from __future__ import annotations` here: `page_query` builds its parameters' bounds at call
time, and FastAPI reads a dependency's annotations as objects, which string annotations could not
give it (they would be looked up in this module's globals, where the bounds are not).
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, Query
from sqlalchemy import Select

TaskKind = Literal["animate-move", "animate-mix", "text-to-video", "image-to-video"]

_Select = TypeVar("_Select", bound=Select[*tuple[Any, ...]])


def parse_uuid(value: str | None) -> uuid.UUID | None:
    """`value` as a UUID, or None when it is missing, empty or not a UUID (an id nobody has)."""
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class PageRequest:
    """Which page of a list a client asked for (`page` counts from 1)."""

    page: int
    page_size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size

    def apply(self, query: _Select) -> _Select:
        """`query` limited to this page's rows (give it an ORDER BY that is total)."""
        return query.offset(self.offset).limit(self.page_size)


def page_query(
    *, max_page: int = 100_000, default_size: int = 10, max_size: int = 100
) -> Callable[..., PageRequest]:
    """A dependency reading `?page=` (1 to `max_page`, default 1) and `?page_size=` (1 to
    `max_size`, default `default_size`) into a `PageRequest`."""

    def page_request(
        page: Annotated[int, Query(ge=1, le=max_page)] = 1,
        page_size: Annotated[int, Query(ge=1, le=max_size)] = default_size,
    ) -> PageRequest:
        return PageRequest(page, page_size)

    return page_request


# The paging of the task and payment lists: page 1-100000, page_size 1-100 (default 10).
Page = Annotated[PageRequest, Depends(page_query())]
