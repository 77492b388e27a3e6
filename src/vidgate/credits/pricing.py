"""What each kind of video costs, in credits (docs/api.md §3.1; 1 credit = ¥0.1)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from vidgate.kit import TaskKind

BillingMode = Literal["metered", "prepaid"]


@dataclass(frozen=True)
class Price:
    mode: BillingMode
    credits: int  # per second of output when metered, per task when prepaid

    def for_seconds(self, seconds: float) -> int:
        """Metered price of `seconds` of video, rounded up to whole credits."""
        return math.ceil(round(seconds * self.credits, 6))


# (kind, tier) → price. Tier is the request's `mode` (animate) or `quality` (Sora).
PRICES: dict[tuple[TaskKind, str], Price] = {
    ("animate-move", "wan-std"): Price("metered", 10),
    ("animate-move", "wan-pro"): Price("metered", 14),
    ("animate-mix", "wan-std"): Price("metered", 10),
    ("animate-mix", "wan-pro"): Price("metered", 14),
    ("text-to-video", "standard"): Price("prepaid", 20),
    ("text-to-video", "hd"): Price("prepaid", 30),
    ("image-to-video", "standard"): Price("prepaid", 25),
    ("image-to-video", "hd"): Price("prepaid", 35),
}


def price_of(kind: TaskKind, tier: str) -> Price:
    return PRICES[(kind, tier)]
