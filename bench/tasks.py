"""Task throughput benchmark (`make bench`): 1,000 text-to-video tasks from create to SUCCEEDED.

`vidgate serve --no-worker` takes the creates and hosts the emulated vendors, set to zero queue
and run time and their smallest render (64 px high, 5 s); one `vidgate worker` process runs every
task to the end: submit, poll, copy the result into storage, probe it, settle. The tasks use the
built-in catalog's default text-to-video model (Wan 2.7, DashScope first).

With `--first-channel-failures 0.3` the tasks use a bench model whose first channel (DashScope)
answers 500 to that share of submits, and whose second is kie.ai: every task must still succeed,
charged once; the report adds the vendor attempts per task and how they ended. Both talk to
an embedded PostgreSQL through a small counting proxy, one per process, which counts round trips:
each simple query (`Q`) or extended-protocol sync (`S`) the client sends waits for the server.

Results are not labelled unless `--labels` is given: labelling (a process per result, about a
second of CPU for these small videos) is measured on its own by bench/labels.py and
bench/labels_remux.py, and the targets below are the task pipeline's.

Prints the total time (target <= 30 s on a 2-core machine), the create rate (target >= 60/s),
database round trips per task for the API (target <= 8) and the worker (target <= 20), and checks
the ledger: 1,000 charges of 20 credits and no drift. Prints figures; asserts nothing.

With `--compare-api-workers` it runs twice on new databases, the API as one process and then
as two (`vidgate serve --workers 2`), the emulated vendors in a `vidgate emulate` process of their
own both times, and prints the ratio of the create rates (target >= 1.5).

    .venv/bin/python bench/tasks.py [--tasks 1000] [--users 1] [--create-concurrency 8]
                                    [--worker-concurrency N] [--first-channel-failures 0.3]
                                    [--api-workers N | --compare-api-workers] [--labels] [--trace]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (
    HOST,
    VIDGATE,
    Server,
    client_key,
    free_port,
    launch,
    running,
    stop,
    wait_http_ok,
)
from vidgate.db.embedded import start_embedded_postgres, stop_embedded_postgres

TIME_TARGET = 30.0  # all 1,000 SUCCEEDED, from the first create
CREATE_TARGET = 60.0  # creates/s
WORKER_TRIPS_TARGET = 20.0  # database round trips per task in the worker
API_TRIPS_TARGET = 8.0  # and per create in the API
API_WORKERS_RATIO_TARGET = 1.5  # creates/s with 2 API processes over 1
PRICE = 20  # text-to-video, standard, 5 s
BENCH_CATALOG = """
[defaults]
text-to-video = "bench-t2v"

[[models]]
id = "bench-t2v"
kinds = ["text-to-video"]
name = { en = "Bench", zh = "基准" }
description = { en = "DashScope, then kie.ai.", zh = "先 DashScope，再 kie.ai。" }
tiers = [{ name = "standard", credits = 20 }, { name = "hd", credits = 30 }]
limits = { prompt_max_chars = 1500, durations = [5] }

[[models.channels]]
id = "bench-dashscope"
adapter = "dashscope"
vendor_model = "wan2.6-t2v"

[[models.channels]]
id = "bench-kie"
adapter = "kie"
vendor_model = "wan/2-6-text-to-video"
"""
# Startup-phase request codes that are not the startup message itself.
_SSL_REQUEST, _GSSENC_REQUEST = 80877103, 80877104


class RoundTripProxy:
    """TCP on loopback -> the PostgreSQL unix socket, counting the client's round trips."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self.port = free_port()
        self.messages: Counter[bytes] = Counter()
        self.connections = 0
        self.trace: Counter[str] | None = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def round_trips(self) -> int:
        return self.messages[b"Q"] + self.messages[b"S"]

    def snapshot(self) -> int:
        return self.round_trips

    def start(self) -> RoundTripProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._connection, HOST, self.port)
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()

    async def _connection(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        try:
            server_reader, server_writer = await asyncio.open_unix_connection(self.socket_path)
        except OSError:
            client_writer.close()
            return
        upstream = asyncio.ensure_future(self._client_to_server(client_reader, server_writer))
        downstream = asyncio.ensure_future(_pipe(server_reader, client_writer))
        await asyncio.wait({upstream, downstream}, return_when=asyncio.FIRST_COMPLETED)
        for task in (upstream, downstream):
            task.cancel()
        for writer in (client_writer, server_writer):
            writer.close()

    async def _client_to_server(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            # Startup phase: untyped messages (length, code); SSL/GSS requests come before it.
            while True:
                head = await reader.readexactly(8)
                length, code = struct.unpack("!ii", head)
                writer.write(head + await reader.readexactly(length - 8))
                await writer.drain()
                if code not in (_SSL_REQUEST, _GSSENC_REQUEST):
                    break
            statements: dict[bytes, str] = {}
            while True:
                head = await reader.readexactly(5)
                kind, length = head[:1], struct.unpack("!i", head[1:])[0]
                self.messages[kind] += 1
                body = await reader.readexactly(length - 4)
                if self.trace is not None:
                    self._trace(kind, body, statements)
                writer.write(head + body)
                if kind in (b"Q", b"S", b"H", b"X"):
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return

    def _trace(self, kind: bytes, body: bytes, statements: dict[bytes, str]) -> None:
        """Count executions per SQL text (`--trace`): simple queries, and binds of parsed ones."""
        assert self.trace is not None
        if kind == b"Q":
            self.trace[" ".join(body.rstrip(b"\0").decode(errors="replace").split())[:150]] += 1
        elif kind == b"P":
            name, text, _ = body.split(b"\0", 2)
            statements[name] = " ".join(text.decode(errors="replace").split())[:150]
        elif kind == b"B":
            _portal, name, _ = body.split(b"\0", 2)
            self.trace[statements.get(name, "?")] += 1


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except ConnectionError:
        return


def socket_of(uri: str) -> tuple[str, str]:
    """(the unix socket path, a libpq URL that uses it directly) of the embedded server."""
    socket_dir = uri.split("host=", 1)[1].split("&", 1)[0]
    sockets = [p for p in Path(socket_dir).glob(".s.PGSQL.*") if not p.name.endswith(".lock")]
    return str(sockets[0]), uri


def environment(
    data_dir: Path, proxy: RoundTripProxy, secret: str, base: str, extra: dict[str, str]
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDGATE_")}
    env.update(**extra)
    env.update(
        VIDGATE_LOG_LEVEL="WARNING",
        VIDGATE_DATA_DIR=str(data_dir),
        VIDGATE_DATABASE_URL=f"postgresql://postgres@{HOST}:{proxy.port}/postgres",
        VIDGATE_SECRET_KEY=secret,
        VIDGATE_PUBLIC_BASE_URL=base,
        VIDGATE_MAX_ACTIVE_TASKS_PER_USER="100000",
        VIDGATE_EMULATOR_QUEUE_SECONDS="0",
        VIDGATE_EMULATOR_RUN_SECONDS="0",
        VIDGATE_EMULATOR_RENDER_HEIGHT="64",
        VIDGATE_EMULATOR_SORA_SECONDS="1",
        VIDGATE_TASK_POLL_INITIAL_SECONDS="0.2",
        VIDGATE_TASK_POLL_MAX_SECONDS="1",
    )
    return env


def sign_in(client: httpx.Client, phone: str) -> tuple[str, str]:
    """(access token, user id) of a user signed in by SMS through the development outbox."""
    client.post("/api/auth/sms/send", json={"phone_number": phone}).raise_for_status()
    outbox = client.get("/api/_dev/sms/outbox", params={"phone_number": phone})
    code = outbox.json()["messages"][0]["code"]
    login = client.post("/api/auth/sms/login", json={"phone_number": phone, "code": code})
    login.raise_for_status()
    token: str = login.json()["access_token"]
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    me.raise_for_status()
    return token, str(me.json()["id"])


async def create_tasks(
    base_url: str, callers: list[dict[str, str]], count: int, concurrency: int
) -> list[int]:
    """POST `count` text-to-video tasks, `concurrency` at a time, the callers taking turns; the
    status codes."""
    statuses: list[int] = []
    left = iter(range(count))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:

        async def one_lane() -> None:
            for i in left:
                r = await client.post(
                    "/api/videos/text-to-video",
                    headers=callers[i % len(callers)],
                    json={"prompt": f"benchmark clip {i}: a paper boat on a river"},
                )
                statuses.append(r.status_code)

        await asyncio.gather(*(one_lane() for _ in range(concurrency)))
    return statuses


def counts_by_status(direct_url: str) -> dict[str, int]:
    with psycopg.connect(direct_url) as conn:
        rows = conn.execute("SELECT status, count(*) FROM tasks GROUP BY status").fetchall()
    return {status: n for status, n in rows}


def ledger_summary(direct_url: str) -> tuple[int, int, int]:
    """(charge rows, credits charged, refund rows) of the benchmark's users."""
    with psycopg.connect(direct_url) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE kind = 'charge'), -coalesce(sum(delta) FILTER"
            " (WHERE kind = 'charge'), 0), count(*) FILTER (WHERE kind = 'refund')"
            " FROM credit_ledger"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def attempts_summary(direct_url: str) -> tuple[int, dict[str, int], dict[str, int]]:
    """(attempts, attempts by channel and outcome, tasks by channel) of every task."""
    with psycopg.connect(direct_url) as conn:
        rows = conn.execute(
            "SELECT channel || ' ' || outcome, count(*) FROM task_attempts GROUP BY 1"
        ).fetchall()
        channels = conn.execute(
            "SELECT coalesce(channel, '-'), count(*) FROM tasks GROUP BY 1"
        ).fetchall()
    by_outcome = {name: int(n) for name, n in rows}
    return sum(by_outcome.values()), by_outcome, {c: int(n) for c, n in channels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--users", type=int, default=1, help="callers taking turns")
    parser.add_argument(
        "--first-channel-failures",
        type=float,
        default=0.0,
        help="share of submits the first channel answers 500 (a bench model fails over to kie.ai)",
    )
    parser.add_argument("--create-concurrency", type=int, default=8)
    parser.add_argument("--worker-concurrency", type=int, default=None)
    parser.add_argument(
        "--api-workers", type=int, default=1, help="API processes (`vidgate serve --workers N`)"
    )
    parser.add_argument(
        "--compare-api-workers",
        action="store_true",
        help="run twice, the API on 1 and then on 2 processes, and print the create-rate ratio",
    )
    parser.add_argument(
        "--labels",
        action="store_true",
        help="label every result as a server does by default (off: the figures are the task"
        " pipeline's; bench/labels.py and bench/labels_remux.py measure labelling)",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after this long")
    parser.add_argument(
        "--trace", action="store_true", help="print the statements each process ran most often"
    )
    args = parser.parse_args()
    if not args.compare_api_workers:
        run(args, args.api_workers, separate_emulators=args.api_workers > 1)
        return
    one = run(args, 1, separate_emulators=True)
    print()
    two = run(args, 2, separate_emulators=True)
    print(
        f"\ncreates/s with 2 API processes / with 1, same run: {two:,.0f} / {one:,.0f} ="
        f" {two / one:.2f} (target >= {API_WORKERS_RATIO_TARGET:g})"
    )


def start_emulators(work: Path, env: dict[str, str]) -> tuple[Server, dict[str, str]]:
    """`vidgate emulate` as a process of its own, and the settings that point vidgate at it:
    with several API processes, emulators inside each would each know only their own tasks."""
    port = free_port()
    data_dir = work / "emulators"
    argv = [str(VIDGATE), "emulate", "--host", HOST, "--port", str(port)]
    server = launch(
        "emulators", argv, {**env, "VIDGATE_DATA_DIR": str(data_dir)}, work / "emulate.log", port
    )
    wait_http_ok(server, "/docs")
    settings = (data_dir / "emulators.env").read_text()
    return server, dict(word.split("=", 1) for word in shlex.split(settings))


def run(args: argparse.Namespace, api_workers: int, *, separate_emulators: bool) -> float:
    """One benchmark run on a new database; the create rate."""
    work = Path(tempfile.mkdtemp(prefix="vidgate-bench-tasks-"))
    uri, pg = start_embedded_postgres(work / "pg")
    emulators: Server | None = None
    try:
        socket_path, direct_url = socket_of(uri)
        api_proxy = RoundTripProxy(socket_path).start()
        worker_proxy = RoundTripProxy(socket_path).start()
        data_dir = work / "data"
        secret = secrets.token_urlsafe(48)
        port = free_port()
        base = f"http://{HOST}:{port}"
        per_user = -(-args.tasks // args.users)  # enough signup credits for each caller's share
        extra = {"VIDGATE_SIGNUP_BONUS_CREDITS": str(PRICE * per_user)}
        if not args.labels:
            extra |= {f"VIDGATE_LABEL_{kind}": "false" for kind in ("IMPLICIT", "EXPLICIT", "C2PA")}
        if args.first_channel_failures:
            catalog = work / "catalog.toml"
            catalog.write_text(BENCH_CATALOG, encoding="utf-8")
            extra["VIDGATE_CATALOG"] = str(catalog)
        if separate_emulators:
            emulators, emulated = start_emulators(
                work, environment(data_dir, api_proxy, secret, base, extra)
            )
            extra |= emulated
        migrate_env = environment(data_dir, api_proxy, secret, base, extra)
        subprocess.run([str(VIDGATE), "migrate"], env=migrate_env, check=True, capture_output=True)

        argv = [str(VIDGATE), "serve", "--host", HOST, "--port", str(port), "--no-worker"]
        if api_workers > 1:  # (one is the default in development)
            argv += ["--workers", str(api_workers)]
        api = launch("vidgate", argv, migrate_env, work / "serve.log", port)
        api.data_dir = data_dir  # where its development client key is kept
        with running(api):
            wait_http_ok(api, "/readyz")
            worker_argv = [str(VIDGATE), "worker"]
            if args.worker_concurrency is not None:
                worker_argv += ["--concurrency", str(args.worker_concurrency)]
            worker_env = environment(data_dir, worker_proxy, secret, base, extra)
            worker = launch("worker", worker_argv, worker_env, work / "worker.log", 0)
            with running(worker), httpx.Client(base_url=base, timeout=30) as client:
                key = client_key(api)
                callers = [
                    {"Authorization": f"Bearer {sign_in(client, f'86-138{n:08d}')[0]}"}
                    | {"X-API-Key": key}
                    for n in range(args.users)
                ]
                if args.first_channel_failures:
                    faults = "/_emulator/dashscope/_control/faults"
                    if emulators is not None:
                        faults = emulators.base_url + faults
                    armed = client.post(
                        faults,
                        json={"next_submit": "server_error", "ratio": args.first_channel_failures},
                    )
                    armed.raise_for_status()
                time.sleep(1.0)  # the worker is up and idle: its baseline is not the tasks'
                idle_started = time.perf_counter()
                idle_before = worker_proxy.snapshot()
                time.sleep(3.0)
                idle_rate = (worker_proxy.snapshot() - idle_before) / (
                    time.perf_counter() - idle_started
                )

                api_before, worker_before = api_proxy.snapshot(), worker_proxy.snapshot()
                if args.trace:
                    api_proxy.trace, worker_proxy.trace = Counter(), Counter()
                started = time.perf_counter()
                codes = asyncio.run(
                    create_tasks(base, callers, args.tasks, args.create_concurrency)
                )
                created_in = time.perf_counter() - started
                api_trips = api_proxy.snapshot() - api_before
                by_status: dict[str, int] = {}
                while time.perf_counter() - started < args.timeout:
                    by_status = counts_by_status(direct_url)
                    if by_status.get("PENDING", 0) + by_status.get("RUNNING", 0) == 0:
                        break
                    time.sleep(0.25)
                total = time.perf_counter() - started
                worker_trips = worker_proxy.snapshot() - worker_before
                charges, charged, refunds = ledger_summary(direct_url)
                attempts, by_outcome, by_channel = attempts_summary(direct_url)
                verify = subprocess.run(
                    [str(VIDGATE), "credits", "verify"], env=migrate_env, capture_output=True
                )
        _report(
            args,
            api_workers,
            codes,
            created_in,
            total,
            by_status,
            api_trips,
            worker_trips,
            idle_rate,
        )
        print(
            f"  ledger: {charges} charges, {charged:,} credits charged, {refunds} refunds; "
            f"`vidgate credits verify`: {'clean' if verify.returncode == 0 else 'DRIFT'}"
        )
        print(
            f"  vendor attempts: {attempts / args.tasks:.2f} per task"
            f" ({', '.join(f'{k}: {v}' for k, v in sorted(by_outcome.items()))});"
            f" tasks by channel: {dict(sorted(by_channel.items()))}"
        )
        for name, proxy in (("API", api_proxy), ("worker", worker_proxy)):
            if proxy.trace is not None:
                print(f"  {name}: statements executed per task, most frequent first")
                for text, count in proxy.trace.most_common(30):
                    print(f"    {count / args.tasks:6.2f}  {text}")
        api_proxy.stop()
        worker_proxy.stop()
        return sum(1 for c in codes if c == 200) / created_in
    finally:
        if emulators is not None:
            stop(emulators)
        stop_embedded_postgres(pg)
        shutil.rmtree(work, ignore_errors=True)


def _report(
    args: argparse.Namespace,
    api_workers: int,
    codes: list[int],
    created_in: float,
    total: float,
    by_status: dict[str, int],
    api_trips: int,
    worker_trips: int,
    idle_rate: float,
) -> None:
    n = args.tasks
    accepted = sum(1 for c in codes if c == 200)
    succeeded = by_status.get("SUCCEEDED", 0)
    worker_busy = worker_trips - idle_rate * total
    print("vidgate task throughput (2 cores shared by API, worker, PostgreSQL and the client)")
    print(
        f"  {n:,} text-to-video tasks from {args.users} users, {args.create_concurrency} creating"
        f" at once, {api_workers} API process{'es' if api_workers > 1 else ''}, one worker"
        f" process (concurrency {args.worker_concurrency or 'default'}); emulators: no queue or"
        " run time, 64 px, 5 s renders"
        + (
            f"; first channel fails {args.first_channel_failures:.0%} of submits"
            if args.first_channel_failures
            else ""
        )
    )
    rate = accepted / created_in
    print(
        f"  created: {accepted:,}/{n:,} accepted in {created_in:.1f} s"
        f" ({rate:,.0f} creates/s, target >= {CREATE_TARGET:g})"
        + ("" if accepted == n else f"; other answers: {Counter(c for c in codes if c != 200)}")
    )
    verdict = "ok" if succeeded == n and total <= TIME_TARGET else "BELOW TARGET"
    print(
        f"  create -> SUCCEEDED, all {n:,}: {total:.1f} s (target <= {TIME_TARGET:g} s)  {verdict};"
        f" final states {dict(sorted(by_status.items()))}"
    )
    print(
        f"  database round trips per task: API {api_trips / n:.1f} (create; target"
        f" <= {API_TRIPS_TARGET:g}), worker {worker_busy / n:.1f} (submit to settle; target"
        f" <= {WORKER_TRIPS_TARGET:g}; {worker_trips:,} in all, less {idle_rate:.1f}/s it makes"
        " when idle)"
    )


if __name__ == "__main__":
    main()
