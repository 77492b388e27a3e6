"""Bodies of the console's moderation routes (`/api/admin/moderation`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class BlockOut(BaseModel):
    id: int
    at: datetime
    user_id: str
    kind: str
    source: str
    category: str
    rule: str
    prompt_excerpt: str


class BlockPage(BaseModel):
    blocks: list[BlockOut]
    total: int
    page: int
    page_size: int
