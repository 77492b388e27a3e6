"""The Alibaba Cloud text moderation client against its emulator over HTTP on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidgate.app import create_app, keyless_development_settings
from vidgate.config import Settings
from vidgate.emulators.aliyun_green import PREFIX, AliyunGreenEmulator
from vidgate.moderation.aliyun import MAX_CONTENT_CHARS, AliyunTextModerator
from vidgate.moderation.base import ModeratorUnavailable

Emulated = tuple[AliyunGreenEmulator, str]


async def test_labels_refuse_and_no_labels_pass(
    emulator: Emulated, vendor: AliyunTextModerator
) -> None:
    refused = await vendor.check("x [label:porn] y [label:abuse]")
    assert (refused.allowed, refused.category, refused.source) == (False, "porn, abuse", "aliyun")
    assert (await vendor.check("a calm lake")).allowed
    assert emulator[0].checked == ["x [label:porn] y [label:abuse]", "a calm lake"]


async def test_a_long_prompt_is_sent_in_pieces(
    emulator: Emulated, vendor: AliyunTextModerator
) -> None:
    prompt = "a" * MAX_CONTENT_CHARS + "中文[label:ad]"
    refused = await vendor.check(prompt)
    assert (refused.allowed, refused.category) == (False, "ad")
    assert emulator[0].checked == ["a" * MAX_CONTENT_CHARS, "中文[label:ad]"]


@pytest.mark.parametrize("marker", ["[fault:5xx]", "[fault:slow]"])
async def test_a_vendor_fault_is_unavailable(vendor: AliyunTextModerator, marker: str) -> None:
    with pytest.raises(ModeratorUnavailable, match="aliyun"):
        await vendor.check(f"a calm lake {marker}")


async def test_a_bad_signature_is_refused_by_the_emulator(emulator: Emulated) -> None:
    emulated, url = emulator
    wrong = AliyunTextModerator(emulated.access_key_id, "not-the-secret", endpoint=url)
    with pytest.raises(ModeratorUnavailable, match="SignatureDoesNotMatch"):
        await wrong.check("a calm lake")
    await wrong.aclose()
    assert emulated.checked == []


def test_development_without_keys_mounts_the_emulator(tmp_path: Path) -> None:
    settings = keyless_development_settings(tmp_path).model_copy(
        update={"moderation_vendor": "aliyun"}
    )
    app = create_app(settings, "postgresql://unused/unused")
    assert PREFIX + "/" in {getattr(route, "path", None) for route in app.routes}
    plain = create_app(keyless_development_settings(tmp_path), "postgresql://unused/unused")
    assert PREFIX + "/" not in {getattr(route, "path", None) for route in plain.routes}


def test_production_needs_the_vendors_keys() -> None:
    problems = Settings(env="production", moderation_vendor="aliyun").production_problems()
    needed = "(needed by the aliyun moderation vendor)"
    assert f"VIDGATE_ALIYUN_GREEN_ACCESS_KEY_ID is not set {needed}" in problems
    assert f"VIDGATE_ALIYUN_GREEN_ACCESS_KEY_SECRET is not set {needed}" in problems
