"""What every screen answers (`Verdict`) and the protocol a vendor's text moderation implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Verdict:
    """A screen's answer. A refusal names the rule category the caller is told and, for the
    operator only, the rule that matched (never shown to the caller: it would teach the list)."""

    allowed: bool
    category: str | None = None
    rule: str | None = None
    source: str | None = None  # "wordlist" or the vendor's name

    @classmethod
    def allow(cls) -> Verdict:
        return cls(True)


class ModeratorUnavailable(Exception):
    """A vendor's moderation gave no usable answer (unreachable, timed out, an error code)."""


class Moderator(Protocol):
    """A text screen: the word list, or a vendor's moderation API."""

    name: str

    async def check(self, text: str) -> Verdict: ...

    async def aclose(self) -> None: ...
