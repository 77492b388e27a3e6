"""`vidgate serve` on every core: one port answered by N API processes.

One process answers HTTP on one core. With `--workers N` (N > 1) the process that runs `vidgate
serve` becomes a parent that answers nothing itself: it owns the embedded PostgreSQL (started
once, stopped last) and the port, and starts N API processes that accept its connections,
restarts any that dies, and stops them all on SIGTERM or Ctrl-C. Each API process is the same app
as a single `vidgate serve` (its own pools, caches and LISTEN connection, so the NOTIFY-fed caches
stay correct in every one of them); the job worker runs in the first, and its state is shared
with the others so that `/readyz` answers alike whichever process takes the request. With N = 1
`vidgate serve` is one process, as it always was.

The port is N listening sockets bound with SO_REUSEPORT, one per API process, all held by the
parent: the kernel spreads new connections evenly between them. Processes sharing one listening
socket do not share the work: an event loop that wakes to a queue of connections accepts every
one of them, so a burst of keep-alive connections (a load balancer's pool, a load test) lands on
one process (measured: all 64 of a burst on one of two processes, most of the time). Because the
parent holds each socket, connections that reach the socket of a process being replaced wait for
its successor instead of being refused. Where SO_REUSEPORT does not spread connections (outside
Linux) the processes share one socket.

The processes are started fresh (multiprocessing's "spawn"), never forked from a parent that has
threads and a database server's handle. The settings and the database URL are handed to each.

A PostgreSQL server accepts a fixed number of connections, and each API process holds two pools,
the job queue's pool and a listener. `plan_processes` therefore splits the default pool sizes
between the processes (N processes hold about what one did) and checks the total against the
server's `max_connections` before anything starts: the default number of processes is capped to
what fits, and a number asked for that cannot fit is refused with the sums.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import math
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import psycopg
import structlog
import uvicorn

from vidgate.config import Settings
from vidgate.db.engine import libpq_url
from vidgate.logging import configure_logging
from vidgate.runtime import WorkerState
from vidgate.vendors import GOOGLE, PAYMENT_GATEWAYS, PROVIDERS

logger = structlog.get_logger(__name__)

# Longer than the idle timeouts of clients and load balancers (60 s is common): the server closing
# an idle connection as a client reuses it is a reset for the client.
KEEP_ALIVE_SECONDS = 65
GRACEFUL_SHUTDOWN_SECONDS = 10
LISTEN_BACKLOG = 2048  # uvicorn's default

# Connections one API process may hold besides its two pools (docs/architecture.md §8).
JOB_QUEUE_CONNECTIONS = 4  # procrastinate's psycopg pool (psycopg_pool's default size)
LISTENER_CONNECTIONS = 1  # db/changes.py's LISTEN connection
# Kept free for everything else on the server: operator commands, a migration, psql.
SPARE_CONNECTIONS = 10
# The smallest pools a process is given when the defaults are split.
MIN_POOL_SIZE = 2
MIN_MAX_OVERFLOW = 1

# A process that dies within this long of its start is restarted after a growing delay.
STABLE_SECONDS = 30.0
FIRST_RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 10.0
# How often the process that runs the job worker publishes its state, and how often an API
# process checks that its parent is still there.
PUBLISH_SECONDS = 0.2
PARENT_CHECK_SECONDS = 1.0

_SPAWN = multiprocessing.get_context("spawn")


# --- one uvicorn server -------------------------------------------------------------------------


class Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT after shutting down, which would kill the process before
    the embedded database is stopped (or, in an API process, before it exits cleanly); vidgate
    installs its own handlers instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def server_config(app: Any, host: str, port: int) -> uvicorn.Config:
    """How vidgate runs uvicorn, in a single process and in each of N alike."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        proxy_headers=True,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )


def run_server(
    config: uvicorn.Config,
    on_started: Callable[[Server], Any],
    *,
    sockets: list[socket.socket] | None = None,
) -> bool:
    """Serve until SIGTERM or SIGINT (a second SIGINT stops at once), calling
    `on_started(server)` inside the event loop once the server listens (a coroutine it returns
    runs alongside until the server stops). Whether the server started."""
    server = Server(config)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, server.handle_exit, sig, None)
        serving = asyncio.create_task(server.serve(sockets=sockets))
        while not server.started and not serving.done():  # noqa: ASYNC110 (uvicorn has no event)
            await asyncio.sleep(0.02)
        alongside = None
        if server.started:
            work = on_started(server)
            if asyncio.iscoroutine(work):
                alongside = asyncio.create_task(work)
        try:
            await serving
        finally:
            if alongside is not None:
                alongside.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await alongside

    # uvloop (when installed) as the trivial uvicorn app gets it; asyncio.run would not.
    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        runner.run(run())
    return server.started


# --- how many processes, with which pools -------------------------------------------------------


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. under `taskset` or a cpuset)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def default_processes(settings: Settings, cores: int) -> int:
    """One API process per core in production; one in development, where a single process is
    easier to follow and a laptop's cores are better left to everything else."""
    return 1 if settings.is_development else max(1, cores)


@dataclass(frozen=True)
class PoolShare:
    """The pool sizes of one API process."""

    pool_size: int
    max_overflow: int

    @property
    def connections(self) -> int:
        """The most connections one API process holds: both pools full (the write pool with its
        overflow, the autocommit pool of the same total), the job queue's pool and the listener."""
        return (
            2 * (self.pool_size + self.max_overflow) + JOB_QUEUE_CONNECTIONS + LISTENER_CONNECTIONS
        )

    def describe(self) -> str:
        return (
            f"{self.connections} each: two pools of {self.pool_size} + {self.max_overflow}"
            f" overflow, the job queue's {JOB_QUEUE_CONNECTIONS} and a listener"
        )


def pool_share(settings: Settings, processes: int) -> PoolShare:
    """Each process's pools: a size the operator set is kept as it is (it is per process); a
    default is split between the processes, so that N of them hold about as many connections as
    one did. A process needs few: most requests hold a connection for a millisecond or two."""
    chosen = settings.model_fields_set
    size, overflow = settings.db_pool_size, settings.db_max_overflow
    if "db_pool_size" not in chosen:
        size = max(MIN_POOL_SIZE, math.ceil(size / processes))
    if "db_max_overflow" not in chosen:
        overflow = max(MIN_MAX_OVERFLOW, math.ceil(overflow / processes))
    return PoolShare(size, overflow)


class TooManyConnections(Exception):
    """The API processes asked for would need more connections than the database accepts."""


@dataclass(frozen=True)
class Plan:
    """How `vidgate serve` runs: this many API processes, each with these pools."""

    processes: int
    pools: PoolShare
    capped_from: int | None = None  # the default number of processes, when fewer fit

    def settings_for(self, settings: Settings) -> Settings:
        """The settings each API process runs with (its share of the pools)."""
        if self.processes == 1:
            return settings
        return settings.model_copy(
            update={
                "db_pool_size": self.pools.pool_size,
                "db_max_overflow": self.pools.max_overflow,
            }
        )


def plan_processes(
    settings: Settings,
    requested: int | None,
    connection_limit: Callable[[], int],
    *,
    cores: int,
) -> Plan:
    """The number of API processes and their pools. `requested` is `--workers` or
    `VIDGATE_WORKERS` (None: the default for the mode, capped to what the database accepts);
    `connection_limit()` is how many connections the server takes from vidgate (asked only when
    more than one process would run). TooManyConnections when a requested number cannot fit."""
    wanted = requested if requested is not None else default_processes(settings, cores)
    if wanted == 1:
        return Plan(1, PoolShare(settings.db_pool_size, settings.db_max_overflow))
    accepted = connection_limit()
    budget = accepted - SPARE_CONNECTIONS

    def fits(n: int) -> bool:
        return n * pool_share(settings, n).connections <= budget

    if requested is not None:
        if not fits(requested):
            share = pool_share(settings, requested)
            raise TooManyConnections(
                f"{requested} API processes would hold up to {requested * share.connections}"
                f" database connections ({share.describe()}), but the database takes"
                f" {accepted} and {SPARE_CONNECTIONS} are kept for other commands. Run fewer"
                " (--workers or VIDGATE_WORKERS), lower VIDGATE_DB_POOL_SIZE /"
                " VIDGATE_DB_MAX_OVERFLOW, or raise the server's max_connections."
            )
        return Plan(requested, pool_share(settings, requested))
    processes = next((n for n in range(wanted, 1, -1) if fits(n)), 1)
    if processes == 1:
        return Plan(1, PoolShare(settings.db_pool_size, settings.db_max_overflow), wanted)
    return Plan(processes, pool_share(settings, processes), wanted if processes < wanted else None)


def database_connection_limit(database_url: str) -> int:
    """How many connections the server accepts from roles that are not superusers."""
    with psycopg.connect(libpq_url(database_url), connect_timeout=10) as conn:
        row = conn.execute(
            "SELECT current_setting('max_connections')::int"
            " - current_setting('superuser_reserved_connections')::int"
            " - coalesce(current_setting('reserved_connections', true)::int, 0)"
        ).fetchone()
    assert row is not None
    limit: int = row[0]
    return limit


def emulated_vendors(settings: Settings) -> list[str]:
    """The vendors an API process would emulate itself (development, their settings unset). An
    emulator keeps its tasks, codes and payments in the process that serves it, so N processes on
    one port would each hold a part of them, and a vendor call answered by another process than
    the one that made the task would fail: `vidgate serve --workers N` refuses them."""
    if not settings.is_development:
        return []
    specs = [*PROVIDERS.values(), *PAYMENT_GATEWAYS.values()]
    labels = [spec.label for spec in specs if not spec.configured(settings)]
    if settings.google_uses_emulator:
        labels.append(GOOGLE.label)
    return labels


# --- the job worker's state, shared ---------------------------------------------------------


class SharedWorkerState:
    """Whether the job worker is up, as every API process of one `vidgate serve` sees it: one byte
    of shared memory that the process running the worker writes and the others read, so that
    `/readyz` and `vidgate_worker_up` answer alike in each. The parent clears it when that process
    dies."""

    def __init__(self) -> None:
        self._flag = _SPAWN.RawValue(ctypes.c_bool, False)

    @property
    def up(self) -> bool:
        return bool(self._flag.value)

    def set(self, up: bool) -> None:
        self._flag.value = up

    async def publish(self, worker: WorkerState) -> None:
        """Copy the state of this process's worker until cancelled."""
        try:
            while True:
                self.set(worker.up)
                await asyncio.sleep(PUBLISH_SECONDS)
        finally:
            self.set(False)


# --- an API process ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiProcess:
    """What one API process is started with (pickled to it)."""

    index: int
    settings: Settings
    database_url: str
    sock: socket.socket  # this process's listening socket
    host: str
    port: int
    runs_worker: bool
    worker_state: SharedWorkerState | None
    ready: Connection
    parent_pid: int


def run_api_process(spec: ApiProcess) -> None:
    """The body of one API process: the app on its listening socket until SIGTERM."""
    from vidgate.app import create_app
    from vidgate.supervisor import WORKER_UP

    settings = spec.settings
    configure_logging(settings.log_level, settings.log_format, development=settings.is_development)
    state = spec.worker_state
    if state is not None and not spec.runs_worker:
        WORKER_UP.set_function(lambda: 1.0 if state.up else 0.0)
    app = create_app(
        settings,
        spec.database_url,
        run_worker=spec.runs_worker,
        worker_state=None if spec.runs_worker else state,
    )

    async def alongside(server: Server) -> None:
        with contextlib.suppress(OSError):
            spec.ready.send_bytes(b"ready")
        spec.ready.close()
        async with asyncio.TaskGroup() as tasks:
            if spec.runs_worker and state is not None:
                tasks.create_task(state.publish(app.state.runtime.worker))
            tasks.create_task(_stop_when_orphaned(server, spec.parent_pid))

    started = run_server(server_config(app, spec.host, spec.port), alongside, sockets=[spec.sock])
    if not started:
        sys.exit(1)


async def _stop_when_orphaned(server: Server, parent_pid: int) -> None:
    """Stop serving if the parent is gone (killed outright): nothing would restart or stop this
    process, and it would keep the port."""
    while os.getppid() == parent_pid:  # noqa: ASYNC110 (no event tells of a parent's death)
        await asyncio.sleep(PARENT_CHECK_SECONDS)
    logger.warning("serve.parent_gone", parent_pid=parent_pid)
    server.handle_exit(signal.SIGTERM, None)


# --- the parent ---------------------------------------------------------------------------------


def _spreads_connections() -> bool:
    """Whether sockets bound with SO_REUSEPORT share the port's connections out (Linux)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _bound(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """The sockets the API processes accept from, bound and listening (OSError when the port is
    taken): one each where the kernel spreads connections between them (SO_REUSEPORT), else
    one they all share."""
    # First a plain bind: SO_REUSEPORT would let these join the sockets of another vidgate
    # already on the port (the same user's) instead of failing as a taken port should.
    probe = _bound(host, port, reuse_port=False)
    if port == 0:
        port = probe.getsockname()[1]
    spread = _spreads_connections()
    probe.close()
    sockets: list[socket.socket] = []
    try:
        for _ in range(count if spread else 1):
            sock = _bound(host, port, reuse_port=spread)
            sock.listen(LISTEN_BACKLOG)
            sockets.append(sock)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class _Signals:
    """SIGINT and SIGTERM, counted, each one waking the parent's wait through a socket pair."""

    def __init__(self) -> None:
        self.count = 0
        self.reader, self._writer = socket.socketpair()
        self.reader.setblocking(False)
        self._writer.setblocking(False)
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self.reader.close()
        self._writer.close()

    def _handle(self, sig: int, frame: FrameType | None) -> None:
        self.count += 1
        with contextlib.suppress(OSError):
            self._writer.send(b"\0")

    def drain(self) -> None:
        with contextlib.suppress(OSError):
            while self.reader.recv(64):
                pass


@dataclass
class _Slot:
    """One of the N places an API process runs in; a process that dies is replaced in its slot."""

    index: int
    process: BaseProcess | None = None
    ready: Connection | None = None
    started_at: float = 0.0
    restart_delay: float = 0.0
    restart_at: float | None = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.exitcode is None


def _exit_description(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-exitcode).name}"
    return f"exit status {exitcode}"


@dataclass
class ApiProcesses:
    """N API processes on one port, kept running until a signal stops them. Process i accepts
    from `sockets[i]` (its successors too), or from the one socket when there is one."""

    settings: Settings
    database_url: str
    sockets: list[socket.socket]
    host: str
    port: int
    count: int
    run_worker: bool
    worker_state: SharedWorkerState | None = None
    slots: list[_Slot] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.slots = [_Slot(i) for i in range(self.count)]
        if self.run_worker:
            self.worker_state = SharedWorkerState()

    @property
    def pids(self) -> list[int]:
        return [s.process.pid for s in self.slots if s.process is not None and s.process.pid]

    def _spawn(self, slot: _Slot) -> None:
        reader, writer = _SPAWN.Pipe(duplex=False)
        spec = ApiProcess(
            index=slot.index,
            settings=self.settings,
            database_url=self.database_url,
            sock=self.sockets[slot.index % len(self.sockets)],
            host=self.host,
            port=self.port,
            runs_worker=self.run_worker and slot.index == 0,
            worker_state=self.worker_state,
            ready=writer,
            parent_pid=os.getpid(),
        )
        process = _SPAWN.Process(
            target=run_api_process, args=(spec,), name=f"vidgate-api-{slot.index + 1}"
        )
        # Daemonic: should the parent fail, multiprocessing stops its children on the way out.
        process.daemon = True
        process.start()
        writer.close()  # the child has its own copy
        if slot.ready is not None:
            slot.ready.close()
        slot.process, slot.ready = process, reader
        slot.started_at, slot.restart_at = time.monotonic(), None

    def start(self, signals: _Signals) -> bool:
        """Start every process and wait until each listens (or a signal comes); False, with a
        line in the log, when one exits first."""
        for slot in self.slots:
            self._spawn(slot)
        waiting = list(self.slots)
        while waiting and signals.count == 0:
            objects: list[Any] = [signals.reader]
            for slot in waiting:
                assert slot.process is not None and slot.ready is not None
                objects += [slot.ready, slot.process.sentinel]
            wait(objects)
            for slot in list(waiting):
                assert slot.process is not None and slot.ready is not None
                if slot.ready.poll():
                    try:
                        message = slot.ready.recv_bytes()
                    except (EOFError, OSError):  # it closed its end without a word: it died
                        message = b""
                    if message == b"ready":
                        waiting.remove(slot)
                        continue
                elif slot.alive:
                    continue
                slot.process.join(GRACEFUL_SHUTDOWN_SECONDS)
                logger.error(
                    "serve.process_failed_to_start",
                    process=slot.index + 1,
                    pid=slot.process.pid,
                    outcome=_exit_description(slot.process.exitcode),
                )
                return False
        return True

    def supervise(self, signals: _Signals) -> None:
        """Restart each process that dies (after a growing delay when it keeps dying young) until
        SIGTERM or SIGINT."""
        while signals.count == 0:
            now = time.monotonic()
            for slot in self.slots:
                if slot.restart_at is None and not slot.alive:
                    self._schedule_restart(slot, now)
                if slot.restart_at is not None and slot.restart_at <= now:
                    self._spawn(slot)
                    assert slot.process is not None
                    logger.info(
                        "serve.process_restarted", process=slot.index + 1, pid=slot.process.pid
                    )
            due = [s.restart_at for s in self.slots if s.restart_at is not None]
            objects: list[Any] = [signals.reader]
            # Every process not yet seen dead, alive or not by now: one that died since the
            # loop above looked makes the wait return at once (left out, it would never wake it).
            objects += [
                s.process.sentinel for s in self.slots if s.process and s.restart_at is None
            ]
            wait(objects, timeout=max(0.0, min(due) - time.monotonic()) if due else None)
            signals.drain()

    def _schedule_restart(self, slot: _Slot, now: float) -> None:
        assert slot.process is not None
        slot.process.join(0)
        if slot.index == 0 and self.worker_state is not None:
            self.worker_state.set(False)  # its worker died with it
        lived = now - slot.started_at
        if lived >= STABLE_SECONDS:
            slot.restart_delay = 0.0
        else:
            doubled = max(slot.restart_delay * 2, FIRST_RESTART_DELAY)
            slot.restart_delay = min(doubled, MAX_RESTART_DELAY)
        slot.restart_at = now + slot.restart_delay
        logger.error(
            "serve.process_died",
            process=slot.index + 1,
            pid=slot.process.pid,
            outcome=_exit_description(slot.process.exitcode),
            lived_seconds=round(lived, 1),
            restart_in=slot.restart_delay,
        )

    def stop(self, signals: _Signals) -> None:
        """SIGTERM to every process, and wait for all: each finishes its requests (and the first
        its running jobs) as a single `vidgate serve` does. A second signal makes them stop at
        once (SIGINT, as a second Ctrl-C does), a third kills them."""
        handled = max(signals.count, 1)
        self._send(signal.SIGTERM)
        while True:
            live = [s.process for s in self.slots if s.alive and s.process is not None]
            if not live:
                break
            wait([signals.reader, *(p.sentinel for p in live)])
            signals.drain()
            if signals.count > handled:
                handled = signals.count
                self._send(signal.SIGINT if handled == 2 else signal.SIGKILL)
        for slot in self.slots:
            if slot.process is not None:
                slot.process.join()
            if slot.ready is not None:
                slot.ready.close()

    def _send(self, sig: signal.Signals) -> None:
        for slot in self.slots:
            if slot.alive and slot.process is not None and slot.process.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.process.pid, sig)


def serve_processes(
    settings: Settings,
    database_url: str,
    *,
    sockets: list[socket.socket],
    host: str,
    port: int,
    processes: int,
    run_worker: bool,
    on_started: Callable[[list[int]], None],
) -> bool:
    """Run `processes` API processes on `sockets` (`listening_sockets`) until SIGTERM or SIGINT,
    the job worker in the first when `run_worker`; `on_started(pids)` once every one listens.
    Whether they started."""
    group = ApiProcesses(settings, database_url, sockets, host, port, processes, run_worker)
    with _Signals() as signals:
        try:
            started = group.start(signals)
            if started and signals.count == 0:
                on_started(group.pids)
                group.supervise(signals)
        finally:
            group.stop(signals)
    return started
