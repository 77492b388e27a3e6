"""`vidgate emulate`: the vendor emulators on their own port, and the settings file that points a
production-mode vidgate at them. The gateways built from that file pay through the emulators."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from vidgate.config import Settings
from vidgate.payments.gateway import CheckoutRequest
from vidgate.payments.registry import build_payments

from ..fixtures.served import free_port, server_env

pytestmark = pytest.mark.e2e

VIDGATE = Path(sys.executable).with_name("vidgate")


def _read_env_file(path: Path) -> dict[str, str]:
    """What `set -a; . emulators.env` would export (values are single-quoted, maybe multi-line)."""
    script = f"set -a; . '{path}'; env -0"
    out = subprocess.run(["bash", "-c", script], capture_output=True, check=True, env={}).stdout
    pairs = (item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
    return {name: value for name, value in pairs if name.startswith("VIDGATE_")}


@pytest.fixture(scope="module")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    data_dir = tmp_path_factory.mktemp("emulate")
    port = free_port()
    proc = subprocess.Popen(
        [str(VIDGATE), "emulate", "--port", str(port)],
        env=server_env(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    root = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{root}/docs", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "vidgate emulate did not start"
            time.sleep(0.2)
        env_file = data_dir / "emulators.env"
        assert env_file.stat().st_mode & 0o777 == 0o600
        yield root, _read_env_file(env_file)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_settings_name_every_emulated_vendor(emulators: tuple[str, dict[str, str]]) -> None:
    root, env = emulators
    assert env["VIDGATE_DASHSCOPE_BASE_URL"] == f"{root}/_emulator/dashscope"
    assert env["VIDGATE_KIE_BASE_URL"] == f"{root}/_emulator/kie"
    assert env["VIDGATE_WECHAT_BASE_URL"] == f"{root}/_emulator/wechatpay"
    assert env["VIDGATE_STRIPE_API_BASE"] == f"{root}/_emulator/stripe"
    assert env["VIDGATE_WECHAT_PRIVATE_KEY"].startswith("-----BEGIN PRIVATE KEY-----\n")
    jwks = httpx.get(env["VIDGATE_GOOGLE_JWKS_URL"])
    assert jwks.status_code == 200 and jwks.json()["keys"]
    assert env["VIDGATE_FAL_BASE_URL"] == f"{root}/_emulator/fal"
    fal_keys = httpx.get(env["VIDGATE_FAL_JWKS_URL"])
    assert fal_keys.status_code == 200 and fal_keys.json()["keys"][0]["crv"] == "Ed25519"
    assert env["VIDGATE_KIE_WEBHOOK_HMAC_KEY"]


async def test_production_gateways_pay_through_the_emulators(
    emulators: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    _, env = emulators
    settings = Settings(
        env="production",
        data_dir=tmp_path,
        **{name.removeprefix("VIDGATE_").lower(): value for name, value in env.items()},
    )
    payments = build_payments(settings)
    try:
        assert sorted(payments.gateways) == ["stripe", "wechat"]
        assert payments.emulators == []  # production: real gateways, pointed at the emulators
        order = CheckoutRequest(
            payment_id=uuid.uuid4().hex,
            amount_minor=10000,
            currency="CNY",
            credits=1100,
            description="vidgate 1,100 credits",
            notify_url="https://vidgate.example/api/payments/wechat/notify",
            expires_at=datetime.now(UTC) + timedelta(minutes=30),
        )
        wechat = await payments.gateways["wechat"].create(order)
        assert wechat.code_url and wechat.code_url.startswith("weixin://wxpay/bizpayurl?pr=")
        stripe = await payments.gateways["stripe"].create(order)
        assert stripe.checkout_url and "/_emulator/stripe/" in stripe.checkout_url
        async with httpx.AsyncClient() as browser:
            page = await browser.get(stripe.checkout_url)
        assert page.status_code == 200 and "¥100.00" in page.text
    finally:
        await payments.aclose()
