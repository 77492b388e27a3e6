"""Tencent Cloud SMS (API 3.0, version 2021-01-11, `SendSms`) with TC3-HMAC-SHA256 signing."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any, NoReturn

import httpx

from vidgate.auth.sms.base import (
    SmsSendError,
    post_for_json,
    scrub_code,
    status_retryable,
)

SERVICE = "sms"
API_VERSION = "2021-01-11"
DEFAULT_ENDPOINT = "https://sms.tencentcloudapi.com"
CONTENT_TYPE = "application/json; charset=utf-8"
ALGORITHM = "TC3-HMAC-SHA256"

# Sending the same request again cannot succeed: the number, sign, template, app or
# credentials are wrong. Everything else (limits, balance, expired clock skew) may pass later.
NON_RETRYABLE_CODES = frozenset(
    {
        "InvalidParameterValue.IncorrectPhoneNumber",
        "InvalidParameterValue.TemplateParameterFormatError",
        "InvalidParameterValue.SdkAppIdNotExist",
        "FailedOperation.SignatureIncorrectOrUnapproved",
        "FailedOperation.TemplateIncorrectOrUnapproved",
        "FailedOperation.PhoneNumberInBlacklist",
        "FailedOperation.PhoneNumberParseFail",
        "UnauthorizedOperation.SmsSdkAppIdVerifyFail",
        "UnsupportedOperation.UnsupportedRegion",
        "AuthFailure.SignatureFailure",
        "AuthFailure.SecretIdNotFound",
        "AuthFailure.InvalidSecretId",
        "AuthFailure.UnauthorizedOperation",
    }
)


def _hmac_sha256(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def tc3_authorization(
    secret_id: str,
    secret_key: str,
    *,
    timestamp: int,
    host: str,
    payload: bytes,
    service: str = SERVICE,
    content_type: str = CONTENT_TYPE,
) -> str:
    """The `Authorization` header for a POST to `/` signing content-type and host."""
    # The credential date is the UTC date of the timestamp; a local date breaks around midnight.
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    signed_headers = "content-type;host"
    canonical_request = "\n".join(
        [
            "POST",
            "/",
            "",
            f"content-type:{content_type.strip().lower()}\nhost:{host.strip().lower()}\n",
            signed_headers,
            hashlib.sha256(payload).hexdigest(),
        ]
    )
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = "\n".join(
        [
            ALGORITHM,
            str(timestamp),
            scope,
            hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
        ]
    )
    k_date = _hmac_sha256(f"TC3{secret_key}".encode(), date)
    k_service = _hmac_sha256(k_date, service)
    k_signing = _hmac_sha256(k_service, "tc3_request")
    signature = hmac.new(k_signing, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    return (
        f"{ALGORITHM} Credential={secret_id}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )


def host_header(endpoint: str) -> str:
    """host[:port] of the endpoint, as sent in Host and signed."""
    url = httpx.URL(endpoint)
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{host}:{url.port}" if url.port is not None else host


class TencentSmsSender:
    """Sends the code with an approved template: `{1}` is the code, `{2}` optionally minutes."""

    name = "tencent"

    def __init__(
        self,
        secret_id: str,
        secret_key: str,
        sdk_app_id: str,
        sign_name: str,
        template_id: str,
        region: str = "ap-guangzhou",
        endpoint: str = DEFAULT_ENDPOINT,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
        template_params_include_ttl_minutes: int | None = None,
    ) -> None:
        self._secret_id = secret_id
        self._secret_key = secret_key
        self._sdk_app_id = sdk_app_id
        self._sign_name = sign_name
        self._template_id = template_id
        self._region = region
        self._url = endpoint.rstrip("/") + "/"
        self._host = host_header(endpoint)
        self._ttl_minutes = template_params_include_ttl_minutes
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    def _payload(self, phone_e164: str, code: str) -> bytes:
        params = [code] if self._ttl_minutes is None else [code, str(self._ttl_minutes)]
        body = {
            "PhoneNumberSet": [phone_e164],
            "SmsSdkAppId": self._sdk_app_id,
            "SignName": self._sign_name,
            "TemplateId": self._template_id,
            "TemplateParamSet": params,
        }
        # The exact bytes sent are the bytes hashed into the signature.
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    async def send_code(self, phone_e164: str, code: str) -> None:
        digits = phone_e164[1:]
        if not (phone_e164.startswith("+") and digits.isascii() and digits.isdigit()):
            raise SmsSendError("tencent: phone number is not in E.164 form", retryable=False)
        payload = self._payload(phone_e164, code)
        timestamp = int(time.time())
        headers = {
            "Authorization": tc3_authorization(
                self._secret_id,
                self._secret_key,
                timestamp=timestamp,
                host=self._host,
                payload=payload,
            ),
            "Content-Type": CONTENT_TYPE,
            "Host": self._host,
            "X-TC-Action": "SendSms",
            "X-TC-Version": API_VERSION,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": self._region,
        }
        status, body = await post_for_json(
            self._client, "tencent", self._url, content=payload, headers=headers
        )
        self._check(status, body, code)

    def _check(self, status: int, body: Any, code: str) -> None:
        result = body.get("Response") if isinstance(body, dict) else None
        if not isinstance(result, dict):
            raise SmsSendError(
                f"tencent: unexpected HTTP {status} response", retryable=status_retryable(status)
            )
        request_id = result.get("RequestId")
        error = result.get("Error")
        if isinstance(error, dict):
            self._fail(str(error.get("Code", "")), error.get("Message"), request_id, code)
        statuses = result.get("SendStatusSet")
        first = statuses[0] if isinstance(statuses, list) and statuses else None
        if not isinstance(first, dict):
            raise SmsSendError(
                f"tencent: HTTP {status} response without a send status (RequestId {request_id})",
                retryable=True,
            )
        # Per-number success is spelled "Ok", unlike the error codes.
        if first.get("Code") == "Ok" and status == 200:
            return
        self._fail(str(first.get("Code", "")), first.get("Message"), request_id, code)

    @staticmethod
    def _fail(vendor_code: str, message: object, request_id: object, code: str) -> NoReturn:
        text = scrub_code(str(message or ""), code)
        raise SmsSendError(
            f"tencent: {vendor_code}: {text} (RequestId {request_id})",
            vendor_code=vendor_code or None,
            retryable=vendor_code not in NON_RETRYABLE_CODES,
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
