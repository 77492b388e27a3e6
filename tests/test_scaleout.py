"""Scale-out, proven: two `vidgate serve --no-worker` and two `vidgate worker` processes on one
PostgreSQL, with the vendors emulated by `vidgate emulate`, take 500 text-to-video tasks from 50
users through both APIs, as a load balancer would spread them. In the middle, one API process and
one worker are killed (SIGKILL): the API while it is answering creates, the worker while one of
its submissions is at the vendor. Afterwards

- every request the clients sent made exactly one task: a create lost with the API is sent again
  to the other with the same `Idempotency-Key`, and answered with the same task or made once;
- every task reached a final state, and exactly one: one terminal webhook event each, delivered;
  its status read through the surviving API is the database's;
- the vendor heard of every task at most once, and exactly once when it ran: the emulator's
  request log has one `createTask` per task that got an upstream id, none for a task canceled
  before it was sent, and the submission that was in flight when its worker died is not sent
  again (FAILED `submit_unknown`, refunded);
- charges and refunds are exact: one charge of the price per task, one refund for each task that
  did not succeed, each account's balance is its bonus less what its successes cost, and
  `vidgate credits verify` finds no drift.

Both API processes and the first worker start at once on a database with no schema yet (migrations
take a lock; the development client key is made once); the second worker starts once the first has
registered, so that procrastinate's worker ids tell which process runs a job. The database is the
suite's server (the service one when VIDGATE_TEST_DATABASE_URL names it, the embedded one
otherwise), in a database of the test's own.

The second test runs the same on separate hosts: each process in a network namespace of its own
on a bridge (tests/fixtures/netns.py), reaching the database, the vendors and the webhook
receiver only over that network; it skips, saying why, where the machine cannot make namespaces.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from vidgate.db.engine import libpq_url

from .fixtures.app import DEV_CLIENT_KEY, TEST_CATALOG
from .fixtures.cluster import (
    VIDGATE,
    Network,
    Processes,
    Received,
    database_on,
    free_port,
    relay_peers,
    start_emulators,
    wait_http,
    webhook_receiver,
)
from .fixtures.databases import create_database, drop_database, release_idle_connections
from .fixtures.netns import Host, Loopback, NamespacesUnavailable, VirtualNetwork
from .fixtures.signin import random_phone

pytestmark = pytest.mark.scaleout

TASKS, USERS = 500, 50
PRICE = 20  # text-to-video, standard, on the test catalog's emulated Sora 2 (kie.ai)
BONUS = 1000  # each user's signup credits: more than ten tasks cost
KILL_API_AFTER = 150  # creates answered before API b is killed
SLOW_FROM = 200  # from this task on, every tenth answers late at the vendor ([fault:slow])
SLOW_SECONDS = 3.0
PROVIDER_TIMEOUT_SECONDS = 6.0  # a slow submit is answered in time; a lost one closes in 42 s
CREATE_LANES = 10
FINAL = ("SUCCEEDED", "FAILED", "CANCELED", "TIMEOUT")
TERMINAL_EVENT = {
    "SUCCEEDED": "task.succeeded",
    "FAILED": "task.failed",
    "CANCELED": "task.canceled",
    "TIMEOUT": "task.timeout",
}
IN_FLIGHT = "A request with this Idempotency-Key is still being processed"
KIE_CREATE = "/_emulator/kie/api/v1/jobs/createTask"


@dataclass(frozen=True)
class Spec:
    """One task a client asks for: by which user, with which vendor behaviour, and whether the
    client cancels it (through the other API process) at once or once it runs at the vendor."""

    index: int
    fault: str | None  # "moderation" (accepted, then failed by the vendor) or "slow"
    cancel: str | None  # "at once" or "running"

    @property
    def user(self) -> int:
        return self.index % USERS

    @property
    def prompt(self) -> str:
        marker = f" [fault:{self.fault}]" if self.fault else ""
        return f"scale-out task {self.index}: a paper boat on a river{marker}"

    @property
    def key(self) -> str:
        return f"scale-out-{self.index}"


def _specs() -> list[Spec]:
    specs = []
    for i in range(TASKS):
        fault = "moderation" if i % 20 == 7 else None
        if i >= SLOW_FROM and i % 10 == 5:
            fault = "slow"
        cancel = {13: "at once", 33: "running"}.get(i % 40)
        specs.append(Spec(i, fault, cancel))
    return specs


@dataclass
class Front:
    """What a load balancer does for the clients: the API processes in turn, and one that
    refuses connections taken out."""

    urls: list[str]
    down: set[str] = field(default_factory=set)

    def choose(self, n: int) -> str:
        up = [url for url in self.urls if url not in self.down]
        assert up, "every API process is down"
        return up[n % len(up)]


@dataclass
class Seen:
    """What the clients saw."""

    tasks: dict[int, str] = field(default_factory=dict)  # spec index → task id
    answers: Counter[tuple[str, int]] = field(default_factory=Counter)
    resent: int = 0  # requests sent again after a transport error (the API died)
    replayed: int = 0  # creates answered from the stored response of an earlier attempt
    waited: set[int] = field(default_factory=set)  # specs whose key was held by a dead request
    created_at: dict[int, float] = field(default_factory=dict)
    refused: set[int] = field(default_factory=set)  # cancels of running tasks kie.ai could not do
    cancels: list[asyncio.Task[None]] = field(default_factory=list)


@dataclass
class Events:
    """When things happened (monotonic seconds), for the audit and the figures."""

    began: float = 0.0
    load_started: float = 0.0
    api_killed: float = 0.0
    worker_killed: float = 0.0
    all_final: float = 0.0
    delivered: float = 0.0
    victim: str | None = None  # the slow submission caught at the vendor when its worker died
    victim_worker: str | None = None
    cut_off: set[str] = field(default_factory=set)  # every submission in flight on that worker


@dataclass
class Cluster:
    processes: Processes
    direct_url: str  # the database as the test reaches it
    apis: dict[str, str]  # name → base URL
    emulators: str
    workers: dict[int, str] = field(default_factory=dict)  # procrastinate worker id → name
    hosts: dict[str, Host] = field(default_factory=dict)


async def _query(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(libpq_url(url)) as conn:
        cursor = await conn.execute(sql, params)
        return await cursor.fetchall()


async def _worker_ids(url: str) -> set[int]:
    try:
        rows = await _query(url, "SELECT id FROM procrastinate_workers")
    except psycopg.errors.UndefinedTable:  # migrations still running
        return set()
    return {row[0] for row in rows}


def _env(secret: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDGATE_")}
    env.update(
        VIDGATE_ENV="development",
        VIDGATE_SECRET_KEY=secret,
        VIDGATE_LOG_FORMAT="console",
        VIDGATE_CATALOG=str(TEST_CATALOG),  # text to video on the emulated Sora 2 (kie.ai)
        VIDGATE_EMULATOR_QUEUE_SECONDS="0.2",
        VIDGATE_EMULATOR_RUN_SECONDS="0.3",
        VIDGATE_EMULATOR_RENDER_HEIGHT="64",
        VIDGATE_EMULATOR_SORA_SECONDS="1",
        VIDGATE_EMULATOR_SLOW_SECONDS=str(SLOW_SECONDS),
        # Labelling is tested in tests/labels; here, a process of its own per result would spend
        # about a second of CPU on each of 500 tasks and prove nothing more about scaling out.
        VIDGATE_LABEL_IMPLICIT="false",
        VIDGATE_LABEL_EXPLICIT="false",
        VIDGATE_LABEL_C2PA="false",
    )
    return env


async def _start(
    network: Network, root: Path, direct_url: str, node_url: str, processes: Processes
) -> Cluster:
    """Emulators first (they must know where API a is); then both APIs and the first worker at
    once on the empty database; the second worker once the first has registered, so that
    procrastinate's worker ids say which process runs which job."""
    hosts = {
        name: network.add_host(name)
        for name in ("api-a", "api-b", "worker-1", "worker-2", "emulators")
    }
    ports = {name: free_port(host) for name, host in hosts.items() if name.startswith("api")}
    apis = {name: f"http://{hosts[name].address}:{port}" for name, port in ports.items()}
    secret = secrets.token_urlsafe(48)
    env = _env(secret)
    emulators, emulated = await start_emulators(processes, hosts["emulators"], env, apis["api-a"])
    node_env = {
        **env,
        **emulated,
        "VIDGATE_DATABASE_URL": node_url,
        "VIDGATE_DATA_DIR": str(root / "data"),  # media: one directory, as a shared volume
        "VIDGATE_PUBLIC_BASE_URL": apis["api-a"],  # vendors call back to the surviving API
        "VIDGATE_DEV_CLIENT_API_KEY": DEV_CLIENT_KEY,
        "VIDGATE_SIGNUP_BONUS_CREDITS": str(BONUS),
        "VIDGATE_MAX_ACTIVE_TASKS_PER_USER": "20",
        "VIDGATE_SMS_RESEND_INTERVAL_SECONDS": "0",
        "VIDGATE_TASK_STALL_SECONDS": "5",
        "VIDGATE_TASK_POLL_INITIAL_SECONDS": "0.3",
        "VIDGATE_TASK_POLL_MAX_SECONDS": "1.0",
        "VIDGATE_PROVIDER_TIMEOUT_SECONDS": str(PROVIDER_TIMEOUT_SECONDS),
        # Four processes on a server that may have 100 connections in all.
        "VIDGATE_DB_POOL_SIZE": "3",
        "VIDGATE_DB_MAX_OVERFLOW": "2",
    }
    for name in ("api-a", "api-b"):
        host = hosts[name]
        argv = [str(VIDGATE), "serve", "--host", host.address, "--port", str(ports[name])]
        processes.start(name, host, [*argv, "--no-worker"], node_env)
    cluster = Cluster(processes, direct_url, apis, emulators, hosts=hosts)
    worker = [str(VIDGATE), "worker", "--concurrency", "5"]
    for name in ("worker-1", "worker-2"):
        known = set(cluster.workers)
        processes.start(name, hosts[name], worker, node_env)
        async with asyncio.timeout(120):
            while not (new := await _worker_ids(direct_url) - known):
                assert not processes.exited(), processes.tail()
                await asyncio.sleep(0.1)
        [worker_id] = new
        cluster.workers[worker_id] = name
    for url in apis.values():
        await wait_http(f"{url}/readyz", processes=processes)
    return cluster


async def _sign_in(client: httpx.AsyncClient, front: Front, n: int) -> dict[str, str]:
    """A new user, by SMS: the code asked of one API process, read back and used on the
    other (the outbox and the code live in the database)."""
    phone = random_phone()
    one, other = front.choose(n), front.choose(n + 1)
    sent = await client.post(f"{one}/api/auth/sms/send", json={"phone_number": phone})
    assert sent.status_code == 200, sent.text
    outbox = await client.get(f"{other}/api/_dev/sms/outbox", params={"phone_number": phone})
    code = outbox.json()["messages"][0]["code"]
    login = await client.post(
        f"{other}/api/auth/sms/login", json={"phone_number": phone, "code": code}
    )
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}", "X-API-Key": DEV_CLIENT_KEY}


async def _send(
    client: httpx.AsyncClient,
    front: Front,
    seen: Seen,
    what: str,
    n: int,
    method: str,
    path: str,
    **kwargs: Any,
) -> httpx.Response:
    """One request through the front; sent again, to the next process, when the connection
    fails, as a load balancer retries (only idempotent requests come here: reads, cancels,
    and creates with an Idempotency-Key)."""
    while True:
        url = front.choose(n)
        try:
            response = await client.request(method, f"{url}{path}", **kwargs)
        except httpx.ConnectError:
            front.down.add(url)  # refuses connections: out of the rotation
            seen.resent += 1
            continue
        except httpx.TransportError:  # the connection broke mid-request
            seen.resent += 1
            n += 1
            continue
        seen.answers[(what, response.status_code)] += 1
        if response.status_code == 503:
            await asyncio.sleep(1)
            continue
        return response


async def _create(
    client: httpx.AsyncClient,
    front: Front,
    seen: Seen,
    spec: Spec,
    caller: dict[str, str],
    hook_url: str,
) -> None:
    headers = {**caller, "Idempotency-Key": spec.key}
    body = {"prompt": spec.prompt, "webhook_url": hook_url}
    while True:
        response = await _send(
            client,
            front,
            seen,
            "create",
            spec.index,
            "POST",
            "/api/videos/text-to-video",
            json=body,
            headers=headers,
        )
        if response.status_code == 409 and response.json()["detail"].startswith(IN_FLIGHT):
            # The first attempt died with its API process after claiming the key: the claim
            # holds until it lapses, then this request makes the task.
            seen.waited.add(spec.index)
            await asyncio.sleep(2)
            continue
        assert response.status_code == 200, (spec, response.status_code, response.text)
        if response.headers.get("Idempotent-Replayed") == "true":
            seen.replayed += 1
        seen.tasks[spec.index] = response.json()["task_id"]
        seen.created_at[spec.index] = time.monotonic()
        break
    if spec.cancel == "at once":  # through the other process: it reaches the task by the database
        await _cancel(client, front, seen, spec, caller)
    elif spec.cancel == "running":
        seen.cancels.append(
            asyncio.create_task(_cancel_when_running(client, front, seen, spec, caller))
        )


async def _cancel(
    client: httpx.AsyncClient, front: Front, seen: Seen, spec: Spec, caller: dict[str, str]
) -> None:
    task_id = seen.tasks[spec.index]
    response = await _send(
        client,
        front,
        seen,
        "cancel",
        spec.index + 1,
        "DELETE",
        f"/api/tasks/{task_id}",
        headers=caller,
    )
    assert response.status_code in (200, 400), response.text  # 400: it has finished
    if response.status_code == 200 and response.json()["cancel_outcome"] == "not_cancelable":
        seen.refused.add(spec.index)


async def _cancel_when_running(
    client: httpx.AsyncClient, front: Front, seen: Seen, spec: Spec, caller: dict[str, str]
) -> None:
    """Watch the task through the other API process; cancel it once it runs at the vendor."""
    task_id = seen.tasks[spec.index]
    while True:
        response = await _send(
            client,
            front,
            seen,
            "read",
            spec.index + 1,
            "GET",
            f"/api/tasks/{task_id}",
            headers=caller,
        )
        assert response.status_code == 200, response.text
        status = response.json()["status"]
        if status == "RUNNING":
            await _cancel(client, front, seen, spec, caller)
            return
        if status != "PENDING":
            return  # it finished first
        await asyncio.sleep(0.3)


async def _load(
    client: httpx.AsyncClient,
    front: Front,
    seen: Seen,
    callers: list[dict[str, str]],
    hook_url: str,
) -> None:
    queue = iter(_specs())

    async def lane() -> None:
        for spec in queue:
            await _create(client, front, seen, spec, callers[spec.user], hook_url)

    await asyncio.gather(*(lane() for _ in range(CREATE_LANES)))


async def _kill_api(cluster: Cluster, seen: Seen, events: Events) -> None:
    """API b dies while the creates flow: whatever it was answering is lost mid-request."""
    while len(seen.tasks) < KILL_API_AFTER:  # noqa: ASYNC110 (the load's progress)
        await asyncio.sleep(0.01)
    cluster.processes.kill("api-b")
    events.api_killed = time.monotonic()


_IN_FLIGHT_SLOW = """
    SELECT t.id, j.worker_id FROM tasks t
    JOIN procrastinate_jobs j ON j.queueing_lock = 'task:' || t.id::text AND j.status = 'doing'
    WHERE t.status = 'PENDING' AND t.submit_started_at IS NOT NULL AND t.upstream_id IS NULL
      AND t.params->>'prompt' LIKE '%%[fault:slow]%%'
"""


_CUT_OFF = """
    SELECT t.id FROM tasks t
    JOIN procrastinate_jobs j ON j.queueing_lock = 'task:' || t.id::text AND j.status = 'doing'
    WHERE t.submit_started_at IS NOT NULL AND t.upstream_id IS NULL AND j.worker_id = %s
"""


async def _kill_worker_mid_submit(cluster: Cluster, events: Events) -> None:
    """Once API b is gone: the worker that has a (slow) submission at the vendor dies."""
    while not events.api_killed:  # noqa: ASYNC110 (the other killer's progress)
        await asyncio.sleep(0.05)
    caught: list[tuple[Any, str]] = []
    try:
        async with (
            asyncio.timeout(240),
            await psycopg.AsyncConnection.connect(
                libpq_url(cluster.direct_url), autocommit=True
            ) as conn,
        ):
            while not caught:
                rows = await (await conn.execute(_IN_FLIGHT_SLOW)).fetchall()
                caught = [(task, cluster.workers[w]) for task, w in rows if w in cluster.workers]
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"no slow submission was seen in flight\n{cluster.processes.tail()}")
    task_id, worker = caught[0]
    await asyncio.sleep(1.0)  # the request is at the vendor, which answers 3 s after it came
    cluster.processes.kill(worker)
    events.worker_killed = time.monotonic()
    events.victim, events.victim_worker = str(task_id), worker
    # Every submission the dead worker had claimed and not seen answered: in flight as it died.
    [worker_id] = [w for w, name in cluster.workers.items() if name == worker]
    rows = await _query(cluster.direct_url, _CUT_OFF, worker_id)
    events.cut_off = {str(row[0]) for row in rows}


async def _wait_until_final(cluster: Cluster, events: Events) -> None:
    try:
        async with asyncio.timeout(420):
            while await _query(  # noqa: ASYNC110 (polls the database)
                cluster.direct_url, "SELECT 1 FROM tasks WHERE status IN ('PENDING', 'RUNNING')"
            ):
                await asyncio.sleep(0.5)
        events.all_final = time.monotonic()
        # The last events' deliveries: a delivery whose worker died waits out its claim.
        async with asyncio.timeout(240):
            while await _query(  # noqa: ASYNC110 (polls the database)
                cluster.direct_url, "SELECT 1 FROM webhook_deliveries WHERE status = 'pending'"
            ):
                await asyncio.sleep(0.5)
        events.delivered = time.monotonic()
    except TimeoutError:
        stuck = await _query(
            cluster.direct_url,
            "SELECT id, status, submit_started_at, upstream_id FROM tasks"
            " WHERE status IN ('PENDING', 'RUNNING') LIMIT 20",
        )
        pending = await _query(
            cluster.direct_url,
            "SELECT task_id, event_type, attempts, sending_until, last_error"
            " FROM webhook_deliveries WHERE status = 'pending' LIMIT 20",
        )
        pytest.fail(f"never settled: {stuck} {pending}\n{cluster.processes.tail()}")


async def _scenario(network: Network, database_url: str, root: Path) -> None:
    url = await asyncio.to_thread(create_database, database_url, "vidgate_scaleout", migrated=False)
    processes = Processes(root)
    events = Events(began=time.monotonic())
    try:
        async with (
            database_on(network, url, processes) as node_url,
            webhook_receiver(network.gateway) as (hook_url, receiver),
        ):
            cluster = await _start(network, root, url, node_url, processes)
            seen = Seen()
            front = Front(list(cluster.apis.values()))
            limits = httpx.Limits(max_connections=2 * CREATE_LANES)
            async with httpx.AsyncClient(timeout=60, limits=limits) as client:
                callers = []
                for batch in range(0, USERS, 10):
                    callers += await asyncio.gather(
                        *(_sign_in(client, front, n) for n in range(batch, batch + 10))
                    )
                events.load_started = time.monotonic()
                killers = [
                    asyncio.create_task(_kill_api(cluster, seen, events)),
                    asyncio.create_task(_kill_worker_mid_submit(cluster, events)),
                ]
                try:
                    await _load(client, front, seen, callers, hook_url)
                    await asyncio.gather(*seen.cancels, *killers)
                finally:  # nothing of this run outlives it in the session's event loop
                    for task in [*killers, *seen.cancels]:
                        task.cancel()
                    await asyncio.gather(*killers, *seen.cancels, return_exceptions=True)
                await _wait_until_final(cluster, events)
                shown = await _statuses_shown(client, front, seen, callers)
            vendor = await _vendor_requests(cluster.emulators)
            await _audit(cluster, network, seen, events, shown, vendor, receiver.received)
    finally:
        processes.stop_all()
        await asyncio.to_thread(drop_database, url)


async def _statuses_shown(
    client: httpx.AsyncClient, front: Front, seen: Seen, callers: list[dict[str, str]]
) -> dict[str, str]:
    """Each task's status as its owner reads it from the API process that is left."""
    specs = _specs()
    shown: dict[str, str] = {}
    semaphore = asyncio.Semaphore(CREATE_LANES)

    async def read(index: int, task_id: str) -> None:
        async with semaphore:
            response = await _send(
                client,
                front,
                seen,
                "read",
                index,
                "GET",
                f"/api/tasks/{task_id}",
                headers=callers[specs[index].user],
            )
        assert response.status_code == 200, response.text
        shown[task_id] = response.json()["status"]

    await asyncio.gather(*(read(i, t) for i, t in seen.tasks.items()))
    return shown


async def _vendor_requests(emulators: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(f"{emulators}/_emulator/kie/_control/requests")
    assert response.status_code == 200
    requests: list[dict[str, Any]] = response.json()["requests"]
    return requests


_TASKS = """
    SELECT t.id::text, t.user_id::text, t.params->>'prompt', t.idempotency_key, t.status,
           t.error_code, t.upstream_id, t.submit_started_at IS NOT NULL,
           t.credits_charged, t.credits_refunded, t.credits_reserved,
           (SELECT count(*) FROM credit_ledger l WHERE l.reference = t.id::text
              AND l.kind = 'charge'),
           (SELECT count(*) FROM credit_ledger l WHERE l.reference = t.id::text
              AND l.kind = 'refund'),
           (SELECT coalesce(sum(l.delta), 0) FROM credit_ledger l
              WHERE l.reference = t.id::text),
           (SELECT coalesce(array_agg(d.event_type::text || ' ' || d.event_id::text
                                      || ' ' || d.status::text), '{}')
              FROM webhook_deliveries d WHERE d.task_id = t.id AND d.event_type <> 'task.running')
    FROM tasks t
"""


@dataclass(frozen=True)
class Row:
    id: str
    user_id: str
    prompt: str
    key: str
    status: str
    error_code: str | None
    upstream_id: str | None
    claimed: bool
    charged: int
    refunded: int
    reserved: int
    charges: int
    refunds: int
    net: int
    terminal_events: list[str]


async def _audit(
    cluster: Cluster,
    network: Network,
    seen: Seen,
    events: Events,
    shown: dict[str, str],
    vendor: list[dict[str, Any]],
    received: list[Received],
) -> None:
    specs = _specs()
    processes = cluster.processes
    # The survivors are still up; no request was answered 500.
    assert not processes.exited(), processes.tail()
    assert not [a for a in seen.answers if a[1] >= 500 and a[1] != 503], seen.answers

    # Every request made exactly one task: 500 tasks, one per key and prompt, the ones the
    # clients were given.
    rows = [Row(*r) for r in await _query(cluster.direct_url, _TASKS)]
    assert len(seen.tasks) == TASKS
    assert len(set(seen.tasks.values())) == TASKS
    assert sorted(r.id for r in rows) == sorted(seen.tasks.values())
    by_id = {r.id: r for r in rows}
    for spec in specs:
        row = by_id[seen.tasks[spec.index]]
        assert (row.prompt, row.key) == (spec.prompt, spec.key)

    # Every task is final, once: one terminal event, of its status, delivered; its owner reads
    # the same status through the API.
    delivered = {r.webhook_id for r in received}
    for row in rows:
        assert row.status in FINAL, row
        [event] = row.terminal_events
        event_type, event_id, delivery = event.split(" ")
        assert event_type == TERMINAL_EVENT[row.status], row
        assert delivery == "succeeded" and event_id in delivered, row
        assert shown[row.id] == row.status, (row, shown[row.id])

    # The vendor heard of each task at most once, and exactly once when it ran.
    submits = Counter(
        r["body"]["input"]["prompt"] for r in vendor if r["path"].endswith(KIE_CREATE)
    )
    assert max(submits.values()) == 1, submits.most_common(3)
    assert set(submits) <= {r.prompt for r in rows}
    for row in rows:
        if row.upstream_id is not None:
            assert submits[row.prompt] == 1, row
        if not row.claimed:
            assert submits[row.prompt] == 0, row

    # The submissions in flight when their worker died (the slow one among them): not sent
    # again, failed (or canceled, when the user had asked) and refunded.
    assert events.victim in events.cut_off, (events.victim, events.cut_off)
    spec_of = {seen.tasks[spec.index]: spec for spec in specs}
    for task_id in events.cut_off:
        row = by_id[task_id]
        assert row.upstream_id is None and submits[row.prompt] <= 1, row
        ended = (row.status, row.error_code)
        canceled = spec_of[task_id].cancel is not None and ended == ("CANCELED", "canceled")
        assert ended == ("FAILED", "submit_unknown") or canceled, row

    # What each kind of task came to.
    for spec in specs:
        row = by_id[seen.tasks[spec.index]]
        unknown = (row.status, row.error_code) == ("FAILED", "submit_unknown")
        if spec.cancel == "at once":
            # Canceled before it was sent (refunded), or sent already and kie.ai could not stop it.
            assert row.status in ("CANCELED", "SUCCEEDED") or unknown, row
        elif spec.index in seen.refused:
            # kie.ai cannot stop a running task: it ran on, and is charged for its video.
            assert row.status == "SUCCEEDED", row
        elif spec.fault == "moderation":
            assert row.status == "FAILED", row
        else:
            assert row.status == "SUCCEEDED" or unknown, row

    # Money: one charge of the price per task, one refund for each that did not succeed.
    for row in rows:
        kept = PRICE if row.status == "SUCCEEDED" else 0
        assert row.charges == 1 and row.refunds == (0 if kept else 1), row
        assert (row.charged - row.refunded, row.net, row.reserved) == (kept, -kept, 0), row
    succeeded = Counter(r.user_id for r in rows if r.status == "SUCCEEDED")
    accounts = await _query(
        cluster.direct_url, "SELECT id::text, credits, credits_reserved FROM users"
    )
    assert len(accounts) == USERS
    for user_id, credits, reserved in accounts:
        assert (credits, reserved) == (BONUS - PRICE * succeeded[user_id], 0), user_id
    env = {
        **_env("verify-" + "x" * 40),
        "VIDGATE_DATABASE_URL": cluster.direct_url,
        "VIDGATE_DATA_DIR": str(processes.root / "verify"),
    }
    verify = await asyncio.to_thread(
        subprocess.run, [str(VIDGATE), "credits", "verify"], env=env, capture_output=True, text=True
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # On separate hosts: each process reached the database over the virtual network.
    peers: Counter[str] = Counter()
    if isinstance(network, VirtualNetwork):
        peers = Counter(relay_peers(processes))
        nodes = {cluster.hosts[n].address for n in ("api-a", "api-b", "worker-1", "worker-2")}
        assert set(peers) == nodes, (peers, nodes)

    _report(network, rows, seen, events, submits, received, peers)


def _report(
    network: Network,
    rows: list[Row],
    seen: Seen,
    events: Events,
    submits: Counter[str],
    received: list[Received],
    peers: Counter[str],
) -> None:
    """The run's figures, for the log (measured on whatever else the machine was doing)."""
    start = events.load_started
    outcomes = Counter(
        r.status + (f" {r.error_code}" if r.status == "FAILED" else "") for r in rows
    )
    duplicates = len(received) - len({r.webhook_id for r in received})
    where = "network namespaces on a bridge" if isinstance(network, VirtualNetwork) else "loopback"
    prompts = {r.id: r.prompt for r in rows}
    victim_sent = submits[prompts[events.victim]] if events.victim else 0
    answered = [at - start for i, at in seen.created_at.items() if i not in seen.waited]
    held = [seen.created_at[i] - start for i in seen.waited]
    print(
        f"\nscale-out ({where}): {TASKS} tasks from {USERS} users through 2 API processes and"
        f" 2 workers; started and signed in in {start - events.began:.1f} s, then\n"
        f"  {len(answered)} creates answered within {max(answered):.1f} s"
        + (f", {len(held)} held by a dead request's key within {max(held):.1f} s" if held else "")
        + f"; API b killed at {events.api_killed - start:.1f} s, {events.victim_worker} at"
        f" {events.worker_killed - start:.1f} s (its submission was at the vendor:"
        f" {'yes' if victim_sent else 'no'}; {len(events.cut_off)} submission(s) cut off in all);"
        f" all final at {events.all_final - start:.1f} s,"
        f" their last webhooks delivered at {events.delivered - start:.1f} s\n"
        f"  outcomes {dict(sorted(outcomes.items()))};"
        f" cancels of running tasks kie.ai refused: {len(seen.refused)}\n"
        f"  requests sent again after a broken connection: {seen.resent};"
        f" creates answered from an earlier attempt: {seen.replayed}\n"
        f"  answers {dict(sorted(seen.answers.items()))}\n"
        f"  vendor createTask calls: {sum(submits.values())} for {len(rows)} tasks;"
        f" webhooks received {len(received)} ({duplicates} repeated deliveries)"
        + (f"\n  database connections opened, by host: {dict(peers)}" if peers else "")
    )


@pytest.fixture
async def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # On a shared server (CI's), the suite's own apps may hold dozens of idle connections by now:
    # let them go, so the four processes here fit in its max_connections.
    await release_idle_connections()
    return tmp_path_factory.mktemp("scaleout")


async def test_two_apis_two_workers_one_database_survive_kills(
    database_url: str, scratch: Path
) -> None:
    await _scenario(Loopback(), database_url, scratch)


async def test_the_same_on_separate_hosts_in_network_namespaces(
    database_url: str, scratch: Path
) -> None:
    try:
        network = VirtualNetwork.create()
    except NamespacesUnavailable as exc:
        pytest.skip(f"separate hosts need network namespaces: {exc}")
    try:
        await _scenario(network, database_url, scratch)
    finally:
        network.close()
