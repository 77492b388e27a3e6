"""Imports every table so the metadata is complete (for Alembic and the test schema)."""

from vidgate.admin.models import AuditEntry, OperatorFactor
from vidgate.apikeys.models import ApiKey
from vidgate.auth.models import AuthSession, DevSmsMessage, OAuthState, RefreshToken, SmsCode
from vidgate.codes.models import CodeBatch, CodeRedemption, RedemptionCode
from vidgate.credits.models import LedgerEntry
from vidgate.db.base import Base
from vidgate.media.models import TusUpload, Upload, UploadIntent
from vidgate.moderation.models import ModerationBlock
from vidgate.payments.models import Payment, PaymentEvent, PaymentRefund
from vidgate.ratelimit import RateLimitCounter
from vidgate.routing.models import ChannelHealth
from vidgate.tasks.models import IdempotencyKey, Task, TaskAttempt
from vidgate.users.models import User
from vidgate.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSecret

__all__ = [
    "ApiKey",
    "AuditEntry",
    "AuthSession",
    "Base",
    "ChannelHealth",
    "CodeBatch",
    "CodeRedemption",
    "DevSmsMessage",
    "IdempotencyKey",
    "LedgerEntry",
    "ModerationBlock",
    "OAuthState",
    "OperatorFactor",
    "Payment",
    "PaymentEvent",
    "PaymentRefund",
    "RateLimitCounter",
    "RedemptionCode",
    "RefreshToken",
    "SmsCode",
    "Task",
    "TaskAttempt",
    "TusUpload",
    "Upload",
    "UploadIntent",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookSecret",
]
