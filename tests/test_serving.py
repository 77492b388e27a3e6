"""How many API processes `vidgate serve` runs, with which pools, and what its banner says.

The processes themselves are started in tests/e2e/test_serve_workers.py.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from vidgate.cli import _banner
from vidgate.config import Settings
from vidgate.serving import (
    JOB_QUEUE_CONNECTIONS,
    SPARE_CONNECTIONS,
    Plan,
    PoolShare,
    TooManyConnections,
    emulated_vendors,
    listening_sockets,
    plan_processes,
    pool_share,
)

from .fixtures.served import VIDGATE, server_env

# A PostgreSQL server as installed: max_connections 100, 3 reserved for superusers.
DEFAULT_SERVER = 97


def never_asked() -> int:
    raise AssertionError("one process needs no look at the server's connection limit")


def test_development_runs_one_process_and_production_one_per_core() -> None:
    dev = plan_processes(Settings(env="development"), None, never_asked, cores=8)
    assert dev == Plan(1, PoolShare(20, 10))
    prod = plan_processes(Settings(env="production"), None, lambda: 1000, cores=8)
    assert prod.processes == 8 and prod.capped_from is None


def test_a_number_asked_for_wins_over_the_mode() -> None:
    assert plan_processes(Settings(env="production"), 1, never_asked, cores=8).processes == 1
    asked = plan_processes(Settings(env="development"), 3, lambda: DEFAULT_SERVER, cores=1)
    assert asked.processes == 3


def test_default_pools_are_split_so_n_processes_hold_what_one_did() -> None:
    settings = Settings()
    assert pool_share(settings, 1) == PoolShare(20, 10)
    assert pool_share(settings, 2) == PoolShare(10, 5)
    assert pool_share(settings, 3) == PoolShare(7, 4)
    assert pool_share(settings, 64) == PoolShare(2, 1)
    # Two processes on a stock server: 2 × (2 × 15 + the job queue's pool + a listener).
    two = plan_processes(settings, 2, lambda: DEFAULT_SERVER, cores=2)
    assert two.pools.connections == 30 + JOB_QUEUE_CONNECTIONS + 1
    assert 2 * two.pools.connections <= DEFAULT_SERVER - SPARE_CONNECTIONS
    each = two.settings_for(settings)
    assert (each.db_pool_size, each.db_max_overflow) == (10, 5)
    assert (settings.db_pool_size, settings.db_max_overflow) == (20, 10)  # not changed


def test_pool_sizes_the_operator_set_are_kept_per_process() -> None:
    settings = Settings(db_pool_size=6, db_max_overflow=0)
    assert pool_share(settings, 4) == PoolShare(6, 0)
    assert pool_share(Settings(db_pool_size=6), 4) == PoolShare(6, 3)  # overflow: the default


def test_the_default_number_is_capped_to_what_the_database_accepts() -> None:
    settings = Settings(env="production")
    plan = plan_processes(settings, None, lambda: DEFAULT_SERVER, cores=32)
    assert plan.capped_from == 32
    assert plan.processes == 5  # 5 × 17 = 85 of the 87 left; 6 × 17 would not fit
    assert plan.processes * plan.pools.connections <= DEFAULT_SERVER - SPARE_CONNECTIONS
    tiny = plan_processes(settings, None, lambda: 40, cores=32)
    assert tiny == Plan(1, PoolShare(20, 10), capped_from=32)


def test_a_number_asked_for_that_cannot_fit_is_refused_with_the_sums() -> None:
    with pytest.raises(TooManyConnections) as refused:
        plan_processes(Settings(), 8, lambda: DEFAULT_SERVER, cores=8)
    message = str(refused.value)
    assert message.startswith("8 API processes would hold up to 120 database connections")
    assert "15 each: two pools of 3 + 2 overflow" in message
    assert "the database takes 97 and 10 are kept for other commands" in message
    assert "VIDGATE_DB_POOL_SIZE" in message and "--workers" in message
    with pytest.raises(TooManyConnections):
        plan_processes(Settings(db_pool_size=20), 2, lambda: DEFAULT_SERVER, cores=8)


def test_banner_says_how_many_api_processes_run(tmp_path: Path) -> None:
    settings = Settings(env="production", web_dir=tmp_path, data_dir=tmp_path)
    many = _banner(settings, "http://x", "db", True, [101, 102, 103])
    assert "  processes: 3 API processes sharing the port (pids 101, 102, 103)\n" in many
    assert "  worker:    in the first API process\n" in many
    one = _banner(settings, "http://x", "db", True, [101])
    assert "  processes: 1 API process (pid 101)\n" in one
    assert "  worker:    in this process\n" in one
    assert "worker:    not started" in _banner(settings, "http://x", "db", False, [1, 2])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT spreads on Linux")
def test_each_process_gets_a_socket_of_its_own_on_the_one_port() -> None:
    sockets = listening_sockets("127.0.0.1", 0, 3)
    try:
        ports = {sock.getsockname()[1] for sock in sockets}
        assert len(sockets) == 3 and len(ports) == 1
        # A port in use is refused, even to another group of SO_REUSEPORT sockets (a second
        # server must not quietly take a share of the first one's connections).
        with pytest.raises(OSError):
            listening_sockets("127.0.0.1", ports.pop(), 2)
    finally:
        for sock in sockets:
            sock.close()


def test_a_port_another_program_listens_on_is_refused() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken, pytest.raises(OSError):
        listening_sockets("127.0.0.1", taken.getsockname()[1], 2)


def test_vendors_emulated_inside_the_app_are_named() -> None:
    everything = ["DashScope", "kie.ai", "fal.ai", "WeChat Pay", "Stripe", "Google"]
    assert emulated_vendors(Settings(env="development")) == everything
    settings = Settings(env="development", dashscope_api_key="k", kie_api_key="k", fal_api_key="k")
    assert emulated_vendors(settings) == ["WeChat Pay", "Stripe", "Google"]
    assert emulated_vendors(Settings(env="production")) == []


def test_several_api_processes_with_vendors_emulated_inside_them_are_refused(
    tmp_path: Path,
) -> None:
    """Each process would hold its own part of the emulated vendors' tasks and payments; the
    refusal comes before the database is started and says what to do instead."""
    run = subprocess.run(
        [str(VIDGATE), "serve", "--workers", "2", "--port", "1"],
        env=server_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert "2 API processes cannot share the vendors emulated inside each one" in run.stderr
    assert "(DashScope, kie.ai, fal.ai, WeChat Pay, Stripe, Google)" in run.stderr
    assert "`vidgate emulate`" in run.stderr
    assert not (tmp_path / "pgdata").exists()
