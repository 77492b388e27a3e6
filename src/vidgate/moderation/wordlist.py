"""The operator's word and pattern list: a text file read at start and again whenever it changes.

One entry a line: a word or phrase (matched anywhere in the prompt after both are normalised,
`normalize.compact`), or `re:` and a regular expression (matched, case-folded, against the prompt
with spacing kept, `normalize.fold`, and against its compact form). `#` starts a comment line; a
`[category]` line names the category of the entries below it, which is what a refused caller is
told (entries before any such line are in `DEFAULT_CATEGORY`). Matching is by substring: an entry
that is part of an innocent word refuses that word too, so list whole enough phrases.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import structlog

from vidgate.moderation.base import Verdict
from vidgate.moderation.normalize import compact, fold

logger = structlog.get_logger(__name__)

DEFAULT_CATEGORY = "prohibited content"
REGEX_PREFIX = "re:"
_CATEGORY_LINE = re.compile(r"^\[([^\[\]]{1,64})\]$")


class WordListError(ValueError):
    """The list cannot be read or has a line that is not a valid entry."""


@dataclass(frozen=True)
class Entry:
    category: str
    line: int
    word: str | None = None  # compact form
    pattern: re.Pattern[str] | None = None

    def matches(self, folded: str, compacted: str) -> bool:
        if self.word is not None:
            return self.word in compacted
        assert self.pattern is not None
        return self.pattern.search(folded) is not None or self.pattern.search(compacted) is not None


@dataclass(frozen=True)
class WordList:
    entries: tuple[Entry, ...]

    def check(self, text: str) -> Verdict:
        """The first entry the text matches, or allowed."""
        folded = fold(text)
        compacted = compact(folded)
        for entry in self.entries:
            if entry.matches(folded, compacted):
                return Verdict(False, entry.category, f"word list line {entry.line}", "wordlist")
        return Verdict.allow()


def parse(text: str) -> WordList:
    """The entries of a list file's text; WordListError names the first bad line."""
    category = DEFAULT_CATEGORY
    entries: list[Entry] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        header = _CATEGORY_LINE.match(line)
        if header:
            category = header.group(1).strip()
        elif line.startswith(REGEX_PREFIX):
            source = line[len(REGEX_PREFIX) :].strip()
            try:
                pattern = re.compile(source, re.IGNORECASE)
            except re.error as exc:
                raise WordListError(
                    f"line {number}: not a valid regular expression ({exc})"
                ) from None
            entries.append(Entry(category, number, pattern=pattern))
        else:
            word = compact(line)
            if not word:
                raise WordListError(f"line {number}: no letters or digits to match")
            entries.append(Entry(category, number, word=word))
    return WordList(tuple(entries))


def load(path: Path) -> WordList:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WordListError(f"cannot read {path.name}: {exc}") from None
    return parse(text)


class WordListModerator:
    """The list in `path`, read again when the file's modification time or size changes (one
    `stat` a check). A change that cannot be read or parsed keeps the list in force and is
    logged, so a half-saved edit never turns screening off."""

    name = "wordlist"

    def __init__(self, path: Path) -> None:
        self._path = path
        self._stamp = self._stat()
        self._list = load(path)  # a bad list stops the start

    def _stat(self) -> tuple[int, int] | None:
        try:
            stat = os.stat(self._path)
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def current(self) -> WordList:
        """The list in force, read again first if the file changed."""
        stamp = self._stat()
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self._list = load(self._path)
            except WordListError as exc:
                logger.error("moderation.wordlist_unreadable", error=str(exc))
            else:
                logger.info("moderation.wordlist_loaded", entries=len(self._list.entries))
        return self._list

    async def check(self, text: str) -> Verdict:
        return self.current().check(text)

    async def aclose(self) -> None:
        return None
