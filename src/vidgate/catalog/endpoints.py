"""`GET /api/videos/models`: the models on sale, their prices and limits, and which can run now."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from vidgate.auth.dependencies import ApiKeyAuth
from vidgate.catalog.schema import Model
from vidgate.deps import DbSession, RuntimeDep
from vidgate.kit import TaskKind
from vidgate.routing import service as routing

router = APIRouter(prefix="/api/videos", tags=["videos"])


class Label(BaseModel):
    en: str
    zh: str


class TierView(BaseModel):
    name: str = Field(description="`mode` (animate kinds) or `quality` (the others)")
    credits: int = Field(description="Per second of output (metered), or per task (prepaid)")
    credits_by_duration: dict[str, int] | None = Field(
        default=None, description="Prepaid: the price of each duration on offer, in seconds"
    )


class LimitsView(BaseModel):
    prompt_max_chars: int
    durations: list[int]
    default_duration: int | None
    aspect_ratios: list[str]
    max_images: int
    resolutions: list[str]


class ModelView(BaseModel):
    id: str
    kinds: list[TaskKind]
    name: Label
    description: Label
    billing_mode: Literal["metered", "prepaid"]
    tiers: list[TierView]
    limits: LimitsView
    default_for: list[TaskKind] = Field(description="Kinds for which it is the default model")
    available: bool = Field(
        description="Whether a vendor can take its tasks now (an enabled, configured channel"
        " whose circuit breaker is closed)"
    )


class ModelList(BaseModel):
    models: list[ModelView]


def _tiers(model: Model) -> list[TierView]:
    views = []
    for tier in model.tiers:
        by_duration = None
        if model.billing == "prepaid":
            by_duration = {
                str(d): model.price(tier.name, d).credits for d in model.limits.durations
            }
        views.append(
            TierView(
                name=tier.name,
                credits=model.price(tier.name).credits,
                credits_by_duration=by_duration,
            )
        )
    return views


@router.get("/models", response_model=ModelList)
async def list_models(key: ApiKeyAuth, runtime: RuntimeDep, session: DbSession) -> ModelList:
    """The models on sale, each kind's default first, with prices, limits and availability."""
    catalog = runtime.catalog
    models = catalog.offered()
    usable = await routing.usable_channels(
        session,
        [c for m in models for c in m.channels],
        configured=runtime.providers.configured,
    )
    defaults: dict[str, list[TaskKind]] = {}
    for kind, model_id in catalog.defaults.items():
        defaults.setdefault(model_id, []).append(kind)
    return ModelList(
        models=[
            ModelView(
                id=m.id,
                kinds=list(m.kinds),
                name=Label(en=m.name.en, zh=m.name.zh),
                description=Label(en=m.description.en, zh=m.description.zh),
                billing_mode=m.billing,
                tiers=_tiers(m),
                limits=LimitsView(
                    prompt_max_chars=m.limits.prompt_max_chars,
                    durations=list(m.limits.durations),
                    default_duration=m.limits.duration,
                    aspect_ratios=list(m.limits.aspect_ratios),
                    max_images=m.limits.max_images,
                    resolutions=list(m.limits.resolutions),
                ),
                default_for=defaults.get(m.id, []),
                available=any(c.id in usable for c in m.channels),
            )
            for m in sorted(models, key=lambda m: not defaults.get(m.id))
        ]
    )
