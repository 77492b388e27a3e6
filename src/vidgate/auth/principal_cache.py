"""Signed-in users as last read, per session, and API keys as last read, per key, kept fresh by
PostgreSQL notifications.

Checking the session on every request is what makes logout instant, but one query per request is
most of what an authenticated read costs. So each API process keeps the answer per session (and
per API key) and forgets it as soon as the database says the session, the key or the user
changed: triggers on `users` and `auth_sessions` (migration 0003) and on `api_keys` (migration
0007) send `NOTIFY vidgate_auth_changes` in the writing transaction, and a listener here evicts
the entry. Writes made by this process also evict directly, so they take effect before the next
request. While the listener is not connected the cache is off and every request reads the
database (`db.changes.ChangeFedCache` holds these mechanics).
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import structlog

from vidgate.db.changes import ChangeFedCache

if TYPE_CHECKING:
    from vidgate.auth.principal import KeyIdentity, Principal

logger = structlog.get_logger(__name__)

CHANNEL = "vidgate_auth_changes"


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    session_expires_at: datetime
    cached_at: float


@dataclass(frozen=True)
class _KeyEntry:
    identity: KeyIdentity
    owner: Principal | None  # a personal key's user; None for a client key
    expires_at: datetime | None
    cached_at: float


class PrincipalCache(ChangeFedCache):
    channel = CHANNEL
    kinded_payloads = True  # `u:<user id>`, `s:<session id>` or `k:<api key id>`

    def __init__(self, *, ttl_seconds: float = 60.0, max_entries: int = 50_000) -> None:
        super().__init__(ttl_seconds=ttl_seconds, max_entries=max_entries)
        self._entries: OrderedDict[uuid.UUID, _Entry] = OrderedDict()
        self._sessions_of_user: dict[uuid.UUID, set[uuid.UUID]] = {}
        self._keys: OrderedDict[str, _KeyEntry] = OrderedDict()  # by the key's sha256
        self._hash_of_key: dict[uuid.UUID, str] = {}

    def get(self, session_id: uuid.UUID, now: datetime) -> Principal | None:
        entry = self._entries.get(session_id)
        if entry is None:
            return None
        if self.expired(entry.cached_at) or entry.session_expires_at <= now:
            self._drop(session_id)
            return None
        return entry.principal

    def put(
        self,
        principal: Principal,
        session_expires_at: datetime,
        generation_before_read: int,
    ) -> None:
        session_id = principal.session_id
        if session_id is None or not self.may_store(generation_before_read):
            return
        self._entries[session_id] = _Entry(principal, session_expires_at, time.monotonic())
        self._sessions_of_user.setdefault(principal.id, set()).add(session_id)
        while len(self._entries) > self.max_entries:
            oldest, entry = self._entries.popitem(last=False)
            self._unlink(entry.principal.id, oldest)

    def get_key(self, key_hash: str, now: datetime) -> tuple[KeyIdentity, Principal | None] | None:
        entry = self._keys.get(key_hash)
        if entry is None:
            return None
        key_expired = entry.expires_at is not None and entry.expires_at <= now
        if key_expired or self.expired(entry.cached_at):
            self._drop_key(entry.identity.id)
            return None
        return entry.identity, entry.owner

    def put_key(
        self,
        key_hash: str,
        identity: KeyIdentity,
        owner: Principal | None,
        expires_at: datetime | None,
        generation_before_read: int,
    ) -> None:
        if not self.may_store(generation_before_read):
            return
        self._keys[key_hash] = _KeyEntry(identity, owner, expires_at, time.monotonic())
        self._hash_of_key[identity.id] = key_hash
        while len(self._keys) > self.max_entries:
            _, entry = self._keys.popitem(last=False)
            self._hash_of_key.pop(entry.identity.id, None)

    def evict_key(self, key_id: uuid.UUID) -> None:
        self.evicted()
        self._drop_key(key_id)

    def _drop_key(self, key_id: uuid.UUID) -> None:
        key_hash = self._hash_of_key.pop(key_id, None)
        if key_hash is not None:
            self._keys.pop(key_hash, None)

    def evict_session(self, session_id: uuid.UUID) -> None:
        self.evicted()
        self._drop(session_id)

    def evict_user(self, user_id: uuid.UUID) -> None:
        self.evicted()
        for session_id in self._sessions_of_user.pop(user_id, set()):
            self._entries.pop(session_id, None)
        owned = [e.identity.id for e in self._keys.values() if e.identity.user_id == user_id]
        for key_id in owned:  # personal keys carry their owner's row (credits, deletion)
            self._drop_key(key_id)

    def drop_all(self) -> None:
        self._entries.clear()
        self._sessions_of_user.clear()
        self._keys.clear()
        self._hash_of_key.clear()

    def _drop(self, session_id: uuid.UUID) -> None:
        entry = self._entries.pop(session_id, None)
        if entry is not None:
            self._unlink(entry.principal.id, session_id)

    def _unlink(self, user_id: uuid.UUID, session_id: uuid.UUID) -> None:
        sessions = self._sessions_of_user.get(user_id)
        if sessions is not None:
            sessions.discard(session_id)
            if not sessions:
                del self._sessions_of_user[user_id]

    def evict_changed(self, kind: str, target: uuid.UUID) -> None:
        """`u:<user id>`, `s:<session id>` or `k:<api key id>`, as the triggers send them."""
        if kind == "u":
            self.evict_user(target)
        elif kind == "k":
            self.evict_key(target)
        else:
            self.evict_session(target)
