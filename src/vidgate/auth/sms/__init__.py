"""SMS senders behind one protocol; `build_sms_sender` builds the one `sms_provider` names.

Which settings each sender needs is declared in `vidgate.vendors.SMS_SENDERS` (production refuses
to start without them); the builders below only pass them on.
"""

from __future__ import annotations

from collections.abc import Callable

from vidgate.auth.sms.base import SmsSender, SmsSendError
from vidgate.config import Settings
from vidgate.db.engine import Database
from vidgate.vendors import SMS_SENDERS, SmsSenderName

__all__ = ["SmsSendError", "SmsSender", "build_sms_sender"]


def _aliyun(settings: Settings, db: Database) -> SmsSender:
    from vidgate.auth.sms.aliyun import AliyunSmsSender

    return AliyunSmsSender(
        access_key_id=settings.aliyun_sms_access_key_id,
        access_key_secret=settings.aliyun_sms_access_key_secret,
        sign_name=settings.aliyun_sms_sign_name,
        template_code=settings.aliyun_sms_template_code,
        endpoint=settings.aliyun_sms_endpoint,
    )


def _tencent(settings: Settings, db: Database) -> SmsSender:
    from vidgate.auth.sms.tencent import TencentSmsSender

    return TencentSmsSender(
        secret_id=settings.tencent_sms_secret_id,
        secret_key=settings.tencent_sms_secret_key,
        sdk_app_id=settings.tencent_sms_sdk_app_id,
        sign_name=settings.tencent_sms_sign_name,
        template_id=settings.tencent_sms_template_id,
        region=settings.tencent_sms_region,
        endpoint=settings.tencent_sms_endpoint,
    )


def _twilio(settings: Settings, db: Database) -> SmsSender:
    from vidgate.auth.sms.twilio import TwilioSmsSender

    return TwilioSmsSender(
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token,
        from_number=settings.twilio_from_number or None,
        messaging_service_sid=settings.twilio_messaging_service_sid or None,
        base_url=settings.twilio_base_url,
    )


def _console(settings: Settings, db: Database) -> SmsSender:
    from vidgate.auth.sms.console import ConsoleSmsSender

    return ConsoleSmsSender(db)


_BUILDERS: dict[SmsSenderName, Callable[[Settings, Database], SmsSender]] = {
    "console": _console,
    "aliyun": _aliyun,
    "tencent": _tencent,
    "twilio": _twilio,
}
assert _BUILDERS.keys() == SMS_SENDERS.keys(), "every declared SMS sender has a builder"


def build_sms_sender(settings: Settings, db: Database) -> SmsSender:
    return _BUILDERS[settings.sms_provider](settings, db)
