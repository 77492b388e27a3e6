"""Outgoing webhooks: signed deliveries of task events, retries, rotation, the delivery log."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from standardwebhooks import Webhook, WebhookVerificationError

from vidgate.db.engine import Database
from vidgate.net.safe_http import UrlPolicy
from vidgate.outbound import build_webhook_client
from vidgate.tasks import service as tasks
from vidgate.tasks.models import Task
from vidgate.webhooks import flows, service
from vidgate.webhooks.models import WebhookAttempt, WebhookDelivery

from ..fixtures.app import Live
from ..fixtures.tasks import Caller, account, new_caller, wait_for
from ..fixtures.webhooks import Receiver, json_of


def bearer(caller: Caller) -> dict[str, str]:
    return {"Authorization": caller.headers["Authorization"]}


async def secret_of(http: httpx.AsyncClient, caller: Caller) -> dict[str, Any]:
    response = await http.get("/api/users/webhook-secret", headers=bearer(caller))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def create(http: httpx.AsyncClient, caller: Caller, prompt: str, hook: str) -> str:
    response = await http.post(
        "/api/videos/text-to-video",
        headers=caller.headers,
        json={"prompt": prompt, "webhook_url": hook},
    )
    assert response.status_code == 200, response.text
    task_id: str = response.json()["task_id"]
    return task_id


async def deliveries(http: httpx.AsyncClient, caller: Caller, task_id: str) -> list[Any]:
    response = await http.get(f"/api/tasks/{task_id}/webhook-deliveries", headers=bearer(caller))
    assert response.status_code == 200, response.text
    rows: list[Any] = response.json()["deliveries"]
    return rows


async def test_running_and_succeeded_arrive_signed_with_the_task_as_shown(
    live: Live, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    caller = await new_caller(http)
    secret = (await secret_of(http, caller))["secret"]
    assert secret.startswith("whsec_")
    task_id = await create(http, caller, "a kite over the sea", receiver.at("/hook"))
    task = await wait_for(http, caller, task_id)
    assert task["status"] == "SUCCEEDED"
    got = await receiver.wait_for("/hook", 2)

    verifier = Webhook(secret)
    # Each event has its own job: they may arrive in either order.
    got = sorted(got, key=lambda r: json_of(r)["type"] != "task.running")
    events = [verifier.verify(r.body, r.headers) for r in got]
    assert [e["type"] for e in events] == ["task.running", "task.succeeded"]
    assert len({r.headers["webhook-id"] for r in got}) == 2
    final = events[1]["data"]
    shown = (await http.get(f"/api/tasks/{task_id}", headers=caller.headers)).json()
    assert final == shown  # the task as GET /api/tasks/{id} shows it
    assert final["result_url"] and final["credits_charged"] == 20
    assert events[0]["data"]["status"] == "RUNNING"
    for received in got:
        assert received.headers["content-type"] == "application/json"
        with pytest.raises(WebhookVerificationError):  # another secret does not verify
            Webhook(service.new_secret()).verify(received.body, received.headers)

    log = await deliveries(http, caller, task_id)
    assert [(d["event_type"], d["status"], d["attempts"]) for d in log] == [
        ("task.running", "succeeded", 1),
        ("task.succeeded", "succeeded", 1),
    ]
    assert [d["event_id"] for d in log] == [r.headers["webhook-id"] for r in got]
    assert log[1]["attempt_log"][0]["status_code"] == 200
    assert log[1]["next_attempt_at"] is None


async def test_canceled_and_failed_events(
    live: Live, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    caller = await new_caller(http)
    secret = (await secret_of(http, caller))["secret"]
    failed = await create(http, caller, "no [fault:moderation]", receiver.at("/failed"))
    assert (await wait_for(http, caller, failed))["status"] == "FAILED"
    # Never accepted by the vendor (throttled): a cancel stops it, with its credits back.
    pending = await create(http, caller, "waits [fault:throttle]", receiver.at("/canceled"))
    response = await http.delete(f"/api/tasks/{pending}", headers=bearer(caller))
    assert response.status_code == 200
    assert (await wait_for(http, caller, pending))["status"] == "CANCELED"

    types = {}
    for path in ("/failed", "/canceled"):
        await receiver.wait_for(path, 1)
        await asyncio.sleep(0.3)  # a duplicate would have arrived by now
        types[path] = [Webhook(secret).verify(r.body, r.headers)["type"] for r in receiver.to(path)]
    assert types["/failed"][-1] == "task.failed"
    assert types["/canceled"][-1] == "task.canceled"
    assert all(len(t) == len(set(t)) for t in types.values())  # each event once
    assert (await account(live.runtime.db, caller.user_id))[:2] == (100, 0)


async def test_an_event_is_recorded_once_and_sent_once(
    live: Live, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Two workers recording the same event make one delivery; two sending it send once."""
    caller = await new_caller(http)
    task_id = await create(http, caller, "once", receiver.at("/once"))
    await wait_for(http, caller, task_id)
    await receiver.wait_for("/once", 2)
    db = live.runtime.db
    async with db.session() as session:
        task = await session.get_one(Task, uuid.UUID(task_id))
        again = await tasks.record_event(session, task, live.runtime.storage)
        await session.commit()
    assert again is False
    async with db.session() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.task_id == uuid.UUID(task_id))
        )
    assert count == 2

    # Redeliver, then race two attempts at the same delivery: one POST.
    before = len(receiver.to("/once"))
    async with db.session() as session:
        rows = await service.redeliver(session, uuid.UUID(task_id))
        await session.commit()
    target = rows[-1].id

    outcomes = await asyncio.gather(
        flows.attempt(db, live.runtime.outbound, target),
        flows.attempt(db, live.runtime.outbound, target),
    )
    assert sorted(o is None for o in outcomes) == [False, True]
    await asyncio.sleep(0.3)
    resent = receiver.to("/once")[before:]
    resent_for_target = [r for r in resent if json_of(r)["type"] == "task.succeeded"]
    assert len(resent_for_target) >= 1
    ids = [r.headers["webhook-id"] for r in resent_for_target]
    assert len(set(ids)) == 1  # the same webhook-id as the first time
    first = [r for r in receiver.to("/once")[:before] if json_of(r)["type"] == "task.succeeded"]
    assert ids[0] == first[0].headers["webhook-id"]  # the two events may arrive in either order


WITHDRAW_QUEUED = text(
    "DELETE FROM procrastinate_jobs WHERE queueing_lock = :lock AND status = 'todo'"
)
COUNT_RUNNING = text(
    "SELECT count(*) FROM procrastinate_jobs WHERE queueing_lock = :lock AND status = 'doing'"
)


async def take_over(db: Database, delivery_id: uuid.UUID) -> None:
    """Whatever the worker did with the delivery so far, the test drives it from here: its queued
    retry is withdrawn (and one running is waited for) so it cannot spend scripted answers."""
    lock = service.queueing_lock(delivery_id)
    for _ in range(100):
        async with db.session() as session:
            await session.execute(WITHDRAW_QUEUED, {"lock": lock})
            running = await session.scalar(COUNT_RUNNING, {"lock": lock})
            if not running:  # a job that ended meanwhile may have queued its retry first
                await session.execute(WITHDRAW_QUEUED, {"lock": lock})
            await session.commit()
        if not running:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"a worker kept delivery {delivery_id}")


async def succeeded_delivery(db: Database, task_id: str) -> uuid.UUID:
    async with db.session() as session:
        delivery_id = await session.scalar(
            select(WebhookDelivery.id).where(
                WebhookDelivery.task_id == uuid.UUID(task_id),
                WebhookDelivery.event_type == "task.succeeded",
            )
        )
    assert delivery_id is not None
    return delivery_id


async def test_retry_schedule_retry_after_and_410(
    live: Live, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Attempts driven by hand with a fixed clock and no jitter: 5 s, then Retry-After when
    longer than the schedule, the schedule when shorter, and 410 stops for good."""
    caller = await new_caller(http)
    receiver.answers = [(500, {}), (503, {})] + [(200, {})] * 5
    task_id = await create(http, caller, "retries", receiver.at("/retry"))
    await wait_for(http, caller, task_id)
    db = live.runtime.db
    delivery_id = await succeeded_delivery(db, task_id)
    await take_over(db, delivery_id)
    receiver.answers = [(500, {}), (429, {"Retry-After": "900"}), (503, {"Retry-After": "7"})]
    receiver.answers += [(410, {})]
    async with db.session() as session:
        row = await session.get_one(WebhookDelivery, delivery_id, with_for_update=True)
        row.status, row.attempts = "pending", 0
        await session.commit()
    # The present, so the retries it schedules are in the future and the sweeper leaves them be.
    clock = datetime.now(UTC)
    waits: list[float | None] = []
    for _ in range(4):
        outcome = await flows.attempt(
            db, live.runtime.outbound, delivery_id, now=lambda: clock, rand=lambda: 0.5
        )
        assert outcome is not None
        waits.append(outcome.retry_in)
    assert waits == [5.0, 900.0, 1800.0, None]
    async with db.session() as session:
        row = await session.get_one(WebhookDelivery, delivery_id)
        assert (row.status, row.attempts, row.last_status_code) == ("failed", 4, 410)
        assert row.next_attempt_at is None
        codes = list(
            await session.scalars(
                select(WebhookAttempt.status_code)
                .where(WebhookAttempt.delivery_id == delivery_id)
                .order_by(WebhookAttempt.id)
            )
        )
    assert codes[-4:] == [500, 429, 503, 410]
    # nothing more is sent after 410
    assert await flows.attempt(db, live.runtime.outbound, delivery_id) is None


async def test_a_slow_receiver_holds_no_lock_and_a_redelivery_takes_over(
    live: Live, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    """While a request is out the delivery row is not locked: the log reads and a redelivery
    writes at once; the attempt that was out is logged but no longer decides the status."""
    caller = await new_caller(http)
    task_id = await create(http, caller, "slow receiver", receiver.at("/slow"))
    await wait_for(http, caller, task_id)
    await receiver.wait_for("/slow", 2)
    db = live.runtime.db
    delivery_id = await succeeded_delivery(db, task_id)
    await take_over(db, delivery_id)
    async with db.session() as session:
        row = await session.get_one(WebhookDelivery, delivery_id, with_for_update=True)
        row.status = "pending"
        await session.commit()

    receiver.hold = asyncio.Event()
    before = len(receiver.to("/slow"))
    out = asyncio.create_task(flows.attempt(db, live.runtime.outbound, delivery_id))
    await receiver.wait_for("/slow", before + 1)
    # A second worker steps aside while the first one's claim is live.
    assert await flows.attempt(db, live.runtime.outbound, delivery_id) is None
    async with db.session() as session:  # NOWAIT: fails at once if anything holds the row
        row = await session.get_one(WebhookDelivery, delivery_id, with_for_update={"nowait": True})
        assert row.sending_until is not None and row.status == "pending"
        await session.rollback()
        await service.redeliver(session, uuid.UUID(task_id))
        await session.commit()

    receiver.answers = [(500, {})]  # what the superseded attempt gets back
    receiver.hold.set()
    assert await out is None
    async with db.session() as session:
        row = await session.get_one(WebhookDelivery, delivery_id)
        assert (row.status, row.sending_until, row.last_status_code) == ("pending", None, 200)
        logged = await session.scalar(
            select(WebhookAttempt.status_code)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.id.desc())
            .limit(1)
        )
        assert logged == 500

    receiver.hold = None  # the redelivery's attempt (called directly, as nothing queued one)
    outcome = await flows.attempt(db, live.runtime.outbound, delivery_id)
    assert outcome is not None and outcome.status == "succeeded"
    async with db.session() as session:
        row = await session.get_one(WebhookDelivery, delivery_id)
        assert (row.status, row.sending_until, row.last_status_code) == ("succeeded", None, 200)


def test_the_schedule_gives_up_after_the_last_wait() -> None:
    half = 0.5
    waits = [service.retry_delay(n, None, lambda: half) for n in range(1, 11)]
    assert waits == [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400, None]
    assert service.retry_delay(1, None, lambda: 0.0) == pytest.approx(4.5)  # -10 %
    assert service.retry_delay(1, None, lambda: 1.0) == pytest.approx(5.5)  # +10 %
    assert service.retry_delay(1, 10**9, lambda: half) == 86400  # Retry-After is capped
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert service.parse_retry_after("120", now) == 120
    assert service.parse_retry_after("Wed, 02 Dec 2026 12:01:00 GMT", now) == 60
    assert service.parse_retry_after("soon", now) is None


async def test_rotation_signs_with_both_secrets_for_a_day(
    live: Live, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    caller = await new_caller(http)
    old = (await secret_of(http, caller))["secret"]
    rotated = await http.post("/api/users/webhook-secret/rotate", headers=bearer(caller))
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new != old and new.startswith("whsec_")
    expires = datetime.fromisoformat(rotated.json()["previous_secret_expires_at"])
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(hours=24)
    assert (await secret_of(http, caller))["secret"] == new

    task_id = await create(http, caller, "rotated", receiver.at("/rotated"))
    await wait_for(http, caller, task_id)
    got = await receiver.wait_for("/rotated", 2)
    for r in got:
        assert len(r.headers["webhook-signature"].split(" ")) == 2
        assert Webhook(new).verify(r.body, r.headers)
        assert Webhook(old).verify(r.body, r.headers)  # receivers not yet switched still work

    # A day later only the new secret signs.
    later = datetime.now(UTC) + timedelta(hours=25)
    async with live.runtime.db.session() as session:
        signing = await service.signing_secrets(session, caller.user_id, later)
    assert signing == [new]


async def test_delivery_log_is_private_and_redeliver_resends(
    live: Live, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    caller = await new_caller(http)
    task_id = await create(http, caller, "log", receiver.at("/log"))
    await wait_for(http, caller, task_id)
    await receiver.wait_for("/log", 2)
    stranger = await new_caller(http)
    for method, path in (
        ("GET", f"/api/tasks/{task_id}/webhook-deliveries"),
        ("POST", f"/api/tasks/{task_id}/webhook-deliveries/redeliver"),
    ):
        refused = await http.request(method, path, headers=bearer(stranger))
        assert refused.status_code == 404
        assert refused.json() == {"detail": "Task not found"}
        assert (await http.request(method, path)).status_code == 401

    response = await http.post(
        f"/api/tasks/{task_id}/webhook-deliveries/redeliver", headers=bearer(caller)
    )
    assert response.status_code == 200, response.text
    assert [d["event_type"] for d in response.json()["deliveries"]] == [
        "task.running",
        "task.succeeded",
    ]
    got = await receiver.wait_for("/log", 4)
    assert sorted(r.headers["webhook-id"] for r in got[2:]) == sorted(
        r.headers["webhook-id"] for r in got[:2]
    )

    no_hook = await http.post(
        "/api/videos/text-to-video", headers=caller.headers, json={"prompt": "quiet"}
    )
    quiet = no_hook.json()["task_id"]
    await wait_for(http, caller, quiet)
    assert await deliveries(http, caller, quiet) == []
    response = await http.post(
        f"/api/tasks/{quiet}/webhook-deliveries/redeliver", headers=bearer(caller)
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://[::1]:9/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[fc00::1]/hook",
        "https://127.0.0.1/hook",
    ],
)
async def test_production_never_sends_to_private_addresses(live: Live, url: str) -> None:
    production = live.settings.model_copy(update={"env": "production"})
    client = build_webhook_client(production)
    try:
        async with live.runtime.db.session() as session:
            task = (await session.scalars(select(Task).limit(1))).first()
            assert task is not None
            delivery = WebhookDelivery(
                id=uuid.uuid4(),
                event_id=f"msg_{uuid.uuid4().hex}",
                user_id=task.user_id,
                task_id=task.id,
                event_type=f"test.{uuid.uuid4().hex[:8]}",
                url=url,
                payload={"type": "test", "timestamp": "2026-12-02T12:00:00Z", "data": {}},
                status="pending",
                attempts=0,
            )
            session.add(delivery)
            await session.commit()
        outcome = await flows.attempt(live.runtime.db, client, delivery.id)
        assert outcome is not None and outcome.status == "pending"
        async with live.runtime.db.session() as session:
            row = await session.get_one(WebhookDelivery, delivery.id)
            assert row.last_status_code is None
            assert row.last_error and row.last_error.startswith("Refused")
    finally:
        await client.aclose()


async def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    """Checked on the address actually connected to, so DNS rebinding does not get through."""

    async def rebinding(host: str, port: int) -> list[Any]:
        import ipaddress

        return [ipaddress.ip_address("10.1.2.3")]

    from vidgate.net.safe_http import SafeHttpClient, UnsafeUrl

    client = SafeHttpClient(UrlPolicy(allow_private=False), resolver=rebinding)
    try:
        with pytest.raises(UnsafeUrl):
            await client.request("POST", "https://hooks.example.com/x", content=b"{}")
    finally:
        await client.aclose()


async def test_redirects_are_not_followed(
    live: Live, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    caller = await new_caller(http)
    receiver.answers = [(302, {"Location": receiver.at("/elsewhere")})] * 10  # retries too
    task_id = await create(http, caller, "redirected", receiver.at("/moved"))
    await wait_for(http, caller, task_id)
    await receiver.wait_for("/moved", 2)
    await asyncio.sleep(0.5)
    assert receiver.to("/elsewhere") == []
    log = await deliveries(http, caller, task_id)
    assert {d["last_status_code"] for d in log} == {302}
    assert {d["status"] for d in log} == {"pending"}  # a 3xx is a failure: retried later
