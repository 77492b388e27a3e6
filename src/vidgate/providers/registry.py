"""Builds the provider adapters from settings: the vendors when configured (`vendors.PROVIDERS`
says what that takes), else, in development, the emulators."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from fastapi import APIRouter

from vidgate.auth.tokens import derive_key
from vidgate.config import Settings
from vidgate.providers.base import VideoProvider
from vidgate.vendors import PROVIDERS

if TYPE_CHECKING:
    from vidgate.emulators.dashscope import DashScopeEmulator
    from vidgate.emulators.fal import FalEmulator
    from vidgate.emulators.kie import KieEmulator
    from vidgate.providers.fal import JwksCache


def emulator_api_key(settings: Settings, vendor: str) -> str:
    """The key a development server and its emulator share, derived so nothing is stored."""
    return "emu-" + base64.urlsafe_b64encode(derive_key(settings.secret_key, vendor)).decode()[:32]


ADAPTERS = ("dashscope", "kie", "fal")  # the catalog's channel adapters
# Where vendors' completion callbacks arrive (vidgate.routing.endpoints serves them).
FAL_WEBHOOK_PATH = "/api/providers/fal/webhook"
KIE_CALLBACK_PATH = "/api/providers/kie/callback"


@dataclass
class Providers:
    """The adapter of each vendor (None: not configured on this server, so its channels are
    skipped), and the emulator routers to mount (development)."""

    dashscope: VideoProvider | None
    kie: VideoProvider | None
    fal: VideoProvider | None = None
    emulators: list[DashScopeEmulator | KieEmulator | FalEmulator] = field(default_factory=list)
    # What verifies vendors' completion callbacks (None: that vendor is not asked to call back).
    fal_jwks: JwksCache | None = None
    kie_hmac_key: str | None = None
    _jwks_client: httpx.AsyncClient | None = None

    def adapter(self, name: str) -> VideoProvider | None:
        """The adapter a channel names, if this server has it."""
        return getattr(self, name, None) if name in ADAPTERS else None

    def configured(self, name: str) -> bool:
        return self.adapter(name) is not None

    @property
    def emulator_routers(self) -> list[APIRouter]:
        return [emulator.router() for emulator in self.emulators]

    async def aclose(self) -> None:
        for name in ADAPTERS:
            adapter = self.adapter(name)
            if adapter is not None:
                await adapter.aclose()
        for emulator in self.emulators:
            await emulator.aclose()
        if self._jwks_client is not None:
            await self._jwks_client.aclose()


def emulator_timing(settings: Settings) -> dict[str, Any]:
    """How the emulated vendors pace their tasks (shared by the mounted and standalone ones)."""
    return {
        "queue_seconds": settings.emulator_queue_seconds,
        "run_seconds": settings.emulator_run_seconds,
        "render_height": settings.emulator_render_height,
        "slow_seconds": settings.emulator_slow_seconds,
    }


def build_providers(settings: Settings) -> Providers:
    from vidgate.emulators.dashscope import DashScopeEmulator
    from vidgate.emulators.fal import FalEmulator
    from vidgate.emulators.kie import KieEmulator
    from vidgate.providers.dashscope import DashScopeAdapter
    from vidgate.providers.fal import FalAdapter, JwksCache
    from vidgate.providers.kie import KieMarketAdapter

    base = settings.base_url
    work_dir = Path(settings.data_dir) / "emulators"
    emulators: list[DashScopeEmulator | KieEmulator | FalEmulator] = []
    timeout, concurrency = settings.provider_timeout_seconds, settings.provider_max_concurrency

    dashscope_key, dashscope_url = settings.dashscope_api_key, settings.dashscope_base_url
    if not PROVIDERS["dashscope"].configured(settings) and settings.is_development:
        dashscope_key = emulator_api_key(settings, "dashscope-emulator")
        dashscope_url = f"{base}/_emulator/dashscope"
        emulators.append(
            DashScopeEmulator(
                api_key=dashscope_key,
                work_dir=work_dir / "dashscope",
                public_base_url=base,
                **emulator_timing(settings),
            )
        )

    callbacks = settings.provider_callbacks
    kie_key, kie_url = settings.kie_api_key, settings.kie_base_url
    kie_hmac_key = settings.kie_webhook_hmac_key or None
    if not PROVIDERS["kie"].configured(settings) and settings.is_development:
        kie_key = emulator_api_key(settings, "kie-emulator")
        kie_url = f"{base}/_emulator/kie"
        kie_hmac_key = emulator_api_key(settings, "kie-webhook")
        emulators.append(
            KieEmulator(
                api_key=kie_key,
                work_dir=work_dir / "kie",
                public_base_url=base,
                seconds=settings.emulator_sora_seconds,
                webhook_hmac_key=kie_hmac_key,
                **emulator_timing(settings),
            )
        )
    # kie.ai's callbacks are taken only when they can be verified.
    kie_hmac_key = kie_hmac_key if callbacks else None
    kie_callback = f"{base}{KIE_CALLBACK_PATH}" if kie_hmac_key else None

    fal_key, fal_url, jwks_url = settings.fal_api_key, settings.fal_base_url, settings.fal_jwks_url
    fal: FalAdapter | None = None
    if not PROVIDERS["fal"].configured(settings) and settings.is_development:
        fal_key = emulator_api_key(settings, "fal-emulator")
        fal_url = f"{base}/_emulator/fal"
        fal_emulator = FalEmulator(
            api_key=fal_key,
            work_dir=work_dir / "fal",
            public_base_url=base,
            **emulator_timing(settings),
        )
        jwks_url = fal_emulator.jwks_url
        emulators.append(fal_emulator)
    jwks_client: httpx.AsyncClient | None = None
    fal_jwks: JwksCache | None = None
    if fal_key:
        fal_webhook = f"{base}{FAL_WEBHOOK_PATH}" if callbacks else None
        fal = FalAdapter(
            fal_key, fal_url, timeout=timeout, max_concurrency=concurrency, webhook_url=fal_webhook
        )
        if callbacks:
            jwks_client = httpx.AsyncClient()
            fal_jwks = JwksCache(jwks_client, jwks_url)

    return Providers(
        dashscope=DashScopeAdapter(
            dashscope_key, dashscope_url, timeout=timeout, max_concurrency=concurrency
        ),
        kie=KieMarketAdapter(
            kie_key,
            kie_url,
            timeout=timeout,
            max_concurrency=concurrency,
            callback_url=kie_callback,
        ),
        fal=fal,
        emulators=emulators,
        fal_jwks=fal_jwks,
        kie_hmac_key=kie_hmac_key,
        _jwks_client=jwks_client,
    )
