"""How prompts and list entries are brought to one form before they are compared, so the usual
disguises of a word match it: full-width letters (ｂａｄ), case (BaD), and spaces, zero-width
characters or punctuation put between its letters (b a d, b.a.d, b\u200bad, 坏·词)."""

from __future__ import annotations

import re
import unicodedata

# Format characters (zero-width space and joiners, BOM, bidi marks) are invisible in text.
_INVISIBLE = frozenset({"Cf", "Cc"})
_SPACES = re.compile(r"\s+")


def _kept(char: str) -> bool:
    """Letters (Chinese included), digits and combining marks; everything else can be slipped
    between letters without changing what a reader sees."""
    return unicodedata.category(char)[0] in "LNM"


def fold(text: str) -> str:
    """NFKC (full-width to half-width, compatibility forms), case-folded, invisible characters
    removed, runs of space made one: the form `re:` entries are also matched against."""
    folded = _SPACES.sub(" ", unicodedata.normalize("NFKC", text).casefold())
    return "".join(c for c in folded if unicodedata.category(c) not in _INVISIBLE).strip()


def compact(text: str) -> str:
    """`fold` with only letters, digits and marks kept: what words are matched in."""
    return "".join(c for c in fold(text) if _kept(c))
