"""Webhook API bodies."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class WebhookSecretView(BaseModel):
    secret: str  # `whsec_…`: verify with any Standard Webhooks library
    created_at: datetime
    # After a rotation the previous secret also signs until this time (a second signature).
    previous_secret_expires_at: datetime | None = None


class AttemptView(BaseModel):
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryView(BaseModel):
    id: str
    event_id: str  # the `webhook-id` header
    event_type: str
    url: str
    status: str  # pending | succeeded | failed
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    attempt_log: list[AttemptView]


class DeliveryList(BaseModel):
    deliveries: list[DeliveryView]


class RedeliverResponse(BaseModel):
    message: str
    deliveries: list[DeliveryView]
