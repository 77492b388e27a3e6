"""Redemption codes: making batches, redeeming a code, disabling, listing and exporting.

The rules of a redemption hold under concurrency because every redemption of a code first locks
that code's row (`SELECT … FOR UPDATE`), then its batch's row for share (so a batch is not
disabled half-way through one): redemptions of one code run one after another, each seeing the
uses and redemptions of those before it. Then the ledger locks the user's row and writes the
credits (a ledger row with a key of its own for the redemption), and last comes the redemption
row, whose unique (code, user) backs up "once per user"; all in one transaction. Always in that
order (code, batch, user), so concurrent redemptions never deadlock. Nothing here commits.

Functions that change something take an `Actor` (`vidgate.admin.service.actor_of(operator)` in
the console, `command_line()` at the command line) and write the audit row of the change.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from vidgate.admin.service import Actor, record
from vidgate.codes.errors import (
    BatchAlreadyDisabled,
    BatchNotFound,
    CodeAlreadyDisabled,
    CodeAlreadyRedeemed,
    CodeDisabled,
    CodeExpired,
    CodeNotFound,
    CodeUsedUp,
    InvalidBatch,
    RedemptionCodeNotFound,
    TooManyRedemptionAttempts,
)
from vidgate.codes.models import CodeBatch, CodeRedemption, RedemptionCode
from vidgate.credits import service as ledger
from vidgate.db.engine import Database
from vidgate.kit import PageRequest
from vidgate.ratelimit import over_limit

# No letters or digits that read alike (I/1, O/0): a code is easy to read out and type.
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 16  # 32^16 = 2^80 codes: guessing one is hopeless
GROUP = 4  # shown as ABCD-EFGH-JKLM-NPQR
MAX_BATCH = 10_000  # codes per batch
MAX_CREDITS = 1_000_000  # credits per code
MAX_USES = 1_000_000  # uses per code
# Codes a user may try per window (successful or not) before waiting: a user redeems a handful of
# codes, a guesser would need billions of tries.
TRIES, TRIES_WINDOW = 10, 600
INSERT_CHUNK = 1_000  # codes per INSERT (PostgreSQL takes at most 65535 parameters)


def new_code() -> str:
    """A random code, as stored (upper case, no dashes)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalize(text: str) -> str | None:
    """`text` as codes are stored: upper case, without dashes or spaces; None when it cannot be
    a code at all (so nothing is looked up)."""
    cleaned = re.sub(r"[\s\-]+", "", text).upper()
    if not re.fullmatch(r"[A-Z0-9]{4,32}", cleaned):
        return None
    return cleaned


def display(code: str) -> str:
    """A stored code as people read it: groups of four joined by dashes."""
    return "-".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _batch_state(batch: CodeBatch) -> dict[str, Any]:
    """What the audit log keeps of a batch."""
    return {
        "credits": batch.credits,
        "count": batch.count,
        "max_uses": batch.max_uses,
        "expires_at": _iso(batch.expires_at),
        "note": batch.note,
        "disabled_at": _iso(batch.disabled_at),
    }


# --- making and managing batches (console and command line) ------------------------------------


async def create_batch(
    session: AsyncSession,
    actor: Actor,
    *,
    credits: int,
    count: int,
    max_uses: int = 1,
    expires_at: datetime | None = None,
    note: str | None = None,
    reason: str,
) -> tuple[CodeBatch, list[RedemptionCode]]:
    """Make a batch of `count` new codes, each worth `credits` and redeemable `max_uses` times
    (by different users) until `expires_at`; InvalidBatch when a value is out of range."""
    if not 1 <= credits <= MAX_CREDITS:
        raise InvalidBatch(f"credits must be between 1 and {MAX_CREDITS}")
    if not 1 <= count <= MAX_BATCH:
        raise InvalidBatch(f"count must be between 1 and {MAX_BATCH}")
    if not 1 <= max_uses <= MAX_USES:
        raise InvalidBatch(f"max_uses must be between 1 and {MAX_USES}")
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise InvalidBatch("expires_at must say its time zone")
        if expires_at <= _now():
            raise InvalidBatch("expires_at must be in the future")
    batch = CodeBatch(
        id=uuid.uuid4(),
        credits=credits,
        count=count,
        max_uses=max_uses,
        expires_at=expires_at,
        note=note or None,
        created_by_id=actor.id,
        created_by=actor.name,
    )
    session.add(batch)
    await session.flush()
    codes: list[RedemptionCode] = []
    while len(codes) < count:
        wanted = min(INSERT_CHUNK, count - len(codes))
        rows = [
            {"id": uuid.uuid4(), "batch_id": batch.id, "code": new_code()} for _ in range(wanted)
        ]
        # A code that exists already (a one in 2^80 chance) is skipped and made again.
        made = await session.scalars(
            insert(RedemptionCode)
            .values(rows)
            .on_conflict_do_nothing(index_elements=[RedemptionCode.code])
            .returning(RedemptionCode)
        )
        codes.extend(made)
    await record(
        session,
        actor,
        "codes.batch_created",
        "code_batch",
        batch.id,
        reason=reason,
        after=_batch_state(batch),
    )
    return batch, codes


@dataclass(frozen=True)
class BatchSummary:
    """A batch with how much of it has been used."""

    batch: CodeBatch
    uses: int  # redemptions of all its codes
    codes_used: int  # codes redeemed at least once


def _summaries() -> Any:
    return (
        select(
            CodeBatch,
            func.coalesce(func.sum(RedemptionCode.uses), 0),
            func.count(RedemptionCode.id).filter(RedemptionCode.uses > 0),
        )
        .outerjoin(RedemptionCode, RedemptionCode.batch_id == CodeBatch.id)
        .group_by(CodeBatch.id)
    )


async def list_batches(session: AsyncSession, page: PageRequest) -> tuple[list[BatchSummary], int]:
    """One page of batches, newest first, and how many there are in all."""
    total = await session.scalar(select(func.count()).select_from(CodeBatch))
    rows = await session.execute(
        page.apply(_summaries().order_by(CodeBatch.created_at.desc(), CodeBatch.id.desc()))
    )
    return [BatchSummary(row[0], int(row[1]), int(row[2])) for row in rows], int(total or 0)


async def get_batch(session: AsyncSession, batch_id: uuid.UUID) -> BatchSummary:
    """The batch with its use counts; BatchNotFound if there is none."""
    row = (await session.execute(_summaries().where(CodeBatch.id == batch_id))).first()
    if row is None:
        raise BatchNotFound()
    return BatchSummary(row[0], int(row[1]), int(row[2]))


async def batch_codes(session: AsyncSession, batch_id: uuid.UUID) -> Sequence[RedemptionCode]:
    """Every code of the batch, in a stable order."""
    rows = await session.scalars(
        select(RedemptionCode)
        .where(RedemptionCode.batch_id == batch_id)
        .order_by(RedemptionCode.code)
    )
    return rows.all()


async def find_code(session: AsyncSession, text: str) -> RedemptionCode:
    """The code spelled `text` (any case, dashes and spaces ignored); CodeNotFound if none."""
    code_text = normalize(text)
    code = None
    if code_text is not None:
        code = await session.scalar(select(RedemptionCode).where(RedemptionCode.code == code_text))
    if code is None:
        raise CodeNotFound()
    return code


async def disable_batch(
    session: AsyncSession, actor: Actor, batch_id: uuid.UUID, *, reason: str
) -> CodeBatch:
    """Stop every code of the batch from being redeemed (redemptions made stay)."""
    batch = await session.scalar(
        select(CodeBatch)
        .where(CodeBatch.id == batch_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if batch is None:
        raise BatchNotFound()
    if batch.disabled_at is not None:
        raise BatchAlreadyDisabled()
    before = _batch_state(batch)
    batch.disabled_at = _now()
    await session.flush()
    await record(
        session,
        actor,
        "codes.batch_disabled",
        "code_batch",
        batch.id,
        reason=reason,
        before=before,
        after=_batch_state(batch),
    )
    return batch


async def disable_code(
    session: AsyncSession, actor: Actor, code_id: uuid.UUID, *, reason: str
) -> RedemptionCode:
    """Stop one code from being redeemed (a leaked one, say); the rest of its batch stays."""
    code = await session.scalar(
        select(RedemptionCode)
        .where(RedemptionCode.id == code_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if code is None:
        raise RedemptionCodeNotFound()
    if code.disabled_at is not None:
        raise CodeAlreadyDisabled()
    code.disabled_at = _now()
    await session.flush()
    await record(
        session,
        actor,
        "codes.code_disabled",
        "redemption_code",
        code.id,
        reason=reason,
        before={"disabled_at": None, "uses": code.uses},
        after={"disabled_at": _iso(code.disabled_at), "uses": code.uses},
    )
    return code


async def record_export(session: AsyncSession, actor: Actor, batch_id: uuid.UUID) -> None:
    """Note in the audit log that someone took a copy of the batch's codes."""
    await record(session, actor, "codes.batch_exported", "code_batch", batch_id)


# --- export ---------------------------------------------------------------------------------

CSV_COLUMNS = [
    "code",
    "credits",
    "max_uses",
    "uses",
    "expires_at",
    "disabled_at",
    "batch_id",
    "created_at",
]


@dataclass(frozen=True)
class ExportRow:
    """One code as the export lists it; `disabled_at` is the code's, else its batch's."""

    code: str  # as people read it, with dashes
    credits: int
    max_uses: int
    uses: int
    expires_at: datetime | None
    disabled_at: datetime | None
    batch_id: uuid.UUID
    created_at: datetime

    def cells(self) -> list[str | int]:
        return [
            self.code,
            self.credits,
            self.max_uses,
            self.uses,
            _iso(self.expires_at) or "",
            _iso(self.disabled_at) or "",
            str(self.batch_id),
            self.created_at.isoformat(),
        ]


async def export_rows(session: AsyncSession, batch_id: uuid.UUID) -> AsyncIterator[ExportRow]:
    """Every code of the batch, in the order of `batch_codes`, fetched 1000 at a time."""
    result = await session.stream(
        select(RedemptionCode, CodeBatch)
        .join(CodeBatch, CodeBatch.id == RedemptionCode.batch_id)
        .where(RedemptionCode.batch_id == batch_id)
        .order_by(RedemptionCode.code)
        .execution_options(yield_per=1000)
    )
    async for code, batch in result:
        yield ExportRow(
            code=display(code.code),
            credits=batch.credits,
            max_uses=batch.max_uses,
            uses=code.uses,
            expires_at=batch.expires_at,
            disabled_at=code.disabled_at or batch.disabled_at,
            batch_id=batch.id,
            created_at=code.created_at,
        )


async def export_csv(session: AsyncSession, batch_id: uuid.UUID) -> AsyncIterator[str]:
    """The batch's codes as CSV (a header, then `export_rows`), in chunks of about 16 KB."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    async for row in export_rows(session, batch_id):
        writer.writerow(row.cells())
        if buffer.tell() > 16384:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


# --- redeeming (users) ---------------------------------------------------------------------------


async def limit_attempts(db: Database, user_id: uuid.UUID) -> None:
    """Count one redemption attempt of the user; TooManyRedemptionAttempts past the limit.

    Counted on a connection of its own, so a refused attempt (rolled back) still counts.
    """
    wait = await over_limit(db, f"redeem:{user_id}", limit=TRIES, window_seconds=TRIES_WINDOW)
    if wait is not None:
        raise TooManyRedemptionAttempts(wait)


@dataclass(frozen=True)
class Redemption:
    credits_added: int
    credits: int  # the balance after
    code: str  # as people read it


def redemption_key(code_id: uuid.UUID, user_id: uuid.UUID) -> str:
    """The ledger key of a user's redemption of a code: one movement, whatever happens."""
    return f"redemption:{code_id}:{user_id}"


async def redeem(session: AsyncSession, user_id: uuid.UUID, text: str) -> Redemption:
    """Apply the code spelled `text` to the user's account: its batch's credits are added.

    Refused when there is no such code (CodeNotFound), the code or its batch is disabled
    (CodeDisabled), the batch expired (CodeExpired), this user redeemed it before
    (CodeAlreadyRedeemed) or it has no uses left (CodeUsedUp).
    """
    code_text = normalize(text)
    code = None
    if code_text is not None:
        # The lock: redemptions of one code wait for one another (see the module's docstring).
        code = await session.scalar(
            select(RedemptionCode)
            .where(RedemptionCode.code == code_text)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    if code is None:
        raise CodeNotFound()
    batch = await session.scalar(
        select(CodeBatch)
        .where(CodeBatch.id == code.batch_id)
        .with_for_update(read=True)
        .execution_options(populate_existing=True)
    )
    assert batch is not None  # a foreign key
    if code.disabled_at is not None or batch.disabled_at is not None:
        raise CodeDisabled()
    if batch.expires_at is not None and batch.expires_at <= _now():
        raise CodeExpired()
    redeemed_before = await session.scalar(
        select(CodeRedemption.id).where(
            CodeRedemption.code_id == code.id, CodeRedemption.user_id == user_id
        )
    )
    if redeemed_before is not None:
        raise CodeAlreadyRedeemed()
    if code.uses >= batch.max_uses:
        raise CodeUsedUp()
    code.uses += 1
    # The ledger locks the user's row first; the redemption row comes after. Inserted before, its
    # foreign key would take a share lock on that row, and two redemptions by one user (of two
    # codes) would each wait for the other's share lock to lock it: a deadlock.
    granted = await ledger.grant(
        session,
        user_id,
        batch.credits,
        key=redemption_key(code.id, user_id),
        kind=ledger.LedgerKind.REDEMPTION,
        reference=f"redemption_code:{code.id}",
    )
    session.add(CodeRedemption(code_id=code.id, user_id=user_id))
    await session.flush()
    return Redemption(
        credits_added=batch.credits, credits=granted.entry.balance_after, code=display(code.code)
    )
