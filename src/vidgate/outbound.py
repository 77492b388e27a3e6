"""The outbound HTTP client for URLs vidgate does not control (media URLs, vendor results, and
later webhooks), configured from settings."""

from __future__ import annotations

from vidgate.config import Settings
from vidgate.net.safe_http import SafeHttpClient, UrlPolicy


def outbound_policy(settings: Settings) -> UrlPolicy:
    return UrlPolicy(
        allow_private=bool(settings.outbound_allow_private),
        allowed_networks=UrlPolicy.parse_networks(settings.outbound_allowed_networks),
    )


def build_outbound_client(settings: Settings) -> SafeHttpClient:
    return SafeHttpClient(
        outbound_policy(settings),
        timeout=settings.remote_media_timeout_seconds,
        user_agent="vidgate",
    )
