"""Live task progress for Server-Sent Events, woken by the database's task notifications.

Every change to a task row sends `NOTIFY vidgate_task_changes` (migration 0008), whichever
process made it; the API process's listener hands each payload to `TaskEvents`, which wakes the
streams following that task. A stream then reads the task again and sends what changed. While
the listener is down the streams poll instead, so nothing is missed, only later.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

from vidgate.kit import parse_uuid
from vidgate.tasks.cache import CHANNEL

POLL_WITHOUT_LISTENER = 2.0  # seconds between reads while notifications are not arriving


class TaskEvents:
    channel = CHANNEL

    def __init__(self) -> None:
        self.enabled = False
        self._waiting: defaultdict[uuid.UUID, set[asyncio.Event]] = defaultdict(set)

    def apply_notification(self, payload: str) -> None:
        task_id = parse_uuid(payload)
        if task_id is None:
            self.clear()
            return
        for event in self._waiting.get(task_id, ()):
            event.set()

    def clear(self) -> None:
        """The listener (re)connected or dropped: changes may have been missed, so every
        stream reads again."""
        for events in self._waiting.values():
            for event in events:
                event.set()

    @contextmanager
    def follow(self, task_id: uuid.UUID) -> Iterator[asyncio.Event]:
        """An event set on every change of the task, for as long as the block runs. Clear it
        before reading the task: a change after the clear is never missed."""
        event = asyncio.Event()
        self._waiting[task_id].add(event)
        try:
            yield event
        finally:
            waiting = self._waiting.get(task_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._waiting[task_id]

    async def wait(self, event: asyncio.Event, within: float) -> bool:
        """Wait for `event` (True) or `within` seconds (False); without notifications, poll."""
        limit = within if self.enabled else min(within, POLL_WITHOUT_LISTENER)
        try:
            async with asyncio.timeout(limit):
                await event.wait()
        except TimeoutError:
            return not self.enabled  # polling: look again as if told of a change
        return True
