"""`GET /api/tasks/{id}/provenance`: the labels a task's result carries, for its owner."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from fastapi import APIRouter

from vidgate.auth.dependencies import CurrentUser
from vidgate.deps import RuntimeDep
from vidgate.errors import documented
from vidgate.labels.errors import NoResult
from vidgate.labels.verify import ProvenanceReport, verify
from vidgate.media.storage import ObjectNotFound
from vidgate.tasks import service
from vidgate.tasks.errors import TaskNotFound

router = APIRouter(prefix="/api/tasks", tags=["tasks"])


@router.get(
    "/{task_id}/provenance",
    response_model=ProvenanceReport,
    responses=documented(TaskNotFound, NoResult),
)
async def task_provenance(task_id: str, user: CurrentUser, runtime: RuntimeDep) -> ProvenanceReport:
    """What labels the task's result carries (AIGC metadata, C2PA manifest, visible mark) and
    whether each validates, as `vidgate label verify` reports it. The task's owner only."""
    async with runtime.db.reads() as session:  # not held while the file is read and checked
        task = await service.owned_task(session, task_id, user.id)
    if task.result_key is None:
        raise NoResult()
    recorded = (task.labels or {}).get("explicit")
    tmp_dir = runtime.settings.data_dir / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=tmp_dir, prefix="verify-", suffix=".mp4") as copy:
        try:
            async for chunk in runtime.storage.open(task.result_key):
                copy.write(chunk)
        except ObjectNotFound as exc:
            raise NoResult() from exc
        copy.flush()
        return await asyncio.to_thread(verify, runtime.settings, Path(copy.name), recorded)
