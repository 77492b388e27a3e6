"""Screens installed on the live app for one test, and the moderation emulator on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from fastapi import FastAPI

from vidgate.emulators.aliyun_green import PREFIX, AliyunGreenEmulator
from vidgate.moderation.aliyun import AliyunTextModerator
from vidgate.moderation.base import Moderator
from vidgate.moderation.screen import PromptScreen
from vidgate.moderation.wordlist import WordListModerator

from ..fixtures.app import Live
from ..fixtures.loopback import serve_on_loopback

WORDS = "[violence]\nkill them all\n炸弹\n[spam]\nre:buy\\s+now\n"
KEY_ID, SECRET = "test-key-id", "test-key-secret"


@pytest.fixture
def install(live: Live, monkeypatch: pytest.MonkeyPatch) -> Callable[..., PromptScreen]:
    """Put a screen of the given moderators in front of the live app's creates for this test."""

    def put(*moderators: Moderator, fail_open: bool = False) -> PromptScreen:
        screen = PromptScreen(moderators, fail_open=fail_open)
        monkeypatch.setattr(live.runtime, "prompt_screen", screen)
        return screen

    return put


@pytest.fixture
def wordlist(tmp_path: Path) -> WordListModerator:
    path = tmp_path / "words.txt"
    path.write_text(WORDS, encoding="utf-8")
    return WordListModerator(path)


@pytest.fixture
async def emulator() -> AsyncIterator[tuple[AliyunGreenEmulator, str]]:
    """The moderation emulator served on loopback, and its URL."""
    emulated = AliyunGreenEmulator(KEY_ID, SECRET, slow_seconds=3.0)
    app = FastAPI()
    app.include_router(emulated.router())
    async with serve_on_loopback(app) as url:
        yield emulated, url + PREFIX


@pytest.fixture
async def vendor(emulator: tuple[AliyunGreenEmulator, str]) -> AsyncIterator[AliyunTextModerator]:
    moderator = AliyunTextModerator(KEY_ID, SECRET, endpoint=emulator[1], timeout=1.0)
    yield moderator
    await moderator.aclose()
