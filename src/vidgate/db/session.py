"""The ORM session vidgate uses everywhere, with work that must wait for the commit.

A change that other parts of the process react to (a cache entry to drop, a job to queue) must
happen only once the change is durable: a job queued before the commit can run against a row it
cannot see yet, and a cache dropped before a rollback is dropped for nothing. Code that makes such
a change registers the reaction with `session.after_commit(hook)`, next to the change itself; the
hooks run, in order, right after the transaction commits, and are dropped if it rolls back. A hook
that fails is logged and does not undo the commit (each reaction has its own safety net: the
sweeper queues jobs that were never queued, and NOTIFY evicts caches in every process).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

logger = structlog.get_logger(__name__)

AfterCommit = Callable[[], object]  # a coroutine function, or a plain one

_HOOKS = "vidgate.after_commit"


class Session(AsyncSession):
    """An `AsyncSession` whose `commit` also runs the hooks registered for that transaction."""

    def after_commit(self, hook: AfterCommit) -> None:
        """Run `hook` once the current transaction has committed (never if it rolls back)."""
        self.info.setdefault(_HOOKS, []).append(hook)

    async def commit(self) -> None:
        await super().commit()
        hooks: list[AfterCommit] = self.info.pop(_HOOKS, [])
        for hook in hooks:
            try:
                result = hook()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("db.after_commit_failed", hook=getattr(hook, "__name__", "?"))

    async def rollback(self) -> None:
        self.info.pop(_HOOKS, None)
        await super().rollback()

    async def close(self) -> None:
        self.info.pop(_HOOKS, None)
        await super().close()
