"""SMS senders behind one protocol; `build_sms_sender` picks the configured one."""

from __future__ import annotations

from vidgate.auth.sms.base import SmsSender, SmsSendError
from vidgate.config import Settings
from vidgate.db.engine import Database

__all__ = ["SmsSendError", "SmsSender", "build_sms_sender"]


def build_sms_sender(settings: Settings, db: Database) -> SmsSender:
    if settings.sms_provider == "aliyun":
        from vidgate.auth.sms.aliyun import AliyunSmsSender

        return AliyunSmsSender(
            access_key_id=settings.aliyun_sms_access_key_id,
            access_key_secret=settings.aliyun_sms_access_key_secret,
            sign_name=settings.aliyun_sms_sign_name,
            template_code=settings.aliyun_sms_template_code,
            endpoint=settings.aliyun_sms_endpoint,
        )
    if settings.sms_provider == "tencent":
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
    if settings.sms_provider == "twilio":
        from vidgate.auth.sms.twilio import TwilioSmsSender

        return TwilioSmsSender(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token,
            from_number=settings.twilio_from_number or None,
            messaging_service_sid=settings.twilio_messaging_service_sid or None,
            base_url=settings.twilio_base_url,
        )
    from vidgate.auth.sms.console import ConsoleSmsSender

    return ConsoleSmsSender(db)
