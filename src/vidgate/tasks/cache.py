"""Tasks as last read, per API process, for the status endpoint that clients poll.

A trigger on `tasks` (migration 0008) sends `NOTIFY vidgate_task_changes` with the task's id in
every transaction that changes it, and the process's listener (`vidgate.db.changes`) evicts the
entry, so a poll never sees a state older than the last commit by more than the notification's
delivery time. A read that overlapped an eviction is not kept (the generation check, in
`ChangeFedCache`).
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass

from vidgate.db.changes import ChangeFedCache
from vidgate.tasks.schemas import TaskView

CHANNEL = "vidgate_task_changes"


@dataclass(frozen=True)
class _Entry:
    user_id: uuid.UUID
    view: TaskView
    cached_at: float


class TaskCache(ChangeFedCache):
    channel = CHANNEL

    def __init__(self, *, ttl_seconds: float = 60.0, max_entries: int = 20_000) -> None:
        super().__init__(ttl_seconds=ttl_seconds, max_entries=max_entries)
        self._entries: OrderedDict[uuid.UUID, _Entry] = OrderedDict()

    def get(self, task_id: uuid.UUID) -> tuple[uuid.UUID, TaskView] | None:
        """(owner, view) of a cached task."""
        entry = self._entries.get(task_id)
        if entry is None:
            return None
        if self.expired(entry.cached_at):
            del self._entries[task_id]
            return None
        return entry.user_id, entry.view

    def put(
        self, task_id: uuid.UUID, user_id: uuid.UUID, view: TaskView, generation_before_read: int
    ) -> None:
        if not self.may_store(generation_before_read):
            return
        self._entries[task_id] = _Entry(user_id, view, time.monotonic())
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def evict(self, task_id: uuid.UUID) -> None:
        self.evicted()
        self._entries.pop(task_id, None)

    def drop_all(self) -> None:
        self._entries.clear()

    def evict_changed(self, kind: str, target: uuid.UUID) -> None:
        """The payload is the task's id."""
        self.evict(target)
