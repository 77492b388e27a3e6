"""The one place the process's object graph is built: `open_runtime`.

The API's lifespan, `vidgate worker`, the operator commands and the tests all open their runtime
here, so a new dependency is added once and every process gets it, closed in reverse order on the
way out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from vidgate.auth.google import GoogleConfig, GoogleSignIn
from vidgate.auth.principal_cache import PrincipalCache
from vidgate.auth.sms import build_sms_sender
from vidgate.auth.tokens import AccessTokens
from vidgate.catalog.loader import load_catalog
from vidgate.config import Settings
from vidgate.db.engine import Database
from vidgate.job_registry import build_job_app
from vidgate.jobs import worker_options
from vidgate.labels.pipeline import check_settings as check_labels
from vidgate.media.backends import storage_from_settings
from vidgate.media.sandbox import ProbeLimits, ProbeSandbox
from vidgate.moderation.screen import build_screen
from vidgate.outbound import build_outbound_client, build_webhook_client
from vidgate.payments.registry import Payments, build_payments
from vidgate.providers.registry import Providers, build_providers
from vidgate.runtime import Runtime
from vidgate.supervisor import WorkerSupervisor
from vidgate.tasks.cache import TaskCache
from vidgate.tasks.events import TaskEvents
from vidgate.tasks.inputs import MediaResolver


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    database_url: str,
    *,
    pool_size: int | None = None,
    max_overflow: int | None = None,
    providers: Providers | None = None,
    payments: Payments | None = None,
) -> AsyncIterator[Runtime]:
    """Open pools, clients and the job queue for one process; close them all when done.

    The pool defaults to the settings' size; a worker sizes it to its concurrency, an operator
    command to two connections. The API builds `providers` and `payments` itself before it starts,
    because in development their emulators are routes of the app; they are closed here all the
    same.
    """
    catalog = load_catalog(settings.catalog)  # a bad catalog stops the start here
    async with AsyncExitStack() as stack:
        db = Database(
            database_url,
            pool_size=settings.db_pool_size if pool_size is None else pool_size,
            max_overflow=settings.db_max_overflow if max_overflow is None else max_overflow,
            pool_timeout=settings.db_pool_timeout_seconds,
        )
        stack.push_async_callback(db.dispose)
        providers = providers or build_providers(settings)
        stack.push_async_callback(providers.aclose)
        payments = payments or build_payments(settings)
        stack.push_async_callback(payments.aclose)
        outbound = build_outbound_client(settings)
        stack.push_async_callback(outbound.aclose)
        webhook_outbound = build_webhook_client(settings)
        stack.push_async_callback(webhook_outbound.aclose)
        sms_sender = build_sms_sender(settings, db)
        stack.push_async_callback(sms_sender.aclose)
        google_config = GoogleConfig.from_settings(settings)
        google = GoogleSignIn(google_config) if google_config is not None else None
        if google is not None:
            stack.push_async_callback(google.aclose)
        jobs = build_job_app(database_url)
        await stack.enter_async_context(jobs.open_async())
        storage = storage_from_settings(settings)
        prompt_screen = build_screen(settings)  # a bad word list stops the start here
        check_labels(settings)  # so does a visible mark the rules or the font cannot make
        stack.push_async_callback(prompt_screen.aclose)
        # Started by the API (it probes uploads), in other processes only if they probe.
        prober = ProbeSandbox(ProbeLimits.from_settings(settings), settings.probe_processes)
        stack.push_async_callback(prober.aclose)
        # Uploads and downloads are received here before they are checked and stored.
        (settings.data_dir / "tmp").mkdir(parents=True, exist_ok=True)
        yield Runtime(
            settings=settings,
            db=db,
            catalog=catalog,
            storage=storage,
            prober=prober,
            providers=providers,
            payment_gateways=payments.gateways,
            outbound=outbound,
            webhook_outbound=webhook_outbound,
            jobs=jobs,
            tokens=AccessTokens(settings.secret_key, settings.access_token_expires_in),
            sms_sender=sms_sender,
            media_resolver=MediaResolver(
                db=db,
                storage=storage,
                prober=prober,
                public_base_url=settings.base_url,
                client=outbound,
                tmp_dir=settings.data_dir / "tmp",
                timeout=settings.remote_media_timeout_seconds,
                max_fetches=settings.remote_fetches_per_process,
                max_fetches_per_user=settings.remote_fetches_per_user,
            ),
            google=google,
            principals=PrincipalCache(),
            task_views=TaskCache(),
            task_events=TaskEvents(),
            prompt_screen=prompt_screen,
        )


def supervised_worker(
    runtime: Runtime, *, concurrency: int = 10, give_up_after: float | None = None
) -> WorkerSupervisor:
    """The job worker for this runtime, kept running by a supervisor (`runtime.worker`)."""
    supervisor = WorkerSupervisor(
        runtime.jobs, worker_options(runtime, concurrency=concurrency), give_up_after=give_up_after
    )
    runtime.worker = supervisor
    return supervisor
