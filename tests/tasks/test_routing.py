"""Routing through a model's channels: failover only when the vendor surely did not take the job,
charged once, never resent after an ambiguous submit, no routing around a refusal; attempts
recorded; circuit breakers shared through the database; concurrency slots; the models list."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select

from vidgate.app import create_app
from vidgate.catalog.loader import load_catalog
from vidgate.config import Settings
from vidgate.db.engine import Database
from vidgate.routing import service as routing
from vidgate.routing.models import ChannelHealth
from vidgate.runtime import Runtime
from vidgate.tasks import lifecycle
from vidgate.tasks.models import Task

from ..fixtures.app import TEST_CATALOG, Live
from ..fixtures.databases import database_of_its_own
from ..fixtures.samples import png_bytes
from ..fixtures.tasks import (
    account,
    animate_inputs,
    attempts,
    new_caller,
    text_to_video,
    upload,
    wait_for,
)

FAULTS = "/_emulator/dashscope/_control/faults"
CHANNELS = (
    "test-first",
    "test-second",
    "test-single",
    "test-kie-move",
    "test-dashscope-move",
    "dashscope-wan27-t2v",
    "fal-wan27-t2v",
    "test-kie-only",
)


@pytest.fixture
async def fresh_channels(live: Live) -> AsyncIterator[None]:
    """The routing tests' channels start healthy, and no fault stays armed after a test."""
    async with live.runtime.db.transaction() as session:
        await session.execute(delete(ChannelHealth).where(ChannelHealth.channel.in_(CHANNELS)))
    yield
    async with httpx.AsyncClient(base_url=live.url) as client:
        await client.post(FAULTS, json={"next_submit": None})
        await client.post("/_emulator/kie/_control/paused", json={"models": []})


async def _create(http: httpx.AsyncClient, caller: Any, inputs: dict[str, str], model: str) -> str:
    created = await http.post(
        "/api/videos/animate-move", headers=caller.headers, json={**inputs, "model": model}
    )
    assert created.status_code == 200, created.text
    return str(created.json()["task_id"])


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [
        ("throttle", "throttled"),  # 429 with Retry-After
        ("server_error", "throttled"),  # 500 InternalError: DashScope's "retry" class
        ("unavailable", "throttled"),  # 503: the service did not take the work
        ("arrearage", "channel_error"),  # the channel's account, not the user's input
    ],
)
async def test_a_channel_that_did_not_take_the_job_hands_it_to_the_next(
    live: Live, http: httpx.AsyncClient, fresh_channels: None, fault: str, outcome: str
) -> None:
    caller = await new_caller(http)
    inputs = await animate_inputs(http, caller, seconds=2.0)
    armed = await http.post(FAULTS, json={"next_submit": fault, "count": 1})
    assert armed.status_code == 200, armed.text
    task_id = await _create(http, caller, inputs, "failover-move")
    done = await wait_for(http, caller, task_id)
    assert done["status"] == "SUCCEEDED", done
    assert done["model"] == "failover-move"
    assert await attempts(live.runtime.db, task_id) == [
        ("test-first", outcome),
        ("test-second", "accepted"),
    ]
    async with live.runtime.db.session() as session:
        task = await session.get_one(Task, uuid.UUID(task_id))
    assert (task.channel, task.provider) == ("test-second", "dashscope")
    credits, reserved, rows = await account(live.runtime.db, caller.user_id)
    assert (credits, reserved) == (80, 0)  # 2 s at 10 credits/s, charged once
    assert [kind for kind, _, _ in rows] == ["signup_bonus", "reserve", "charge"]


async def test_a_refusal_fails_the_task_without_trying_another_channel(
    live: Live, http: httpx.AsyncClient, fresh_channels: None
) -> None:
    caller = await new_caller(http)
    inputs = await animate_inputs(http, caller, seconds=2.0)
    armed = await http.post(FAULTS, json={"next_submit": "invalid_input", "count": 1})
    assert armed.status_code == 200, armed.text
    task_id = await _create(http, caller, inputs, "failover-move")
    done = await wait_for(http, caller, task_id)
    assert done["status"] == "FAILED", done
    assert await attempts(live.runtime.db, task_id) == [("test-first", "rejected")]
    credits, reserved, rows = await account(live.runtime.db, caller.user_id)
    assert (credits, reserved) == (100, 0)
    assert [kind for kind, _, _ in rows] == ["signup_bonus", "reserve", "release"]


async def test_an_ambiguous_submit_is_never_sent_to_another_channel(
    live: Live, http: httpx.AsyncClient, fresh_channels: None
) -> None:
    """The first channel's answer outlasts the provider timeout: it may have the job, so the
    task fails with its credits back and no other channel is asked."""
    caller = await new_caller(http)
    inputs = await animate_inputs(http, caller, seconds=2.0)
    slow = live.settings.provider_timeout_seconds + 2
    armed = await http.post(FAULTS, json={"next_submit": "slow", "slow_seconds": slow})
    assert armed.status_code == 200, armed.text
    task_id = await _create(http, caller, inputs, "failover-move")
    done = await wait_for(http, caller, task_id, within=60)
    assert (done["status"], done["error_code"]) == ("FAILED", "submit_unknown"), done
    assert await attempts(live.runtime.db, task_id) == [("test-first", "ambiguous")]
    credits, reserved, _ = await account(live.runtime.db, caller.user_id)
    assert (credits, reserved) == (100, 0)


async def test_an_open_breaker_sends_tasks_straight_to_the_next_channel(
    live: Live, http: httpx.AsyncClient, fresh_channels: None
) -> None:
    async with live.runtime.db.transaction() as session:
        session.add(
            ChannelHealth(
                channel="test-first",
                failures=5,
                open_until=datetime.now(UTC) + timedelta(minutes=5),
            )
        )
    caller = await new_caller(http)
    inputs = await animate_inputs(http, caller, seconds=2.0)
    task_id = await _create(http, caller, inputs, "failover-move")
    done = await wait_for(http, caller, task_id)
    assert done["status"] == "SUCCEEDED", done
    assert await attempts(live.runtime.db, task_id) == [("test-second", "accepted")]


async def test_a_half_open_probe_refused_for_its_input_closes_the_breaker(
    live: Live, http: httpx.AsyncClient, fresh_channels: None
) -> None:
    """The vendor answered the probe (it refused the user's input): the channel works, so the
    breaker closes and the next task is sent at once instead of waiting out the probe window."""
    async with live.runtime.db.transaction() as session:
        session.add(
            ChannelHealth(
                channel="test-first",
                failures=5,
                open_until=datetime.now(UTC) - timedelta(seconds=1),
            )
        )
    caller = await new_caller(http)
    refused_inputs = await animate_inputs(http, caller, seconds=2.0)
    next_inputs = await animate_inputs(http, caller, seconds=2.0)
    armed = await http.post(FAULTS, json={"next_submit": "invalid_input", "count": 1})
    assert armed.status_code == 200, armed.text
    probe = await _create(http, caller, refused_inputs, "failover-move")
    assert (await wait_for(http, caller, probe))["status"] == "FAILED"
    assert await attempts(live.runtime.db, probe) == [("test-first", "rejected")]
    async with live.runtime.db.session() as session:
        health = await session.get_one(ChannelHealth, "test-first")
    assert (health.failures, health.open_until, health.probing_until) == (0, None, None)
    following = await _create(http, caller, next_inputs, "failover-move")
    assert (await wait_for(http, caller, following))["status"] == "SUCCEEDED"
    assert await attempts(live.runtime.db, following) == [("test-first", "accepted")]


async def test_a_full_channel_makes_the_next_task_wait_not_fail(
    live: Live, http: httpx.AsyncClient, fresh_channels: None
) -> None:
    caller = await new_caller(http)
    first_inputs = await animate_inputs(http, caller, seconds=2.0)
    second_inputs = await animate_inputs(http, caller, seconds=2.0)
    first = await _create(http, caller, first_inputs, "one-at-a-time")
    await wait_for(http, caller, first, {"RUNNING", "SUCCEEDED"})
    second = await _create(http, caller, second_inputs, "one-at-a-time")
    # While the first holds the only slot, the second is not sent.
    async with live.runtime.db.session() as session:
        first_row = await session.get_one(Task, uuid.UUID(first))
        second_row = await session.get_one(Task, uuid.UUID(second))
    if first_row.status == "RUNNING":
        assert second_row.submit_started_at is None
    done = await asyncio.gather(wait_for(http, caller, first), wait_for(http, caller, second))
    assert [d["status"] for d in done] == ["SUCCEEDED", "SUCCEEDED"]
    second_started = await attempts(live.runtime.db, second)
    assert second_started == [("test-single", "accepted")]


async def test_breaker_opens_half_opens_for_one_probe_and_closes(db: Database) -> None:
    """The breaker as every process sees it: through the database rows alone."""
    catalog = load_catalog(TEST_CATALOG)
    model = catalog.get("failover-move")
    assert model is not None
    channel = f"test-breaker-{uuid.uuid4().hex[:8]}"
    breaker = routing.Breaker(threshold=2, cooldown=timedelta(seconds=30))
    now = datetime.now(UTC)
    async with db.transaction() as session:
        assert not await routing.failed(session, channel, "503", now=now, breaker=breaker)
        assert await routing.failed(session, channel, "503", now=now, breaker=breaker)
    two = model.model_copy(
        update={"channels": (model.channels[0].model_copy(update={"id": channel}),)}
    )
    task_id = uuid.uuid4()

    async def take(at: datetime) -> object:
        async with db.transaction() as session:
            return await routing.take_channel(
                session, two, task_id, configured=lambda _: True, tried=(), now=at, breaker=breaker
            )

    assert await take(now + timedelta(seconds=10)) == routing.NoneFree("busy")  # open
    later = now + timedelta(seconds=31)
    assert isinstance(await take(later), routing.Taken)  # half open: this one probes
    assert await take(later) == routing.NoneFree("busy")  # the probe is out: others wait
    async with db.transaction() as session:
        await routing.succeeded(session, channel)
    assert isinstance(await take(later), routing.Taken)  # closed
    async with db.transaction() as session:
        await session.execute(delete(ChannelHealth).where(ChannelHealth.channel == channel))


async def test_a_channel_is_chosen_without_a_lock_unless_it_counts_slots_or_probes(
    db: Database,
) -> None:
    """The common channel (breaker closed, no slot limit) is chosen from a plain read, which
    writes nothing; a half-open breaker or a slot limit is decided under the row lock."""
    catalog = load_catalog(TEST_CATALOG)
    model = catalog.get("failover-move")
    assert model is not None
    channel = f"test-choose-{uuid.uuid4().hex[:8]}"
    one = model.model_copy(
        update={"channels": (model.channels[0].model_copy(update={"id": channel}),)}
    )
    now = datetime.now(UTC)

    async def choose(of: Any = one) -> object:
        async with db.reads() as session:
            return await routing.choose_channel(
                session, of, configured=lambda _: True, tried=(), now=now
            )

    async def health() -> ChannelHealth | None:
        async with db.reads() as session:
            return await session.get(ChannelHealth, channel)

    try:
        assert await choose() == routing.Taken(one.channels[0], healthy=True)
        assert await health() is None  # nothing written to choose a healthy channel
        async with db.transaction() as session:
            breaker = routing.Breaker(threshold=3, cooldown=timedelta(seconds=30))
            await routing.failed(session, channel, "503", now=now, breaker=breaker)
        # A failure counted: the channel still takes tasks, and a success must reset it.
        assert await choose() == routing.Taken(one.channels[0], healthy=False)
        async with db.transaction() as session:
            row = await session.get_one(ChannelHealth, channel)
            row.open_until = now + timedelta(seconds=5)
        assert await choose() == routing.NoneFree("busy")  # open
        async with db.transaction() as session:
            row = await session.get_one(ChannelHealth, channel)
            row.open_until = now - timedelta(seconds=1)
        assert await choose() == routing.NeedsLock(one.channels[0])  # half open: one probe
        async with db.transaction() as session:
            row = await session.get_one(ChannelHealth, channel)
            row.open_until, row.disabled = None, True
        assert await choose() == routing.NoneFree("unavailable")  # switched off
        async with db.transaction() as session:
            row = await session.get_one(ChannelHealth, channel)
            row.disabled = False
        capped = one.model_copy(
            update={"channels": (one.channels[0].model_copy(update={"max_concurrency": 2}),)}
        )
        assert await choose(capped) == routing.NeedsLock(capped.channels[0])  # slots counted
    finally:
        async with db.transaction() as session:
            await session.execute(delete(ChannelHealth).where(ChannelHealth.channel == channel))


async def test_the_models_list(live: Live, http: httpx.AsyncClient) -> None:
    caller = await new_caller(http)
    listed = await http.get("/api/videos/models", headers=caller.headers)
    assert listed.status_code == 200, listed.text
    models = {m["id"]: m for m in listed.json()["models"]}
    assert "sora-2" not in models  # retired
    t2v = models["sora-2-t2v-test"]
    assert t2v["default_for"] == ["text-to-video"]
    assert t2v["billing_mode"] == "prepaid"
    assert [(t["name"], t["credits"]) for t in t2v["tiers"]] == [("standard", 20), ("hd", 30)]
    wan = models["wan2.7-t2v"]
    assert wan["tiers"][0]["credits_by_duration"] == {"5": 20, "10": 40, "15": 60}
    assert wan["limits"]["durations"] == [5, 10, 15]
    move = models["wan2.2-animate-move"]
    assert move["billing_mode"] == "metered"
    assert move["available"] is True
    anonymous = await http.get("/api/videos/models")
    assert anonymous.status_code == 401


async def test_unknown_retired_or_out_of_limits_models_are_refused_before_money_moves(
    live: Live, http: httpx.AsyncClient
) -> None:
    caller = await new_caller(http)
    cases = [
        ({"model": "nope"}, "Unknown model 'nope' for text-to-video"),
        ({"model": "wan2.2-animate-move"}, "Unknown model 'wan2.2-animate-move'"),
        ({"model": "sora-2"}, "Model 'sora-2' is no longer offered"),
        ({"model": "wan2.6-t2v", "prompt": "x" * 1501}, "prompt is longer than wan2.6-t2v"),
        ({"model": "wan2.7-t2v", "duration": 7}, "duration must be one of 5, 10, 15 seconds"),
    ]
    for extra, message in cases:
        body = {"prompt": "a cat", **extra}
        answer = await http.post("/api/videos/text-to-video", headers=caller.headers, json=body)
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"].startswith(message), answer.text
    credits, reserved, rows = await account(live.runtime.db, caller.user_id)
    assert (credits, reserved, len(rows)) == (100, 0, 1)


async def test_a_vendor_that_stopped_serving_a_model_hands_it_to_another_vendor(
    live: Live, http: httpx.AsyncClient, fresh_channels: None
) -> None:
    """kie.ai answers 505 for a paused model (as it does for Sora 2): the channel's problem, so
    the task goes to DashScope and is charged once."""
    paused = await http.post(
        "/_emulator/kie/_control/paused", json={"models": ["wan/2-2-animate-move"]}
    )
    assert paused.status_code == 200, paused.text
    caller = await new_caller(http)
    inputs = await animate_inputs(http, caller, seconds=2.0)
    task_id = await _create(http, caller, inputs, "failover-vendors")
    done = await wait_for(http, caller, task_id)
    assert done["status"] == "SUCCEEDED", done
    assert await attempts(live.runtime.db, task_id) == [
        ("test-kie-move", "channel_error"),
        ("test-dashscope-move", "accepted"),
    ]
    credits, reserved, rows = await account(live.runtime.db, caller.user_id)
    assert (credits, reserved) == (80, 0)
    assert [kind for kind, _, _ in rows] == ["signup_bonus", "reserve", "charge"]


@pytest.mark.parametrize(
    ("kind", "model", "price"),
    [("text-to-video", "wan2.7-t2v", 40), ("image-to-video", "wan2.6-i2v", 50)],
)
async def test_wan_text_and_image_to_video_run_on_dashscope(
    live: Live, http: httpx.AsyncClient, kind: str, model: str, price: int
) -> None:
    """The built-in Wan models, through their first channel, at the catalog's price for 10 s."""
    caller = await new_caller(http)
    body: dict[str, Any] = {"prompt": "a red fox in the snow", "model": model, "duration": 10}
    if kind == "image-to-video":
        body["image_urls"] = [await upload(http, caller, png_bytes((640, 360)), "fox.png", "image")]
    created = await http.post(f"/api/videos/{kind}", headers=caller.headers, json=body)
    assert created.status_code == 200, created.text
    assert created.json()["credits_estimated"] == price
    task_id = created.json()["task_id"]
    done = await wait_for(http, caller, task_id)
    assert done["status"] == "SUCCEEDED", done
    assert done["model"] == model
    assert done["result_duration_seconds"] == pytest.approx(10, abs=0.2)
    [(channel, outcome)] = await attempts(live.runtime.db, task_id)
    assert (channel.startswith("dashscope-"), outcome) == (True, "accepted")
    credits, _, rows = await account(live.runtime.db, caller.user_id)
    assert credits == 100 - price
    assert [kind for kind, _, _ in rows] == ["signup_bonus", "charge"]


async def test_wan_text_to_video_fails_over_from_dashscope_to_fal(
    live: Live, http: httpx.AsyncClient, fresh_channels: None
) -> None:
    """The built-in catalog's second channel for Wan 2.7: DashScope answers 429, fal.ai makes it."""
    armed = await http.post(FAULTS, json={"next_submit": "throttle", "count": 1})
    assert armed.status_code == 200, armed.text
    caller = await new_caller(http)
    body = {"prompt": "a lighthouse at dusk", "model": "wan2.7-t2v", "quality": "hd"}
    created = await http.post("/api/videos/text-to-video", headers=caller.headers, json=body)
    assert created.status_code == 200, created.text
    task_id = created.json()["task_id"]
    done = await wait_for(http, caller, task_id)
    assert done["status"] == "SUCCEEDED", done
    assert await attempts(live.runtime.db, task_id) == [
        ("dashscope-wan27-t2v", "throttled"),
        ("fal-wan27-t2v", "accepted"),
    ]
    credits, _, rows = await account(live.runtime.db, caller.user_id)
    assert credits == 70
    assert [kind for kind, _, _ in rows] == ["signup_bonus", "charge"]


async def test_a_price_change_applies_to_new_tasks_only(
    live: Live, http: httpx.AsyncClient
) -> None:
    """The catalog a process loads prices what it creates; a task keeps the price it was
    created at, through its whole life."""
    caller = await new_caller(http)
    first = await http.post(
        "/api/videos/text-to-video",
        headers=caller.headers,
        json={"prompt": "before the change [fault:stuck]"},
    )
    assert first.status_code == 200, first.text
    assert first.json()["credits_estimated"] == 20
    catalog = live.runtime.catalog
    model = catalog.default_for("text-to-video")
    dearer = model.model_copy(
        update={"tiers": tuple(t.model_copy(update={"credits": 25}) for t in model.tiers)}
    )
    live.runtime.catalog = catalog.model_copy(
        update={"models": tuple(dearer if m.id == model.id else m for m in catalog.models)}
    )
    try:
        second = await http.post(
            "/api/videos/text-to-video", headers=caller.headers, json={"prompt": "after"}
        )
    finally:
        live.runtime.catalog = catalog
    assert second.status_code == 200, second.text
    assert second.json()["credits_estimated"] == 25
    done = await wait_for(http, caller, second.json()["task_id"])
    assert (done["status"], done["credits_charged"]) == ("SUCCEEDED", 25)
    canceled = await http.delete(f"/api/tasks/{first.json()['task_id']}", headers=caller.headers)
    assert canceled.status_code == 200, canceled.text
    first_now = await wait_for(http, caller, first.json()["task_id"], {"RUNNING", "CANCELED"})
    assert first_now["credits_charged"] == 20  # its own price, whatever the catalog says now
    credits, _, _ = await account(live.runtime.db, caller.user_id)
    assert credits == 100 - 20 - 25


async def test_a_channel_cap_holds_under_fifty_parallel_tasks(
    live: Live, http: httpx.AsyncClient
) -> None:
    """50 tasks at once on a channel capped at 5: never more than 5 sent and unfinished, and
    every one succeeds (the others wait their turn), charged once."""
    callers = [await new_caller(http) for _ in range(10)]  # 5 active tasks each at most
    created = await asyncio.gather(
        *(
            http.post(
                "/api/videos/text-to-video",
                headers=callers[i % 10].headers,
                json={"prompt": f"clip {i}", "model": "five-at-a-time"},
            )
            for i in range(50)
        )
    )
    assert [c.status_code for c in created] == [200] * 50
    ids = [uuid.UUID(c.json()["task_id"]) for c in created]
    most = 0
    async with asyncio.timeout(240):
        while True:
            async with live.runtime.db.session() as session:
                rows = (
                    await session.execute(select(Task.status, Task.channel).where(Task.id.in_(ids)))
                ).all()
            # A slot is held from the claim (PENDING, channel set) to the end.
            on_channel = sum(
                1
                for status, channel in rows
                if channel == "test-five" and status in ("PENDING", "RUNNING")
            )
            most = max(most, on_channel)
            if all(status not in ("PENDING", "RUNNING") for status, _ in rows):
                break
            await asyncio.sleep(0.05)
    assert {status for status, _ in rows} == {"SUCCEEDED"}
    assert 1 <= most <= 5
    for caller in callers:
        credits, reserved, rows_ = await account(live.runtime.db, caller.user_id)
        assert (credits, reserved) == (0, 0)
        assert [kind for kind, _, _ in rows_] == ["signup_bonus"] + ["charge"] * 5


async def test_no_channel_that_can_take_the_task_fails_it_with_its_hold_released(
    live: Live, http: httpx.AsyncClient, fresh_channels: None
) -> None:
    """Every channel refuses for its own reasons (here the only one: a paused model): the task
    fails as `no_channel` and its reserved credits come back."""
    paused = await http.post(
        "/_emulator/kie/_control/paused", json={"models": ["wan/2-2-animate-move"]}
    )
    assert paused.status_code == 200, paused.text
    caller = await new_caller(http)
    inputs = await animate_inputs(http, caller, seconds=2.0)
    task_id = await _create(http, caller, inputs, "kie-only")
    done = await wait_for(http, caller, task_id)
    assert (done["status"], done["error_code"]) == ("FAILED", "no_channel"), done
    assert await attempts(live.runtime.db, task_id) == [("test-kie-only", "channel_error")]
    credits, reserved, rows = await account(live.runtime.db, caller.user_id)
    assert (credits, reserved) == (100, 0)
    assert [kind for kind, _, _ in rows] == ["signup_bonus", "reserve", "release"]


async def test_a_task_whose_model_left_the_catalog_before_it_was_sent_fails_refunded(
    settings: Settings, database_url: str
) -> None:
    """The operator dropped the model between the task's creation and its first step (say, a
    restart with a new catalog file): it fails as `model_unavailable` with its credits back."""
    async with database_of_its_own(database_url, "vidgate_model_gone") as url:
        app = create_app(settings, url)  # no worker: the step below is run by hand
        async with app.router.lifespan_context(app):
            runtime: Runtime = app.state.runtime
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                caller = await new_caller(client)
                task_id = await text_to_video(client, caller, "a harbour")
                assert (await account(runtime.db, caller.user_id))[:2] == (80, 0)
                restarted = dataclasses.replace(runtime, catalog=load_catalog(None))
                assert restarted.catalog.get("sora-2-t2v-test") is None
                await lifecycle.advance(restarted, uuid.UUID(task_id))
                task = (await client.get(f"/api/tasks/{task_id}", headers=caller.headers)).json()
            assert (task["status"], task["error_code"]) == ("FAILED", "model_unavailable")
            assert task["credits_refunded"] == 20
            assert await attempts(runtime.db, task_id) == []
            credits, reserved, rows = await account(runtime.db, caller.user_id)
            assert (credits, reserved) == (100, 0)
            assert [kind for kind, _, _ in rows] == ["signup_bonus", "charge", "refund"]
