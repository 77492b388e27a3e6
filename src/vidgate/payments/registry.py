"""Builds the payment gateways from settings: the real ones when configured
(`vendors.PAYMENT_GATEWAYS` says what that takes); in development, the built-in emulators for
whichever is not; in production, none (501) for a missing one."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from vidgate.config import Settings
from vidgate.payments.gateway import PaymentGateway
from vidgate.vendors import PAYMENT_GATEWAYS

if TYPE_CHECKING:
    from vidgate.emulators.stripe import StripeEmulator
    from vidgate.emulators.wechatpay import WeChatPayEmulator


@dataclass
class Payments:
    gateways: dict[str, PaymentGateway] = field(default_factory=dict)
    emulators: list[WeChatPayEmulator | StripeEmulator] = field(default_factory=list)

    @property
    def emulator_routers(self) -> list[APIRouter]:
        return [emulator.router() for emulator in self.emulators]

    async def aclose(self) -> None:
        for gateway in self.gateways.values():
            await gateway.aclose()
        for emulator in self.emulators:
            await emulator.aclose()


def development_keys(settings: Settings) -> dict[str, Any]:
    """Keys the emulated gateways and vidgate share in development, made once and kept in the
    data dir (every process on that data dir, API or worker, must agree on them)."""
    from vidgate.emulators.wechatpay import generate_merchant_keys, generate_platform_key

    path = settings.data_dir / "payments-dev.json"
    if path.exists():
        stored: dict[str, Any] = json.loads(path.read_text())
        return stored
    merchant = generate_merchant_keys()
    keys = {
        "wechat_mchid": "1900000109",
        "wechat_appid": "wxd678efh567hg6787",
        "wechat_apiv3_key": secrets.token_hex(16),
        "wechat_private_key": merchant.private_key_pem,
        "wechat_public_key": merchant.public_key_pem,
        "wechat_cert_serial_no": merchant.cert_serial_no,
        "wechat_platform_private_key": generate_platform_key(),
        "stripe_secret_key": "sk_test_" + secrets.token_hex(12),
        "stripe_webhook_secret": "whsec_" + secrets.token_hex(16),
    }
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(keys, f, indent=2)
    try:
        os.link(tmp, path)  # the first process to get here wins; the others read its keys
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    stored = json.loads(path.read_text())
    return stored


def wechat_emulator(dev: dict[str, Any], public_base_url: str) -> WeChatPayEmulator:
    """The emulated WeChat Pay that knows the development merchant (`development_keys`)."""
    from vidgate.emulators.wechatpay import WeChatPayEmulator

    return WeChatPayEmulator(
        mchid=dev["wechat_mchid"],
        appid=dev["wechat_appid"],
        apiv3_key=dev["wechat_apiv3_key"],
        merchant_public_key_pem=dev["wechat_public_key"],
        merchant_cert_serial_no=dev["wechat_cert_serial_no"],
        platform_private_key_pem=dev["wechat_platform_private_key"],
        public_base_url=public_base_url,
    )


def stripe_emulator(dev: dict[str, Any], public_base_url: str, vidgate_url: str) -> StripeEmulator:
    """The emulated Stripe, sending its events to the vidgate at `vidgate_url`."""
    from vidgate.emulators.stripe import StripeEmulator

    return StripeEmulator(
        secret_key=dev["stripe_secret_key"],
        webhook_secret=dev["stripe_webhook_secret"],
        public_base_url=public_base_url,
        webhook_url=f"{vidgate_url.rstrip('/')}/api/payments/stripe/webhook",
    )


def emulator_settings(
    dev: dict[str, Any], wechat: WeChatPayEmulator, stripe_base_url: str
) -> dict[str, str]:
    """The settings that point a vidgate at these emulated gateways (`vidgate emulate`)."""
    return {
        "VIDGATE_WECHAT_MCHID": dev["wechat_mchid"],
        "VIDGATE_WECHAT_APPID": dev["wechat_appid"],
        "VIDGATE_WECHAT_APIV3_KEY": dev["wechat_apiv3_key"],
        "VIDGATE_WECHAT_PRIVATE_KEY": dev["wechat_private_key"],
        "VIDGATE_WECHAT_CERT_SERIAL_NO": dev["wechat_cert_serial_no"],
        "VIDGATE_WECHAT_PLATFORM_PUBLIC_KEY": wechat.platform_public_key_pem,
        "VIDGATE_WECHAT_PLATFORM_PUBLIC_KEY_ID": wechat.platform_public_key_id,
        "VIDGATE_WECHAT_BASE_URL": wechat.public_base_url,
        "VIDGATE_STRIPE_SECRET_KEY": dev["stripe_secret_key"],
        "VIDGATE_STRIPE_WEBHOOK_SECRET": dev["stripe_webhook_secret"],
        "VIDGATE_STRIPE_API_BASE": stripe_base_url,
    }


def build_payments(settings: Settings) -> Payments:
    from vidgate.payments.stripe_gateway import StripeGateway
    from vidgate.payments.wechat import WeChatPayGateway

    base = settings.base_url
    payments = Payments()
    wechat_configured = PAYMENT_GATEWAYS["wechat"].configured(settings)
    stripe_configured = PAYMENT_GATEWAYS["stripe"].configured(settings)
    emulate = settings.is_development and not (wechat_configured and stripe_configured)
    dev = development_keys(settings) if emulate else {}

    if wechat_configured:
        payments.gateways["wechat"] = WeChatPayGateway(
            mchid=settings.wechat_mchid,
            appid=settings.wechat_appid,
            apiv3_key=settings.wechat_apiv3_key,
            private_key_pem=settings.wechat_private_key,
            cert_serial_no=settings.wechat_cert_serial_no,
            platform_public_key_pem=settings.wechat_platform_public_key,
            platform_public_key_id=settings.wechat_platform_public_key_id,
            base_url=settings.wechat_base_url,
        )
    elif settings.is_development:
        wechat = wechat_emulator(dev, f"{base}/_emulator/wechatpay")
        payments.emulators.append(wechat)
        payments.gateways["wechat"] = WeChatPayGateway(
            mchid=dev["wechat_mchid"],
            appid=dev["wechat_appid"],
            apiv3_key=dev["wechat_apiv3_key"],
            private_key_pem=dev["wechat_private_key"],
            cert_serial_no=dev["wechat_cert_serial_no"],
            platform_public_key_pem=wechat.platform_public_key_pem,
            platform_public_key_id=wechat.platform_public_key_id,
            base_url=f"{base}/_emulator/wechatpay",
        )

    success, cancel = f"{base}/", f"{base}/"
    if stripe_configured:
        payments.gateways["stripe"] = StripeGateway(
            secret_key=settings.stripe_secret_key,
            webhook_secret=settings.stripe_webhook_secret,
            api_base=settings.stripe_api_base or None,
            success_url_default=success,
            cancel_url_default=cancel,
        )
    elif settings.is_development:
        payments.emulators.append(stripe_emulator(dev, f"{base}/_emulator/stripe", base))
        payments.gateways["stripe"] = StripeGateway(
            secret_key=dev["stripe_secret_key"],
            webhook_secret=dev["stripe_webhook_secret"],
            api_base=f"{base}/_emulator/stripe",
            success_url_default=success,
            cancel_url_default=cancel,
        )
    return payments
