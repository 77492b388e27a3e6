"""Bodies of `/api/users/*` (docs/api.md §5) plus the ledger history vidgate adds."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from vidgate.validation import NoNul


class ProfileResponse(BaseModel):
    id: str
    email: str | None = None
    username: str | None = None
    avatar_url: str | None = None
    region: str
    credits: int
    created_at: datetime
    last_login_at: datetime | None = None
    phone_number: str | None = None  # an addition to the base API (docs/api.md §1.4)


class ProfileUpdate(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    username: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=50), NoNul]
        | None
    ) = None
    avatar_url: str | None = Field(default=None, max_length=2048)

    @field_validator("username")
    @classmethod
    def _username_present(cls, value: str | None) -> str | None:
        if value is None:
            raise ValueError("username cannot be null")
        return value

    @field_validator("avatar_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = AnyHttpUrl(value)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("avatar_url must be an http(s) URL")
        return str(url)  # the checked, absolute form, not what was typed


class CreditsResponse(BaseModel):
    user_id: str
    credits: int
    total_earned: int
    total_spent: int
    credits_reserved: int  # addition: held for running metered tasks
    available: int  # addition: credits - credits_reserved


class LedgerEntryOut(BaseModel):
    id: int
    delta: int
    reserved_delta: int
    kind: str
    reference: str | None
    balance_after: int
    reserved_after: int
    note: str | None
    created_at: datetime


class TransactionsResponse(BaseModel):
    transactions: list[LedgerEntryOut]
    total: int
    page: int
    page_size: int


class MessageResponse(BaseModel):
    message: str
