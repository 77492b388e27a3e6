"""Labels through the live app and its worker: every kind and both billing modes deliver a
labelled result, the provenance endpoint reports it to the owner only, a labelling crash is
retried and, when it persists, fails the task with its credits back and no result."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from pathlib import Path
from typing import Any

import av
import httpx
import psutil
import pytest

from vidgate.emulators.dashscope import DashScopeEmulator
from vidgate.labels import run
from vidgate.labels.job import LabelJob
from vidgate.labels.run import Fault
from vidgate.labels.verify import verify
from vidgate.tasks.models import Task

from ..fixtures.app import Live
from ..fixtures.samples import png_bytes
from ..fixtures.tasks import account, animate_inputs, new_caller, upload, wait_for


async def _create(http: httpx.AsyncClient, caller: Any, kind: str) -> str:
    if kind == "animate-move":
        body: dict[str, Any] = await animate_inputs(http, caller, seconds=2.5)
    elif kind == "image-to-video":
        image = await upload(http, caller, png_bytes((320, 240)), "still.png", "image")
        body = {"prompt": "a slow pan", "image_urls": [image]}
    else:
        body = {"prompt": "a quiet harbour at dawn"}
    created = await http.post(f"/api/videos/{kind}", headers=caller.headers, json=body)
    assert created.status_code == 200, created.text
    task_id: str = created.json()["task_id"]
    return task_id


async def _download(http: httpx.AsyncClient, url: str, into: Path) -> Path:
    response = await http.get(url, follow_redirects=True)
    assert response.status_code == 200
    await asyncio.to_thread(into.write_bytes, response.content)
    return into


async def _row(live: Live, task_id: str) -> Task:
    async with live.runtime.db.session() as session:
        task = await session.get(Task, uuid.UUID(task_id))
    assert task is not None
    return task


@pytest.mark.parametrize(
    ("kind", "billing"),
    [("text-to-video", "prepaid"), ("image-to-video", "prepaid"), ("animate-move", "metered")],
)
async def test_every_kind_is_delivered_labelled(
    live: Live, http: httpx.AsyncClient, tmp_path: Path, kind: str, billing: str
) -> None:
    caller = await new_caller(http)
    task_id = await _create(http, caller, kind)
    task = await wait_for(http, caller, task_id)
    assert task["status"] == "SUCCEEDED", task
    assert task["billing_mode"] == billing
    assert task["labelled"] is True

    result = await _download(http, task["result_url"], tmp_path / "result.mp4")
    with av.open(str(result)) as container:
        fields = json.loads(container.metadata["AIGC"])
    assert fields["Label"] == "1"
    assert fields["ProduceID"] == fields["PropagateID"] == task_id
    assert fields["ContentProducer"] == live.settings.label_producer
    report = verify(live.settings, result)
    assert report.ok, report
    assert report.c2pa.model == live.runtime.catalog.get(task["model"]).name.en  # type: ignore[union-attr]

    row = await _row(live, task_id)
    assert row.labels is not None and row.labels["implicit"] == fields
    settings = live.settings  # the visible mark, burned in by vidgate (drawn pixels: test_explicit)
    assert row.labels["explicit"] == {
        "by": "vidgate",
        "text": settings.label_explicit_text,
        "corner": settings.label_explicit_corner,
        "seconds": settings.label_explicit_seconds,
    }
    assert row.result_size == result.stat().st_size  # the labelled file is the result

    provenance = await http.get(f"/api/tasks/{task_id}/provenance", headers=caller.headers)
    assert provenance.status_code == 200, provenance.text
    body = provenance.json()
    assert body["ok"] is True
    assert body["implicit"]["fields"] == fields
    assert body["c2pa"]["valid"] is True and body["c2pa"]["state"] == "Trusted"


async def test_provenance_is_for_the_owner_only(live: Live, http: httpx.AsyncClient) -> None:
    owner = await new_caller(http)
    task_id = await _create(http, owner, "text-to-video")
    await wait_for(http, owner, task_id)
    stranger = await new_caller(http)
    other = await http.get(f"/api/tasks/{task_id}/provenance", headers=stranger.headers)
    assert other.status_code == 404
    assert other.json() == {"detail": "Task not found"}
    unknown = await http.get(f"/api/tasks/{uuid.uuid4()}/provenance", headers=owner.headers)
    assert unknown.status_code == 404
    anonymous = await http.get(f"/api/tasks/{task_id}/provenance")
    assert anonymous.status_code == 401


async def test_a_task_without_a_result_has_no_provenance(
    live: Live, http: httpx.AsyncClient
) -> None:
    caller = await new_caller(http)
    created = await http.post(
        "/api/videos/text-to-video",
        headers=caller.headers,
        json={"prompt": "refused [fault:moderation]"},
    )
    task = await wait_for(http, caller, created.json()["task_id"])
    assert task["status"] == "FAILED" and task["labelled"] is False
    response = await http.get(f"/api/tasks/{task['task_id']}/provenance", headers=caller.headers)
    assert response.status_code == 404
    assert response.json() == {"detail": "The task has no result to verify"}


async def test_a_crash_once_is_retried_and_the_task_succeeds_labelled(
    live: Live, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    tries: list[str] = []

    def crash_first(job: LabelJob) -> Fault | None:
        tries.append(job.task_id)
        return "raise" if tries.count(job.task_id) == 1 else None

    monkeypatch.setattr(run, "fault_hook", crash_first)
    caller = await new_caller(http)
    task_id = await _create(http, caller, "text-to-video")
    task = await wait_for(http, caller, task_id)
    assert task["status"] == "SUCCEEDED" and task["labelled"] is True
    assert tries.count(task_id) == 2
    _, _, rows = await account(live.runtime.db, caller.user_id)
    assert rows == [("signup_bonus", 100, 0), ("charge", -20, 0)]


@pytest.mark.parametrize(
    ("kind", "fault"),
    [("text-to-video", "raise"), ("animate-move", "raise"), ("text-to-video", "abort")],
)
async def test_a_persistent_crash_fails_the_task_with_its_credits_back(
    live: Live, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, kind: str, fault: Fault
) -> None:
    """An error in the pipeline, or the labelling process dying (abort: SIGABRT), on every try."""
    tries = await _persistent_fault(live, http, monkeypatch, kind, fault)
    assert len(tries) == live.settings.label_attempts


async def test_a_labelling_past_its_deadline_is_killed_and_fails_the_task(
    live: Live, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A labelling process that hangs is killed at `label_wall_seconds`: each try ends then, and
    no labelling process is left behind."""
    monkeypatch.setattr(live.runtime.settings, "label_wall_seconds", 2.0)
    tries = await _persistent_fault(live, http, monkeypatch, "text-to-video", "hang")
    assert len(tries) == live.settings.label_attempts
    assert all(later - earlier >= 2.0 for earlier, later in itertools.pairwise(tries))
    assert _labelling_processes() == set()


async def _persistent_fault(
    live: Live, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, kind: str, fault: Fault
) -> list[float]:
    """Make every labelling try of one new task fail with `fault`; check the task failed with
    its credits back and nothing stored, then that the worker still delivers the next task
    labelled. The times of the tries."""
    caller = await new_caller(http)
    task_id: str | None = None
    tries: list[float] = []

    def break_the_task(job: LabelJob) -> Fault | None:
        if job.task_id != task_id:
            return None
        tries.append(time.monotonic())
        return fault

    monkeypatch.setattr(run, "fault_hook", break_the_task)
    task_id = await _create(http, caller, kind)
    task = await wait_for(http, caller, task_id)
    assert task["status"] == "FAILED", task
    assert task["error_code"] == "label_failed"
    assert task["error_message"] == (
        "The video could not be labelled as AI-generated; its credits were returned"
    )
    assert task["result_url"] is None and task["labelled"] is False
    row = await _row(live, task_id)
    assert row.result_key is None
    assert row.labels == {"failures": live.settings.label_attempts}
    credits, reserved, rows = await account(live.runtime.db, caller.user_id)
    assert (credits, reserved) == (100, 0)
    kinds = [r[0] for r in rows]
    if kind == "animate-move":  # per-second: held, then released, never charged
        assert kinds == ["signup_bonus", "reserve", "release"]
    else:  # charged up front, refunded
        assert rows == [("signup_bonus", 100, 0), ("charge", -20, 0), ("refund", 20, 0)]

    following = await wait_for(http, caller, await _create(http, caller, kind))
    assert following["status"] == "SUCCEEDED" and following["labelled"] is True, following
    return tries


def _labelling_processes() -> set[int]:
    """The pids of this process's live (not zombie) labelling processes."""
    return {
        child.pid
        for child in psutil.Process().children()
        if child.status() != psutil.STATUS_ZOMBIE and "vidgate.labels.run" in child.cmdline()
    }


async def test_labels_turned_off_deliver_the_vendor_file(
    live: Live, http: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = live.runtime.settings
    monkeypatch.setattr(settings, "label_implicit", False)
    monkeypatch.setattr(settings, "label_c2pa", False)
    monkeypatch.setattr(settings, "label_explicit", False)
    caller = await new_caller(http)
    task_id = await _create(http, caller, "text-to-video")
    task = await wait_for(http, caller, task_id)
    assert task["status"] == "SUCCEEDED" and task["labelled"] is False
    result = await _download(http, task["result_url"], tmp_path / "result.mp4")
    with av.open(str(result)) as container:
        assert "AIGC" not in container.metadata
    report = verify(live.settings, result)
    assert (report.implicit.present, report.c2pa.present) == (False, False)
    assert (await _row(live, task_id)).labels is None


async def test_a_vendor_marked_channel_asks_dashscope_for_its_watermark(
    live: Live, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator lets DashScope draw the visible mark: the submit asks for `watermark`, vidgate
    burns nothing in, and the labels record the vendor's mark."""
    settings = live.runtime.settings
    monkeypatch.setattr(settings, "label_explicit", True)
    monkeypatch.setattr(settings, "label_vendor_mark_channels", ["dashscope-animate-move"])
    emulator = next(e for e in live.runtime.providers.emulators if isinstance(e, DashScopeEmulator))
    caller = await new_caller(http)
    task_id = await _create(http, caller, "animate-move")
    task = await wait_for(http, caller, task_id)
    assert task["status"] == "SUCCEEDED" and task["labelled"] is True, task
    row = await _row(live, task_id)
    assert row.channel == "dashscope-animate-move"
    assert row.labels is not None and row.labels["explicit"] == {"by": "vendor"}
    submits = [
        json.loads(entry["body"])
        for entry in emulator.requests
        if entry["method"] == "POST" and entry["body"] and row.upstream_id not in entry["path"]
    ]
    sent = [
        body
        for body in submits
        if body.get("input", {}).get("video_url") == task["inputs"]["video_url"]
    ]
    assert sent and sent[-1]["input"]["watermark"] is True
    provenance = await http.get(f"/api/tasks/{task_id}/provenance", headers=caller.headers)
    assert provenance.json()["explicit"] == {"enabled": True, "recorded": {"by": "vendor"}}
