"""The credits ledger (credits/service.py) against a real PostgreSQL.

Every movement is one ledger row written together with the user's counters; these tests check the
counters, the rows, idempotency, refusals that write nothing, and the invariants under concurrency.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from vidgate.credits import service as ledger
from vidgate.credits.models import LedgerEntry
from vidgate.credits.service import InsufficientCredits, LedgerError, LedgerKind
from vidgate.db.engine import Database
from vidgate.errors import NotFound
from vidgate.users.models import User
from vidgate.users.service import sign_in_by_phone

from ..fixtures.signin import e164, random_phone

Row = tuple[str, int, int, int, int]  # kind, delta, reserved_delta, balance_after, reserved_after


async def new_user(db: Database, *, credits: int = 0) -> uuid.UUID:
    """A user row of its own with no ledger rows (and, unless `credits`, a zero balance)."""
    user_id = uuid.uuid4()
    # Not `random_phone()`: hypothesis seeds `random`, so it would repeat numbers across examples.
    phone = f"+86138{user_id.int % 10**8:08d}"
    async with db.session() as s:
        s.add(
            User(
                id=user_id,
                username="ledger test",
                region="CN",
                phone=phone,
                credits=credits,
            )
        )
        await s.commit()
    return user_id


async def account(db: Database, user_id: uuid.UUID) -> tuple[int, int, list[Row]]:
    """`users.credits`, `users.credits_reserved` and the user's ledger rows, oldest first."""
    async with db.session() as s:
        user = await s.get_one(User, user_id)
        rows = (
            await s.scalars(
                select(LedgerEntry).where(LedgerEntry.user_id == user_id).order_by(LedgerEntry.id)
            )
        ).all()
        return (
            user.credits,
            user.credits_reserved,
            [(r.kind, r.delta, r.reserved_delta, r.balance_after, r.reserved_after) for r in rows],
        )


async def grant(db: Database, user_id: uuid.UUID, amount: int, key: str) -> ledger.LedgerResult:
    async with db.session() as s:
        result = await ledger.grant(s, user_id, amount, key=key)
        await s.commit()
    return result


# --- happy paths ---------------------------------------------------------------------------------


async def test_signup_via_sign_in_by_phone_writes_the_bonus_row(rollback_db: Database) -> None:
    phone = e164(random_phone())
    async with rollback_db.session() as s:
        user, created = await sign_in_by_phone(
            s, phone, username="bonus", region="CN", signup_bonus=100
        )
        await s.commit()
    assert created
    assert await account(rollback_db, user.id) == (100, 0, [("signup_bonus", 100, 0, 100, 0)])
    async with rollback_db.session() as s:
        again, created_again = await sign_in_by_phone(
            s, phone, username="other", region="CN", signup_bonus=100
        )
        await s.commit()
    assert not created_again and again.id == user.id
    assert await account(rollback_db, user.id) == (100, 0, [("signup_bonus", 100, 0, 100, 0)])


async def test_each_movement_updates_counters_and_writes_one_row(rollback_db: Database) -> None:
    uid = await new_user(rollback_db)
    k = f"test:{uid}"
    expected: list[Row] = []

    async with rollback_db.session() as s:
        r = await ledger.grant(s, uid, 100, key=f"{k}:grant", reference="order-1", note="gift")
        await s.commit()
    assert r.applied
    assert (r.entry.kind, r.entry.reference, r.entry.note) == ("adjustment", "order-1", "gift")
    assert r.entry.idempotency_key == f"{k}:grant" and r.entry.user_id == uid
    expected.append(("adjustment", 100, 0, 100, 0))
    assert await account(rollback_db, uid) == (100, 0, expected)

    async with rollback_db.session() as s:
        r = await ledger.charge(s, uid, 30, key=f"{k}:charge", reference="task-1")
        await s.commit()
    assert r.applied and r.entry.reference == "task-1"
    expected.append(("charge", -30, 0, 70, 0))
    assert await account(rollback_db, uid) == (70, 0, expected)

    async with rollback_db.session() as s:
        r = await ledger.reserve(s, uid, 50, key=f"{k}:reserve")
        await s.commit()
    assert r.applied
    expected.append(("reserve", 0, 50, 70, 50))
    assert await account(rollback_db, uid) == (70, 50, expected)

    async with rollback_db.session() as s:
        r = await ledger.release(s, uid, 20, key=f"{k}:release")
        await s.commit()
    assert r.applied
    expected.append(("release", 0, -20, 70, 30))
    assert await account(rollback_db, uid) == (70, 30, expected)

    async with rollback_db.session() as s:
        r = await ledger.settle(s, uid, reserved=30, actual=25, key=f"{k}:settle")
        await s.commit()
    assert r.applied
    expected.append(("charge", -25, -30, 45, 0))
    assert await account(rollback_db, uid) == (45, 0, expected)

    async with rollback_db.session() as s:
        r = await ledger.refund(s, uid, 10, key=f"{k}:refund")
        await s.commit()
    assert r.applied
    expected.append(("refund", 10, 0, 55, 0))
    assert await account(rollback_db, uid) == (55, 0, expected)

    async with rollback_db.session() as s:
        summary = await ledger.balance(s, await s.get_one(User, uid))
    assert summary == ledger.Balance(
        credits=55, credits_reserved=0, total_earned=100, total_spent=45
    )
    assert summary.available == 55


async def test_grant_kind_is_kept(rollback_db: Database) -> None:
    uid = await new_user(rollback_db)
    async with rollback_db.session() as s:
        await ledger.grant(s, uid, 60, key=f"test:{uid}:buy", kind=LedgerKind.PURCHASE)
        await s.commit()
    assert await account(rollback_db, uid) == (60, 0, [("purchase", 60, 0, 60, 0)])


async def test_settle_below_the_hold_charges_actual_and_zero_only_releases(
    rollback_db: Database,
) -> None:
    uid = await new_user(rollback_db)
    k = f"test:{uid}"
    await grant(rollback_db, uid, 100, f"{k}:g")
    async with rollback_db.session() as s:
        await ledger.reserve(s, uid, 40, key=f"{k}:r1")
        await ledger.reserve(s, uid, 30, key=f"{k}:r2")
        await ledger.settle(s, uid, reserved=40, actual=15, key=f"{k}:s1")
        await ledger.settle(s, uid, reserved=30, actual=0, key=f"{k}:s2")
        await s.commit()
    assert await account(rollback_db, uid) == (
        85,
        0,
        [
            ("adjustment", 100, 0, 100, 0),
            ("reserve", 0, 40, 100, 40),
            ("reserve", 0, 30, 100, 70),
            ("charge", -15, -40, 85, 30),
            ("charge", 0, -30, 85, 0),
        ],
    )


# --- idempotency ---------------------------------------------------------------------------------


async def test_same_key_twice_changes_nothing(rollback_db: Database) -> None:
    uid = await new_user(rollback_db)
    k = f"test:{uid}"
    await grant(rollback_db, uid, 200, f"{k}:seed")
    await grant(rollback_db, uid, 1, f"{k}:grant")

    async def twice(op: str) -> None:
        calls = {
            "grant": lambda s: ledger.grant(s, uid, 5, key=f"{k}:grant"),
            "charge": lambda s: ledger.charge(s, uid, 7, key=f"{k}:charge"),
            "reserve": lambda s: ledger.reserve(s, uid, 11, key=f"{k}:reserve"),
            "release": lambda s: ledger.release(s, uid, 3, key=f"{k}:release"),
            "settle": lambda s: ledger.settle(s, uid, reserved=4, actual=2, key=f"{k}:settle"),
            "refund": lambda s: ledger.refund(s, uid, 9, key=f"{k}:refund"),
        }
        async with rollback_db.session() as s:
            first = await calls[op](s)
            await s.commit()
        before = await account(rollback_db, uid)
        async with rollback_db.session() as s:
            second = await calls[op](s)
            await s.commit()
        assert not second.applied, op
        assert second.entry.id == first.entry.id, op
        assert await account(rollback_db, uid) == before, op

    # The grant key was already used (with another amount): the replay is ignored outright.
    async with rollback_db.session() as s:
        replay = await ledger.grant(s, uid, 5, key=f"{k}:grant")
        await s.commit()
    assert not replay.applied and replay.entry.delta == 1
    for op in ("charge", "reserve", "release", "settle", "refund"):
        await twice(op)
    credits, reserved, rows = await account(rollback_db, uid)
    assert (credits, reserved) == (200 + 1 - 7 - 2 + 9, 11 - 3 - 4)
    assert len(rows) == 7


async def test_same_key_in_one_session_is_applied_once(rollback_db: Database) -> None:
    uid = await new_user(rollback_db)
    async with rollback_db.session() as s:
        first = await ledger.grant(s, uid, 10, key=f"test:{uid}:g")
        second = await ledger.grant(s, uid, 10, key=f"test:{uid}:g")
        await s.commit()
    assert first.applied and not second.applied
    assert await account(rollback_db, uid) == (10, 0, [("adjustment", 10, 0, 10, 0)])


# --- refusals write nothing ---------------------------------------------------------------------


async def test_charge_beyond_available_is_refused_and_writes_nothing(rollback_db: Database) -> None:
    uid = await new_user(rollback_db)
    await grant(rollback_db, uid, 50, f"test:{uid}:g")
    before = await account(rollback_db, uid)
    async with rollback_db.session() as s:
        with pytest.raises(InsufficientCredits) as refused:
            await ledger.charge(s, uid, 51, key=f"test:{uid}:c")
        await s.commit()  # even committing what is left writes nothing
    assert (
        str(refused.value) == "Insufficient credits. Required: 51 credits. Available: 50 credits."
    )
    assert refused.value.status_code == 402
    assert (refused.value.required, refused.value.available) == (51, 50)
    assert await account(rollback_db, uid) == before
    # The refused key was not used up: it works once there is enough.
    await grant(rollback_db, uid, 1, f"test:{uid}:g2")
    async with rollback_db.session() as s:
        assert (await ledger.charge(s, uid, 51, key=f"test:{uid}:c")).applied
        await s.commit()
    assert (await account(rollback_db, uid))[:2] == (0, 0)


async def test_refusal_message_names_what_was_priced(rollback_db: Database) -> None:
    uid = await new_user(rollback_db)
    await grant(rollback_db, uid, 10, f"test:{uid}:g")
    async with rollback_db.session() as s:
        with pytest.raises(InsufficientCredits) as refused:
            await ledger.charge(s, uid, 20, key=f"test:{uid}:c", what="standard quality")
    assert str(refused.value) == (
        "Insufficient credits. Required: 20 credits (standard quality). Available: 10 credits."
    )


async def test_reserve_reduces_available_so_a_later_charge_fails(rollback_db: Database) -> None:
    uid = await new_user(rollback_db)
    k = f"test:{uid}"
    await grant(rollback_db, uid, 100, f"{k}:g")
    async with rollback_db.session() as s:
        await ledger.reserve(s, uid, 70, key=f"{k}:r")
        await s.commit()
    before = await account(rollback_db, uid)
    async with rollback_db.session() as s:
        with pytest.raises(InsufficientCredits) as refused:
            await ledger.charge(s, uid, 31, key=f"{k}:c")
        with pytest.raises(InsufficientCredits):
            await ledger.reserve(s, uid, 31, key=f"{k}:r2")
        await s.commit()
    assert (
        str(refused.value) == "Insufficient credits. Required: 31 credits. Available: 30 credits."
    )
    assert await account(rollback_db, uid) == before
    async with rollback_db.session() as s:
        await ledger.charge(s, uid, 30, key=f"{k}:c")
        await s.commit()
    assert (await account(rollback_db, uid))[:2] == (70, 70)


async def test_release_beyond_the_hold_is_a_caller_bug_and_writes_nothing(
    rollback_db: Database,
) -> None:
    uid = await new_user(rollback_db)
    k = f"test:{uid}"
    await grant(rollback_db, uid, 100, f"{k}:g")
    async with rollback_db.session() as s:
        await ledger.reserve(s, uid, 10, key=f"{k}:r")
        await s.commit()
    before = await account(rollback_db, uid)
    async with rollback_db.session() as s:
        with pytest.raises(LedgerError):
            await ledger.release(s, uid, 11, key=f"{k}:rel")
        with pytest.raises(LedgerError):
            await ledger.settle(s, uid, reserved=11, actual=1, key=f"{k}:set")
        await s.commit()
    assert await account(rollback_db, uid) == before


async def test_bad_amounts_and_unknown_users_are_refused(rollback_db: Database) -> None:
    uid = await new_user(rollback_db)
    async with rollback_db.session() as s:
        for call in (
            ledger.grant(s, uid, 0, key=f"test:{uid}:a"),
            ledger.charge(s, uid, -5, key=f"test:{uid}:b"),
            ledger.refund(s, uid, 0, key=f"test:{uid}:c"),
            ledger.reserve(s, uid, 0, key=f"test:{uid}:d"),
            ledger.release(s, uid, 0, key=f"test:{uid}:e"),
            ledger.settle(s, uid, reserved=0, actual=0, key=f"test:{uid}:f"),
            ledger.settle(s, uid, reserved=1, actual=-1, key=f"test:{uid}:g"),
        ):
            with pytest.raises(ValueError):
                await call
        with pytest.raises(NotFound):
            await ledger.grant(s, uuid.uuid4(), 5, key=f"test:{uid}:nobody")
        await s.commit()
    assert await account(rollback_db, uid) == (0, 0, [])


# --- settle caps the charge ---------------------------------------------------------------------


async def test_settle_above_the_hold_is_capped_at_what_the_user_has(rollback_db: Database) -> None:
    uid = await new_user(rollback_db)
    k = f"test:{uid}"
    await grant(rollback_db, uid, 100, f"{k}:g")
    async with rollback_db.session() as s:
        await ledger.reserve(s, uid, 40, key=f"{k}:r")
        await s.commit()
    async with rollback_db.session() as s:
        r = await ledger.settle(s, uid, reserved=40, actual=150, key=f"{k}:s")
        await s.commit()
    assert r.applied and r.entry.delta == -100
    assert await account(rollback_db, uid) == (
        0,
        0,
        [
            ("adjustment", 100, 0, 100, 0),
            ("reserve", 0, 40, 100, 40),
            ("charge", -100, -40, 0, 0),
        ],
    )


async def test_settle_cap_leaves_other_holds_covered(rollback_db: Database) -> None:
    uid = await new_user(rollback_db)
    k = f"test:{uid}"
    await grant(rollback_db, uid, 100, f"{k}:g")
    async with rollback_db.session() as s:
        await ledger.reserve(s, uid, 40, key=f"{k}:r1")
        await ledger.reserve(s, uid, 50, key=f"{k}:r2")
        await s.commit()
    async with rollback_db.session() as s:
        # Once the 40 hold is dropped 100 - 50 = 50 are not held by anything else: the cap.
        r = await ledger.settle(s, uid, reserved=40, actual=70, key=f"{k}:s1")
        await s.commit()
    assert r.entry.delta == -50
    assert await account(rollback_db, uid) == (
        50,
        50,
        [
            ("adjustment", 100, 0, 100, 0),
            ("reserve", 0, 40, 100, 40),
            ("reserve", 0, 50, 100, 90),
            ("charge", -50, -40, 50, 50),
        ],
    )
    async with rollback_db.session() as s:
        r = await ledger.settle(s, uid, reserved=50, actual=50, key=f"{k}:s2")
        await s.commit()
    assert r.entry.delta == -50
    assert (await account(rollback_db, uid))[:2] == (0, 0)


# --- drift ---------------------------------------------------------------------------------------


async def _drift_of(db: Database, ids: set[uuid.UUID]) -> dict[uuid.UUID, ledger.Drift]:
    async with db.session() as s:
        return {d.user_id: d for d in await ledger.find_drift(s) if d.user_id in ids}


async def test_find_drift_sees_counters_changed_behind_the_ledger(rollback_db: Database) -> None:
    clean = await new_user(rollback_db)
    await grant(rollback_db, clean, 10, f"test:{clean}:g")
    changed = await new_user(rollback_db)
    await grant(rollback_db, changed, 10, f"test:{changed}:g")
    empty = await new_user(rollback_db)  # no ledger rows, zero balance: consistent
    unbacked = await new_user(rollback_db, credits=5)  # credits without a single ledger row
    ids = {clean, changed, empty, unbacked}
    try:
        assert await _drift_of(rollback_db, ids) == {
            unbacked: ledger.Drift(unbacked, 5, 0, 0, 0),
        }
        async with rollback_db.session() as s:
            await s.execute(
                text("UPDATE users SET credits = credits + 1 WHERE id = :id"), {"id": changed}
            )
            await s.commit()
        assert await _drift_of(rollback_db, ids) == {
            changed: ledger.Drift(changed, 11, 10, 0, 0),
            unbacked: ledger.Drift(unbacked, 5, 0, 0, 0),
        }
        async with rollback_db.session() as s:
            await s.execute(
                text("UPDATE users SET credits = credits - 1, credits_reserved = 3 WHERE id = :id"),
                {"id": changed},
            )
            await s.commit()
        assert (await _drift_of(rollback_db, ids))[changed] == ledger.Drift(changed, 10, 10, 3, 0)
    finally:
        async with rollback_db.session() as s:  # leave the database consistent for other tests
            await s.execute(
                text("UPDATE users SET credits = 10, credits_reserved = 0 WHERE id = :id"),
                {"id": changed},
            )
            await s.execute(text("UPDATE users SET credits = 0 WHERE id = :id"), {"id": unbacked})
            await s.commit()
    assert await _drift_of(rollback_db, ids) == {}


# --- concurrency ---------------------------------------------------------------------------------


async def test_concurrent_charges_never_spend_the_same_credits(db: Database) -> None:
    uid = await new_user(db)
    await grant(db, uid, 100, f"test:{uid}:g")

    async def attempt(i: int) -> bool:
        async with db.session() as s:
            try:
                await ledger.charge(s, uid, 10, key=f"test:{uid}:c{i}")
            except InsufficientCredits:
                return False
            await s.commit()
            return True

    outcomes = await asyncio.gather(*(attempt(i) for i in range(20)))
    assert outcomes.count(True) == 10
    credits, reserved, rows = await account(db, uid)
    assert (credits, reserved) == (0, 0)
    charges = [r for r in rows if r[0] == "charge"]
    assert [r[3] for r in charges] == list(range(90, -1, -10))


async def test_concurrent_refunds_with_one_key_refund_once(db: Database) -> None:
    uid = await new_user(db)
    await grant(db, uid, 100, f"test:{uid}:g")

    async def attempt() -> bool:
        async with db.session() as s:
            result = await ledger.refund(s, uid, 5, key=f"test:{uid}:refund")
            await s.commit()
            return result.applied

    outcomes = await asyncio.gather(*(attempt() for _ in range(20)))
    assert outcomes.count(True) == 1
    credits, _, rows = await account(db, uid)
    assert credits == 105
    assert [r for r in rows if r[0] == "refund"] == [("refund", 5, 0, 105, 0)]


# --- property: invariants under random, partly concurrent operations ---------------------------


@dataclass(frozen=True)
class Op:
    kind: str  # grant | charge | reserve | release | refund | settle
    amount: int  # for settle: the hold being closed
    key: str  # from a small pool, so the same key is used again
    actual: int = 0  # settle only


_amounts = st.integers(min_value=1, max_value=200)
_keys = st.sampled_from([f"k{i}" for i in range(6)])
_ops = st.one_of(
    st.builds(
        Op, st.sampled_from(["grant", "charge", "reserve", "release", "refund"]), _amounts, _keys
    ),
    st.builds(Op, st.just("settle"), _amounts, _keys, st.integers(min_value=0, max_value=200)),
)
# Batches run one after another; the operations of a batch run at once.
_batches = st.lists(st.lists(_ops, min_size=1, max_size=4), min_size=1, max_size=6)


async def _run_op(db: Database, uid: uuid.UUID, op: Op) -> tuple[str, int | None]:
    key = f"prop:{uid}:{op.key}"
    async with db.session() as s:
        try:
            if op.kind == "grant":
                result = await ledger.grant(s, uid, op.amount, key=key)
            elif op.kind == "charge":
                result = await ledger.charge(s, uid, op.amount, key=key)
            elif op.kind == "reserve":
                result = await ledger.reserve(s, uid, op.amount, key=key)
            elif op.kind == "release":
                result = await ledger.release(s, uid, op.amount, key=key)
            elif op.kind == "refund":
                result = await ledger.refund(s, uid, op.amount, key=key)
            else:
                result = await ledger.settle(s, uid, reserved=op.amount, actual=op.actual, key=key)
        except (InsufficientCredits, LedgerError):
            return "refused", None
        await s.commit()
        return ("applied" if result.applied else "replayed"), result.entry.id


async def _check_example(database_url: str, initial: int, batches: list[list[Op]]) -> None:
    db = Database(database_url, pool_size=5, max_overflow=0)
    try:
        uid = await new_user(db)
        if initial:
            await grant(db, uid, initial, f"prop:{uid}:initial")
        done: list[tuple[Op, str, int | None]] = []
        for batch in batches:
            outcomes = await asyncio.gather(*(_run_op(db, uid, op) for op in batch))
            done += [(op, *outcome) for op, outcome in zip(batch, outcomes, strict=True)]

        async with db.session() as s:
            user = await s.get_one(User, uid)
            rows = (
                await s.scalars(
                    select(LedgerEntry).where(LedgerEntry.user_id == uid).order_by(LedgerEntry.id)
                )
            ).all()
        # Counters equal the sums of the rows, and stay within bounds.
        assert user.credits == sum(r.delta for r in rows)
        assert user.credits_reserved == sum(r.reserved_delta for r in rows)
        assert 0 <= user.credits_reserved <= user.credits
        # Each key at most once.
        keys = [r.idempotency_key for r in rows]
        assert len(keys) == len(set(keys))
        by_key = {r.idempotency_key: r for r in rows}

        # Rows in id order form a chain: each one's *_after follows from the previous row.
        credits, reserved = 0, 0
        applied_by: dict[str, Op] = {}
        for op, outcome, entry_id in done:
            key = f"prop:{uid}:{op.key}"
            if outcome == "applied":
                assert key not in applied_by, f"{key} applied twice"
                applied_by[key] = op
                assert by_key[key].id == entry_id
            elif outcome == "replayed":
                assert by_key[key].id == entry_id
        for row in rows:
            if row.idempotency_key.endswith(":initial"):
                assert (row.kind, row.delta, row.reserved_delta) == ("adjustment", initial, 0)
            else:
                op = applied_by[row.idempotency_key]  # every row was applied by one call
                available = credits - reserved
                if op.kind == "grant":
                    effect = ("adjustment", op.amount, 0)
                elif op.kind == "refund":
                    effect = ("refund", op.amount, 0)
                elif op.kind == "charge":
                    assert op.amount <= available
                    effect = ("charge", -op.amount, 0)
                elif op.kind == "reserve":
                    assert op.amount <= available
                    effect = ("reserve", 0, op.amount)
                elif op.kind == "release":
                    assert op.amount <= reserved
                    effect = ("release", 0, -op.amount)
                else:
                    assert op.amount <= reserved
                    effect = ("charge", -min(op.actual, available + op.amount), -op.amount)
                assert (row.kind, row.delta, row.reserved_delta) == effect, (op, credits, reserved)
            credits += row.delta
            reserved += row.reserved_delta
            assert (row.balance_after, row.reserved_after) == (credits, reserved)
            assert 0 <= reserved <= credits
        # A key no call applied was never written.
        assert set(applied_by) | ({f"prop:{uid}:initial"} if initial else set()) == set(by_key)
    finally:
        await db.dispose()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(initial=st.integers(min_value=0, max_value=300), batches=_batches)
def test_ledger_invariants_hold_for_random_concurrent_operations(
    database_url: str, initial: int, batches: list[list[Op]]
) -> None:
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_check_example(database_url, initial, batches))
    finally:
        loop.close()
