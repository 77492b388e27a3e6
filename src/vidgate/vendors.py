"""Every outside vendor vidgate can be wired to, and the settings each one needs.

One declaration per vendor: the video providers, the payment gateways, the SMS senders, Google
sign-in and the storage backends. The builders (`providers.registry.build_providers`,
`payments.registry.build_payments`, `auth.sms.build_sms_sender`, `auth.google.GoogleConfig`,
`media.backends.storage_from_settings`) ask a declaration whether its vendor is configured, and
`config.Settings.production_problems` names what a production server lacks from the same
declarations, so a vendor's settings are listed here and nowhere else.

A leaf module: it names settings (the `Settings` field names) and imports nothing of vidgate, so
`config.py` can read it without importing any feature.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

ProviderName = Literal["dashscope", "kie", "fal"]
GatewayName = Literal["wechat", "stripe"]
SmsSenderName = Literal["console", "aliyun", "tencent", "twilio"]
StorageBackendName = Literal["local", "s3"]

# Every payment gateway, in the order the API lists them.
GATEWAYS: tuple[GatewayName, ...] = ("wechat", "stripe")


@dataclass(frozen=True)
class VendorSpec:
    """One vendor and the settings it cannot do without."""

    name: str  # as settings and code name it: "dashscope", "wechat", "aliyun", "s3"
    label: str  # as people name it: "DashScope", "WeChat Pay"
    needed_by: str  # how a missing setting's message names the vendor: "the kie.ai provider"
    required: tuple[str, ...] = ()  # settings that must all be set
    any_of: tuple[tuple[str, ...], ...] = ()  # groups of settings of which one must be set
    development_only: bool = False  # production refuses to run with it (the console sender)

    def missing(self, settings: object) -> list[str]:
        """The required settings that are unset (empty) in `settings`."""
        return [name for name in self.required if not getattr(settings, name)]

    def unmet(self, settings: object) -> list[tuple[str, ...]]:
        """The `any_of` groups of which no setting is set."""
        return [group for group in self.any_of if not any(getattr(settings, n) for n in group)]

    def configured(self, settings: object) -> bool:
        """Everything the vendor needs is set."""
        return not self.missing(settings) and not self.unmet(settings)

    def missing_problem(self, name: str) -> str:
        return f"{env_name(name)} is not set ({self.needed_by})"

    @staticmethod
    def unmet_problem(group: tuple[str, ...]) -> str:
        return " or ".join(env_name(name) for name in group) + " must be set"


def env_name(setting: str) -> str:
    """The environment variable of a setting: `kie_api_key` → `VIDGATE_KIE_API_KEY`."""
    return f"VIDGATE_{setting.upper()}"


def _provider(name: ProviderName, label: str, *required: str) -> VendorSpec:
    return VendorSpec(name, label, f"the {label} provider", required)


def _sms(
    name: SmsSenderName,
    label: str,
    *required: str,
    any_of: tuple[tuple[str, ...], ...] = (),
    development_only: bool = False,
) -> VendorSpec:
    needed_by = f"needed by the {name} SMS sender"
    return VendorSpec(name, label, needed_by, required, any_of, development_only)


# Video providers. Development uses an emulator for a missing one; production needs the
# REQUIRED ones, and skips the channels of any other that is not configured.
PROVIDERS: Mapping[ProviderName, VendorSpec] = {
    "dashscope": _provider("dashscope", "DashScope", "dashscope_api_key"),
    "kie": _provider("kie", "kie.ai", "kie_api_key"),
    "fal": _provider("fal", "fal.ai", "fal_api_key"),
}
REQUIRED_PROVIDERS: tuple[ProviderName, ...] = ("dashscope", "kie")

# Payment gateways. One that is not configured answers 501 in production; development uses an
# emulator instead.
PAYMENT_GATEWAYS: Mapping[GatewayName, VendorSpec] = {
    "wechat": VendorSpec(
        "wechat",
        "WeChat Pay",
        "the WeChat Pay gateway",
        (
            "wechat_mchid",
            "wechat_appid",
            "wechat_apiv3_key",
            "wechat_private_key",
            "wechat_cert_serial_no",
            "wechat_platform_public_key",
            "wechat_platform_public_key_id",
        ),
    ),
    "stripe": VendorSpec(
        "stripe", "Stripe", "the Stripe gateway", ("stripe_secret_key", "stripe_webhook_secret")
    ),
}

# SMS senders; `sms_provider` picks one, and production needs it configured.
SMS_SENDERS: Mapping[SmsSenderName, VendorSpec] = {
    "console": _sms("console", "the development outbox", development_only=True),
    "aliyun": _sms(
        "aliyun",
        "Alibaba Cloud SMS",
        "aliyun_sms_access_key_id",
        "aliyun_sms_access_key_secret",
        "aliyun_sms_sign_name",
        "aliyun_sms_template_code",
    ),
    "tencent": _sms(
        "tencent",
        "Tencent Cloud SMS",
        "tencent_sms_secret_id",
        "tencent_sms_secret_key",
        "tencent_sms_sdk_app_id",
        "tencent_sms_sign_name",
        "tencent_sms_template_id",
    ),
    "twilio": _sms(
        "twilio",
        "Twilio",
        "twilio_account_sid",
        "twilio_auth_token",
        any_of=(("twilio_from_number", "twilio_messaging_service_sid"),),
    ),
}

# Google sign-in: 501 when not configured in production; development without a client id signs in
# through the emulator.
GOOGLE = VendorSpec(
    "google", "Google", "Google sign-in", ("google_client_id", "google_client_secret")
)

# Media storage; `storage_backend` picks one.
STORAGE_BACKENDS: Mapping[StorageBackendName, VendorSpec] = {
    "local": VendorSpec("local", "local files", "needed by the local storage backend"),
    "s3": VendorSpec("s3", "S3", "needed by the s3 storage backend", ("s3_bucket",)),
}

# Text moderation of prompts; `moderation_vendor` picks one (or none). Development without its
# keys uses the emulator; production needs them.
MODERATION_VENDORS: Mapping[str, VendorSpec] = {
    "aliyun": VendorSpec(
        "aliyun",
        "Alibaba Cloud Content Moderation",
        "needed by the aliyun moderation vendor",
        ("aliyun_green_access_key_id", "aliyun_green_access_key_secret"),
    ),
}
