"""`/api/admin/moderation`: the prompts content screening refused, newest first, for operators."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from sqlalchemy import func, select

from vidgate.admin.access import GUARD_ERRORS, Support
from vidgate.deps import DbSession
from vidgate.errors import documented
from vidgate.kit import Page
from vidgate.moderation.models import ModerationBlock
from vidgate.moderation.schemas import BlockOut, BlockPage

router = APIRouter(prefix="/api/admin/moderation", tags=["admin"])


def _out(block: ModerationBlock) -> BlockOut:
    return BlockOut(
        id=block.id,
        at=block.created_at,
        user_id=str(block.user_id),
        kind=block.kind,
        source=block.source,
        category=block.category,
        rule=block.rule,
        prompt_excerpt=block.prompt_excerpt,
    )


@router.get("/blocks", response_model=BlockPage, responses=documented(*GUARD_ERRORS))
async def list_blocks(
    operator: Support, session: DbSession, page: Page, user_id: uuid.UUID | None = None
) -> BlockPage:
    """Refused prompts, newest first, optionally of one user: who, which kind, which rule (the
    list's line or the vendor's labels) and the start of the prompt."""
    query = select(ModerationBlock)
    if user_id is not None:
        query = query.where(ModerationBlock.user_id == user_id)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(
        page.apply(query.order_by(ModerationBlock.created_at.desc(), ModerationBlock.id.desc()))
    )
    return BlockPage(
        blocks=[_out(b) for b in rows], total=total or 0, page=page.page, page_size=page.page_size
    )
