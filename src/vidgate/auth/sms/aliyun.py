"""Alibaba Cloud SMS (dysmsapi 2017-05-25, `SendSms`) over the signed RPC API."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote

import httpx

from vidgate.auth.sms.base import (
    SmsSendError,
    post_for_json,
    scrub_code,
    status_retryable,
)

API_VERSION = "2017-05-25"
DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com"

# Sending the same request again cannot succeed: the number, the sign name, the template or
# the credentials are wrong. Everything else (throttling, balance, server trouble) may pass later.
NON_RETRYABLE_CODES = frozenset(
    {
        "isv.MOBILE_NUMBER_ILLEGAL",
        "isv.SMS_SIGNATURE_ILLEGAL",
        "isv.SMS_TEMPLATE_ILLEGAL",
        "isv.TEMPLATE_MISSING_PARAMETERS",
        "isv.INVALID_JSON_PARAM",
        "isv.PARAM_LENGTH_LIMIT",
        "isv.INVALID_PARAMETERS",
        "isv.MOBILE_COUNT_OVER_LIMIT",
        "isv.BLACK_KEY_CONTROL_LIMIT",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "InvalidAccessKeyId.NotFound",
        "InvalidAccessKeyId.Inactive",
    }
)


def percent_encode(value: str) -> str:
    """RFC 3986 encoding of UTF-8 text, as Alibaba Cloud canonicalizes it."""
    # quote() keeps only A-Z a-z 0-9 - _ . ~ with safe="", so space is %20 and "*" is %2A,
    # which is what the signature expects (urlencode's "+" for space would not match).
    return quote(value, safe="")


def rpc_signature(method: str, params: Mapping[str, str], secret: str) -> str:
    """The `Signature` value for RPC-style params (all params except `Signature` itself)."""
    canonical = "&".join(
        f"{percent_encode(key)}={percent_encode(params[key])}" for key in sorted(params)
    )
    string_to_sign = f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def aliyun_phone_number(phone_e164: str) -> str:
    """Mainland China numbers go without the country code; others as digits without '+'."""
    digits = phone_e164[1:]
    if not (phone_e164.startswith("+") and digits.isascii() and digits.isdigit()):
        raise SmsSendError("aliyun: phone number is not in E.164 form", retryable=False)
    # Country codes are prefix-free, so "86" here can only be China (+852/+853 start "85").
    return digits[2:] if digits.startswith("86") else digits


class AliyunSmsSender:
    """Sends the code with an approved template whose variable is `${code}`."""

    name = "aliyun"

    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str,
        sign_name: str,
        template_code: str,
        endpoint: str = DEFAULT_ENDPOINT,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._access_key_id = access_key_id
        self._access_key_secret = access_key_secret
        self._sign_name = sign_name
        self._template_code = template_code
        self._url = endpoint.rstrip("/") + "/"
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    def _params(self, phone_number: str, code: str) -> dict[str, str]:
        params = {
            "AccessKeyId": self._access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "PhoneNumbers": phone_number,
            "SignName": self._sign_name,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": str(uuid.uuid4()),
            "SignatureVersion": "1.0",
            "TemplateCode": self._template_code,
            # A JSON string inside the form; values must be strings or leading zeros are lost.
            "TemplateParam": json.dumps({"code": code}, separators=(",", ":")),
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": API_VERSION,
        }
        params["Signature"] = rpc_signature("POST", params, self._access_key_secret)
        return params

    async def send_code(self, phone_e164: str, code: str) -> None:
        params = self._params(aliyun_phone_number(phone_e164), code)
        status, body = await post_for_json(self._client, "aliyun", self._url, data=params)
        if not isinstance(body, dict) or not body.get("Code"):
            raise SmsSendError(
                f"aliyun: unexpected HTTP {status} response", retryable=status_retryable(status)
            )
        vendor_code = str(body["Code"])
        if vendor_code == "OK" and status == 200:
            return
        message = scrub_code(str(body.get("Message", "")), code)
        raise SmsSendError(
            f"aliyun: {vendor_code}: {message} (HTTP {status}, RequestId {body.get('RequestId')})",
            vendor_code=vendor_code,
            retryable=vendor_code not in NON_RETRYABLE_CODES,
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
