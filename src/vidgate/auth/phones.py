"""Phone numbers in, E.164 out."""

from __future__ import annotations

import re

import phonenumbers

from vidgate.errors import Unprocessable

_SEPARATORS = re.compile(r"[\s().\-]+")
# The contract's "86-13800138000": country code, a dash, national number.
_CC_DASH_NSN = re.compile(r"^\+?(\d{1,3})-(\d[\d\s().\-]*)$")

_EU = {
    "AT",
    "BE",
    "BG",
    "HR",
    "CY",
    "CZ",
    "DK",
    "EE",
    "FI",
    "FR",
    "DE",
    "GR",
    "HU",
    "IE",
    "IT",
    "LV",
    "LT",
    "LU",
    "MT",
    "NL",
    "PL",
    "PT",
    "RO",
    "SK",
    "SI",
    "ES",
    "SE",
    "GB",
    "CH",
    "NO",
    "IS",
    "LI",
    "GG",
    "JE",
    "IM",
}


_TEXTABLE = {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}


class InvalidPhoneNumber(Unprocessable):
    """The phone number is not a valid mobile number for its country (a number without a country
    code is read as a Chinese one)."""


def normalize_phone(raw: str, default_region: str | None = "CN") -> phonenumbers.PhoneNumber:
    """Parse `86-13800138000`, `+8613800138000`, `+86 138 0013 8000` and the like.

    A number without a country code (no `+`, no `CC-`) is read as a number of `default_region`;
    anything that is not a valid number for its country is rejected.
    """
    text = raw.strip()
    match = _CC_DASH_NSN.match(text)
    if match:
        text = "+" + match.group(1) + _SEPARATORS.sub("", match.group(2))
    elif text.startswith("00"):
        text = "+" + text[2:]
    if not text.startswith("+") and not default_region:
        raise InvalidPhoneNumber(
            "Invalid phone number: include the country code, e.g. 86-13800138000 or +8613800138000"
        )
    if len(text) > 40:
        raise InvalidPhoneNumber("Invalid phone number: too long")
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(f"Invalid phone number: {exc}") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber("Invalid phone number: not a valid number for its country")
    if phonenumbers.number_type(number) not in _TEXTABLE:
        raise InvalidPhoneNumber("Invalid phone number: not a mobile number")
    return number


def e164(number: phonenumbers.PhoneNumber) -> str:
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def region_for(number: phonenumbers.PhoneNumber) -> str:
    """The account region (`CN | US | EU | ASIA`) a phone number suggests."""
    country = phonenumbers.region_code_for_number(number) or ""
    if country == "CN":
        return "CN"
    if number.country_code == 1:
        return "US"
    if country in _EU:
        return "EU"
    return "ASIA"
