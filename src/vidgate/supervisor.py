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
import contextlib
import time
from typing import Any

import structlog
from procrastinate import App
from procrastinate.worker import Worker
from prometheus_client import Counter, Gauge

logger = structlog.get_logger(__name__)

WORKER_UP = Gauge(
    "vidgate_worker_up", "1 while this process's job worker is running (registered, fetching jobs)"
)
WORKER_RESTARTS = Counter(
    "vidgate_worker_restarts_total", "Times this process's job worker stopped and was restarted"
)

# How often a starting worker is looked at to see whether it has registered.
WATCH_SECONDS = 0.2
# A run at least this long counts as stable: the next failure starts the backoff afresh.
STABLE_SECONDS = 60.0


class _Failed(Exception):
    """A run that ended in an exception, and whether its worker had registered first."""

    def __init__(self, registered: bool, error: str) -> None:
        super().__init__(error)
        self.registered = registered
        self.error = error


class WorkerGaveUp(Exception):
    """The worker kept failing for longer than the supervisor was allowed to wait."""


class WorkerSupervisor:
    """Runs a procrastinate worker with `options` until cancelled, restarting it when it ends."""

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

    async def run(self) -> None:
        """Run the worker until cancelled; WorkerGaveUp once it has failed for too long."""
        delay = self.initial_backoff
        healthy_until = time.monotonic()  # when a worker last stopped that had really started
        while True:
            started = time.monotonic()
            try:
                registered = await self._run_once()
                error = "the worker stopped on its own"
            except asyncio.CancelledError:
                raise
            except _Failed as failed:  # whatever ended it, the remedy is the same: run it again
                registered, error = failed.registered, failed.error
            now = time.monotonic()
            if registered:  # it ran: an outage is counted from its end, not from before
                healthy_until = now
            if now - started >= STABLE_SECONDS:
                delay = self.initial_backoff
            failing_for = now - healthy_until
            if self.give_up_after is not None and failing_for >= self.give_up_after:
                logger.error("worker.gave_up", error=error, failing_for=round(failing_for))
                raise WorkerGaveUp(error)
            self.restarts += 1
            WORKER_RESTARTS.inc()
            logger.error("worker.stopped", error=error, restart_in=delay, restarts=self.restarts)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff)

    async def _run_once(self) -> bool:
        """One worker, until it stops; whether it registered (reached the database and ran).
        The worker counts as up from its registration on."""
        worker = Worker(app=self.app, **self.options)
        running = asyncio.create_task(worker.run())  # type: ignore[no-untyped-call]
        registered = False
        try:
            while not running.done():
                if not registered and worker.worker_id is not None:
                    registered = True
                    self._set_up(True)
                await asyncio.wait({running}, timeout=WATCH_SECONDS)
            running.result()
        except asyncio.CancelledError:
            running.cancel()  # procrastinate lets running jobs finish, then stops
            with contextlib.suppress(asyncio.CancelledError):
                await running
            raise
        except Exception as exc:
            raise _Failed(registered, f"{type(exc).__name__}: {exc}") from exc
        finally:
            self._set_up(False)
        return registered

    def _set_up(self, up: bool) -> None:
        self.up = up
        WORKER_UP.set(1 if up else 0)
