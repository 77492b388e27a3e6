"""The prompt screen a create passes before money moves: the operator's list first (local and
cheap), then the vendor's moderation if one is configured. A refusal is recorded for the operator
(`moderation_blocks` and a `moderation.blocked` log event) and answered with a 400; a vendor that
does not answer refuses the create with a 503 (fail closed, the default) or lets it through
logged (fail open), as the operator chose."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import structlog

from vidgate.config import Settings
from vidgate.db.engine import Database
from vidgate.emulators.aliyun_green import PREFIX as EMULATOR_PREFIX
from vidgate.moderation.aliyun import AliyunTextModerator
from vidgate.moderation.base import Moderator, ModeratorUnavailable, Verdict
from vidgate.moderation.errors import PromptRefused, ScreeningUnavailable
from vidgate.moderation.models import EXCERPT_CHARS, ModerationBlock
from vidgate.moderation.wordlist import WordListModerator
from vidgate.providers.registry import emulator_api_key
from vidgate.vendors import MODERATION_VENDORS

logger = structlog.get_logger(__name__)


class PromptScreen:
    def __init__(self, moderators: Sequence[Moderator], *, fail_open: bool = False) -> None:
        self.moderators = tuple(moderators)
        self.fail_open = fail_open

    async def verdict(self, text: str) -> Verdict:
        """The first refusal of any moderator, or allowed."""
        for moderator in self.moderators:
            try:
                verdict = await moderator.check(text)
            except ModeratorUnavailable as exc:
                if not self.fail_open:
                    logger.error("moderation.unavailable", moderator=moderator.name, error=str(exc))
                    raise ScreeningUnavailable() from None
                logger.warning("moderation.skipped", moderator=moderator.name, error=str(exc))
                continue
            if not verdict.allowed:
                return verdict
        return Verdict.allow()

    async def screen(self, db: Database, user_id: uuid.UUID, kind: str, text: str) -> None:
        """Raise PromptRefused (after recording it) unless every moderator lets `text` pass."""
        if not self.moderators:
            return
        verdict = await self.verdict(text)
        if verdict.allowed:
            return
        category = verdict.category or "prohibited content"
        async with db.transaction() as session:  # its own: the create is about to be refused
            session.add(
                ModerationBlock(
                    user_id=user_id,
                    kind=kind,
                    source=verdict.source or "unknown",
                    category=category[:200],
                    rule=(verdict.rule or "")[:200],
                    prompt_excerpt=text[:EXCERPT_CHARS],
                )
            )
        logger.warning(
            "moderation.blocked",
            user_id=str(user_id),
            kind=kind,
            source=verdict.source,
            category=category,
            rule=verdict.rule,
        )
        raise PromptRefused(category)

    async def aclose(self) -> None:
        for moderator in self.moderators:
            await moderator.aclose()


def emulator_credentials(settings: Settings) -> tuple[str, str]:
    """The access key id and secret a development server and its moderation emulator share."""
    return "emulator", emulator_api_key(settings, "aliyun-green-emulator")


def uses_emulator(settings: Settings) -> bool:
    """Development with the aliyun moderation chosen but not configured: the emulator answers."""
    spec = MODERATION_VENDORS["aliyun"]
    return (
        settings.is_development
        and settings.moderation_vendor == "aliyun"
        and not spec.configured(settings)
    )


def build_screen(settings: Settings) -> PromptScreen:
    """The screen the settings describe (no moderators: every prompt passes). A word list that
    cannot be read stops the start."""
    moderators: list[Moderator] = []
    if settings.moderation_wordlist is not None:
        moderators.append(WordListModerator(settings.moderation_wordlist))
    if settings.moderation_vendor == "aliyun":
        key_id, secret = (
            settings.aliyun_green_access_key_id,
            settings.aliyun_green_access_key_secret,
        )
        endpoint = settings.aliyun_green_endpoint
        if uses_emulator(settings):
            key_id, secret = emulator_credentials(settings)
            endpoint = settings.base_url + EMULATOR_PREFIX
        moderators.append(
            AliyunTextModerator(
                key_id,
                secret,
                endpoint=endpoint,
                service=settings.aliyun_green_service,
                timeout=settings.moderation_timeout_seconds,
            )
        )
    return PromptScreen(moderators, fail_open=settings.moderation_fail_open)
