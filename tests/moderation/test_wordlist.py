"""The operator's list: how prompts and entries are normalised, what matches, and reloading."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vidgate.moderation.normalize import compact, fold
from vidgate.moderation.wordlist import (
    DEFAULT_CATEGORY,
    WordListError,
    WordListModerator,
    parse,
)

LIST = """\
# tests' own list
badword
[violence]
kill them all
炸弹
re:\\bshoot\\s+(him|her)\\b
"""


@pytest.mark.parametrize(
    ("disguised", "plain"),
    [
        ("ｂａｄｗｏｒｄ", "badword"),  # full-width
        ("BaDwOrD", "badword"),  # case
        ("b a d w o r d", "badword"),  # spacing
        ("b.a-d_w*o/r·d", "badword"),  # separators and punctuation
        ("bad\u200bwo\u200drd\ufeff", "badword"),  # zero-width characters
        ("炸　弹", "炸弹"),  # an ideographic space between Chinese characters
        ("炸，弹。", "炸弹"),  # full-width punctuation
        ("Ｋｉｌｌ\tthem\n ALL", "killthemall"),
    ],
)
def test_disguises_normalise_to_the_plain_word(disguised: str, plain: str) -> None:
    assert compact(disguised) == plain


def test_fold_keeps_one_space_between_words() -> None:
    assert fold("  Shoot\u200b \t HIM ") == "shoot him"


@pytest.mark.parametrize(
    ("prompt", "category", "line"),
    [
        ("a cat says B A D W O R D twice", DEFAULT_CATEGORY, 2),
        ("Ｋｉｌｌ them, all!", "violence", 4),
        ("一个炸 弹在城市", "violence", 5),
        ("then they SHOOT   him", "violence", 6),
    ],
)
def test_a_listed_entry_refuses_with_its_category(prompt: str, category: str, line: int) -> None:
    verdict = parse(LIST).check(prompt)
    assert (verdict.allowed, verdict.category, verdict.rule, verdict.source) == (
        False,
        category,
        f"word list line {line}",
        "wordlist",
    )


@pytest.mark.parametrize(
    "prompt", ["a calm lake at dawn", "shooting stars over the sea", "一只猫在弹钢琴"]
)
def test_a_clean_prompt_passes(prompt: str) -> None:
    assert parse(LIST).check(prompt).allowed


@pytest.mark.parametrize(
    ("text", "problem"),
    [("re:(unclosed", "line 1: not a valid regular expression"), ("...", "line 1: no letters")],
)
def test_a_bad_line_is_named(text: str, problem: str) -> None:
    with pytest.raises(WordListError, match=problem):
        parse(text)


def _write(path: Path, text: str, mtime: int) -> None:
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(mtime, mtime))


async def test_the_list_is_read_again_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "words.txt"
    _write(path, "badword\n", 1_000_000_000)
    moderator = WordListModerator(path)
    assert not (await moderator.check("badword")).allowed
    assert (await moderator.check("newterm")).allowed

    _write(path, "[spam]\nnewterm\n", 2_000_000_000)
    refused = await moderator.check("NEW TERM")
    assert (refused.allowed, refused.category) == (False, "spam")
    assert (await moderator.check("badword")).allowed


async def test_a_broken_edit_keeps_the_list_in_force(tmp_path: Path) -> None:
    path = tmp_path / "words.txt"
    _write(path, "badword\n", 1_000_000_000)
    moderator = WordListModerator(path)
    _write(path, "badword\nre:(broken\n", 2_000_000_000)
    assert not (await moderator.check("badword")).allowed
    path.unlink()
    assert not (await moderator.check("badword")).allowed
    _write(path, "other\n", 3_000_000_000)
    assert (await moderator.check("badword")).allowed
    assert not (await moderator.check("other")).allowed


def test_an_unreadable_list_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(WordListError, match="cannot read"):
        WordListModerator(tmp_path / "missing.txt")


def test_the_documented_example_list_parses() -> None:
    example = Path(__file__).parents[2] / "docs" / "moderation-wordlist.example.txt"
    listed = parse(example.read_text(encoding="utf-8"))
    assert len(listed.entries) == 3
    refused = listed.check("An EXAMPLE   pattern here")
    assert (refused.allowed, refused.category) == (False, "example category")
