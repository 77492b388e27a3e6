"""What redelivering a task's webhooks can fail on.

Each docstring is what the OpenAPI document says about the error on the routes that declare it.
"""

from __future__ import annotations

from vidgate.errors import BadRequest


class NoWebhookUrl(BadRequest):
    """The task was created without a webhook_url, so there is nowhere to deliver to."""

    detail = "This task has no webhook_url"


class NoWebhookEvents(BadRequest):
    """The task has recorded no webhook events yet, so there is nothing to send again."""

    detail = "This task has no webhook events yet"
