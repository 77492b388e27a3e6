"""Who is calling, as the request dependencies and the principal cache hold it.

A leaf of plain value types: `auth.dependencies` makes them, `auth.principal_cache` keeps them,
and neither needs the other (or `deps`) to know their shape.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vidgate.users.models import User

# The user's columns a Principal is made of, in the order the queries select them.
USER_COLUMNS = (
    User.id,
    User.phone,
    User.email,
    User.username,
    User.avatar_url,
    User.region,
    User.credits,
    User.credits_reserved,
    User.created_at,
    User.last_login_at,
    User.role,
)


@dataclass(frozen=True)
class Principal:
    """The signed-in user as read at the start of the request (a snapshot, not an ORM object)."""

    id: uuid.UUID
    phone: str | None
    email: str | None
    username: str
    avatar_url: str | None
    region: str
    credits: int
    credits_reserved: int
    created_at: datetime
    last_login_at: datetime | None
    role: str = "user"  # user, support or admin
    session_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None

    @classmethod
    def from_row(cls, row: Any, **extra: Any) -> Principal:
        return cls(**{c.key: row._mapping[c.key] for c in USER_COLUMNS}, **extra)


@dataclass(frozen=True)
class KeyIdentity:
    id: uuid.UUID
    kind: str
    user_id: uuid.UUID | None
