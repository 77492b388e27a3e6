"""Bodies of `/api/users/api-keys`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from vidgate.validation import NoNul


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NoNul
    ]


class ApiKeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    kind: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class ApiKeyCreated(BaseModel):
    id: str
    name: str
    key: str  # shown once; only its hash is kept
    prefix: str
    created_at: datetime


class ApiKeyList(BaseModel):
    api_keys: list[ApiKeyOut]
