"""Parameters of multipart headers (`Content-Disposition`, the body's `Content-Type`), in UTF-8.

python-multipart's `parse_options_header` decodes a header as Latin-1 and ignores `filename*`,
so a file named 照片.png (sent in raw UTF-8, as browsers do per RFC 7578 §4.2) could not be
read at all. This parser works on the raw bytes: the header must be UTF-8 (ASCII is), quoted
strings may hold any UTF-8, and the RFC 5987/2231 extended form `filename*=UTF-8''%E7%85%A7…`
(which some clients send although RFC 7578 deprecates it) is decoded and takes precedence over
`filename`, as RFC 6266 §4.3 says. Anything it cannot read exactly is refused with a reason
rather than guessed at: two parsers that disagree about a name are how uploads get smuggled past
a proxy's checks.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote_to_bytes

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z/]+")  # a token, or a media type
_UNQUOTED_VALUE = re.compile(r'[^;" \t]*')
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Charsets RFC 5987 requires recipients to support; nothing else is guessed at.
_CHARSETS = {"utf-8": "utf-8", "iso-8859-1": "iso-8859-1"}


class MalformedHeader(ValueError):
    """The header cannot be read exactly; the message says why (safe to show the client)."""


def parse_parameters(raw: bytes, header: str) -> tuple[str, dict[str, str]]:
    """`(value, {parameter: value})` of a header like `form-data; name="file"`.

    The value and parameter names are lower-cased. A parameter given as both `p` and `p*` keeps
    the decoded `p*`; a parameter given twice is refused.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedHeader(f"The {header} header is not valid UTF-8") from exc
    position = _skip_space(text, 0)
    value = _VALUE.match(text, position)
    if value is None:
        raise MalformedHeader(f"The {header} header has no value")
    position = value.end()
    plain: dict[str, str] = {}
    extended: dict[str, str] = {}
    while True:
        position = _skip_space(text, position)
        if position == len(text):
            break
        if text[position] != ";":
            raise MalformedHeader(f"The {header} header is malformed near {text[position:][:40]!r}")
        position = _skip_space(text, position + 1)
        if position == len(text):
            break  # a trailing ";" is harmless
        name = _TOKEN.match(text, position)
        if name is None:
            raise MalformedHeader(f"The {header} header has a parameter without a name")
        position = _skip_space(text, name.end())
        if text[position : position + 1] != "=":
            raise MalformedHeader(f"The {header} parameter {name.group()!r} has no value")
        position = _skip_space(text, position + 1)
        if text[position : position + 1] == '"':
            parameter, position = _quoted_string(text, position, header)
        else:
            unquoted = _UNQUOTED_VALUE.match(text, position)
            assert unquoted is not None  # matches the empty string at least
            parameter, position = unquoted.group(), unquoted.end()
        key = name.group().lower()
        if key.endswith("*"):
            key = key[:-1]
            target, parameter = extended, _extended_value(parameter, key, header)
        else:
            target = plain
        if key in target:
            raise MalformedHeader(f"The {header} header gives {key!r} twice")
        target[key] = parameter
    return value.group().lower(), plain | extended


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t":
        position += 1
    return position


def _quoted_string(text: str, start: int, header: str) -> tuple[str, int]:
    """The content of the quoted string opening at `start`, and the position after it.

    Only `\\"` and `\\\\` are escapes: browsers do not escape a backslash in a file name
    (they percent-encode `"` as %22), so `a\\b.png` keeps its backslash.
    """
    out: list[str] = []
    position = start + 1
    while position < len(text):
        char = text[position]
        if char == '"':
            return "".join(out), position + 1
        if char == "\\" and text[position + 1 : position + 2] in ('"', "\\"):
            out.append(text[position + 1])
            position += 2
            continue
        out.append(char)
        position += 1
    raise MalformedHeader(f"The {header} header has an unterminated quoted string")


def _extended_value(value: str, key: str, header: str) -> str:
    """Decode an RFC 5987 `charset'language'percent-encoded` value."""
    parts = value.split("'")
    if len(parts) != 3:
        raise MalformedHeader(
            f"The {header} parameter {key}* is not of the form charset'language'value"
        )
    charset, _language, encoded = parts
    codec = _CHARSETS.get(charset.lower())
    if codec is None:
        raise MalformedHeader(
            f"The {header} parameter {key}* uses an unsupported charset {charset!r} (use UTF-8)"
        )
    if _BAD_PERCENT.search(encoded):
        raise MalformedHeader(f"The {header} parameter {key}* has a bad percent-encoding")
    try:
        return unquote_to_bytes(encoded).decode(codec)
    except UnicodeDecodeError as exc:
        raise MalformedHeader(f"The {header} parameter {key}* is not valid {charset}") from exc


def clean_filename(filename: str) -> str:
    """The name a file is kept under: its last path segment (old browsers sent whole Windows
    paths), without control characters (PostgreSQL cannot store NUL) and outer whitespace."""
    name = re.split(r"[\\/]", filename)[-1]
    return "".join(c for c in name if unicodedata.category(c) != "Cc").strip()
