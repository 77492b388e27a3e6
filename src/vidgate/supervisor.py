"""Keeps the job worker running: restarts it with backoff when it stops on its own.

procrastinate's worker ends when its database connection fails (a side task dies and it "stops
the worker", or a fetch raises). Left alone, tasks would stay RUNNING with credits taken and the
sweepers, webhooks and payment reconciliation would stop while the API looks healthy. The
supervisor runs the worker again once the database is back, and says whether it is up: `/readyz`
answers 503 and the `vidgate_worker_up` gauge reads 0 while it is not.

In `vidgate serve` it retries for as long as the process lives. `vidgate worker` gives up after a
longer outage (`give_up_after`) and exits non-zero, so a process manager restarts it and alerts.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from procrastinate import App
from prometheus_client import Counter, Gauge

logger = structlog.get_logger(__name__)

WORKER_UP = Gauge("vidgate_worker_up", "1 while this process's job worker is running")
WORKER_RESTARTS = Counter(
    "vidgate_worker_restarts_total", "Times this process's job worker stopped and was restarted"
)

# A run at least this long counts as healthy: the next failure starts the backoff afresh.
STABLE_SECONDS = 60.0


class WorkerGaveUp(Exception):
    """The worker kept failing for longer than the supervisor was allowed to wait."""


class WorkerSupervisor:
    """Runs `app.run_worker_async(**options)` until cancelled, restarting it when it ends."""

    def __init__(
        self,
        app: App,
        options: dict[str, Any],
        *,
        give_up_after: float | None = None,
        initial_backoff: float = 1.0,
        max_backoff: float = 30.0,
    ) -> None:
        self.app = app
        self.options = options
        self.give_up_after = give_up_after
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.up = False
        self.restarts = 0
        self.last_error: str | None = None

    async def run(self) -> None:
        """Run the worker until cancelled; WorkerGaveUp once it has failed for too long."""
        delay = self.initial_backoff
        failing_since: float | None = None
        while True:
            started = time.monotonic()
            self._set_up(True)
            try:
                await self.app.run_worker_async(**self.options)
                error = "the worker stopped on its own"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # whatever ended it, the remedy is the same: run it again
                error = f"{type(exc).__name__}: {exc}"
            finally:
                self._set_up(False)
            now = time.monotonic()
            if now - started >= STABLE_SECONDS:
                delay, failing_since = self.initial_backoff, None
            failing_since = failing_since if failing_since is not None else started
            self.last_error = error
            if self.give_up_after is not None and now - failing_since >= self.give_up_after:
                logger.error("worker.gave_up", error=error, failing_for=round(now - failing_since))
                raise WorkerGaveUp(error)
            self.restarts += 1
            WORKER_RESTARTS.inc()
            logger.error("worker.stopped", error=error, restart_in=delay, restarts=self.restarts)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff)

    def _set_up(self, up: bool) -> None:
        self.up = up
        WORKER_UP.set(1 if up else 0)
