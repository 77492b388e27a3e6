"""The process's objects, built once by `vidgate.composition.open_runtime` and shared by the
API's requests and the worker's jobs alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import uuid

    from procrastinate import App

    from vidgate.auth.google import GoogleSignIn
    from vidgate.auth.principal_cache import PrincipalCache
    from vidgate.auth.sms.base import SmsSender
    from vidgate.auth.tokens import AccessTokens
    from vidgate.catalog.schema import Catalog
    from vidgate.config import Settings
    from vidgate.db.engine import Database
    from vidgate.media.sandbox import ProbeSandbox
    from vidgate.media.storage import Storage
    from vidgate.moderation.screen import PromptScreen
    from vidgate.net.safe_http import SafeHttpClient
    from vidgate.payments.gateway import PaymentGateway
    from vidgate.providers.registry import Providers
    from vidgate.tasks.cache import TaskCache
    from vidgate.tasks.events import TaskEvents
    from vidgate.tasks.inputs import MediaResolver


class WorkerState(Protocol):
    """What `/readyz` asks of the job worker: whether it is up. The supervisor of this process's
    worker answers it, or, in an API process of a `vidgate serve --workers N` that does not run
    the worker, the state the process that runs it shares (`serving.SharedWorkerState`)."""

    @property
    def up(self) -> bool: ...


@dataclass
class Runtime:
    """Everything a request or a job may use. Built in one place only (`open_runtime`); tests that
    need a variation copy it with `dataclasses.replace`."""

    settings: Settings
    db: Database
    catalog: Catalog  # the models on sale and their channels, loaded once at start
    storage: Storage
    prober: ProbeSandbox  # uploads are probed in its worker processes
    providers: Providers
    payment_gateways: dict[str, PaymentGateway]  # the configured ones, by name
    outbound: SafeHttpClient  # HTTP to URLs vidgate does not control (inputs, results)
    webhook_outbound: SafeHttpClient  # the same for webhooks: no private targets in production
    jobs: App  # the job queue (defers jobs; the worker runs them)
    tokens: AccessTokens
    sms_sender: SmsSender
    media_resolver: MediaResolver
    google: GoogleSignIn | None  # None: Google sign-in not configured
    principals: PrincipalCache
    task_views: TaskCache
    task_events: TaskEvents
    prompt_screen: PromptScreen  # what a prompt passes before a task is created
    worker: WorkerState | None = None  # the job worker this process reports on, if any
    # api key id → monotonic time of its last `last_used_at` write (written once a minute at most)
    key_touches: dict[uuid.UUID, float] = field(default_factory=dict)
