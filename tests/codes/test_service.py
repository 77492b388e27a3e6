"""The codes service as the command line uses it (an `Actor` from `command_line()`, a
transaction of its own), and how codes are spelled."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from vidgate.admin.models import AuditEntry
from vidgate.admin.service import command_line
from vidgate.codes import service
from vidgate.codes.errors import CodeAlreadyRedeemed, CodeNotFound, InvalidBatch
from vidgate.db.engine import Database
from vidgate.users.models import User


def test_codes_are_spelled_without_look_alikes_and_read_back_in_any_form() -> None:
    codes = {service.new_code() for _ in range(1000)}
    assert len(codes) == 1000
    assert all(len(c) == 16 and set(c) <= set(service.ALPHABET) for c in codes)
    assert not set("IO01") & set(service.ALPHABET)
    assert service.display("ABCDEFGHJKLMNPQR") == "ABCD-EFGH-JKLM-NPQR"
    for typed in ("abcd-efgh-jklm-npqr", " ABCD EFGH JKLM NPQR ", "abcdEFGHjklmNPQR"):
        assert service.normalize(typed) == "ABCDEFGHJKLMNPQR"
    for nonsense in ("", "---", "AB", "ABCD_EFGH", "ÄBCD-EFGH", "A" * 33):
        assert service.normalize(nonsense) is None


async def test_the_command_line_makes_exports_and_disables_a_batch(rollback_db: Database) -> None:
    actor = command_line()
    async with rollback_db.transaction() as session:
        batch, codes = await service.create_batch(
            session,
            actor,
            credits=10,
            count=3,
            max_uses=2,
            expires_at=datetime.now(UTC) + timedelta(days=1),
            note="partners",
            reason="partner launch",
        )
    assert batch.created_by == actor.name and batch.created_by_id is None
    assert len(codes) == 3

    async with rollback_db.session() as session:
        chunks = [chunk async for chunk in service.export_csv(session, batch.id)]
    rows = list(csv.DictReader(io.StringIO("".join(chunks))))
    assert sorted(r["code"] for r in rows) == sorted(service.display(c.code) for c in codes)

    async with rollback_db.transaction() as session:
        await service.disable_batch(session, actor, batch.id, reason="launch cancelled")
    async with rollback_db.session() as session:
        summary = await service.get_batch(session, batch.id)
        found = await service.find_code(session, codes[0].code.lower())
        entries = list(
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.target_id == str(batch.id))
                .order_by(AuditEntry.id)
            )
        )
        with pytest.raises(CodeNotFound):
            await service.find_code(session, "ZZZZ-ZZZZ-ZZZZ-ZZZZ")
    assert summary.batch.disabled_at is not None and found.id == codes[0].id
    assert [(e.action, e.actor, e.actor_id, e.reason) for e in entries] == [
        ("codes.batch_created", actor.name, None, "partner launch"),
        ("codes.batch_disabled", actor.name, None, "launch cancelled"),
    ]
    assert entries[1].before is not None and entries[1].before["disabled_at"] is None


async def test_a_refused_redemption_writes_nothing(rollback_db: Database) -> None:
    user_id = uuid.uuid4()
    async with rollback_db.transaction() as session:
        session.add(
            User(
                id=user_id, username="codes", region="CN", phone=f"+86137{user_id.int % 10**8:08d}"
            )
        )
        _, codes = await service.create_batch(
            session, command_line(), credits=5, count=1, reason="service test"
        )
    async with rollback_db.transaction() as session:
        done = await service.redeem(session, user_id, codes[0].code)
    assert (done.credits_added, done.credits) == (5, 5)
    with pytest.raises(CodeAlreadyRedeemed):
        async with rollback_db.transaction() as session:
            await service.redeem(session, user_id, codes[0].code)
    async with rollback_db.session() as session:
        user = await session.get_one(User, user_id)
    assert user.credits == 5


async def test_impossible_batches_are_refused(rollback_db: Database) -> None:
    async with rollback_db.session() as session:
        for fields in (
            {"credits": 0, "count": 1},
            {"credits": 1, "count": 0},
            {"credits": 1, "count": service.MAX_BATCH + 1},
            {"credits": 1, "count": 1, "max_uses": 0},
            {"credits": 1, "count": 1, "expires_at": datetime.now(UTC) - timedelta(seconds=1)},
            {"credits": 1, "count": 1, "expires_at": datetime(2999, 1, 1)},
        ):
            with pytest.raises(InvalidBatch):
                await service.create_batch(session, command_line(), reason="nope", **fields)
