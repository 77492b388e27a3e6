"""Development fills in secrets and keeps them; production names every missing setting."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from vidgate.config import ConfigurationError, load_settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    import os

    for name in list(os.environ):
        if name.startswith("VIDGATE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("VIDGATE_DATA_DIR", str(tmp_path))
    return tmp_path


def test_development_generates_secrets_once_and_keeps_them(clean_env: Path) -> None:
    first = load_settings()
    assert len(first.secret_key) >= 32
    assert first.dev_client_api_key.startswith("vg_")
    secrets_file = clean_env / "secrets.json"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    second = load_settings()
    assert second.secret_key == first.secret_key
    assert second.dev_client_api_key == first.dev_client_api_key
    assert json.loads(secrets_file.read_text())["secret_key"] == first.secret_key
    assert first.sms_send_per_ip_per_hour == 10000


def test_explicit_secret_wins_over_generated(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIDGATE_SECRET_KEY", "x" * 40)
    assert load_settings().secret_key == "x" * 40


def test_production_refuses_and_names_each_problem(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIDGATE_ENV", "production")
    monkeypatch.setenv("VIDGATE_SECRET_KEY", "changeme")
    monkeypatch.setenv("VIDGATE_SMS_PROVIDER", "aliyun")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    for name in (
        "VIDGATE_SECRET_KEY",
        "VIDGATE_DATABASE_URL",
        "VIDGATE_PUBLIC_BASE_URL",
        "VIDGATE_ALIYUN_SMS_ACCESS_KEY_ID",
        "VIDGATE_ALIYUN_SMS_TEMPLATE_CODE",
        "VIDGATE_DASHSCOPE_API_KEY",
        "VIDGATE_KIE_API_KEY",
    ):
        assert name in message
    assert not (clean_env / "secrets.json").exists()


def _pem(path: Path) -> Path:
    """A file where the operator's C2PA certificate or key would be (its contents are read
    when signing, not at start-up)."""
    path.write_text("-----BEGIN PLACEHOLDER-----\n")
    return path


def test_production_starts_when_configured(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "ENV": "production",
        "SECRET_KEY": "k" * 48,
        "DATABASE_URL": "postgresql://db.internal/vidgate",
        "PUBLIC_BASE_URL": "https://api.example.com",
        "SMS_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": "AC123",
        "TWILIO_AUTH_TOKEN": "token",
        "TWILIO_FROM_NUMBER": "+15005550006",
        "DASHSCOPE_API_KEY": "sk-test",
        "KIE_API_KEY": "kie-test",
        "LABEL_PRODUCER": "Example Video Co.",
        "LABEL_C2PA_CERT": str(_pem(clean_env / "c2pa-chain.pem")),
        "LABEL_C2PA_KEY": str(_pem(clean_env / "c2pa-key.pem")),
    }.items():
        monkeypatch.setenv(f"VIDGATE_{name}", value)
    settings = load_settings()
    assert settings.sms_send_per_ip_per_hour == 20
    assert settings.sms_verify_per_ip_per_5min == 30


def test_production_has_no_development_routes(database_url: str, settings: object) -> None:
    from vidgate.app import create_app
    from vidgate.config import Settings

    assert isinstance(settings, Settings)
    production = settings.model_copy(update={"env": "production"})
    paths = create_app(production, database_url).openapi()["paths"]
    assert "/api/_dev/sms/outbox" not in paths
    assert "/api/auth/sms/send" in paths


@pytest.mark.parametrize(
    "name",
    [
        "upload_retention_days",
        "result_retention_days",
        "failed_input_retention_days",
        "storage_quota_bytes",
    ],
)
def test_retention_and_quota_settings_refuse_negatives(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(f"VIDGATE_{name.upper()}", "-1")
    with pytest.raises(ValidationError, match=name):
        load_settings()
    monkeypatch.setenv(f"VIDGATE_{name.upper()}", "0")  # 0: forever, or unlimited
    assert getattr(load_settings(), name) == 0
