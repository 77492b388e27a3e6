"""vidgate benchmark (`make bench`): prints figures, asserts nothing.

(a) Throughput and latency of three hot reads against a trivial FastAPI endpoint served the same
    way (uvicorn, one process), at 64 keep-alive connections for ~10 s each after a 2 s warm-up:
    - `GET /healthz`: the whole app stack (middleware, routing, error handling), no database;
    - `GET /api/auth/me` (Bearer token: session check, cached per process);
    - `GET /api/videos/tasks/{id}` (X-API-Key: key lookup plus the task, both cached).
    Both servers run throughout and each round drives the four endpoints back to back, so a
    machine busy with other work weighs on all of them alike; the ratio to trivial is taken per
    round and the median reported. Targets: /healthz >= 0.85, the other two >= 0.65, and p99
    under 25 ms for all three. The server's CPU time per request is shown too: it moves less
    than throughput when other processes compete for the cores.
(b) Cold start: launching `vidgate serve` until /readyz answers 200, on an empty data dir and then
    warm (same data dir, 3 runs). Target: warm <= 5 s.
(c) Every core: `GET /api/auth/me` at the same load against `vidgate serve --workers 2` and
    `--workers 1`, both up at once on one data dir and measured in turns (3 rounds), and the
    median of the rounds' throughput ratios. On a machine whose cores are also busy with the load
    generator and PostgreSQL the ratio says more than the figures.

The load comes from `wrk` when it is on PATH, otherwise from a raw HTTP/1.1 asyncio client in a
separate process. Everything runs on this machine: client, server and PostgreSQL share its cores.
`--access-log` serves vidgate in (a) with VIDGATE_ACCESS_LOG=true at INFO (a JSON line per
request, to the server's log file).

    .venv/bin/python bench/run.py [--duration 10] [--warmup 2] [--connections 64] [--rounds 1]
                                  [--generator auto|wrk|asyncio] [--warm-runs 3]
                                  [--workers-only] [--workers-rounds 3]
                                  [--throughput-only] [--access-log]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

BENCH_DIR = Path(__file__).resolve().parent
VIDGATE = Path(sys.executable).with_name("vidgate")
HOST = "127.0.0.1"
PHONE = "86-13800138000"
PHONE_WORKERS = "86-13800138001"  # (c) signs in on its own: a second code within 60 s is refused
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
# Throughput of each vidgate endpoint over the trivial one's, in the same round.
RATIO_TARGETS = {"healthz": 0.85, "me": 0.65, "status": 0.65}
P99_TARGET_MS = 25.0
WARM_TARGET = 5.0

_READY_IN = re.compile(r"ready in (\d+(?:\.\d+)?) s")

WRK_SCRIPT = r"""
local auth = os.getenv("BENCH_AUTHORIZATION")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end
local key = os.getenv("BENCH_API_KEY")
if key and key ~= "" then
  wrk.headers["X-API-Key"] = key
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "p50_us": %.0f, "p99_us": %.0f, '
    .. '"non_2xx": %d, "errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


# --- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def server_env(data_dir: Path | None, *, access_log: bool = False) -> dict[str, str]:
    """This environment without any VIDGATE_ setting (so: embedded PostgreSQL), logs at WARNING
    (or at INFO with a line per request, for `access_log`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDGATE_")}
    env["VIDGATE_LOG_LEVEL"] = "INFO" if access_log else "WARNING"
    if access_log:
        env["VIDGATE_ACCESS_LOG"] = "true"
    if data_dir is not None:
        env["VIDGATE_DATA_DIR"] = str(data_dir)
    return env


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    launched: float
    log_path: Path
    data_dir: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def postmaster(self) -> psutil.Process | None:
        """The embedded PostgreSQL serving this data dir, if running."""
        if self.data_dir is None:
            return None
        pgdata = (self.data_dir / "pgdata").resolve()
        try:
            pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
            proc = psutil.Process(pid)
            if str(pgdata) in " ".join(proc.cmdline()):
                return proc
        except (OSError, ValueError, IndexError, psutil.Error):
            pass
        return None


def launch(name: str, argv: list[str], env: dict[str, str], log_path: Path, port: int) -> Server:
    log = log_path.open("wb")
    try:
        launched = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=BENCH_DIR.parent,
            start_new_session=True,
        )
    finally:
        log.close()
    return Server(name, proc, port, launched, log_path)


def launch_vidgate(
    data_dir: Path,
    log_path: Path,
    *,
    worker: bool,
    processes: int | None = None,
    settings: dict[str, str] | None = None,
    access_log: bool = False,
) -> Server:
    port = free_port()
    argv = [str(VIDGATE), "serve", "--host", HOST, "--port", str(port)]
    if not worker:
        argv.append("--no-worker")
    if processes is not None:
        argv += ["--workers", str(processes)]
    env = {**server_env(data_dir, access_log=access_log), **(settings or {})}
    server = launch("vidgate", argv, env, log_path, port)
    server.data_dir = data_dir
    return server


def launch_bench_app(name: str, app: str, log_path: Path) -> Server:
    """uvicorn with the flags `vidgate serve` uses (one process, uvloop, httptools, no access
    log or server header), serving `app` ("module:attribute") from the bench directory."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--app-dir",
        str(BENCH_DIR),
        "--host",
        HOST,
        "--port",
        str(port),
        "--no-access-log",
        "--no-server-header",
        "--proxy-headers",
        "--log-level",
        "warning",
    ]
    return launch(name, argv, server_env(None), log_path, port)


def launch_emulators(work_dir: Path) -> tuple[Server, dict[str, str]]:
    """`vidgate emulate` as a process of its own, and the settings that point vidgate at it:
    `vidgate serve --workers 2` refuses the vendors emulated inside each API process (each would
    know only its own tasks)."""
    port = free_port()
    data_dir = work_dir / "emulators"
    argv = [str(VIDGATE), "emulate", "--host", HOST, "--port", str(port)]
    server = launch("emulators", argv, server_env(data_dir), work_dir / "emulate.log", port)
    wait_http_ok(server, "/docs")
    words = shlex.split((data_dir / "emulators.env").read_text())
    return server, dict(word.split("=", 1) for word in words)


def launch_trivial(log_path: Path) -> Server:
    """A trivial FastAPI endpoint served the way `vidgate serve` serves vidgate."""
    return launch_bench_app("trivial", "trivial_app:app", log_path)


def wait_http_ok(server: Server, path: str, timeout: float = READY_TIMEOUT) -> float:
    """Poll until `path` answers 200; the seconds since the process was launched."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=server.base_url, timeout=2.0) as client:
        while True:
            try:
                if client.get(path).status_code == 200:
                    return time.perf_counter() - server.launched
            except httpx.TransportError:
                pass
            if server.proc.poll() is not None:
                raise RuntimeError(
                    f"{server.name} exited with {server.proc.returncode}:\n{server.log()[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server.name} not ready in {timeout:.0f} s")
            time.sleep(0.02)


def banner_ready_seconds(server: Server) -> float | None:
    """The "ready in X s" vidgate prints itself (a moment after it starts answering)."""
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        match = _READY_IN.search(server.log())
        if match:
            return float(match.group(1))
        time.sleep(0.02)
    return None


def stop(server: Server) -> int | None:
    """SIGTERM and wait; SIGKILL the process group if it hangs; stop a PostgreSQL left behind."""
    rc: int | None = server.proc.poll()
    if rc is None:
        with suppress(ProcessLookupError):
            server.proc.send_signal(signal.SIGTERM)
        try:
            rc = server.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            print(f"  ! {server.name} still running {STOP_TIMEOUT:.0f} s after SIGTERM; killing it")
            with suppress(ProcessLookupError):
                os.killpg(server.proc.pid, signal.SIGKILL)
            server.proc.wait(5)
            rc = None
    postmaster = server.postmaster()
    if postmaster is not None:
        print("  ! embedded PostgreSQL still running after the server stopped; stopping it")
        with suppress(psutil.Error):
            postmaster.send_signal(signal.SIGQUIT)
            postmaster.wait(10)
        with suppress(psutil.Error):
            postmaster.kill()
    return rc


@contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        yield server
    finally:
        stop(server)


def cpu_by_pid(procs: list[psutil.Process]) -> dict[int, float]:
    """CPU seconds (user + system) each live process has used so far."""
    used: dict[int, float] = {}
    for p in procs:
        with suppress(psutil.Error):
            t = p.cpu_times()
            used[p.pid] = t.user + t.system
    return used


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used between two snapshots by the processes alive at the second (those that exited in
    between, such as PostgreSQL backends of closed pool connections, are not counted)."""
    return sum(max(0.0, used - before.get(pid, 0.0)) for pid, used in after.items())


def server_processes(server: Server) -> tuple[list[psutil.Process], list[psutil.Process]]:
    """(the server process with its API processes, the embedded PostgreSQL with its backends)."""
    parent = psutil.Process(server.proc.pid)
    main = [parent, *parent.children(recursive=True)]
    postmaster = server.postmaster()
    pg = [postmaster, *postmaster.children(recursive=True)] if postmaster else []
    return main, pg


def event_loop_of(server: Server) -> str:
    """Whether the server process runs uvloop or the standard asyncio loop (Linux: its mappings)."""
    try:
        maps = Path(f"/proc/{server.proc.pid}/maps").read_text()
    except OSError:
        return "event loop unknown"
    return "uvloop" if "uvloop" in maps else "asyncio event loop"


# --- load generation --------------------------------------------------------------------------


@dataclass
class LoadResult:
    generator: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int
    served: int = 0  # responses over warm-up plus measurement
    cpu_server: float = 0.0  # share of one core, over warm-up plus measurement
    cpu_postgres: float = 0.0
    cpu_client: float = 0.0
    cpu_server_seconds: float = 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_us_per_request(self) -> float:
        """The server process's CPU time per response, warm-up included."""
        return self.cpu_server_seconds / self.served * 1e6 if self.served else float("nan")


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


async def _one_connection(
    host: str,
    port: int,
    request: bytes,
    warm_until: float,
    end: float,
    latencies: list[float],
    counts: dict[str, int],
) -> None:
    """Sequential keep-alive GETs on one connection; records those inside [warm_until, end]."""
    clock = time.perf_counter
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while clock() < end:
        if writer is None:
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError:
                counts["errors"] += 1
                await asyncio.sleep(0.05)
                continue
        assert reader is not None
        started = clock()
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = -1
            close = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            if length < 0:
                raise ValueError("response without Content-Length")
            await reader.readexactly(length)
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            if started >= warm_until:
                counts["errors"] += 1
            writer.close()
            writer = None
            continue
        finished = clock()
        counts["served"] += 1
        if started >= warm_until and finished <= end:
            latencies.append(finished - started)
            if not 200 <= status < 300:
                counts["non_2xx"] += 1
        if close:
            writer.close()
            writer = None
    if writer is not None:
        writer.close()


async def _asyncio_load(
    host: str,
    port: int,
    path: str,
    headers: list[str],
    connections: int,
    warmup: float,
    duration: float,
) -> dict[str, object]:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Accept: */*", *headers, "", ""]
    request = "\r\n".join(lines).encode("latin-1")
    latencies: list[float] = []
    counts = {"errors": 0, "non_2xx": 0, "served": 0}
    start = time.perf_counter()
    warm_until = start + warmup
    end = warm_until + duration
    await asyncio.gather(
        *(
            _one_connection(host, port, request, warm_until, end, latencies, counts)
            for _ in range(connections)
        )
    )
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": duration,
        "p50_ms": _percentile(latencies, 50) * 1000,
        "p99_ms": _percentile(latencies, 99) * 1000,
        "non_2xx": counts["non_2xx"],
        "errors": counts["errors"],
        "served": counts["served"],
    }


def loadgen_main(argv: list[str]) -> None:
    """`run.py _loadgen ...`: the asyncio client, in its own process; prints one JSON line."""
    parser = argparse.ArgumentParser(prog="run.py _loadgen")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--warmup", type=float, required=True)
    parser.add_argument("--duration", type=float, required=True)
    args = parser.parse_args(argv)
    work = _asyncio_load(
        HOST, args.port, args.path, args.header, args.connections, args.warmup, args.duration
    )
    try:
        import uvloop
    except ImportError:  # uvicorn[standard] brings it; plain asyncio works too, a bit slower
        result = asyncio.run(work)
        result["loop"] = "asyncio"
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            result = runner.run(work)
        result["loop"] = "uvloop"
    print(json.dumps(result))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_asyncio(
    server: Server, path: str, headers: dict[str, str], args: argparse.Namespace
) -> LoadResult:
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "_loadgen",
        "--port",
        str(server.port),
        "--path",
        path,
        "--connections",
        str(args.connections),
        "--warmup",
        str(args.warmup),
        "--duration",
        str(args.duration),
    ]
    for name, value in headers.items():
        argv += ["--header", f"{name}: {value}"]
    out = subprocess.run(
        argv, capture_output=True, text=True, timeout=args.warmup + args.duration + 60, check=True
    )
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return LoadResult(
        generator=f"asyncio raw HTTP/1.1 ({data['loop']}), 1 process",
        requests=int(data["requests"]),
        seconds=float(data["seconds"]),
        p50_ms=float(data["p50_ms"]),
        p99_ms=float(data["p99_ms"]),
        non_2xx=int(data["non_2xx"]),
        errors=int(data["errors"]),
        served=int(data["served"]),
    )


def run_wrk(
    wrk: str, server: Server, path: str, headers: dict[str, str], args: argparse.Namespace
) -> LoadResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT)
        script = f.name
    env = dict(
        os.environ,
        BENCH_AUTHORIZATION=headers.get("Authorization", ""),
        BENCH_API_KEY=headers.get("X-API-Key", ""),
    )

    def wrk_run(seconds: float) -> str:
        argv = [
            wrk,
            "-t1",
            f"-c{args.connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            script,
            server.base_url + path,
        ]
        out = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=seconds + 60, check=True
        )
        return out.stdout

    def summary(output: str) -> dict[str, int | float]:
        line = next(x for x in output.splitlines() if x.startswith("BENCH_JSON "))
        parsed: dict[str, int | float] = json.loads(line.removeprefix("BENCH_JSON "))
        return parsed

    try:
        warm = summary(wrk_run(args.warmup))
        data = summary(wrk_run(args.duration))
    finally:
        os.unlink(script)
    return LoadResult(
        generator="wrk, 1 thread",
        requests=int(data["requests"]),
        seconds=int(data["duration_us"]) / 1e6,
        p50_ms=float(data["p50_us"]) / 1000,
        p99_ms=float(data["p99_us"]) / 1000,
        non_2xx=int(data["non_2xx"]),
        errors=int(data["errors"]),
        served=int(warm["requests"]) + int(data["requests"]),
    )


def load_test(
    server: Server, path: str, headers: dict[str, str], args: argparse.Namespace
) -> LoadResult:
    """Drive `path` and measure the CPU the server, its PostgreSQL and the client used meanwhile."""
    main, pg = server_processes(server)
    before_server, before_pg, before_client = cpu_by_pid(main), cpu_by_pid(pg), _children_cpu()
    started = time.perf_counter()
    if args.wrk:
        result = run_wrk(args.wrk, server, path, headers, args)
    else:
        result = run_asyncio(server, path, headers, args)
    elapsed = time.perf_counter() - started
    main_after, pg_after = server_processes(server)
    result.cpu_server_seconds = cpu_delta(before_server, cpu_by_pid(main_after))
    result.cpu_server = result.cpu_server_seconds / elapsed
    result.cpu_postgres = cpu_delta(before_pg, cpu_by_pid(pg_after)) / elapsed
    result.cpu_client = (_children_cpu() - before_client) / elapsed
    return result


def describe(label: str, r: LoadResult) -> None:
    print(
        f"  {label}: {r.rps:,.0f} req/s   p50 {r.p50_ms:.2f} ms   p99 {r.p99_ms:.2f} ms   "
        f"({r.requests:,} requests in {r.seconds:.1f} s, non-2xx {r.non_2xx}, errors {r.errors})"
    )
    print(
        f"      CPU, share of one core over warm-up + run: server {r.cpu_server:.0%} "
        f"({r.cpu_us_per_request:.0f} us a request), PostgreSQL ~{r.cpu_postgres:.0%}, "
        f"load generator {r.cpu_client:.0%}"
    )


# --- the benchmark ----------------------------------------------------------------------------


def sign_in(server: Server, phone: str = PHONE) -> str:
    with httpx.Client(base_url=server.base_url, timeout=15) as client:
        sent = client.post("/api/auth/sms/send", json={"phone_number": phone})
        sent.raise_for_status()
        outbox = client.get("/api/_dev/sms/outbox", params={"phone_number": phone})
        outbox.raise_for_status()
        code = outbox.json()["messages"][0]["code"]
        login = client.post("/api/auth/sms/login", json={"phone_number": phone, "code": code})
        login.raise_for_status()
        token: str = login.json()["access_token"]
        me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        me.raise_for_status()
        return token


def client_key(server: Server) -> str:
    """The development client key the server generated into its data dir."""
    assert server.data_dir is not None
    key: str = json.loads((server.data_dir / "secrets.json").read_text())["dev_client_api_key"]
    return key


def create_text_to_video(server: Server, token: str, key: str) -> str:
    """One text-to-video task (it stays PENDING under --no-worker); its id."""
    with httpx.Client(base_url=server.base_url, timeout=15) as client:
        r = client.post(
            "/api/videos/text-to-video",
            headers={"Authorization": f"Bearer {token}", "X-API-Key": key},
            json={"prompt": "a lighthouse in a storm, benchmark"},
        )
        r.raise_for_status()
        task_id: str = r.json()["task_id"]
        seen = client.get(f"/api/videos/tasks/{task_id}", headers={"X-API-Key": key})
        seen.raise_for_status()
        return task_id


def cold_start(data_dir: Path, work_dir: Path, label: str) -> tuple[float, float | None]:
    server = launch_vidgate(data_dir, work_dir / f"start-{label}.log", worker=True)
    with running(server):
        seconds = wait_http_ok(server, "/readyz")
        banner = banner_ready_seconds(server)
    rc = server.proc.returncode
    leftover = (data_dir / "pgdata" / "postmaster.pid").exists()
    note = "" if rc == 0 and not leftover else f"  (exit {rc}, postmaster.pid left: {leftover})"
    shown = f"{banner:.2f} s" if banner is not None else "-"
    print(f"  {label:>6}: {seconds:.2f} s to /readyz 200 (banner says ready in {shown}){note}")
    return seconds, banner


def connections_by_process(server: Server) -> list[int]:
    """Established connections from clients each API process of `server` holds, most first:
    throughput can only scale with the processes if the connections are spread between them."""
    counts = []
    parent = psutil.Process(server.proc.pid)
    for proc in [parent, *parent.children()]:
        with suppress(psutil.Error):
            held = [
                c
                for c in proc.net_connections("tcp")
                if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == server.port
            ]
            if held:
                counts.append(len(held))
    return sorted(counts, reverse=True)


@dataclass
class WorkersRatio:
    """(c): each round's run against one process and against two, and the ratio of each pair."""

    one: list[LoadResult]
    two: list[LoadResult]

    @property
    def ratios(self) -> list[float]:
        pairs = zip(self.one, self.two, strict=True)
        return [b.rps / a.rps if a.rps else float("nan") for a, b in pairs]

    @property
    def ratio(self) -> float:
        """The median of the rounds' ratios: each pair ran back to back, so a burst of load
        from elsewhere on the machine moves one round, not the figure."""
        return statistics.median(self.ratios)

    @staticmethod
    def median_run(runs: list[LoadResult]) -> LoadResult:
        return sorted(runs, key=lambda r: r.rps)[len(runs) // 2]


def _measure_me(server: Server, token: str, label: str, args: argparse.Namespace) -> LoadResult:
    """`GET /api/auth/me` against `server`, with how the client connections were spread."""
    spread: list[int] = []
    look = threading.Timer(args.warmup + 1, lambda: spread.extend(connections_by_process(server)))
    look.start()
    result = load_test(server, "/api/auth/me", {"Authorization": f"Bearer {token}"}, args)
    look.cancel()
    describe(label, result)
    print(f"      client connections by process: {' / '.join(map(str, spread)) or '-'}")
    return result


def workers_ratio(data_dir: Path, work_dir: Path, args: argparse.Namespace) -> WorkersRatio:
    """(c) `GET /api/auth/me` against `vidgate serve --no-worker --workers 1` and `--workers 2`,
    both running on the same data dir (one embedded PostgreSQL) with the same signed-in session,
    taking turns for `--workers-rounds` rounds (1 then 2, then 2 then 1, ...)."""
    emulators, emulated = launch_emulators(work_dir)
    with running(emulators):
        return _workers_ratio(data_dir, work_dir, args, emulated)


def _workers_ratio(
    data_dir: Path, work_dir: Path, args: argparse.Namespace, emulated: dict[str, str]
) -> WorkersRatio:
    one_log, two_log = work_dir / "bench-workers-1.log", work_dir / "bench-workers-2.log"
    one = launch_vidgate(data_dir, one_log, worker=False, processes=1, settings=emulated)
    with running(one):
        wait_http_ok(one, "/readyz")
        # Started after the first has written the data dir's secrets: the token is good for both.
        two = launch_vidgate(data_dir, two_log, worker=False, processes=2, settings=emulated)
        with running(two):
            try:
                wait_http_ok(two, "/readyz")
                token = sign_in(one, PHONE_WORKERS)
                runs: dict[int, list[LoadResult]] = {1: [], 2: []}
                for round_ in range(args.workers_rounds):
                    for processes in (1, 2) if round_ % 2 == 0 else (2, 1):
                        server = one if processes == 1 else two
                        label = f"round {round_ + 1}, --workers {processes}: GET /api/auth/me"
                        runs[processes].append(_measure_me(server, token, label, args))
            finally:
                two.data_dir = None  # the database it shares is the first server's to stop
    result = WorkersRatio(runs[1], runs[2])
    rounds = "  ".join(f"{r:.2f}" for r in result.ratios)
    print(f"  ratio --workers 2 / --workers 1: {result.ratio:.2f} (median; rounds: {rounds})")
    return result


@dataclass
class Case:
    key: str
    label: str
    server: Server
    path: str
    headers: dict[str, str]


def throughput(
    args: argparse.Namespace, vidgate: Server, trivial: Server
) -> tuple[list[Case], dict[str, list[LoadResult]]]:
    """Each round drives the trivial endpoint, then vidgate's three, back to back."""
    token = sign_in(vidgate)
    key = client_key(vidgate)
    task_id = create_text_to_video(vidgate, token, key)
    bearer = {"Authorization": f"Bearer {token}"}
    cases = [
        Case("trivial", "GET /ping (trivial)", trivial, "/ping", {}),
        Case("healthz", "GET /healthz", vidgate, "/healthz", {}),
        Case("me", "GET /api/auth/me", vidgate, "/api/auth/me", bearer),
        Case(
            "status",
            "GET /api/videos/tasks/{id}",
            vidgate,
            f"/api/videos/tasks/{task_id}",
            {"X-API-Key": key},
        ),
    ]
    print(
        f"  trivial: FastAPI via the uvicorn CLI ({event_loop_of(trivial)}); vidgate: "
        f"`vidgate serve --no-worker` ({event_loop_of(vidgate)})"
        + (", access log on" if args.access_log else "")
    )
    results: dict[str, list[LoadResult]] = {case.key: [] for case in cases}
    for n in range(args.rounds):
        if args.rounds > 1:
            print(f"  round {n + 1} of {args.rounds}")
        for case in cases:
            result = load_test(case.server, case.path, case.headers, args)
            describe(case.label, result)
            results[case.key].append(result)
        trivial_rps = results["trivial"][-1].rps
        print(
            "    ratios to trivial: "
            + ", ".join(
                f"{case.key} {results[case.key][-1].rps / trivial_rps:.2f}"
                for case in cases[1:]
                if trivial_rps
            )
        )
    return cases, results


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_loadgen":
        loadgen_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--rounds", type=int, default=1, help="(a): rounds of the four throughput runs"
    )
    parser.add_argument("--generator", choices=("auto", "wrk", "asyncio"), default="auto")
    parser.add_argument("--warm-runs", type=int, default=3)
    only = parser.add_mutually_exclusive_group()
    only.add_argument(
        "--throughput-only", action="store_true", help="run (a) alone: the hot reads to trivial"
    )
    only.add_argument(
        "--workers-only", action="store_true", help="run (c) alone: --workers 2 against 1"
    )
    parser.add_argument(
        "--workers-rounds", type=int, default=3, help="(c): rounds of one run against each"
    )
    parser.add_argument(
        "--access-log", action="store_true", help="(a): serve vidgate with a line per request"
    )
    args = parser.parse_args()
    args.wrk = None
    if args.generator in ("auto", "wrk"):
        args.wrk = shutil.which("wrk")
        if args.generator == "wrk" and not args.wrk:
            parser.error("wrk is not on PATH")

    cores = os.cpu_count() or 1
    print("vidgate benchmark")
    print(
        f"  machine: {cores} CPU core{'s' if cores != 1 else ''}; the load generator, the server "
        "and PostgreSQL all run here and compete for them,"
    )
    print("  so absolute figures understate a deployment where they have machines of their own.")
    generator = "wrk (1 thread)" if args.wrk else "asyncio raw HTTP/1.1 client in its own process"
    print(
        f"  load: {args.connections} keep-alive connections, {args.warmup:g} s warm-up + "
        f"{args.duration:g} s measured, generator: {generator}"
    )

    work_dir = Path(tempfile.mkdtemp(prefix="vidgate-bench-"))
    data_dir = work_dir / "data"
    try:
        if args.workers_only:
            print(
                f"\n(c) every core: --workers 2 against --workers 1, {args.connections} connections"
            )
            workers_ratio(data_dir, work_dir, args)
            return
        first: float | None = None
        warm: list[float] = []
        if not args.throughput_only:
            # (b) first: the empty data dir is only empty once.
            print("\n(b) cold start: `vidgate serve` (with its worker) launched -> /readyz 200")
            first, _ = cold_start(data_dir, work_dir, "empty")
            warm = [
                cold_start(data_dir, work_dir, f"warm {i + 1}")[0] for i in range(args.warm_runs)
            ]
            print(f"  warm median: {statistics.median(warm):.2f} s (target <= {WARM_TARGET:g} s)")

        # (a)
        print(f"\n(a) throughput at {args.connections} connections")
        vidgate = launch_vidgate(
            data_dir, work_dir / "bench-vidgate.log", worker=False, access_log=args.access_log
        )
        trivial = launch_trivial(work_dir / "bench-trivial.log")
        with running(vidgate), running(trivial):
            wait_http_ok(vidgate, "/readyz")
            wait_http_ok(trivial, "/ping")
            cases, results = throughput(args, vidgate, trivial)

        workers: WorkersRatio | None = None
        if not args.throughput_only:
            print(
                f"\n(c) every core: --workers 2 against --workers 1, {args.connections} connections"
            )
            workers = workers_ratio(data_dir, work_dir, args)
        summarise(args, cases, results, first, warm, workers)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def summarise(
    args: argparse.Namespace,
    cases: list[Case],
    results: dict[str, list[LoadResult]],
    first: float | None,
    warm: list[float],
    workers: WorkersRatio | None,
) -> None:
    """One table: medians over the rounds, the ratio to trivial per round, and the verdicts."""

    def verdict(ok: bool) -> str:
        return "ok" if ok else "BELOW TARGET"

    def median(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    trivial = results["trivial"]
    rows: list[tuple[str, ...]] = [("", "req/s", "p50", "p99", "CPU/request", "ratio", "target")]
    for case in cases:
        runs = results[case.key]
        row = (
            case.label,
            f"{median([r.rps for r in runs]):,.0f}",
            f"{median([r.p50_ms for r in runs]):.1f} ms",
            f"{median([r.p99_ms for r in runs]):.1f} ms",
            f"{median([r.cpu_us_per_request for r in runs]):.0f} us",
        )
        if case.key == "trivial":
            rows.append((*row, "", ""))
            continue
        ratios = [r.rps / t.rps for r, t in zip(runs, trivial, strict=True) if t.rps]
        ratio, target = median(ratios), RATIO_TARGETS[case.key]
        p99 = median([r.p99_ms for r in runs])
        ok = ratio >= target and p99 < P99_TARGET_MS
        rows.append(
            (*row, f"{ratio:.2f}", f">= {target:.2f}, p99 < {P99_TARGET_MS:g} ms  {verdict(ok)}")
        )
    if workers is not None:
        for processes, runs in ((1, workers.one), (2, workers.two)):
            run = WorkersRatio.median_run(runs)
            rows.append(
                (
                    f"GET /api/auth/me, --workers {processes}",
                    f"{run.rps:,.0f}",
                    f"{run.p50_ms:.1f} ms",
                    f"{run.p99_ms:.1f} ms",
                    f"{run.cpu_us_per_request:.0f} us",
                    "",
                    "median round",
                )
            )
        rounds = " ".join(f"{r:.2f}" for r in workers.ratios)
        rows.append(
            (
                "ratio --workers 2 / --workers 1",
                f"{workers.ratio:.2f}",
                "",
                "",
                "",
                "",
                f"(rounds: {rounds})",
            )
        )
    if first is not None:
        rows.append(("start, empty data dir", f"{first:.2f} s", "", "", "", "", ""))
        warm_median = median(warm)
        runs = " ".join(f"{w:.2f}" for w in warm)
        rows.append(
            (
                f"start, warm (median of {len(warm)})",
                f"{warm_median:.2f} s",
                "",
                "",
                "",
                "",
                f"<= {WARM_TARGET:g} s  {verdict(warm_median <= WARM_TARGET)}  (runs: {runs})",
            )
        )
    cores = os.cpu_count() or 1
    rounds = f"median of {args.rounds} rounds" if args.rounds > 1 else "1 round"
    print(
        f"\nsummary ({rounds}): {cores} CPU cores shared by load generator, server and "
        f"PostgreSQL; {args.connections} connections, {args.duration:g} s after {args.warmup:g} s "
        f"warm-up; load: {trivial[0].generator}"
    )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


if __name__ == "__main__":
    main()
