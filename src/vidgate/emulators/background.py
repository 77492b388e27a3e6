"""Work an emulator starts and does not wait for (renders, callbacks, notifications)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class Background:
    """The emulator's background tasks: kept referenced while they run, awaitable by tests,
    cancelled when the emulator closes."""

    def __init__(self) -> None:
        self._jobs: set[asyncio.Task[Any]] = set()

    def __bool__(self) -> bool:
        return bool(self._jobs)

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T] | None:
        """Run `coro` on the running loop; None (and the coroutine closed) when there is none."""
        try:
            job = asyncio.create_task(coro)
        except RuntimeError:  # called from sync code with no loop: nothing to run it on
            coro.close()
            return None
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)
        return job

    async def wait(self) -> None:
        """Until every task (and any they start) has finished."""
        while self._jobs:
            await asyncio.gather(*list(self._jobs), return_exceptions=True)

    async def cancel(self) -> None:
        for job in list(self._jobs):
            job.cancel()
        for job in list(self._jobs):
            with contextlib.suppress(BaseException):
                await job
