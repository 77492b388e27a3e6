"""All of vidgate's settings: one class, environment variables prefixed `VIDGATE_`.

Development mode (the default) fills in whatever secret is missing with a generated value kept in
the data dir, so a laptop needs no configuration. Production mode refuses to start until every
secret and external service is configured explicitly.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from vidgate.payments.currency import price_decimals
from vidgate.vendors import (
    MODERATION_VENDORS,
    PROVIDERS,
    REQUIRED_PROVIDERS,
    SMS_SENDERS,
    STORAGE_BACKENDS,
    SmsSenderName,
    StorageBackendName,
)

# Where vidgate says it is reached when `public_base_url` is unset (development).
DEFAULT_BASE_URL = "http://localhost:8000"

# Values that look like secrets but are not: rejected in production.
_WEAK_SECRETS = {"", "changeme", "change-me", "secret", "password", "dev", "development", "test"}
_MIN_SECRET_LENGTH = 32


def web_origin(url: str) -> str:
    """The origin (`scheme://host[:port]`, lower case, default port dropped) of an http(s) URL;
    ValueError when `url` is not an absolute http(s) URL."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{url!r} has an invalid port") from None
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) origin such as https://app.example.com")
    host = parts.hostname
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    default_port = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" + (f":{port}" if port and port != default_port else "")


class ConfigurationError(Exception):
    """Settings that cannot run in the chosen mode; the message names every problem."""


class CreditPack(BaseModel):
    """A pack of credits and its price in each currency it is sold in (major units: yuan)."""

    credits: int = Field(gt=0)
    prices: dict[str, Decimal]

    @field_validator("prices")
    @classmethod
    def _prices(cls, prices: dict[str, Decimal]) -> dict[str, Decimal]:
        for currency, price in prices.items():
            if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
                raise ValueError(f"{currency!r} is not an ISO 4217 code such as CNY or USD")
            decimals = price_decimals(currency)
            if price <= 0 or price != price.quantize(Decimal(1).scaleb(-decimals)):
                raise ValueError(
                    f"{currency} price {price} must be positive, with at most {decimals} decimals"
                )
        return prices


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIDGATE_", extra="ignore")

    env: Literal["development", "production"] = "development"
    data_dir: Path = Path(".vidgate")
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL; unset means an embedded server under the data dir.",
    )
    db_pool_size: int = Field(default=20, ge=1, le=500)
    db_max_overflow: int = Field(default=10, ge=0, le=500)
    db_pool_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="How long a request waits for a database connection before answering 503.",
    )
    public_base_url: str | None = Field(
        default=None,
        description="Absolute base of URLs vidgate hands out; default: listen address.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Other origins a browser front end runs on, comma-separated"
        " (e.g. https://app.example.com); payments may send the payer back to them too.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto",
        description="`auto`: aligned, coloured lines for people when stderr is a terminal in"
        " development, JSON lines otherwise; `json`; `console` (lines for people, everywhere).",
    )
    access_log: bool = Field(default=False, description="Log every request (errors always are).")
    run_worker: bool = Field(default=True, description="Run the job worker inside `vidgate serve`.")
    workers: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="API processes `vidgate serve` runs on its one port (`--workers`). Default:"
        " one per core in production (as many as the database's connections allow), 1 in"
        " development.",
    )
    worker_give_up_seconds: int = Field(
        default=300,
        ge=10,
        description="`vidgate worker` restarts its worker through database outages up to this"
        " long, then exits non-zero for its process manager to restart it.",
    )
    metrics_token: str = Field(
        default="",
        description="Production: /metrics answers only `Authorization: Bearer <token>`;"
        " unset turns /metrics off. Development serves it openly.",
    )

    # Tokens and sessions
    secret_key: str = Field(default="", description="Signs access tokens and hashes SMS codes.")
    access_token_expires_in: int = Field(default=86400, ge=60)
    session_lifetime_days: int = Field(default=30, ge=1)
    refresh_reuse_grace_seconds: int = Field(default=10, ge=0, le=300)

    # Credits
    signup_bonus_credits: int = Field(default=100, ge=0)
    account_purge_days: int = Field(default=30, ge=1)

    # SMS sign-in
    sms_provider: SmsSenderName = "console"
    sms_code_ttl_seconds: int = Field(default=300, ge=60, le=600)
    sms_max_attempts: int = Field(default=5, ge=1, le=20)
    sms_per_phone_per_hour: int = Field(default=5, ge=1)
    sms_resend_interval_seconds: int = Field(default=60, ge=0)
    sms_send_per_ip_per_hour: int | None = Field(
        default=None, ge=1, description="Default: 20 in production, 10000 in development."
    )
    sms_verify_per_ip_per_5min: int | None = Field(
        default=None, ge=1, description="Default: 30 in production, 10000 in development."
    )
    sms_allowed_country_codes: list[int] = Field(
        default_factory=list, description="Empty: any country; e.g. [86] to send to China only."
    )
    aliyun_sms_access_key_id: str = ""
    aliyun_sms_access_key_secret: str = ""
    aliyun_sms_sign_name: str = ""
    aliyun_sms_template_code: str = ""
    aliyun_sms_endpoint: str = "https://dysmsapi.aliyuncs.com"
    tencent_sms_secret_id: str = ""
    tencent_sms_secret_key: str = ""
    tencent_sms_sdk_app_id: str = ""
    tencent_sms_sign_name: str = ""
    tencent_sms_template_id: str = ""
    tencent_sms_region: str = "ap-guangzhou"
    tencent_sms_endpoint: str = "https://sms.tencentcloudapi.com"
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from_number: str = ""
    twilio_messaging_service_sid: str = ""
    twilio_base_url: str = "https://api.twilio.com"

    # Google sign-in. Unset client id: the built-in emulator in development, 501 in production.
    google_client_id: str = ""
    google_client_secret: str = ""
    google_redirect_uri: str = Field(
        default="", description="redirect_uri used when a login request names none"
    )
    google_authorize_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    google_token_url: str = "https://oauth2.googleapis.com/token"
    google_jwks_url: str = "https://www.googleapis.com/oauth2/v3/certs"
    google_issuers: list[str] = Field(
        default_factory=lambda: ["https://accounts.google.com", "accounts.google.com"]
    )
    google_default_region: Literal["CN", "US", "EU", "ASIA"] = "US"

    # Upstream video providers. A provider without a key uses its built-in emulator in
    # development; production refuses to start without both keys.
    dashscope_api_key: str = ""
    dashscope_base_url: str = Field(
        default="https://dashscope.aliyuncs.com",
        description="Beijing; https://dashscope-intl.aliyuncs.com for Singapore (regional keys)",
    )
    kie_api_key: str = ""
    kie_base_url: str = "https://api.kie.ai"
    fal_api_key: str = ""
    fal_base_url: str = "https://queue.fal.run"
    fal_jwks_url: str = Field(
        default="https://rest.alpha.fal.ai/.well-known/jwks.json",
        description="Where fal.ai publishes the keys that sign its webhooks.",
    )
    kie_webhook_hmac_key: str = Field(
        default="",
        description="kie.ai's webhook HMAC key; set, kie.ai's callbacks finish tasks sooner.",
    )
    provider_callbacks: bool = Field(
        default=True,
        description="Ask vendors to call back when a task ends (polling continues regardless).",
    )
    provider_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    provider_max_concurrency: int = Field(default=8, ge=1, le=256)
    catalog: Path | None = Field(
        default=None,
        description="A TOML file of models and channels read on top of the built-in catalog.",
    )
    channel_breaker_failures: int = Field(
        default=5, ge=1, description="Failures in a row that open a channel's circuit breaker."
    )
    channel_breaker_cooldown_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="How long an open breaker waits for a probe."
    )

    # Operator console
    console_second_factor: bool | None = Field(
        default=None,
        description="Operators must pass TOTP before using the console. Default: on in"
        " production, off in development.",
    )
    support_adjust_limit: int = Field(
        default=500, ge=0, description="The most credits a support operator may grant or deduct."
    )

    # Video tasks
    max_active_tasks_per_user: int = Field(
        default=5, ge=1, description="PENDING or RUNNING tasks a user may have at once (429)."
    )
    task_timeout_animate_seconds: int = Field(default=7200, ge=10)
    task_timeout_sora_seconds: int = Field(default=3600, ge=10)
    task_poll_initial_seconds: float = Field(default=3.0, ge=0, le=300)
    task_poll_max_seconds: float = Field(default=30.0, ge=0, le=600)
    task_stall_seconds: int = Field(
        default=60, ge=5, description="A worker silent this long has its jobs run again."
    )
    max_result_bytes: int = Field(default=2 * 1024**3, ge=1)
    idempotency_key_hours: int = Field(default=24, ge=1, le=24 * 30)
    # Remote media URLs (anything not uploaded to vidgate) are fetched to check them.
    remote_media_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    remote_fetches_per_process: int = Field(
        default=16, ge=1, description="Remote input URLs one API process downloads at once."
    )
    remote_fetches_per_user: int = Field(
        default=2, ge=1, description="Remote input URLs downloaded at once for one account (429)."
    )
    outbound_allow_private: bool | None = Field(
        default=None,
        description="Let outbound requests reach private and loopback addresses. Default: on in"
        " development, off in production.",
    )
    outbound_allowed_networks: list[str] = Field(
        default_factory=list, description='CIDRs reachable even so, e.g. ["10.8.0.0/16"].'
    )
    # Emulated providers (development): how long a task queues and runs, and the render size.
    emulator_queue_seconds: float = Field(default=1.0, ge=0)
    emulator_run_seconds: float = Field(default=3.0, ge=0)
    emulator_render_height: int = Field(default=360, ge=64, le=1080)
    emulator_sora_seconds: float | None = Field(
        default=None, gt=0, le=30, description="Render this long instead of the requested length."
    )
    emulator_slow_seconds: float = Field(
        default=30.0, ge=0, description="How long a `[fault:slow]` submit takes to be answered."
    )

    # Prompt screening, before any credits move
    moderation_wordlist: Path | None = Field(
        default=None,
        description="The operator's word and pattern list (one entry a line, `re:` for a regular"
        " expression, `[category]` headings, `#` comments), read again when it changes; unset:"
        " no list.",
    )
    moderation_vendor: Literal["none", "aliyun"] = Field(
        default="none",
        description="A vendor's text moderation prompts also pass: `aliyun` (Alibaba Cloud"
        " Content Moderation); development without its keys uses the built-in emulator.",
    )
    moderation_fail_open: bool = Field(
        default=False,
        description="When the moderation vendor does not answer, let prompts through (logged)"
        " instead of refusing creates with 503.",
    )
    moderation_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    aliyun_green_access_key_id: str = ""
    aliyun_green_access_key_secret: str = ""
    aliyun_green_endpoint: str = "https://green-cip.cn-shanghai.aliyuncs.com"
    aliyun_green_service: str = Field(
        default="ai_art_detection",
        description="The text moderation service prompts are checked with.",
    )

    # Labels on every result (GB 45438-2025 implicit and explicit labels, C2PA): docs/labels.md
    label_implicit: bool = Field(
        default=True, description="Write the AIGC metadata (implicit label) into every result."
    )
    label_explicit: bool = Field(
        default=True, description="Show a visible AI-generated mark at the start of every result."
    )
    label_explicit_text: str = Field(
        default="AI生成", min_length=1, max_length=40, description="The visible mark's text."
    )
    label_explicit_corner: Literal["top-left", "top-right", "bottom-left", "bottom-right"] = (
        "top-right"
    )
    label_explicit_seconds: float = Field(
        default=2.0,
        ge=0.0,
        le=60.0,
        description="How long the visible mark shows from the start: 0 for the whole video, else"
        " at least 2 s (the standard's minimum).",
    )
    label_vendor_mark_channels: list[str] = Field(
        default_factory=list,
        description="Catalog channels whose vendor adds the visible mark itself (DashScope"
        " `watermark`): vidgate asks the vendor for it there instead of burning it in.",
    )
    label_c2pa: bool = Field(default=True, description="Sign a C2PA manifest into every result.")
    label_c2pa_cert: Path | None = Field(
        default=None,
        description="PEM certificate chain (signer first) for C2PA; development: a generated"
        " test CA and signer in the data dir.",
    )
    label_c2pa_key: Path | None = Field(
        default=None, description="PEM private key (EC P-256) of the C2PA signing certificate."
    )
    label_producer: str = Field(
        default="",
        max_length=200,
        description="ContentProducer: the operator's name or service filing number; required in"
        " production while the implicit label is on (development: `vidgate-development`).",
    )
    label_propagator: str = Field(
        default="", max_length=200, description="ContentPropagator; default: the producer."
    )
    label_attempts: int = Field(
        default=3, ge=1, le=20, description="Labelling tries before the task fails with a refund."
    )
    # Each labelling runs in a process of its own under these limits (vidgate.labels.run).
    label_wall_seconds: float = Field(
        default=600.0,
        gt=0,
        le=3600,
        description="Wall-clock time one result's labelling may take before its process is"
        " killed (a failed try).",
    )
    label_cpu_seconds: int = Field(
        default=300, ge=1, le=3600, description="CPU time one result's labelling may use."
    )
    label_memory_mb: int = Field(
        default=2048,
        ge=512,
        le=65536,
        description="Address space of the labelling process (about 250 MB of it are its own code).",
    )

    # Media storage
    storage_backend: StorageBackendName = "local"
    max_upload_bytes: int = Field(default=100 * 1024 * 1024, ge=1)
    tus_expire_seconds: int = Field(
        default=24 * 3600,
        ge=60,
        description="How long an unfinished resumable upload is kept after its last PATCH.",
    )
    tus_max_unfinished: int = Field(
        default=10, ge=1, description="Unfinished resumable uploads one user may have at once."
    )
    s3_bucket: str = ""
    s3_endpoint_url: str = Field(default="", description="Empty for AWS; OSS/MinIO/R2 endpoint")
    s3_region: str = ""
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    s3_addressing_style: Literal["auto", "path", "virtual"] = "auto"
    storage_presign_seconds: int = Field(default=900, ge=60, le=7 * 24 * 3600)
    # Uploads are probed in worker processes under these limits (vidgate.media.sandbox).
    probe_processes: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Probe worker processes per API process: uploads checked at the same time.",
    )
    probe_wall_seconds: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="Wall-clock time one upload's probe may take before its worker is killed"
        " and the upload refused (400).",
    )
    probe_cpu_seconds: int = Field(
        default=10, ge=1, le=600, description="CPU time one upload's probe may use."
    )
    probe_memory_mb: int = Field(
        default=512,
        ge=128,
        le=65536,
        description="Address space of a probe worker (about 150 MB of it are its own code).",
    )
    direct_upload_seconds: int = Field(
        default=3600,
        ge=60,
        le=7 * 24 * 3600,
        description="How long a presigned direct upload to the S3 bucket may be sent.",
    )
    # Retention (days; 0 keeps forever) and the per-user quota, enforced by `media.retention`.
    upload_retention_days: int = Field(
        default=30, ge=0, description="Days an upload is kept (0: forever)."
    )
    result_retention_days: int = Field(
        default=90, ge=0, description="Days a task's video is kept after it finished (0: forever)."
    )
    failed_input_retention_days: int = Field(
        default=7,
        ge=0,
        description="Days an upload used only by tasks that failed is kept after the last one"
        " ended, when that comes before the upload's own expiry (0: no earlier expiry).",
    )
    storage_quota_bytes: int = Field(
        default=2 * 1024**3,
        ge=0,
        description="Bytes of uploads and results one user may keep stored (0: unlimited).",
    )

    # Payments. A gateway without its settings answers 501 in production; development uses the
    # built-in emulators for whichever gateway is not configured.
    payment_packs: list[CreditPack] = Field(
        default_factory=lambda: [
            CreditPack(credits=500, prices={"CNY": Decimal("50")}),
            CreditPack(credits=1100, prices={"CNY": Decimal("100")}),
            CreditPack(credits=6000, prices={"CNY": Decimal("500")}),
            CreditPack(credits=13000, prices={"CNY": Decimal("1000")}),
        ],
        description='Credit packs, e.g. [{"credits": 500, "prices": {"CNY": 50, "USD": 6.99}}]',
    )
    payment_order_minutes: int = Field(default=30, ge=5, le=24 * 60)
    payment_reconcile_after_seconds: int = Field(default=120, ge=10)
    wechat_mchid: str = ""
    wechat_appid: str = ""
    wechat_apiv3_key: str = ""
    wechat_private_key: str = Field(default="", description="Merchant API private key (PEM)")
    wechat_cert_serial_no: str = ""
    wechat_platform_public_key: str = Field(default="", description="WeChat Pay public key (PEM)")
    wechat_platform_public_key_id: str = ""
    wechat_base_url: str = "https://api.mch.weixin.qq.com"
    stripe_secret_key: str = ""
    stripe_webhook_secret: str = ""
    stripe_api_base: str = Field(default="", description="Empty for Stripe's API")

    # API keys
    dev_client_api_key: str = Field(
        default="", description="Client key created on first development start (generated)."
    )

    # The browser app (web/), served at `/`
    web_dir: Path | None = Field(
        default=None, description="Built web app to serve at /; default: web/out of the checkout"
    )
    web_api_base_url: str = Field(
        default="/api", description="API base the web app calls (same origin by default)"
    )
    web_client_api_key: str = Field(
        default="", description="X-API-Key the web app sends; development: the generated key"
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):  # the environment: a JSON list, or comma-separated
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [part for part in (p.strip() for p in value.split(",")) if part]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            parts = urlsplit(origin)
            if parts.path not in ("", "/") or parts.query or parts.fragment:
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port], no path)")
        return [web_origin(origin) for origin in origins]

    @model_validator(mode="after")
    def _mode_defaults(self) -> Settings:
        dev = self.env == "development"
        if self.sms_send_per_ip_per_hour is None:
            self.sms_send_per_ip_per_hour = 10000 if dev else 20
        if self.sms_verify_per_ip_per_5min is None:
            self.sms_verify_per_ip_per_5min = 10000 if dev else 30
        if self.outbound_allow_private is None:
            self.outbound_allow_private = dev
        if dev and not self.label_producer:
            self.label_producer = "vidgate-development"
        return self

    @property
    def base_url(self) -> str:
        """The absolute base of the URLs vidgate hands out, without a trailing slash:
        `public_base_url`, or the default listen address when it is unset."""
        return (self.public_base_url or DEFAULT_BASE_URL).rstrip("/")

    @property
    def google_uses_emulator(self) -> bool:
        """Development without Google credentials signs in through the built-in emulator."""
        return self.is_development and not self.google_client_id

    @property
    def is_development(self) -> bool:
        return self.env == "development"

    @property
    def console_needs_second_factor(self) -> bool:
        if self.console_second_factor is None:
            return not self.is_development
        return self.console_second_factor

    @property
    def send_limit_per_ip(self) -> int:
        assert self.sms_send_per_ip_per_hour is not None
        return self.sms_send_per_ip_per_hour

    @property
    def verify_limit_per_ip(self) -> int:
        assert self.sms_verify_per_ip_per_5min is not None
        return self.sms_verify_per_ip_per_5min

    @property
    def secrets_file(self) -> Path:
        return self.data_dir / "secrets.json"

    def production_problems(self) -> list[str]:
        """Every reason these settings cannot run in production (empty when they can)."""
        problems: list[str] = []
        key = self.secret_key
        if key.lower() in _WEAK_SECRETS or len(key) < _MIN_SECRET_LENGTH:
            problems.append(
                f"VIDGATE_SECRET_KEY is missing or weak (use at least {_MIN_SECRET_LENGTH} random"
                " characters, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )
        if not self.database_url:
            problems.append(
                "VIDGATE_DATABASE_URL is not set (production needs an external PostgreSQL)"
            )
        if not self.public_base_url:
            problems.append(
                "VIDGATE_PUBLIC_BASE_URL is not set (the address users and vendors reach)"
            )
        sms = SMS_SENDERS[self.sms_provider]
        if sms.development_only:
            choices = [name for name, spec in SMS_SENDERS.items() if not spec.development_only]
            problems.append(
                f"VIDGATE_SMS_PROVIDER is {self.sms_provider!r}"
                f" (choose {', '.join(choices[:-1])} or {choices[-1]})"
            )
        if self.moderation_vendor != "none":
            spec = MODERATION_VENDORS[self.moderation_vendor]
            problems += [spec.missing_problem(name) for name in spec.missing(self)]
        # The vendors this server cannot run without, as `vendors.py` declares them.
        providers = [PROVIDERS[name] for name in REQUIRED_PROVIDERS]
        needed = [sms, *providers, STORAGE_BACKENDS[self.storage_backend]]
        problems += [spec.missing_problem(name) for spec in needed for name in spec.missing(self)]
        problems += [spec.unmet_problem(group) for spec in needed for group in spec.unmet(self)]
        if self.label_implicit and not self.label_producer:
            problems.append(
                "VIDGATE_LABEL_PRODUCER is not set (the operator's name or filing number that the"
                " implicit AIGC label carries; or turn it off with VIDGATE_LABEL_IMPLICIT=false)"
            )
        if self.label_c2pa and not (self.label_c2pa_cert and self.label_c2pa_key):
            problems.append(
                "VIDGATE_LABEL_C2PA_CERT and VIDGATE_LABEL_C2PA_KEY are not both set (the"
                " certificate that signs C2PA manifests; or VIDGATE_LABEL_C2PA=false)"
            )
        elif self.label_c2pa:
            problems += [
                f"VIDGATE_LABEL_C2PA_{name} names {path}, which is not a readable file"
                for name, path in (("CERT", self.label_c2pa_cert), ("KEY", self.label_c2pa_key))
                if path is not None and not os.access(path, os.R_OK)
            ]
        return problems


def _load_generated_secrets(settings: Settings) -> dict[str, str]:
    path = settings.secrets_file
    if path.exists():
        data: dict[str, str] = json.loads(path.read_text())
        return data
    return {}


def fill_development_secrets(settings: Settings) -> Settings:
    """Generate missing secrets once and keep them in the data dir (restarts keep sessions)."""
    stored = _load_generated_secrets(settings)
    changed = False
    generated: dict[str, Callable[[], str]] = {
        "secret_key": lambda: secrets.token_urlsafe(48),
        "dev_client_api_key": lambda: "vg_" + secrets.token_urlsafe(32),
    }
    for name, make in generated.items():
        if getattr(settings, name):
            continue
        if name not in stored:
            stored[name] = make()
            changed = True
        setattr(settings, name, stored[name])
    if changed:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = settings.secrets_file.with_suffix(".tmp")
        # Created private from the start: the file holds signing keys.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(stored, f, indent=2)
        tmp.replace(settings.secrets_file)
    return settings


def load_settings() -> Settings:
    """Read settings from the environment and make them ready for their mode, or raise."""
    settings = Settings()
    settings.data_dir = settings.data_dir.expanduser().resolve()
    if settings.is_development:
        return fill_development_secrets(settings)
    problems = settings.production_problems()
    if problems:
        raise ConfigurationError(
            "vidgate will not start in production mode:\n" + "\n".join(f"  - {p}" for p in problems)
        )
    return settings
