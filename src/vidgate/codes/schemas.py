"""Bodies of `POST /api/users/redeem` and of the console's `/api/admin/codes/...` routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from vidgate.admin.schemas import Reason
from vidgate.codes.service import MAX_BATCH, MAX_CREDITS, MAX_USES
from vidgate.validation import NoNul


class RedeemIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    code: str = Field(
        min_length=1,
        max_length=64,
        description="The code as given: any case, with or without dashes and spaces",
        examples=["ABCD-EFGH-JKLM-NPQR"],
    )


class RedeemOut(BaseModel):
    credits_added: int
    credits: int = Field(description="The balance after the redemption")
    code: str = Field(description="The code redeemed, as ABCD-EFGH-JKLM-NPQR")


class BatchCreate(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    credits: int = Field(ge=1, le=MAX_CREDITS, description="Credits each redemption adds")
    count: int = Field(ge=1, le=MAX_BATCH, description="How many codes to make")
    max_uses: int = Field(
        default=1, ge=1, le=MAX_USES, description="Redemptions per code (each by another user)"
    )
    # Not strict: a JSON body can only carry the time as a string.
    expires_at: AwareDatetime | None = Field(
        default=None, strict=False, description="When the codes stop working; none: never"
    )
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500), NoNul] | None = (
        Field(default=None, description="What the batch is for (shown to operators only)")
    )
    reason: Reason


class BatchOut(BaseModel):
    id: str
    credits: int
    count: int
    max_uses: int
    expires_at: datetime | None
    note: str | None
    created_by: str
    created_at: datetime
    disabled_at: datetime | None
    uses: int = Field(description="Redemptions of all its codes")
    codes_used: int = Field(description="Codes redeemed at least once")


class CodeOut(BaseModel):
    id: str
    code: str = Field(description="As people read it: ABCD-EFGH-JKLM-NPQR")
    uses: int
    created_at: datetime
    disabled_at: datetime | None


class BatchWithCodes(BaseModel):
    batch: BatchOut
    codes: list[CodeOut]


class BatchPage(BaseModel):
    batches: list[BatchOut]
    total: int
    page: int
    page_size: int
