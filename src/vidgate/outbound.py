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


def build_webhook_client(settings: Settings) -> SafeHttpClient:
    """Webhooks go to addresses users choose: private and loopback targets are reachable only in
    development (a receiver on the same laptop), never in production, whatever else is set."""
    policy = outbound_policy(settings)
    if not settings.is_development:
        policy = UrlPolicy(allow_private=False, allowed_networks=(), https_only=True)
    return SafeHttpClient(policy, timeout=15.0, max_redirects=0, user_agent="vidgate-webhooks")


def build_outbound_client(settings: Settings) -> SafeHttpClient:
    return SafeHttpClient(
        outbound_policy(settings),
        timeout=settings.remote_media_timeout_seconds,
        user_agent="vidgate",
    )
