"""The `vidgate` console script, run as a real subprocess against the test database."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text

from vidgate.admin.models import AuditEntry
from vidgate.apikeys.models import ApiKey
from vidgate.apikeys.service import MAX_ACTIVE_PERSONAL_KEYS
from vidgate.config import Settings
from vidgate.db.engine import Database
from vidgate.db.migrate import head_revision

from .fixtures.app import TEST_CATALOG, Live
from .fixtures.signin import SignedIn, e164, sign_in
from .fixtures.tasks import animate_inputs, new_caller, wait_for

VIDGATE = Path(sys.executable).with_name("vidgate")


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDGATE_")}
    env.update(
        VIDGATE_DATABASE_URL=database_url,
        VIDGATE_DATA_DIR=str(tmp_path),
        VIDGATE_SECRET_KEY=secrets.token_urlsafe(48),
        VIDGATE_LOG_LEVEL="WARNING",
    )
    return env


async def vidgate(env: dict[str, str], *args: str) -> Run:
    proc = await asyncio.create_subprocess_exec(
        str(VIDGATE),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


async def user_id(client: httpx.AsyncClient, user: SignedIn) -> str:
    r = await client.get("/api/users/profile", headers=user.headers)
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def field(output: str, name: str) -> str:
    match = re.search(rf"^{name}:?\s+(\S+)", output, re.MULTILINE)
    assert match, output
    return match.group(1)


def test_console_script_exists() -> None:
    assert VIDGATE.exists(), VIDGATE


async def test_migrate_reports_the_revision(cli_env: dict[str, str]) -> None:
    run = await vidgate(cli_env, "migrate")
    assert run.code == 0, run.text
    assert head_revision() in run.out
    assert "external PostgreSQL" in run.out


async def test_a_bad_catalog_stops_every_command_with_the_entry_named(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    catalog = tmp_path / "catalog.toml"
    catalog.write_text('[defaults]\ntext-to-video = "sora-2"\n', encoding="utf-8")
    for command in (("migrate",), ("serve", "--port", "1")):
        run = await vidgate({**cli_env, "VIDGATE_CATALOG": str(catalog)}, *command)
        assert run.code == 2, run.text
        assert f"{catalog}: catalog: defaults.text-to-video: 'sora-2' is not a live" in run.err


async def test_client_key_create_list_revoke(cli_env: dict[str, str], db: Database) -> None:
    created = await vidgate(cli_env, "apikey", "create", "--client", "web")
    assert created.code == 0, created.text
    key = field(created.out, "key")
    key_id = field(created.out, "id")
    assert key.startswith("vg_")
    assert field(created.out, "kind") == "client"
    async with db.session() as s:
        row = await s.get_one(ApiKey, uuid.UUID(key_id))
        assert (row.kind, row.name, row.user_id) == ("client", "web", None)
        assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()

    listed = await vidgate(cli_env, "apikey", "list")
    assert listed.code == 0, listed.text
    line = next(line for line in listed.out.splitlines() if key_id in line)
    assert key[:10] in line and "client" in line and line.rstrip().endswith("web")
    assert key not in listed.out

    revoked = await vidgate(cli_env, "apikey", "revoke", key_id)
    assert revoked.code == 0, revoked.text
    again, listed, listed_all = await asyncio.gather(
        vidgate(cli_env, "apikey", "revoke", key_id),
        vidgate(cli_env, "apikey", "list"),
        vidgate(cli_env, "apikey", "list", "--all"),
    )
    assert again.code == 1, again.text
    assert key_id in again.err
    assert key_id not in listed.out
    assert re.search(rf"^{key_id}\s.*\(revoked\)$", listed_all.out, re.MULTILINE), listed_all.out
    async with db.session() as s:
        assert (await s.get_one(ApiKey, uuid.UUID(key_id))).revoked_at is not None


async def test_personal_key_for_a_user(
    cli_env: dict[str, str], client: httpx.AsyncClient, db: Database
) -> None:
    user = await sign_in(client)
    uid = await user_id(client, user)
    created, unknown, neither, both, not_an_id = await asyncio.gather(
        vidgate(cli_env, "apikey", "create", "--user", uid, "--name", "from cli"),
        vidgate(cli_env, "apikey", "create", "--user", str(uuid.uuid4())),
        vidgate(cli_env, "apikey", "create"),
        vidgate(cli_env, "apikey", "create", "--client", "x", "--user", uid),
        vidgate(cli_env, "apikey", "create", "--user", "nobody"),
    )
    assert created.code == 0, created.text
    assert field(created.out, "kind") == "personal"
    key = field(created.out, "key")
    assert key.startswith("vg_")
    listed = (await client.get("/api/users/api-keys", headers=user.headers)).json()["api_keys"]
    assert [(k["id"], k["name"], k["prefix"]) for k in listed] == [
        (field(created.out, "id"), "from cli", key[:10])
    ]
    assert unknown.code == 1, unknown.text
    assert (neither.code, both.code, not_an_id.code) == (2, 2, 2)
    async with db.session() as s:
        owned = (await s.scalars(select(ApiKey).where(ApiKey.user_id == uuid.UUID(uid)))).all()
    assert len(owned) == 1


async def test_personal_key_from_the_cli_keeps_the_users_key_limit(
    cli_env: dict[str, str], client: httpx.AsyncClient, db: Database
) -> None:
    user = await sign_in(client)
    uid = await user_id(client, user)
    for n in range(MAX_ACTIVE_PERSONAL_KEYS):
        made = await client.post(
            "/api/users/api-keys", json={"name": f"k{n}"}, headers=user.headers
        )
        assert made.status_code == 201, made.text
    refused = await vidgate(cli_env, "apikey", "create", "--user", uid)
    assert refused.code == 1, refused.text
    assert f"already have {MAX_ACTIVE_PERSONAL_KEYS} active API keys" in refused.text
    async with db.session() as s:
        owned = await s.scalar(
            select(func.count()).select_from(ApiKey).where(ApiKey.user_id == uuid.UUID(uid))
        )
    assert owned == MAX_ACTIVE_PERSONAL_KEYS


async def test_credits_grant(cli_env: dict[str, str], client: httpx.AsyncClient) -> None:
    user = await sign_in(client)
    uid = await user_id(client, user)

    granted = await vidgate(cli_env, "credits", "grant", uid, "50", "--reason", "support")
    assert granted.code == 0, granted.text
    assert "Granted 50 credits; balance now 150" in granted.out
    credits = (await client.get("/api/users/credits", headers=user.headers)).json()
    assert (credits["credits"], credits["total_earned"], credits["total_spent"]) == (150, 150, 0)
    newest = (await client.get("/api/users/credits/transactions", headers=user.headers)).json()
    entry = newest["transactions"][0]
    assert (entry["kind"], entry["delta"], entry["note"]) == ("adjustment", 50, "support")

    key = f"ticket-{uuid.uuid4()}"
    first = await vidgate(cli_env, "credits", "grant", uid, "10", "--reason", "t", "--key", key)
    assert first.code == 0, first.text
    assert "Granted 10 credits; balance now 160" in first.out
    second = await vidgate(cli_env, "credits", "grant", uid, "10", "--reason", "t", "--key", key)
    assert second.code == 0, second.text
    assert "already granted" in second.out.lower()
    credits = (await client.get("/api/users/credits", headers=user.headers)).json()
    assert credits["credits"] == 160
    history = (await client.get("/api/users/credits/transactions", headers=user.headers)).json()
    assert [(t["delta"], t["note"]) for t in history["transactions"]] == [
        (10, "t"),
        (50, "support"),
        (100, "Welcome credits"),
    ]

    unknown, zero, negative, no_reason = await asyncio.gather(
        vidgate(cli_env, "credits", "grant", str(uuid.uuid4()), "5", "--reason", "x"),
        vidgate(cli_env, "credits", "grant", uid, "0", "--reason", "x"),
        vidgate(cli_env, "credits", "grant", uid, "--reason", "x", "--", "-5"),
        vidgate(cli_env, "credits", "grant", uid, "5"),
    )
    assert unknown.code == 1, unknown.text
    assert "not found" in unknown.err.lower()
    assert zero.code == 2 and negative.code == 2 and no_reason.code == 2
    credits = (await client.get("/api/users/credits", headers=user.headers)).json()
    assert credits["credits"] == 160


async def test_credits_deduct(cli_env: dict[str, str], client: httpx.AsyncClient) -> None:
    """Taking credits back (a payment refunded by hand): never below what is available, and a
    keyed deduction run twice at once takes once."""
    user = await sign_in(client)
    uid = await user_id(client, user)

    key = f"refund-{uuid.uuid4()}"
    runs = await asyncio.gather(
        *(
            vidgate(cli_env, "credits", "deduct", uid, "30", "--reason", "refunded", "--key", key)
            for _ in range(2)
        )
    )
    assert [r.code for r in runs] == [0, 0], [r.text for r in runs]
    assert sorted(r.out.split(";")[0] for r in runs) == [
        "Already deducted (same key) 30 credits",
        "Deducted 30 credits",
    ]
    credits = (await client.get("/api/users/credits", headers=user.headers)).json()
    assert (credits["credits"], credits["total_spent"]) == (70, 0)  # not spending: an adjustment
    newest = (await client.get("/api/users/credits/transactions", headers=user.headers)).json()
    entry = newest["transactions"][0]
    assert (entry["kind"], entry["delta"], entry["note"]) == ("adjustment", -30, "refunded")

    too_much, zero, unknown = await asyncio.gather(
        vidgate(cli_env, "credits", "deduct", uid, "71", "--reason", "x"),
        vidgate(cli_env, "credits", "deduct", uid, "0", "--reason", "x"),
        vidgate(cli_env, "credits", "deduct", str(uuid.uuid4()), "5", "--reason", "x"),
    )
    assert too_much.code == 1, too_much.text
    assert "Not deducted: Insufficient credits. Required: 71" in too_much.err
    assert "Available: 70" in too_much.err
    assert zero.code == 2 and unknown.code == 1
    credits = (await client.get("/api/users/credits", headers=user.headers)).json()
    assert credits["credits"] == 70
    everything = await vidgate(cli_env, "credits", "deduct", uid, "70", "--reason", "all")
    assert "Deducted 70 credits; balance now 0" in everything.out, everything.text


async def test_credits_grant_to_a_malformed_id_is_a_usage_error(cli_env: dict[str, str]) -> None:
    # Exit 2 with "Not an id", like `apikey revoke nope`; not exit 1 with "Not granted: 2".
    run = await vidgate(cli_env, "credits", "grant", "someone", "5", "--reason", "x")
    assert "Not an id: someone" in run.err
    assert run.code == 2, run.text
    assert "Not granted" not in run.err


async def test_credits_grant_replay_reports_the_real_balance(
    cli_env: dict[str, str], client: httpx.AsyncClient
) -> None:
    user = await sign_in(client)
    uid = await user_id(client, user)
    key = f"ticket-{uuid.uuid4()}"
    first = await vidgate(cli_env, "credits", "grant", uid, "10", "--reason", "t", "--key", key)
    assert "balance now 110" in first.out, first.text
    other = await vidgate(cli_env, "credits", "grant", uid, "5", "--reason", "other")
    assert "balance now 115" in other.out, other.text
    replay = await vidgate(cli_env, "credits", "grant", uid, "10", "--reason", "t", "--key", key)
    assert replay.code == 0, replay.text
    assert "already granted" in replay.out.lower()
    credits = (await client.get("/api/users/credits", headers=user.headers)).json()
    assert credits["credits"] == 115
    # What the operator is told the balance is "now" must be the balance now.
    assert "balance now 115" in replay.out, replay.out


async def test_credits_grant_key_of_another_user_is_not_already_granted(
    cli_env: dict[str, str], client: httpx.AsyncClient
) -> None:
    alice, bob = await sign_in(client), await sign_in(client)
    alice_id, bob_id = await user_id(client, alice), await user_id(client, bob)
    key = f"ticket-{uuid.uuid4()}"
    to_alice = await vidgate(
        cli_env, "credits", "grant", alice_id, "10", "--reason", "t", "--key", key
    )
    assert to_alice.code == 0, to_alice.text
    to_bob = await vidgate(cli_env, "credits", "grant", bob_id, "10", "--reason", "t", "--key", key)
    bob_credits = (await client.get("/api/users/credits", headers=bob.headers)).json()["credits"]
    # Bob never got these credits: the CLI must either grant them or refuse (non-zero exit),
    # not report success with "already granted".
    assert to_bob.code != 0 or bob_credits == 110, (to_bob.text, bob_credits)


async def test_credits_verify_names_a_drifted_user(
    cli_env: dict[str, str], client: httpx.AsyncClient, db: Database
) -> None:
    user = await sign_in(client)
    uid = await user_id(client, user)

    def drift_lines(run: Run) -> list[str]:
        return [line for line in run.out.splitlines() if line.startswith("DRIFT")]

    before = await vidgate(cli_env, "credits", "verify")
    # Other users in this database are not ours to judge; the exit code follows the drift lines.
    assert before.code == (1 if drift_lines(before) else 0), before.text
    assert uid not in before.out
    if before.code == 0:
        assert "consistent" in before.out

    async with db.session() as s:
        await s.execute(text("UPDATE users SET credits = credits + 1 WHERE id = :id"), {"id": uid})
        await s.commit()
    try:
        during = await vidgate(cli_env, "credits", "verify")
        assert during.code == 1, during.text
        mine = [line for line in drift_lines(during) if uid in line]
        assert mine == [f"DRIFT user {uid}: credits 101 vs ledger 100; reserved 0 vs ledger 0"]
    finally:
        async with db.session() as s:
            await s.execute(
                text("UPDATE users SET credits = credits - 1 WHERE id = :id"), {"id": uid}
            )
            await s.commit()
    after = await vidgate(cli_env, "credits", "verify")
    assert uid not in after.out
    assert after.code == (1 if drift_lines(after) else 0), after.text


async def test_user_show(cli_env: dict[str, str], client: httpx.AsyncClient) -> None:
    user = await sign_in(client, username="shown")
    uid = await user_id(client, user)
    by_phone, by_e164, by_id, bad_phone, unknown = await asyncio.gather(
        vidgate(cli_env, "user", "show", user.phone),
        vidgate(cli_env, "user", "show", e164(user.phone)),
        vidgate(cli_env, "user", "show", uid),
        vidgate(cli_env, "user", "show", "86-123"),
        vidgate(cli_env, "user", "show", str(uuid.uuid4())),
    )
    for run in (by_phone, by_e164, by_id):
        assert run.code == 0, run.text
        assert field(run.out, "id") == uid
        assert field(run.out, "phone") == e164(user.phone)
        assert field(run.out, "username") == "shown"
        assert field(run.out, "credits") == "100"
        assert field(run.out, "earned") == "100"
    assert bad_phone.code == 2, bad_phone.text
    assert unknown.code == 1, unknown.text
    assert "No user" in unknown.err


def test_banner_names_the_web_app_and_what_it_lacks(tmp_path: Path) -> None:
    from vidgate.cli import _banner

    missing = Settings(env="production", web_dir=tmp_path / "none", data_dir=tmp_path)
    assert "web app:   not built (run `make web`)" in _banner(missing, "http://x", "db", True)

    (tmp_path / "index.html").write_text("<h1>vidgate</h1>")
    keyless = Settings(env="production", web_dir=tmp_path, data_dir=tmp_path)
    assert "set VIDGATE_WEB_CLIENT_API_KEY" in _banner(keyless, "http://x", "db", True)
    keyed = keyless.model_copy(update={"web_client_api_key": "vg_web"})
    banner = _banner(keyed, "http://x", "db", True)
    assert "web app:   http://x/\n" in banner


async def test_models_lists_channels_and_switches_one_off(
    cli_env: dict[str, str], db: Database
) -> None:
    env = {**cli_env, "VIDGATE_CATALOG": str(TEST_CATALOG)}
    listed = await vidgate(env, "models")
    assert listed.code == 0, listed.text
    assert re.search(
        r"^wan2\.7-t2v  \[text-to-video\]  standard 20, hd 30 credits  \(live\)$",
        listed.out,
        re.MULTILINE,
    ), listed.out
    assert re.search(
        r"^sora-2-t2v-test .*\(live; default for text-to-video\)$", listed.out, re.MULTILINE
    ), listed.out
    assert re.search(
        r"^  test-single +dashscope +wan2\.2-animate-move +\w+ +failures \d+  "
        r"open tasks \d+/1$",
        listed.out,
        re.MULTILINE,
    ), listed.out
    off = await vidgate(env, "models", "disable", "test-second")
    assert (off.code, off.out.strip()) == (0, "Disabled test-second"), off.text
    shown = await vidgate(env, "models")
    assert re.search(r"^  test-second +dashscope .* disabled ", shown.out, re.MULTILINE), shown.out
    on = await vidgate(env, "models", "enable", "test-second")
    assert on.code == 0, on.text
    unknown = await vidgate(env, "models", "disable", "nope")
    assert unknown.code == 1 and "No channel nope in the catalog" in unknown.err


async def test_report_costs_prices_billed_seconds_by_channel(
    cli_env: dict[str, str], live: Live, http: httpx.AsyncClient
) -> None:
    caller = await new_caller(http)
    inputs = await animate_inputs(http, caller, seconds=2.0)
    created = await http.post("/api/videos/animate-move", headers=caller.headers, json=inputs)
    assert created.status_code == 200, created.text
    done = await wait_for(http, caller, created.json()["task_id"])
    assert done["status"] == "SUCCEEDED", done
    env = {**cli_env, "VIDGATE_CATALOG": str(TEST_CATALOG)}
    report = await vidgate(env, "report", "costs", "--since", "2000-01-01")
    assert report.code == 0, report.text
    line = next(
        (
            text
            for text in report.out.splitlines()
            if text.startswith("wan2.2-animate-move")
            and "dashscope-animate-move" in text
            and " wan-std " in text
        ),
        None,
    )
    assert line is not None, report.out
    # The built-in price of this channel is CNY 0.40 per second of wan-std output.
    *_, seconds, earned, cost, currency, margin = line.split()
    assert float(cost) == pytest.approx(float(seconds) * 0.40, abs=0.006)
    assert currency == "CNY"
    assert float(margin) == round(float(earned) - float(cost), 2)
    bad = await vidgate(env, "report", "costs", "--since", "yesterday")
    assert bad.code == 2 and "--since must be a date" in bad.err


async def test_user_role_suspend_and_restore_are_audited(
    cli_env: dict[str, str], client: httpx.AsyncClient, db: Database
) -> None:
    user = await sign_in(client)
    uid = await user_id(client, user)
    made = await vidgate(cli_env, "user", "role", user.phone, "admin", "--reason", "first admin")
    assert made.code == 0, made.text
    assert made.out.strip() == f"{uid} is now admin"
    wrong = await vidgate(cli_env, "user", "role", user.phone, "owner")
    assert wrong.code == 2 and "user, support, admin" in wrong.err
    off = await vidgate(cli_env, "user", "suspend", uid, "--reason", "fraud check")
    assert (off.code, off.out.strip()) == (0, f"{uid} suspended"), off.text
    twice = await vidgate(cli_env, "user", "suspend", uid, "--reason", "fraud check")
    assert twice.code == 1 and "already" in twice.err
    on = await vidgate(cli_env, "user", "restore", uid, "--reason", "cleared")
    assert on.code == 0, on.text
    nobody = await vidgate(cli_env, "user", "role", "nobody@example.com", "admin")
    assert nobody.code == 1 and "No user" in nobody.err
    async with db.session() as session:
        rows = (
            await session.execute(
                select(AuditEntry.action, AuditEntry.actor, AuditEntry.reason)
                .where(AuditEntry.target_id == uid)
                .order_by(AuditEntry.id)
            )
        ).all()
    assert [(a, r) for a, _, r in rows] == [
        ("user.role", "first admin"),
        ("user.suspended", "fraud check"),
        ("user.restored", "cleared"),
    ]
    assert all(actor.startswith("cli:") for _, actor, _ in rows)


async def test_codes_create_list_export_and_disable(
    cli_env: dict[str, str], client: httpx.AsyncClient
) -> None:
    made = await vidgate(
        cli_env, "codes", "create", "--credits", "30", "--count", "3", "--reason", "launch promo"
    )
    assert made.code == 0, made.text
    lines = made.out.strip().splitlines()
    batch_id = lines[0].removeprefix("batch ")
    codes = lines[1:]
    assert len(codes) == 3 and all(re.fullmatch(r"[A-Z2-9]{4}(-[A-Z2-9]{4}){3}", c) for c in codes)

    user = await sign_in(client)
    redeemed = await client.post("/api/users/redeem", json={"code": codes[0]}, headers=user.headers)
    assert redeemed.status_code == 200, redeemed.text
    assert redeemed.json()["credits"] == 130

    listed = await vidgate(cli_env, "codes", "list")
    assert listed.code == 0 and f"{batch_id}  3 codes × 30 credits" in listed.out, listed.out
    exported = await vidgate(cli_env, "codes", "export", batch_id)
    assert exported.code == 0, exported.text
    rows = exported.out.strip().splitlines()
    assert rows[0].startswith("code,credits") and len(rows) == 4
    assert {r.split(",")[0] for r in rows[1:]} == set(codes)
    off = await vidgate(cli_env, "codes", "disable", batch_id, "--reason", "promo over")
    assert off.code == 0, off.text
    late = await client.post("/api/users/redeem", json={"code": codes[1]}, headers=user.headers)
    assert late.status_code == 400
    bad = await vidgate(
        cli_env, "codes", "create", "--credits", "0", "--count", "1", "--reason", "x"
    )
    assert bad.code == 1, bad.text
    unknown = await vidgate(cli_env, "codes", "disable", str(uuid.uuid4()), "--reason", "typo")
    assert unknown.code == 1, unknown.text


async def test_payments_refund_refuses_unknown_orders_and_bad_arguments(
    cli_env: dict[str, str],
) -> None:
    """The refund itself runs through the flow the console uses (tests/payments/test_refunds.py);
    here, what the command says when it cannot start."""
    unknown = await vidgate(cli_env, "payments", "refund", str(uuid.uuid4()), "--reason", "asked")
    assert unknown.code == 1 and "not found" in unknown.err.lower(), unknown.text
    short = await vidgate(cli_env, "payments", "refund", str(uuid.uuid4()), "--reason", "x")
    assert short.code == 2, short.text
    negative = await vidgate(
        cli_env, "payments", "refund", str(uuid.uuid4()), "--reason", "asked", "--amount", "-5"
    )
    assert negative.code == 2, negative.text
    malformed = await vidgate(cli_env, "payments", "refund", "not-an-id", "--reason", "asked")
    assert malformed.code == 2, malformed.text


async def test_storage_report_and_gc_dry_run_change_nothing(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    orphan = tmp_path / "media" / "uploads" / "2026" / "01" / f"{secrets.token_hex(16)}.png"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"no row points here")
    long_ago = time.time() - 3 * 86400
    os.utime(orphan, (long_ago, long_ago))

    report = await vidgate(cli_env, "storage", "report")
    assert report.code == 0, report.text
    assert re.search(r"^uploads\s+1\s+18 bytes", report.out, re.MULTILINE), report.out
    assert "uploads: 1 orphaned objects (18 bytes)" in report.out
    assert "top users by bytes stored:" in report.out

    dry = await vidgate(cli_env, "storage", "gc", "--dry-run")
    assert dry.code == 0, dry.text
    assert "uploads: 1 orphaned objects (18 bytes)" in dry.out
    assert dry.out.rstrip().endswith("dry run: nothing changed")
    assert orphan.exists()
