"""`/api/admin/codes/...`: operators make batches of redemption codes (admin), look at them and
export them (support and admin), and disable a batch or one code (admin).

Every change writes its audit row in the same transaction (the service does it); so does an
export, since it hands out the codes themselves.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from vidgate.admin.access import GUARD_ERRORS, Admin, Support
from vidgate.admin.schemas import OperatorAction
from vidgate.admin.service import actor_of
from vidgate.codes import service
from vidgate.codes.errors import (
    BatchAlreadyDisabled,
    BatchNotFound,
    CodeAlreadyDisabled,
    InvalidBatch,
    RedemptionCodeNotFound,
)
from vidgate.codes.models import CodeBatch, RedemptionCode
from vidgate.codes.schemas import BatchCreate, BatchOut, BatchPage, BatchWithCodes, CodeOut
from vidgate.deps import DbSession, RuntimeDep
from vidgate.errors import documented
from vidgate.kit import Page

router = APIRouter(prefix="/api/admin/codes", tags=["admin"])


def _batch(batch: CodeBatch, uses: int, codes_used: int) -> BatchOut:
    return BatchOut(
        id=str(batch.id),
        credits=batch.credits,
        count=batch.count,
        max_uses=batch.max_uses,
        expires_at=batch.expires_at,
        note=batch.note,
        created_by=batch.created_by,
        created_at=batch.created_at,
        disabled_at=batch.disabled_at,
        uses=uses,
        codes_used=codes_used,
    )


def _summary(summary: service.BatchSummary) -> BatchOut:
    return _batch(summary.batch, summary.uses, summary.codes_used)


def _code(code: RedemptionCode) -> CodeOut:
    return CodeOut(
        id=str(code.id),
        code=service.display(code.code),
        uses=code.uses,
        created_at=code.created_at,
        disabled_at=code.disabled_at,
    )


@router.post(
    "/batches",
    response_model=BatchWithCodes,
    status_code=201,
    responses=documented(*GUARD_ERRORS, InvalidBatch),
)
async def create_batch(body: BatchCreate, operator: Admin, session: DbSession) -> BatchWithCodes:
    """Make a batch of codes (at most 10,000), each worth `credits` and redeemable `max_uses`
    times, by as many users, until `expires_at`. Answers the batch and every code."""
    batch, codes = await service.create_batch(
        session,
        actor_of(operator),
        credits=body.credits,
        count=body.count,
        max_uses=body.max_uses,
        expires_at=body.expires_at,
        note=body.note,
        reason=body.reason,
    )
    return BatchWithCodes(batch=_batch(batch, 0, 0), codes=[_code(code) for code in codes])


@router.get("/batches", response_model=BatchPage, responses=documented(*GUARD_ERRORS))
async def list_batches(operator: Support, session: DbSession, page: Page) -> BatchPage:
    """Batches of codes, newest first, with how much each has been used."""
    summaries, total = await service.list_batches(session, page)
    return BatchPage(
        batches=[_summary(summary) for summary in summaries],
        total=total,
        page=page.page,
        page_size=page.page_size,
    )


@router.get(
    "/batches/{batch_id}",
    response_model=BatchWithCodes,
    responses=documented(*GUARD_ERRORS, BatchNotFound),
)
async def get_batch(batch_id: uuid.UUID, operator: Support, session: DbSession) -> BatchWithCodes:
    """A batch with each of its codes and how often it has been used."""
    summary = await service.get_batch(session, batch_id)
    codes = await service.batch_codes(session, batch_id)
    return BatchWithCodes(batch=_summary(summary), codes=[_code(code) for code in codes])


@router.get(
    "/batches/{batch_id}/codes.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}, **documented(*GUARD_ERRORS, BatchNotFound)},
)
async def export_batch(
    batch_id: uuid.UUID, operator: Support, session: DbSession, runtime: RuntimeDep
) -> StreamingResponse:
    """The batch's codes as CSV (code, credits, max_uses, uses, expires_at, disabled_at,
    batch_id, created_at), streamed; the export is written to the audit log."""
    summary = await service.get_batch(session, batch_id)
    await service.record_export(session, actor_of(operator), summary.batch.id)

    async def chunks() -> AsyncIterator[str]:
        async with runtime.db.session() as reading:
            async for chunk in service.export_csv(reading, batch_id):
                yield chunk

    return StreamingResponse(
        chunks(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="codes-{batch_id}.csv"'},
    )


@router.post(
    "/batches/{batch_id}/disable",
    response_model=BatchOut,
    responses=documented(*GUARD_ERRORS, BatchNotFound, BatchAlreadyDisabled),
)
async def disable_batch(
    batch_id: uuid.UUID, body: OperatorAction, operator: Admin, session: DbSession
) -> BatchOut:
    """Stop every code of the batch from being redeemed; credits already added stay."""
    await service.disable_batch(session, actor_of(operator), batch_id, reason=body.reason)
    return _summary(await service.get_batch(session, batch_id))


@router.post(
    "/{code_id}/disable",
    response_model=CodeOut,
    responses=documented(*GUARD_ERRORS, RedemptionCodeNotFound, CodeAlreadyDisabled),
)
async def disable_code(
    code_id: uuid.UUID, body: OperatorAction, operator: Admin, session: DbSession
) -> CodeOut:
    """Stop one code from being redeemed (a leaked one, say); the rest of its batch stays."""
    return _code(
        await service.disable_code(session, actor_of(operator), code_id, reason=body.reason)
    )
