"""The model catalog: what vidgate sells, at what price, and through which vendor channels.

A **model** is what a user picks (`wan2.7-t2v`): the kinds it serves, its name and description in
English and Chinese, its tiers and prices, its limits, and an ordered list of **channels**. A
channel is one vendor adapter (`dashscope`, `kie`, `fal`) with the vendor's model id, fixed extra
fields for the vendor's request, and what the vendor charges (for margin reports). A task is sent
through its model's channels in order.

Prices follow the billing mode of the kinds: animate models are *metered* (each tier has
`credits_per_second` of output, reserved on the reference video's length and settled on the real
one); text and image to video are *prepaid* (each tier has `credits` for a video of the model's
default duration, charged up front; another duration costs in proportion, rounded up).

Everything here is checked when the catalog loads (`vidgate.catalog.loader`), so what is served
and charged is always one consistent catalog.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vidgate.kit import TaskKind

BillingMode = Literal["metered", "prepaid"]
Adapter = Literal["dashscope", "kie", "fal"]
AspectRatio = Literal["landscape", "portrait"]

METERED_KINDS: frozenset[str] = frozenset({"animate-move", "animate-mix"})
# The tiers each billing mode sells: the request's `mode` (animate) or `quality`.
TIERS: dict[BillingMode, tuple[str, ...]] = {
    "metered": ("wan-std", "wan-pro"),
    "prepaid": ("standard", "hd"),
}
ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Entry):
    """A label in the two languages of the web app."""

    en: str = Field(min_length=1, max_length=500)
    zh: str = Field(min_length=1, max_length=500)


class Tier(_Entry):
    name: str
    credits: int | None = Field(default=None, ge=1)  # prepaid: per task at the default duration
    credits_per_second: int | None = Field(default=None, ge=1)  # metered: per output second


class Limits(_Entry):
    prompt_max_chars: int = Field(default=5000, ge=1, le=5000)
    # Output lengths a user may ask for (text and image to video); the first is the default
    # unless `default_duration` says otherwise. Empty: the model decides (animate).
    durations: tuple[int, ...] = ()
    default_duration: int | None = None
    aspect_ratios: tuple[AspectRatio, ...] = ("landscape", "portrait")
    max_images: int = Field(default=1, ge=1, le=10)  # image to video: images used
    resolutions: tuple[str, ...] = ()  # what the tiers render at, for people (e.g. 720P, 1080P)

    @model_validator(mode="after")
    def _default_is_offered(self) -> Limits:
        if self.durations and any(d < 1 or d > 60 for d in self.durations):
            raise ValueError("durations must be between 1 and 60 seconds")
        if self.default_duration is not None and self.default_duration not in self.durations:
            raise ValueError(f"default_duration {self.default_duration} is not in durations")
        return self

    @property
    def duration(self) -> int | None:
        """The default output length, or None when the model decides it."""
        if self.default_duration is not None:
            return self.default_duration
        return self.durations[0] if self.durations else None


class Cost(_Entry):
    """What the vendor charges per second of output, in its currency, by tier (the tier decides
    the resolution, and vendors price by resolution)."""

    currency: str = Field(pattern=r"^[A-Z]{3}$")
    per_second: dict[str, Decimal]


class Channel(_Entry):
    id: str = Field(pattern=ID_PATTERN)
    adapter: Adapter
    vendor_model: str = Field(min_length=1, max_length=200)
    enabled: bool = True
    extra: dict[str, Any] = Field(default_factory=dict)  # fixed fields for the vendor's input
    cost: Cost | None = None
    max_concurrency: int | None = Field(default=None, ge=1)  # tasks at once on this channel


class Price(_Entry):
    mode: BillingMode
    credits: int  # per second of output when metered, per task when prepaid

    def for_seconds(self, seconds: float) -> int:
        """Metered price of `seconds` of video, rounded up to whole credits."""
        return math.ceil(round(seconds * self.credits, 6))


class Model(_Entry):
    id: str = Field(pattern=ID_PATTERN)
    kinds: tuple[TaskKind, ...] = Field(min_length=1)
    name: Text
    description: Text
    status: Literal["live", "retired"] = "live"  # retired: not offered, its tasks still read
    tiers: tuple[Tier, ...]
    limits: Limits = Limits()
    channels: tuple[Channel, ...] = ()

    @property
    def billing(self) -> BillingMode:
        return "metered" if self.kinds[0] in METERED_KINDS else "prepaid"

    @property
    def offered(self) -> bool:
        return self.status == "live"

    def tier(self, name: str) -> Tier:
        for tier in self.tiers:
            if tier.name == name:
                return tier
        raise KeyError(name)

    def price(self, tier: str, duration: int | None = None) -> Price:
        """The price of one task at `tier`: per output second (metered), or per task of
        `duration` seconds (prepaid; the default duration's price scaled, rounded up)."""
        chosen = self.tier(tier)
        if self.billing == "metered":
            assert chosen.credits_per_second is not None
            return Price(mode="metered", credits=chosen.credits_per_second)
        assert chosen.credits is not None
        default = self.limits.duration
        if duration is None or default is None or duration == default:
            return Price(mode="prepaid", credits=chosen.credits)
        return Price(mode="prepaid", credits=math.ceil(chosen.credits * duration / default))

    @model_validator(mode="after")
    def _consistent(self) -> Model:
        modes = {"metered" if k in METERED_KINDS else "prepaid" for k in self.kinds}
        if len(modes) > 1:
            raise ValueError("kinds mix animate with text or image to video")
        if len(set(self.kinds)) != len(self.kinds):
            raise ValueError("kinds are listed twice")
        wanted = TIERS[self.billing]
        names = [t.name for t in self.tiers]
        if sorted(names) != sorted(wanted):
            raise ValueError(f"tiers must be exactly {', '.join(wanted)} (got {', '.join(names)})")
        for tier in self.tiers:
            if self.billing == "metered" and (
                tier.credits_per_second is None or tier.credits is not None
            ):
                raise ValueError(f"tier {tier.name}: animate tiers set credits_per_second only")
            if self.billing == "prepaid" and (
                tier.credits is None or tier.credits_per_second is not None
            ):
                raise ValueError(f"tier {tier.name}: set credits (per task) only")
        if self.billing == "prepaid" and not self.limits.durations:
            raise ValueError("limits.durations: text and image to video offer at least one")
        for channel in self.channels:
            unknown = sorted(set(channel.cost.per_second) - set(wanted)) if channel.cost else []
            if unknown:
                raise ValueError(f"channel {channel.id}: cost for unknown tiers {unknown}")
        ids = [c.id for c in self.channels]
        if len(set(ids)) != len(ids):
            raise ValueError("channel ids are listed twice")
        if self.offered and not any(c.enabled for c in self.channels):
            raise ValueError("a live model needs at least one enabled channel")
        return self


class Catalog(_Entry):
    """Every model, and the default model of each kind."""

    models: tuple[Model, ...]
    defaults: dict[TaskKind, str]

    @model_validator(mode="after")
    def _consistent(self) -> Catalog:
        ids = [m.id for m in self.models]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"model ids listed twice: {', '.join(twice)}")
        channel_ids = [c.id for m in self.models for c in m.channels]
        twice = sorted({i for i in channel_ids if channel_ids.count(i) > 1})
        if twice:
            raise ValueError(f"channel ids used by more than one model: {', '.join(twice)}")
        by_id = {m.id: m for m in self.models}
        for kind in ("animate-move", "animate-mix", "text-to-video", "image-to-video"):
            default = self.defaults.get(kind)
            if default is None:
                raise ValueError(f"defaults: no default model for {kind}")
            model = by_id.get(default)
            if model is None:
                raise ValueError(f"defaults.{kind}: no model {default!r}")
            if kind not in model.kinds or not model.offered:
                raise ValueError(f"defaults.{kind}: {default!r} is not a live {kind} model")
        return self

    def get(self, model_id: str) -> Model | None:
        for model in self.models:
            if model.id == model_id:
                return model
        return None

    def default_for(self, kind: TaskKind) -> Model:
        model = self.get(self.defaults[kind])
        assert model is not None  # checked when loaded
        return model

    def offered(self, kind: TaskKind | None = None) -> list[Model]:
        """The live models, of `kind` when given, in catalog order."""
        return [m for m in self.models if m.offered and (kind is None or kind in m.kinds)]

    def channel(self, channel_id: str) -> tuple[Model, Channel] | None:
        for model in self.models:
            for channel in model.channels:
                if channel.id == channel_id:
                    return model, channel
        return None
