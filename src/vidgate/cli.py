"""The `vidgate` command: serve, worker, migrate, and operator tools for keys, credits and users."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import psutil
import typer
import uvicorn

from vidgate import __version__
from vidgate.catalog.loader import CatalogError, load_catalog
from vidgate.config import ConfigurationError, Settings, load_settings
from vidgate.errors import VidgateError
from vidgate.kit import parse_uuid
from vidgate.logging import configure_logging
from vidgate.runtime import Runtime

if TYPE_CHECKING:
    from vidgate.media.inventory import Collected, StorageReport

T = TypeVar("T")

cli = typer.Typer(help="vidgate: run a paid AI-video service.", no_args_is_help=True)
apikey_cli = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
credits_cli = typer.Typer(help="Grant credits and check the ledger.", no_args_is_help=True)
user_cli = typer.Typer(help="Look up accounts, give roles, suspend.", no_args_is_help=True)
models_cli = typer.Typer(
    help="The model catalog and the health of its channels.", invoke_without_command=True
)
report_cli = typer.Typer(help="Business reports.", no_args_is_help=True)
codes_cli = typer.Typer(help="Redemption codes worth credits.", no_args_is_help=True)
payments_cli = typer.Typer(help="Refund paid orders.", no_args_is_help=True)
storage_cli = typer.Typer(
    help="What media storage holds, and removing what no row needs.", no_args_is_help=True
)
label_cli = typer.Typer(help="Check the AI-generated labels of a video.", no_args_is_help=True)
cli.add_typer(apikey_cli, name="apikey")
cli.add_typer(credits_cli, name="credits")
cli.add_typer(user_cli, name="user")
cli.add_typer(models_cli, name="models")
cli.add_typer(report_cli, name="report")
cli.add_typer(codes_cli, name="codes")
cli.add_typer(payments_cli, name="payments")
cli.add_typer(storage_cli, name="storage")
cli.add_typer(label_cli, name="label")


def _settings() -> Settings:
    try:
        settings = load_settings()
        load_catalog(settings.catalog)  # checked before anything starts
    except (ConfigurationError, CatalogError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    configure_logging(settings.log_level, settings.log_format, development=settings.is_development)
    return settings


@contextmanager
def _database_url(settings: Settings) -> Iterator[tuple[str, str]]:
    """The configured database, or the embedded one (started here, stopped on the way out)."""
    if settings.database_url:
        yield settings.database_url, "external PostgreSQL"
        return
    from vidgate.db.embedded import start_embedded_postgres, stop_embedded_postgres

    url, server = start_embedded_postgres(settings.data_dir)
    try:
        yield url, f"embedded PostgreSQL in {settings.data_dir / 'pgdata'}"
    finally:
        stop_embedded_postgres(server)


def _with_runtime(settings: Settings, work: Callable[[Runtime], Awaitable[T]]) -> T:
    """Run one operator command against the migrated database, with the process's runtime."""
    from vidgate.composition import open_runtime
    from vidgate.db.migrate import upgrade_to_head

    with _database_url(settings) as (url, _):
        upgrade_to_head(url)

        async def run() -> T:
            async with open_runtime(settings, url, pool_size=2, max_overflow=0) as runtime:
                return await work(runtime)

        return asyncio.run(run())


def _banner(
    settings: Settings,
    url: str,
    database: str,
    worker: bool,
    pids: list[int] | None = None,
) -> str:
    """What `vidgate serve` prints once it answers; `pids`: its API processes (None: this one)."""
    from vidgate.web import DEFAULT_WEB_DIR, web_app

    web = "not built (run `make web`)"
    if web_app(settings.web_dir or DEFAULT_WEB_DIR) is not None:
        web = url + "/"
        if not (settings.web_client_api_key or settings.dev_client_api_key):
            web += "   (set VIDGATE_WEB_CLIENT_API_KEY: without a key it cannot call the API)"
    if pids is None or len(pids) == 1:
        processes = f"1 API process (pid {pids[0] if pids else os.getpid()})"
        where = "in this process"
    else:
        listed = ", ".join(str(pid) for pid in pids)
        processes = f"{len(pids)} API processes sharing the port (pids {listed})"
        where = "in the first API process"
    lines = [
        "",
        "  vidgate is running",
        f"  URL:       {url}   (API docs: {url}/docs)",
        f"  web app:   {web}",
        f"  mode:      {settings.env}",
        f"  database:  {database}",
        f"  processes: {processes}",
        f"  worker:    {where if worker else 'not started (run `vidgate worker`)'}",
    ]
    emulated = [
        name
        for name, key in (
            ("DashScope", settings.dashscope_api_key),
            ("kie.ai", settings.kie_api_key),
        )
        if settings.is_development and not key
    ]
    if emulated:
        lines.append(f"  providers: emulated ({', '.join(emulated)}) at {url}/_emulator/…")
    if settings.is_development:
        lines += [
            f"  client API key (X-API-Key): {settings.dev_client_api_key}",
            "  SMS codes: printed in this log, and at "
            f"{url}/api/_dev/sms/outbox?phone_number=86-13800138000",
        ]
    return "\n".join([*lines, ""])


def _schema_when_reachable(url: str, settings: Settings, who: str) -> None:
    """Bring the schema up to date, waiting out a database that is not reachable yet (a process
    manager may start vidgate before PostgreSQL, or during an outage) for up to
    `VIDGATE_WORKER_GIVE_UP_SECONDS`; then exit 1 with one clear line."""
    from vidgate.db.migrate import upgrade_to_head
    from vidgate.errors import is_database_unavailable

    give_up_at: float | None = None
    delay = 0.5
    while True:
        try:
            upgrade_to_head(url)
            return
        except Exception as exc:
            if not is_database_unavailable(exc):
                raise
            now = time.monotonic()
            give_up_at = give_up_at or now + settings.worker_give_up_seconds
            if now >= give_up_at:
                typer.echo(f"vidgate {who}: the database stayed unreachable; giving up", err=True)
                raise typer.Exit(1) from exc
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            typer.echo(f"vidgate {who}: database unreachable ({first_line}); retrying", err=True)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="Do not run jobs here.")] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="API processes sharing the port (default: VIDGATE_WORKERS, else one per core in"
            " production, 1 in development).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the API (and, unless --no-worker, the job worker) on one port."""
    from vidgate.serving import (
        TooManyConnections,
        database_connection_limit,
        emulated_vendors,
        listening_sockets,
        plan_processes,
        serve_processes,
        usable_cores,
    )

    settings = _settings()
    base_url = f"http://{'localhost' if host in ('127.0.0.1', '0.0.0.0') else host}:{port}"
    settings.public_base_url = settings.public_base_url or base_url
    run_worker = settings.run_worker and not no_worker
    requested = workers if workers is not None else settings.workers
    emulated = emulated_vendors(settings)
    if requested is not None and requested > 1 and emulated:
        typer.echo(
            f"vidgate serve: {requested} API processes cannot share the vendors emulated inside"
            f" each one ({', '.join(emulated)}): an emulator keeps its tasks and payments in the"
            " process that answers it. Run them as a process of their own and point vidgate at"
            " them (`vidgate emulate`, then `set -a; . DATA_DIR/emulators.env; set +a`), or serve"
            " with --workers 1.",
            err=True,
        )
        raise typer.Exit(2)
    with _database_url(settings) as (url, database):
        _schema_when_reachable(url, settings, "serve")
        try:
            plan = plan_processes(
                settings,
                requested,
                lambda: database_connection_limit(url),
                cores=usable_cores(),
            )
        except TooManyConnections as exc:
            typer.echo(f"vidgate serve: {exc}", err=True)
            raise typer.Exit(2) from exc
        if plan.capped_from is not None:
            typer.echo(
                f"vidgate serve: {plan.processes} API processes instead of one per core"
                f" ({plan.capped_from}): the database takes no more connections",
                err=True,
            )

        def started(pids: list[int] | None) -> None:
            sys.stdout.write(_banner(settings, base_url, database, run_worker, pids))
            # Counted from process start, so interpreter start-up and imports are included.
            elapsed = time.time() - psutil.Process().create_time()
            sys.stdout.write(f"  ready in {elapsed:.2f} s\n\n")
            sys.stdout.flush()

        if plan.processes == 1:
            ok = _serve_here(settings, url, host, port, run_worker, lambda _: started(None))
        else:
            try:
                sockets = listening_sockets(host, port, plan.processes)
            except OSError as exc:
                typer.echo(f"vidgate serve: cannot listen on {host}:{port}: {exc}", err=True)
                raise typer.Exit(1) from exc
            with contextlib.ExitStack() as held:
                for sock in sockets:
                    held.enter_context(sock)
                ok = serve_processes(
                    plan.settings_for(settings),
                    url,
                    sockets=sockets,
                    host=host,
                    port=port,
                    processes=plan.processes,
                    run_worker=run_worker,
                    on_started=started,
                )
    if not ok:
        raise typer.Exit(1)


def _serve_here(
    settings: Settings,
    url: str,
    host: str,
    port: int,
    run_worker: bool,
    on_started: Callable[[Any], None],
) -> bool:
    """The API (and the worker) in this one process; whether it started."""
    from vidgate.app import create_app
    from vidgate.serving import run_server, server_config

    app = create_app(settings, url, run_worker=run_worker)
    return run_server(server_config(app, host, port), on_started)


WORKER_POOL_SIZE = 10  # database connections of a `vidgate worker`, however many jobs it runs


@cli.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Jobs run at once.")] = 30,
) -> None:
    """Run only the job worker (scale out: any number, against a shared database)."""
    from vidgate.composition import open_runtime, supervised_worker
    from vidgate.errors import is_database_unavailable
    from vidgate.supervisor import WorkerGaveUp

    settings = _settings()
    with _database_url(settings) as (url, database):
        started = False

        async def run() -> None:
            nonlocal started
            # A job mostly waits on a vendor, holding no connection (no transaction spans a
            # vendor call): many jobs at once share a pool of a few connections.
            # VIDGATE_DB_POOL_SIZE, when set lower, caps it too.
            pool_size = max(2, min(concurrency, WORKER_POOL_SIZE, settings.db_pool_size))
            async with open_runtime(settings, url, pool_size=pool_size, max_overflow=2) as runtime:
                started = True  # from here on the supervisor rides out outages itself
                supervisor = supervised_worker(
                    runtime,
                    concurrency=concurrency,
                    give_up_after=settings.worker_give_up_seconds,
                )
                typer.echo(f"vidgate worker on {database}, concurrency {concurrency}")
                supervised = asyncio.create_task(supervisor.run())
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    # Cancelling lets running jobs finish (procrastinate shields its loop).
                    loop.add_signal_handler(sig, supervised.cancel)
                with contextlib.suppress(asyncio.CancelledError):
                    await supervised

        while True:
            _schema_when_reachable(url, settings, "worker")
            try:
                asyncio.run(run())
                return
            except WorkerGaveUp as exc:
                typer.echo(f"vidgate worker: giving up ({exc})", err=True)
                raise typer.Exit(1) from exc
            except Exception as exc:
                # The database went away between the schema check and the start: start again.
                if started or not is_database_unavailable(exc):
                    raise
                typer.echo("vidgate worker: database lost while starting; retrying", err=True)
                time.sleep(1)


@cli.command()
def emulate(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 9100,
    vidgate_url: Annotated[
        str, typer.Option(help="The vidgate the emulated Stripe sends its events to.")
    ] = "http://127.0.0.1:8000",
) -> None:
    """Serve the vendor emulators on their own (Google, DashScope, kie.ai, fal.ai, WeChat Pay,
    Stripe),
    e.g. for a staging vidgate in production mode.

    Writes the settings that point a vidgate at them to DATA_DIR/emulators.env
    (`set -a; . DATA_DIR/emulators.env; set +a` before `vidgate serve`).
    """
    from fastapi import FastAPI

    from vidgate.app import google_emulator_for
    from vidgate.auth.google import EMULATOR_PREFIX
    from vidgate.emulators.dashscope import DashScopeEmulator
    from vidgate.emulators.fal import FalEmulator
    from vidgate.emulators.kie import KieEmulator
    from vidgate.payments.registry import (
        development_keys,
        emulator_settings,
        stripe_emulator,
        wechat_emulator,
    )
    from vidgate.providers.registry import emulator_api_key, emulator_timing

    settings = _settings()
    root = f"http://{host}:{port}"
    google = google_emulator_for(settings)
    dashscope_key = settings.dashscope_api_key or emulator_api_key(settings, "dashscope-emulator")
    kie_key = settings.kie_api_key or emulator_api_key(settings, "kie-emulator")
    kie_hmac_key = settings.kie_webhook_hmac_key or emulator_api_key(settings, "kie-webhook")
    fal_key = settings.fal_api_key or emulator_api_key(settings, "fal-emulator")
    payment_keys = development_keys(settings)
    wechat = wechat_emulator(payment_keys, f"{root}/_emulator/wechatpay")
    stripe = stripe_emulator(payment_keys, f"{root}/_emulator/stripe", vidgate_url)
    work_dir = settings.data_dir / "emulators"
    app = FastAPI(title="vidgate emulators")
    app.include_router(google.router())
    app.include_router(
        DashScopeEmulator(
            api_key=dashscope_key,
            work_dir=work_dir / "dashscope",
            public_base_url=root,
            **emulator_timing(settings),
        ).router()
    )
    app.include_router(
        KieEmulator(
            api_key=kie_key,
            work_dir=work_dir / "kie",
            public_base_url=root,
            seconds=settings.emulator_sora_seconds,
            webhook_hmac_key=kie_hmac_key,
            **emulator_timing(settings),
        ).router()
    )
    fal = FalEmulator(
        api_key=fal_key,
        work_dir=work_dir / "fal",
        public_base_url=root,
        **emulator_timing(settings),
    )
    app.include_router(fal.router())
    app.include_router(wechat.router())
    app.include_router(stripe.router())

    base = root + EMULATOR_PREFIX
    env = {
        "VIDGATE_GOOGLE_CLIENT_ID": google.client_id,
        "VIDGATE_GOOGLE_CLIENT_SECRET": google.client_secret,
        "VIDGATE_GOOGLE_AUTHORIZE_URL": f"{base}/o/oauth2/v2/auth",
        "VIDGATE_GOOGLE_TOKEN_URL": f"{base}/token",
        "VIDGATE_GOOGLE_JWKS_URL": f"{base}/oauth2/v3/certs",
        "VIDGATE_DASHSCOPE_API_KEY": dashscope_key,
        "VIDGATE_DASHSCOPE_BASE_URL": f"{root}/_emulator/dashscope",
        "VIDGATE_KIE_API_KEY": kie_key,
        "VIDGATE_KIE_BASE_URL": f"{root}/_emulator/kie",
        "VIDGATE_KIE_WEBHOOK_HMAC_KEY": kie_hmac_key,
        "VIDGATE_FAL_API_KEY": fal_key,
        "VIDGATE_FAL_BASE_URL": f"{root}/_emulator/fal",
        "VIDGATE_FAL_JWKS_URL": fal.jwks_url,
        **emulator_settings(payment_keys, wechat, f"{root}/_emulator/stripe"),
    }
    env_file = settings.data_dir / "emulators.env"
    env_file.write_text("".join(f"{name}='{value}'\n" for name, value in env.items()))
    env_file.chmod(0o600)
    typer.echo(
        "vidgate emulators\n"
        f"  Google authorize URL: {base}/o/oauth2/v2/auth\n"
        f"  DashScope base URL:   {root}/_emulator/dashscope\n"
        f"  kie.ai base URL:      {root}/_emulator/kie\n"
        f"  fal.ai base URL:      {root}/_emulator/fal\n"
        f"  WeChat Pay base URL:  {root}/_emulator/wechatpay\n"
        f"  Stripe API base:      {root}/_emulator/stripe   (events to {vidgate_url})\n"
        f"  settings for vidgate: {env_file}"
    )
    uvicorn.run(app, host=host, port=port, log_config=None)


@cli.command()
def openapi(
    output: Annotated[
        Path | None, typer.Option(help="Write here instead of standard output.")
    ] = None,
) -> None:
    """Print the OpenAPI document the web app's typed client is generated from."""
    from vidgate.app import openapi_document

    text = json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


@cli.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from vidgate.db.migrate import head_revision, upgrade_to_head

    settings = _settings()
    with _database_url(settings) as (url, database):
        upgrade_to_head(url)
    typer.echo(f"{database}: schema at revision {head_revision()}")


# --- API keys ---------------------------------------------------------------------------------


@apikey_cli.command("create")
def apikey_create(
    client: Annotated[str | None, typer.Option("--client", help="Name of an application.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="User id for a personal key.")] = None,
    name: Annotated[str | None, typer.Option(help="Name of a personal key.")] = None,
) -> None:
    """Create a client key (--client NAME) or a personal key (--user USER_ID); prints it once."""
    from vidgate.apikeys.service import create_key, create_personal_key

    if (client is None) == (user is None):
        typer.echo("Give exactly one of --client NAME or --user USER_ID", err=True)
        raise typer.Exit(2)

    async def work(runtime: Runtime) -> Any:
        async with runtime.db.transaction() as session:
            if client is not None:
                created = await create_key(session, kind="client", name=client)
            else:
                from vidgate.users.models import User

                owner = await session.get(User, _parse_uuid(user or ""))
                if owner is None or owner.deleted_at is not None:
                    typer.echo(f"No active user {user}", err=True)
                    raise typer.Exit(1)
                # The same limit of active keys as the web app's (the user's row is locked).
                created = await create_personal_key(session, owner.id, name or "cli")
            return created

    try:
        created = _with_runtime(_settings(), work)
    except VidgateError as exc:  # the user has as many active keys as allowed
        typer.echo(f"Not created: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"id:     {created.key.id}\nkind:   {created.key.kind}\nkey:    {created.secret}")
    typer.echo("The key is shown only now; vidgate keeps just its hash.")


@apikey_cli.command("list")
def apikey_list(
    all_keys: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
) -> None:
    """Every key: id, kind, owner, name, prefix, last use."""
    from vidgate.apikeys.service import list_keys

    async def work(runtime: Runtime) -> list[Any]:
        async with runtime.db.transaction() as session:
            return await list_keys(session, include_revoked=all_keys)

    keys = _with_runtime(_settings(), work)
    typer.echo(f"{'id':36}  {'kind':8}  {'prefix':10}  {'owner':36}  {'last used':25}  name")
    for k in keys:
        state = " (revoked)" if k.revoked_at else ""
        typer.echo(
            f"{k.id!s:36}  {k.kind:8}  {k.prefix:10}  {k.user_id or '-'!s:36}  "
            f"{k.last_used_at.isoformat() if k.last_used_at else 'never':25}  {k.name}{state}"
        )


@apikey_cli.command("revoke")
def apikey_revoke(key_id: str) -> None:
    """Revoke a key by id; it stops working at once."""
    from vidgate.apikeys.service import revoke_key

    async def work(runtime: Runtime) -> bool:
        async with runtime.db.transaction() as session:
            done = await revoke_key(session, runtime.principals, _parse_uuid(key_id))
            return done

    if not _with_runtime(_settings(), work):
        typer.echo(f"No active key {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"Revoked {key_id}")


# --- credits ----------------------------------------------------------------------------------


Reason = Annotated[str, typer.Option("--reason", help="Why (kept in the ledger).")]
AuditReason = Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")]
AdjustmentKey = Annotated[
    str | None, typer.Option(help="Idempotency key; the same key never moves credits twice.")
]


@credits_cli.command("grant")
def credits_grant(user_id: str, amount: int, reason: Reason, key: AdjustmentKey = None) -> None:
    """Add AMOUNT credits to a user as an `adjustment` ledger row."""
    _adjust_credits(user_id, amount, reason, key, deduct=False)


@credits_cli.command("deduct")
def credits_deduct(user_id: str, amount: int, reason: Reason, key: AdjustmentKey = None) -> None:
    """Take AMOUNT credits from a user as an `adjustment` ledger row (e.g. after refunding a
    payment by hand); refused when the user has fewer credits available."""
    _adjust_credits(user_id, amount, reason, key, deduct=True)


def _adjust_credits(
    user_id: str, amount: int, reason: str, key: str | None, *, deduct: bool
) -> None:
    if amount <= 0:
        typer.echo("AMOUNT must be a positive number of credits", err=True)
        raise typer.Exit(2)
    uid = _parse_uuid(user_id)
    # A key names one movement for one user: the same --key for another user is another one.
    name = "deduct" if deduct else "grant"
    ledger_key = f"cli-{name}:{uid}:{key}" if key else f"cli-{name}:{uuid.uuid4()}"

    async def work(runtime: Runtime) -> tuple[bool, int]:
        from vidgate.admin.service import command_line
        from vidgate.users.service import adjust_credits

        async with runtime.db.transaction() as session:
            result, user = await adjust_credits(
                session,
                command_line(),
                uid,
                -amount if deduct else amount,
                reason,
                support_limit=0,  # the command line acts as an admin
                ledger_key=ledger_key,
            )
            return result.applied, user.credits

    done = "Deducted" if deduct else "Granted"
    try:
        applied, balance_now = _with_runtime(_settings(), work)
    except VidgateError as exc:  # an unknown user, or too few credits available
        typer.echo(f"Not {done.lower()}: {exc}", err=True)
        raise typer.Exit(1) from exc
    verb = done if applied else f"Already {done.lower()} (same key)"
    typer.echo(f"{verb} {amount} credits; balance now {balance_now}")


@credits_cli.command("verify")
def credits_verify() -> None:
    """Recompute every balance from the ledger; exit 1 if any account has drifted."""
    from vidgate.credits.service import find_drift

    async def work(runtime: Runtime) -> list[Any]:
        async with runtime.db.transaction() as session:
            return await find_drift(session)

    drift = _with_runtime(_settings(), work)
    if not drift:
        typer.echo("Ledger consistent: every balance equals the sum of its ledger rows.")
        return
    for d in drift:
        typer.echo(
            f"DRIFT user {d.user_id}: credits {d.credits} vs ledger {d.ledger_sum}; "
            f"reserved {d.credits_reserved} vs ledger {d.ledger_reserved_sum}"
        )
    raise typer.Exit(1)


@label_cli.command("verify")
def label_verify(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Show the file's AIGC metadata, whether its C2PA manifest is present and valid, and the
    visible mark it records; exit 1 unless every label the settings turn on holds."""
    from vidgate.labels.verify import describe, verify

    report = verify(_settings(), file)
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        for line in describe(report):
            typer.echo(line)
    if not report.ok:
        raise typer.Exit(1)


# --- users ------------------------------------------------------------------------------------


@user_cli.command("show")
def user_show(phone_or_id: str) -> None:
    """Show an account by phone number (any accepted form) or id."""
    from vidgate.auth.phones import InvalidPhoneNumber
    from vidgate.credits.service import balance
    from vidgate.users.service import find_user

    async def work(runtime: Runtime) -> tuple[Any, Any] | None:
        async with runtime.db.transaction() as session:
            user = await find_user(session, phone_or_id)
            if user is None:
                return None
            return user, await balance(session, user)

    try:
        found = _with_runtime(_settings(), work)
    except InvalidPhoneNumber as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    if found is None:
        typer.echo(f"No user {phone_or_id}", err=True)
        raise typer.Exit(1)
    user, summary = found
    for label, value in (
        ("id", user.id),
        ("phone", user.phone),
        ("email", user.email),
        ("username", user.username),
        ("region", user.region),
        ("role", user.role),
        ("suspended", user.suspended_at),
        ("credits", user.credits),
        ("reserved", user.credits_reserved),
        ("earned", summary.total_earned),
        ("spent", summary.total_spent),
        ("created", user.created_at),
        ("last login", user.last_login_at),
        ("deleted", user.deleted_at),
        ("purge after", user.purge_after),
        ("anonymized", user.anonymized_at),
    ):
        typer.echo(f"{label:12} {value if value is not None else '-'}")


def _operator_action(phone_or_id: str, act: Callable[[Any, Runtime, Any], Awaitable[Any]]) -> Any:
    """Find the account, run `act(session, runtime, user)` in one transaction as the command
    line (audited); exit 1 when there is no such account or the action is refused."""
    from vidgate.auth.phones import InvalidPhoneNumber
    from vidgate.users.service import find_user

    async def work(runtime: Runtime) -> Any:
        async with runtime.db.transaction() as session:
            user = await find_user(session, phone_or_id)
            if user is None:
                return None
            return await act(session, runtime, user)

    try:
        done = _with_runtime(_settings(), work)
    except (InvalidPhoneNumber, VidgateError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    if done is None:
        typer.echo(f"No user {phone_or_id}", err=True)
        raise typer.Exit(1)
    return done


@user_cli.command("role")
def user_role(
    phone_or_id: str,
    role: Annotated[str, typer.Argument(help="user, support or admin")],
    reason: AuditReason = "granted at the command line",
) -> None:
    """Give an account (phone, email or id) a role; the first admin is made this way."""
    from vidgate.admin.service import command_line
    from vidgate.users.roles import ROLES
    from vidgate.users.service import set_role

    if role not in ROLES:
        typer.echo(f"ROLE must be one of {', '.join(ROLES)}", err=True)
        raise typer.Exit(2)

    async def act(session: Any, runtime: Runtime, user: Any) -> str:
        changed = await set_role(
            session,
            runtime.principals,
            command_line(),
            user.id,
            role,
            reason,
        )
        return f"{changed.id} is now {changed.role}"

    typer.echo(_operator_action(phone_or_id, act))


def _suspension(phone_or_id: str, suspended: bool, reason: str) -> None:
    from vidgate.admin.service import command_line
    from vidgate.users.service import set_suspended

    async def act(session: Any, runtime: Runtime, user: Any) -> str:
        await set_suspended(session, runtime.principals, command_line(), user.id, suspended, reason)
        return f"{user.id} {'suspended' if suspended else 'restored'}"

    typer.echo(_operator_action(phone_or_id, act))


@user_cli.command("suspend")
def user_suspend(
    phone_or_id: str, reason: Annotated[str, typer.Option(help="Why (audited).")]
) -> None:
    """Suspend an account: sessions end, tokens and keys stop working, sign-in is refused."""
    _suspension(phone_or_id, True, reason)


@user_cli.command("restore")
def user_restore(
    phone_or_id: str, reason: Annotated[str, typer.Option(help="Why (audited).")]
) -> None:
    """Lift a suspension."""
    _suspension(phone_or_id, False, reason)


def _parse_uuid(value: str) -> uuid.UUID:
    parsed = parse_uuid(value)
    if parsed is None:
        typer.echo(f"Not an id: {value}", err=True)
        raise typer.Exit(2)
    return parsed


# --- models and channels ---------------------------------------------------------------------


@models_cli.callback()
def models_list(context: typer.Context) -> None:
    """List the catalog: each model, its channels in routing order, their breakers and load."""
    if context.invoked_subcommand is not None:
        return
    from vidgate.routing.service import channel_states

    async def work(runtime: Runtime) -> list[Any]:
        async with runtime.db.session() as session:
            return await channel_states(
                session, runtime.catalog, configured=runtime.providers.configured
            )

    settings = _settings()
    states = _with_runtime(settings, work)
    catalog = load_catalog(settings.catalog)
    defaults = {model_id: kind for kind, model_id in catalog.defaults.items()}
    for model in catalog.models:
        tiers = ", ".join(f"{t.name} {model.price(t.name).credits}" for t in model.tiers)
        unit = "credits/s" if model.billing == "metered" else "credits"
        marks = [model.status] + (
            [f"default for {defaults[model.id]}"] if model.id in defaults else []
        )
        typer.echo(f"{model.id}  [{', '.join(model.kinds)}]  {tiers} {unit}  ({'; '.join(marks)})")
        for state in (s for s in states if s.model == model.id):
            channel = state.channel
            health = "disabled" if state.disabled or not channel.enabled else state.breaker
            if not state.configured:
                health = "not configured"
            cap = f"/{channel.max_concurrency}" if channel.max_concurrency else ""
            typer.echo(
                f"  {channel.id:28} {channel.adapter:10} {channel.vendor_model:40} "
                f"{health:14} failures {state.failures}  open tasks {state.open_tasks}{cap}"
                + (f"  last error: {state.last_error[:80]}" if state.last_error else "")
            )


def _switch_channel(channel_id: str, disabled: bool, reason: str) -> None:
    from vidgate.admin.service import command_line
    from vidgate.routing.service import switch_channel

    settings = _settings()
    if load_catalog(settings.catalog).channel(channel_id) is None:
        typer.echo(f"No channel {channel_id} in the catalog", err=True)
        raise typer.Exit(1)

    async def work(runtime: Runtime) -> None:
        async with runtime.db.transaction() as session:
            await switch_channel(
                session, command_line(), runtime.catalog, channel_id, disabled, reason
            )

    _with_runtime(settings, work)
    typer.echo(f"{'Disabled' if disabled else 'Enabled'} {channel_id}")


@models_cli.command("disable")
def models_disable(
    channel_id: str, reason: AuditReason = "switched off at the command line"
) -> None:
    """Stop sending new tasks to a channel (every process, at once); tasks on it run on."""
    _switch_channel(channel_id, True, reason)


@models_cli.command("enable")
def models_enable(channel_id: str, reason: AuditReason = "switched on at the command line") -> None:
    """Send tasks to a channel again."""
    _switch_channel(channel_id, False, reason)


@report_cli.command("costs")
def report_costs(
    since: Annotated[str, typer.Option(help="First day, YYYY-MM-DD (UTC).")],
) -> None:
    """Per model, channel and tier: tasks, credits earned (1 credit = CNY 0.10), the vendor's cost
    from billed seconds and the channel's price, and the margin where the cost is in CNY."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from vidgate.routing.service import cost_report

    try:
        start = datetime.strptime(since, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError as exc:
        typer.echo(f"--since must be a date like 2026-12-01, not {since!r}", err=True)
        raise typer.Exit(2) from exc

    async def work(runtime: Runtime) -> list[Any]:
        async with runtime.db.session() as session:
            return await cost_report(session, runtime.catalog, start)

    lines = _with_runtime(_settings(), work)
    typer.echo(
        f"{'model':22} {'channel':26} {'tier':9} {'tasks':>6} {'done':>6} {'credits':>8} "
        f"{'seconds':>8} {'earned CNY':>11} {'cost':>12} {'margin CNY':>11}"
    )
    for line in lines:
        earned = Decimal(line.credits) / 10
        cost = f"{line.cost} {line.currency}" if line.cost is not None else "-"
        margin = f"{earned - line.cost:.2f}" if line.currency == "CNY" and line.cost else "-"
        typer.echo(
            f"{line.model:22} {line.channel:26} {line.tier:9} {line.tasks:>6} {line.succeeded:>6} "
            f"{line.credits:>8} {line.billed_seconds:>8.2f} {earned:>11.2f} {cost:>12} {margin:>11}"
        )


# --- redemption codes ---------------------------------------------------------------------


def _codes_work(work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work(session)` in one transaction; a refusal (unknown batch, bad values) exits 1."""

    async def run(runtime: Runtime) -> T:
        async with runtime.db.transaction() as session:
            return await work(session)

    try:
        return _with_runtime(_settings(), run)
    except VidgateError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc


@codes_cli.command("create")
def codes_create(
    credits: Annotated[int, typer.Option(help="Credits each code is worth.")],
    count: Annotated[int, typer.Option(help="How many codes.")],
    reason: AuditReason,
    max_uses: Annotated[int, typer.Option(help="Redemptions per code, by different users.")] = 1,
    expires: Annotated[
        str | None, typer.Option(help="Last moment a code works (ISO 8601, with a time zone).")
    ] = None,
    note: Annotated[str | None, typer.Option(help="What the batch is for.")] = None,
) -> None:
    """Make a batch of codes; prints the batch id, then one code per line."""
    from datetime import datetime

    from vidgate.admin.service import command_line
    from vidgate.codes.service import create_batch, display

    expires_at = None
    if expires is not None:
        try:
            expires_at = datetime.fromisoformat(expires)
        except ValueError as exc:
            typer.echo("--expires must be a date and time like 2027-01-31T23:59:59+08:00", err=True)
            raise typer.Exit(2) from exc
        if expires_at.tzinfo is None:
            typer.echo("--expires needs a time zone (e.g. +08:00 or Z)", err=True)
            raise typer.Exit(2)

    async def work(session: Any) -> tuple[Any, list[str]]:
        batch, codes = await create_batch(
            session,
            command_line(),
            credits=credits,
            count=count,
            max_uses=max_uses,
            expires_at=expires_at,
            note=note,
            reason=reason,
        )
        return batch.id, [display(c.code) for c in codes]

    batch_id, codes = _codes_work(work)
    typer.echo(f"batch {batch_id}")
    for code in codes:
        typer.echo(code)


@codes_cli.command("list")
def codes_list() -> None:
    """List the batches, newest first, with how much of each has been used."""
    from vidgate.codes.service import list_batches
    from vidgate.kit import PageRequest

    async def work(session: Any) -> list[Any]:
        rows, _ = await list_batches(session, PageRequest(1, 1000))
        return rows

    for row in _codes_work(work):
        b = row.batch
        state = "disabled" if b.disabled_at else "active"
        typer.echo(
            f"{b.id}  {b.count} codes × {b.credits} credits, {b.max_uses} use(s) each; "
            f"used {row.codes_used} codes, {row.uses} times; expires {b.expires_at or '-'}; "
            f"{state}; {b.note or ''}".rstrip()
        )


@codes_cli.command("export")
def codes_export(batch_id: str) -> None:
    """Print a batch's codes as CSV (audited: it hands the codes out)."""
    from vidgate.admin.service import command_line
    from vidgate.codes.service import CSV_COLUMNS, export_rows, record_export

    uid = _parse_uuid(batch_id)

    async def work(session: Any) -> list[list[Any]]:
        rows = [row.cells() async for row in export_rows(session, uid)]
        await record_export(session, command_line(), uid)
        return rows

    rows = _codes_work(work)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)
    typer.echo(out.getvalue(), nl=False)


@codes_cli.command("disable")
def codes_disable(
    batch_id: str, reason: Annotated[str, typer.Option(help="Why (audited).")]
) -> None:
    """Disable every code of a batch at once."""
    from vidgate.admin.service import command_line
    from vidgate.codes.service import disable_batch

    uid = _parse_uuid(batch_id)

    async def work(session: Any) -> None:
        await disable_batch(session, command_line(), uid, reason=reason)

    _codes_work(work)
    typer.echo(f"Disabled batch {batch_id}")


# --- payments ---------------------------------------------------------------------------------


def _print_refund(refund: Any) -> None:
    typer.echo(
        f"refund {refund.id}: {refund.status}, {refund.amount_minor} {refund.currency} (minor"
        f" units); credits taken back {refund.credits_taken}, shortfall {refund.credits_shortfall}"
    )


def _refund_work(work: Callable[[Runtime, Any], Awaitable[Any]]) -> Any:
    async def run(runtime: Runtime) -> Any:
        async with runtime.db.session() as session:
            return await work(runtime, session)

    try:
        return _with_runtime(_settings(), run)
    except VidgateError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc


@payments_cli.command("refund")
def payments_refund(
    payment_id: str,
    reason: Annotated[str, typer.Option(help="Why (audited).")],
    amount: Annotated[
        int | None,
        typer.Option(help="In minor units (fen, cents); all that remains when left out."),
    ] = None,
) -> None:
    """Refund a paid order through its gateway and take back the credits it bought."""
    from vidgate.admin.service import command_line
    from vidgate.payments.flows import refund_payment

    uid = _parse_uuid(payment_id)
    if len(reason.strip()) < 3 or (amount is not None and amount <= 0):
        typer.echo("--reason needs 3 characters or more; --amount must be positive", err=True)
        raise typer.Exit(2)

    async def work(runtime: Runtime, session: Any) -> Any:
        return await refund_payment(
            runtime, session, uid, command_line(), amount_minor=amount, reason=reason.strip()
        )

    _print_refund(_refund_work(work))


@payments_cli.command("retry-refund")
def payments_retry_refund(payment_id: str, refund_id: str) -> None:
    """Ask the gateway again for a refund it never answered (the same refund id)."""
    from vidgate.admin.service import command_line
    from vidgate.payments.flows import retry_refund

    pid, rid = _parse_uuid(payment_id), _parse_uuid(refund_id)

    async def work(runtime: Runtime, session: Any) -> Any:
        return await retry_refund(runtime, session, rid, command_line(), payment_id=pid)

    _print_refund(_refund_work(work))


# --- media storage ----------------------------------------------------------------------------

MinAgeHours = Annotated[
    float,
    typer.Option(
        "--min-age-hours",
        min=0,
        help="Objects without a row younger than this are not orphans yet (their row may be"
        " about to commit).",
    ),
]


def _storage_work(min_age_hours: float, *, collect: bool) -> tuple[StorageReport, Collected | None]:
    """Compare storage with the rows and, with `collect`, act on what was found: one run."""
    from datetime import timedelta

    from vidgate.media import inventory

    async def work(runtime: Runtime) -> tuple[StorageReport, Collected | None]:
        report = await inventory.inspect(
            runtime.db,
            runtime.storage,
            runtime.settings.data_dir,
            min_age=timedelta(hours=min_age_hours),
        )
        done = await inventory.collect(runtime.db, runtime.storage, report) if collect else None
        return report, done

    return _with_runtime(_settings(), work)


def _print_storage_report(report: StorageReport) -> None:
    from vidgate.media.quota import human_bytes

    typer.echo(f"{'kind':16} {'objects':>8} {'bytes':>12} {'live rows':>10} {'row bytes':>12}")
    for kind in report.kinds:
        typer.echo(
            f"{kind.kind:16} {kind.stored.count:>8} {human_bytes(kind.stored.bytes):>12} "
            f"{kind.live_rows.count:>10} {human_bytes(kind.live_rows.bytes):>12}"
        )
    renders = report.emulator_renders
    typer.echo(f"{'emulator renders':16} {renders.count:>8} {human_bytes(renders.bytes):>12}")
    if report.other.count:
        typer.echo(
            f"{'other prefixes':16} {report.other.count:>8} {human_bytes(report.other.bytes):>12}"
        )
    for kind in report.kinds:
        typer.echo(
            f"{kind.kind}: {len(kind.orphans)} orphaned objects ({human_bytes(kind.orphan_bytes)}),"
            f" {kind.young_orphans} too recent to judge, {len(kind.missing)} live rows whose"
            f" object is missing, {kind.expired_rows} rows expired"
        )
    typer.echo(f"emulator renders past their links' life: {len(report.old_emulator_renders)}")
    typer.echo("top users by bytes stored:")
    for user_id, username, stored in report.top_users:
        typer.echo(f"  {user_id}  {human_bytes(stored):>12}  {username}")


@storage_cli.command("report")
def storage_report(min_age_hours: MinAgeHours = 24.0) -> None:
    """Bytes and counts per kind (uploads, results, emulator renders), the users storing the
    most, and orphans: objects without rows and rows without objects."""
    report, _ = _storage_work(min_age_hours, collect=False)
    _print_storage_report(report)


@storage_cli.command("gc")
def storage_gc(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be removed or marked; change nothing.")
    ] = False,
    min_age_hours: MinAgeHours = 24.0,
) -> None:
    """Delete orphaned objects and old emulator renders; mark rows whose object is missing as
    expired."""
    from vidgate.media.quota import human_bytes

    report, done = _storage_work(min_age_hours, collect=not dry_run)
    _print_storage_report(report)
    if done is None:
        typer.echo("dry run: nothing changed")
        return
    marked = ", ".join(f"{n} {kind}" for kind, n in sorted(done.rows_marked.items())) or "none"
    typer.echo(
        f"deleted {done.objects_deleted} orphaned objects ({human_bytes(done.bytes_freed)}) and"
        f" {done.renders_deleted} emulator renders; rows marked expired: {marked}"
    )


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"vidgate {__version__}")
        raise typer.Exit()


@cli.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print vidgate's version and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """vidgate: run a paid AI-video service."""


def main() -> None:
    cli()
