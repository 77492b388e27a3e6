"""The Alibaba Cloud text moderation client against its emulator over HTTP on loopback."""

from __future__ import annotations

import pytest

from vidgate.emulators.aliyun_green import AliyunGreenEmulator
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
