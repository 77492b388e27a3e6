"""Bodies of `/api/users/*` (docs/api.md §5) plus the ledger history vidgate adds."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from vidgate.admin.schemas import Reason
from vidgate.users.roles import Role
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


# --- the console (`/api/admin/users`) ----------------------------------------------------------


class UserSummaryOut(BaseModel):
    id: str
    phone: str | None
    email: str | None
    username: str
    role: str
    credits: int
    credits_reserved: int
    created_at: datetime
    last_login_at: datetime | None
    suspended_at: datetime | None
    deleted_at: datetime | None


class UserSearchOut(BaseModel):
    users: list[UserSummaryOut]
    total: int
    page: int
    page_size: int


class AdminTaskRow(BaseModel):
    task_id: str
    task_type: str
    model: str
    channel: str | None
    status: str
    credits_charged: int
    credits_refunded: int
    created_at: datetime


class AdminPaymentRow(BaseModel):
    payment_id: str
    provider: str
    status: str
    amount_minor: int
    currency: str
    credits: int
    created_at: datetime
    paid_at: datetime | None


class SessionOut(BaseModel):
    id: str
    method: str
    created_at: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None


class ApiKeyRow(BaseModel):
    id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


class UserDetailOut(BaseModel):
    user: UserSummaryOut
    total_earned: int
    total_spent: int
    available: int
    ledger: list[LedgerEntryOut]
    tasks: list[AdminTaskRow]
    payments: list[AdminPaymentRow]
    sessions: list[SessionOut]
    api_keys: list[ApiKeyRow]


class CreditAdjustment(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    amount: int = Field(ge=-10_000_000, le=10_000_000)  # > 0 grants, < 0 deducts
    reason: Reason
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=100)

    @field_validator("amount")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("amount must not be zero")
        return value


class CreditAdjustmentOut(BaseModel):
    applied: bool  # False: the same idempotency key was used before, nothing moved this time
    ledger_entry_id: int
    credits: int
    credits_reserved: int


class RoleChange(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    role: Role
    reason: Reason


class SignedOutOut(BaseModel):
    sessions_ended: int
