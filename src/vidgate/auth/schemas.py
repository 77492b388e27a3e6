"""Request and response bodies of the sign-in endpoints (docs/api.md §2)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from vidgate.validation import NoNul

PhoneNumber = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=40)]


class StrictBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class SmsSendRequest(StrictBody):
    phone_number: PhoneNumber = Field(examples=["86-13800138000"])


class SmsSendResponse(BaseModel):
    message: str = "Verification code sent successfully"
    phone_number: str
    expires_in: int
    remaining_requests: int


class SmsLoginRequest(StrictBody):
    phone_number: PhoneNumber = Field(examples=["86-13800138000"])
    code: Annotated[str, StringConstraints(pattern=r"^\d{6}$")] = Field(examples=["123456"])
    username: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50), NoNul]
        | None
    ) = None


class RefreshRequest(StrictBody):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int


class MessageResponse(BaseModel):
    message: str


class MeResponse(BaseModel):
    id: str
    phone_number: str | None = None
    email: str | None = None
    username: str
    credits: int
    avatar_url: str | None = None
    region: str
    # Additions to the base API (docs/api.md §1.4):
    credits_reserved: int
    available: int
    created_at: datetime
    last_login_at: datetime | None = None


class OutboxMessage(BaseModel):
    phone_number: str
    code: str
    sent_at: datetime


class OutboxResponse(BaseModel):
    messages: list[OutboxMessage]


# Absolute http(s) URL without whitespace or control characters (they cannot be stored).
_HTTP_URL = r"https?://[^\s\x00-\x1f\x7f]+"
HTTP_URL_PATTERN = f"^{_HTTP_URL}$"
StateParam = Annotated[str, StringConstraints(min_length=1, max_length=64), NoNul]
RedirectUri = Annotated[
    str, StringConstraints(max_length=2048, pattern=f"^(postmessage|{_HTTP_URL})$")
]


class GoogleLoginRequest(StrictBody):
    code: Annotated[str, StringConstraints(min_length=1, max_length=2048), NoNul]
    redirect_uri: RedirectUri | None = Field(
        default=None, description='Where the code was sent; "postmessage" for the popup flow'
    )
    state: StateParam | None = Field(
        default=None, description="From GET /api/auth/google/authorize-url (redirect flow)"
    )
    code_verifier: (
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9\-._~]{43,128}$")] | None
    ) = Field(default=None, description="PKCE verifier, when the front end made its own")


class AuthorizeUrlResponse(BaseModel):
    url: str
    state: str
