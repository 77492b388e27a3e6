"""Redeeming a code (`POST /api/users/redeem`): the credits arrive as one ledger row, and a code
works once per user, never past its uses, its expiry or a disable, also when many redeem at
once."""

from __future__ import annotations

import asyncio
import re
import uuid

import httpx
from sqlalchemy import func, select

from vidgate.codes.models import CodeRedemption, RedemptionCode
from vidgate.credits.models import LedgerEntry
from vidgate.db.engine import Database
from vidgate.runtime import Runtime

from ..fixtures.codes import REDEEM, expire, make_batch, redeem
from ..fixtures.operators import operator
from ..fixtures.tasks import BONUS, Caller, account, new_caller

CODE_FORM = r"^[A-HJ-NP-Z2-9]{4}(-[A-HJ-NP-Z2-9]{4}){3}$"


async def redemptions_of(db: Database, code: str) -> tuple[int, int, int]:
    """(the code's uses, its redemption rows, the credits its ledger rows added)."""
    stored = code.replace("-", "")
    async with db.session() as session:
        found = await session.scalar(select(RedemptionCode).where(RedemptionCode.code == stored))
        assert found is not None
        rows = await session.scalar(select(func.count()).where(CodeRedemption.code_id == found.id))
        credits = await session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.delta), 0)).where(
                LedgerEntry.reference == f"redemption_code:{found.id}"
            )
        )
        return found.uses, int(rows or 0), int(credits or 0)


async def callers(client: httpx.AsyncClient, how_many: int) -> list[Caller]:
    return list(await asyncio.gather(*(new_caller(client) for _ in range(how_many))))


async def test_a_code_adds_its_credits_once_as_one_ledger_row(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    admin = await operator(client, runtime)
    made = await make_batch(client, admin, credits=25, max_uses=3)
    code = made["codes"][0]["code"]
    assert re.match(CODE_FORM, code), code
    user = await new_caller(client)

    # Any case, dashes or spaces.
    typed = " " + code.lower().replace("-", " ") + " "
    done = await redeem(client, user.headers, typed)
    assert done.status_code == 200, done.text
    assert done.json() == {"credits_added": 25, "credits": 125, "code": code}
    credits, reserved, rows = await account(runtime.db, user.user_id)
    assert (credits, reserved, rows) == (125, 0, [BONUS, ("redemption", 25, 0)])
    async with runtime.db.session() as session:
        entry = await session.scalar(
            select(LedgerEntry).where(
                LedgerEntry.user_id == user.user_id, LedgerEntry.kind == "redemption"
            )
        )
    assert entry is not None and entry.balance_after == 125
    assert entry.idempotency_key.startswith("redemption:")

    again = await redeem(client, user.headers, code)
    assert again.status_code == 409
    assert again.json() == {"detail": "You have already redeemed this code"}
    assert (await account(runtime.db, user.user_id))[0] == 125
    profile = await client.get("/api/users/credits", headers=user.headers)
    assert profile.json()["credits"] == 125
    assert await redemptions_of(runtime.db, code) == (1, 1, 25)


async def test_unknown_codes_are_not_found(client: httpx.AsyncClient) -> None:
    user = await new_caller(client)
    for text in ("ABCD-EFGH-JKLM-NPQR", "not a code!", "AB"):
        missing = await redeem(client, user.headers, text)
        assert missing.status_code == 404, text
        assert missing.json() == {"detail": "Code not found"}


async def test_expired_used_up_and_disabled_codes_are_refused(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    admin = await operator(client, runtime)
    first, second = await callers(client, 2)

    used_up = (await make_batch(client, admin))["codes"][0]["code"]
    assert (await redeem(client, first.headers, used_up)).status_code == 200
    refused = await redeem(client, second.headers, used_up)
    assert (refused.status_code, refused.json()) == (400, {"detail": "This code has been used up"})

    expiring = await make_batch(client, admin, count=2, expires_at="2999-01-01T00:00:00Z")
    await expire(runtime.db, expiring["batch"]["id"])
    late = await redeem(client, second.headers, expiring["codes"][0]["code"])
    assert (late.status_code, late.json()) == (400, {"detail": "This code has expired"})

    batch = await make_batch(client, admin, count=2)
    disabled = await client.post(
        f"/api/admin/codes/batches/{batch['batch']['id']}/disable",
        json={"reason": "leaked on a forum"},
        headers=admin.headers,
    )
    assert disabled.status_code == 200, disabled.text
    for code in batch["codes"]:
        off = await redeem(client, second.headers, code["code"])
        assert (off.status_code, off.json()) == (400, {"detail": "This code is no longer valid"})

    pair = await make_batch(client, admin, count=2)
    leaked, kept = pair["codes"]
    off = await client.post(
        f"/api/admin/codes/{leaked['id']}/disable",
        json={"reason": "leaked on a forum"},
        headers=admin.headers,
    )
    assert off.status_code == 200, off.text
    assert off.json()["disabled_at"] is not None
    assert (await redeem(client, second.headers, leaked["code"])).status_code == 400
    assert (await redeem(client, second.headers, kept["code"])).status_code == 200

    # Nothing refused moved any credits: the bonus, then the two codes that worked.
    assert (await account(runtime.db, first.user_id))[0] == 125
    assert (await account(runtime.db, second.user_id))[0] == 125


async def test_one_use_code_redeemed_by_twenty_users_at_once_is_taken_once(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    admin = await operator(client, runtime)
    code = (await make_batch(client, admin, credits=40))["codes"][0]["code"]
    users = await callers(client, 20)
    answers = await asyncio.gather(*(redeem(client, u.headers, code) for u in users))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [400] * 19, [a.text for a in answers]
    assert await redemptions_of(runtime.db, code) == (1, 1, 40)
    balances = [(await account(runtime.db, u.user_id))[0] for u in users]
    assert sorted(balances) == [100] * 19 + [140]


async def test_five_use_code_redeemed_by_twenty_users_at_once_is_taken_five_times(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    admin = await operator(client, runtime)
    code = (await make_batch(client, admin, credits=7, max_uses=5))["codes"][0]["code"]
    users = await callers(client, 20)
    answers = await asyncio.gather(*(redeem(client, u.headers, code) for u in users))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 5 + [400] * 15, [a.text for a in answers]
    assert {a.json()["detail"] for a in answers if a.status_code == 400} == {
        "This code has been used up"
    }
    assert await redemptions_of(runtime.db, code) == (5, 5, 35)
    balances = [(await account(runtime.db, u.user_id))[0] for u in users]
    assert sorted(balances) == [100] * 15 + [107] * 5


async def test_one_user_redeeming_a_code_ten_times_at_once_gets_it_once(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    admin = await operator(client, runtime)
    code = (await make_batch(client, admin, credits=9, max_uses=5))["codes"][0]["code"]
    user = await new_caller(client)
    answers = await asyncio.gather(*(redeem(client, user.headers, code) for _ in range(10)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [409] * 9, [a.text for a in answers]
    assert await account(runtime.db, user.user_id) == (109, 0, [BONUS, ("redemption", 9, 0)])
    assert await redemptions_of(runtime.db, code) == (1, 1, 9)


async def test_guessing_is_cut_short(client: httpx.AsyncClient, runtime: Runtime) -> None:
    admin = await operator(client, runtime)
    code = (await make_batch(client, admin))["codes"][0]["code"]
    user = await new_caller(client)
    statuses = [
        (await redeem(client, user.headers, f"WRONG{i:03d}")).status_code for i in range(10)
    ]
    assert statuses == [404] * 10
    stopped = await redeem(client, user.headers, code)  # even the right code, for a while
    assert stopped.status_code == 429
    assert int(stopped.headers["Retry-After"]) > 0
    assert stopped.json()["detail"].startswith("Too many codes tried")
    assert (await account(runtime.db, user.user_id))[0] == 100
    # Another user is not held back.
    other = await new_caller(client)
    assert (await redeem(client, other.headers, code)).status_code == 200


async def test_malformed_bodies_are_refused(client: httpx.AsyncClient) -> None:
    user = await new_caller(client)
    for body in ({}, {"code": 123}, {"code": ""}, {"code": "A" * 65}, {"code": "AB", "x": 1}, []):
        refused = await client.post(REDEEM, json=body, headers=user.headers)
        assert refused.status_code == 422, body
        assert isinstance(refused.json()["detail"], list)
    raw = await client.post(
        REDEEM, content=b"{not json", headers={**user.headers, "Content-Type": "application/json"}
    )
    assert raw.status_code == 422
    assert "detail" in raw.json()


async def test_redeeming_needs_a_signed_in_user(client: httpx.AsyncClient) -> None:
    anonymous = await client.post(REDEEM, json={"code": "ABCD-EFGH-JKLM-NPQR"})
    assert anonymous.status_code == 401
    bad = await client.post(
        REDEEM,
        json={"code": "ABCD-EFGH-JKLM-NPQR"},
        headers={"Authorization": f"Bearer {uuid.uuid4()}"},
    )
    assert bad.status_code == 401


async def test_one_user_redeeming_different_codes_at_once_gets_each(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    admin = await operator(client, runtime)
    made = await make_batch(client, admin, credits=4, count=8)
    user = await new_caller(client)
    answers = await asyncio.gather(
        *(redeem(client, user.headers, code["code"]) for code in made["codes"])
    )
    assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers]
    credits, _, rows = await account(runtime.db, user.user_id)
    assert credits == 132
    assert rows == [BONUS] + [("redemption", 4, 0)] * 8
    assert sorted(a.json()["credits"] for a in answers) == list(range(104, 133, 4))
