"""WeChat Pay API v3 (direct merchant) behind the `PaymentGateway` protocol.

Native (QR code) and H5 (mobile browser) orders, query and close by `out_trade_no`, and payment
notifications. Requests are signed with the merchant API key; responses and notifications are
verified with the "WeChat Pay public key" (`PUB_KEY_ID_…`), the mode WeChat gives new merchants,
so no platform certificate is ever downloaded. Protocol facts: docs/vendors.md
§3.

HTTP goes through our own `httpx.AsyncClient`; `wechatpayv3` supplies the signing, verifying and
decrypting primitives. Its clients are not used: the sync one blocks on `requests`, the async one
needs `aiofiles` (not a vidgate dependency), both hard-code the API host in a private attribute,
and neither checks the freshness of a signature.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import quote

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from wechatpayv3.utils import (  # type: ignore[import-untyped]
    aes_decrypt,
    build_authorization,
    load_private_key,
    load_public_key,
    rsa_verify,
)

from vidgate.vendors import GatewayName

from .gateway import (
    Acknowledgement,
    Checkout,
    CheckoutRequest,
    GatewayError,
    GatewayPayment,
    GatewayRefund,
    InvalidNotification,
    PaymentState,
    RefundNotice,
    RefundRefused,
    RefundRequest,
    RefundState,
    VerifiedEvent,
)

DEFAULT_BASE_URL = "https://api.mch.weixin.qq.com"
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
# WeChat signs with a timestamp; one older or newer than this is a replay (or a broken clock).
MAX_CLOCK_SKEW_SECONDS = 300
REFUND_PATH = "/v3/refund/domestic/refunds"
# A refund's `status` (in answers) or `refund_status` (in notifications) as vidgate's view.
# ABNORMAL: the money could not reach the payer (a closed card, say) and waits for the merchant
# to act in the console, so it is neither back nor given up: pending.
_REFUND_STATES: dict[str, RefundState] = {
    "SUCCESS": "succeeded",
    "PROCESSING": "pending",
    "ABNORMAL": "pending",
    "CLOSED": "failed",
}
REASON_MAX = 80  # WeChat's limit on a refund's reason, in characters
CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")  # WeChat writes times in +08:00

# `trade_state` → vidgate's view (docs/vendors.md §3). REFUND means the payment succeeded and
# a refund was started afterwards: the money (some or all of it) went back, so it is no reason
# to grant credits; refunds themselves are followed through refund notifications.
_TRADE_STATES: dict[str, PaymentState] = {
    "SUCCESS": "paid",
    "REFUND": "refunded",
    "NOTPAY": "pending",
    "USERPAYING": "pending",
    "CLOSED": "expired",
    "REVOKED": "expired",
    "PAYERROR": "failed",
}


class WeChatPayError(GatewayError):
    """WeChat Pay answered with an error: `status_code` and its `code` (e.g. `PARAM_ERROR`)."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(f"WeChat Pay answered HTTP {status_code} {code}: {message}")
        self.status_code = status_code
        self.code = code


class WeChatOrderNotFound(WeChatPayError):
    """WeChat has no order with this `out_trade_no` (`ORDER_NOT_EXIST`)."""


class WeChatPayGateway:
    """One WeChat Pay merchant (`mchid`) and app (`appid`).

    `private_key_pem` is the merchant API key (`apiclient_key.pem`) and `cert_serial_no` the
    serial of its certificate; `platform_public_key_pem` / `platform_public_key_id` are the
    WeChat Pay public key and its id from the merchant console. Keys may be full PEM or the bare
    base64 body. `apiv3_key` decrypts notification resources.
    """

    name: GatewayName = "wechat"  # the protocol's type: the attribute is mutable

    def __init__(
        self,
        *,
        mchid: str,
        appid: str,
        apiv3_key: str,
        private_key_pem: str,
        cert_serial_no: str,
        platform_public_key_pem: str,
        platform_public_key_id: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 15.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if len(apiv3_key.encode()) != 32:
            raise ValueError("the APIv3 key must be exactly 32 ASCII characters")
        if not platform_public_key_id:
            raise ValueError("platform_public_key_id is required")
        self.mchid = mchid
        self.appid = appid
        self._apiv3_key = apiv3_key
        self._private_key = _rsa_private_key(private_key_pem)
        self._cert_serial_no = cert_serial_no
        self._platform_key = _rsa_public_key(platform_public_key_pem)
        self._platform_key_id = platform_public_key_id
        self._base_url = base_url.rstrip("/")
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout)

    # -----------------------------------------------------------------------------------------
    # Orders
    # -----------------------------------------------------------------------------------------

    async def create(self, request: CheckoutRequest) -> Checkout:
        """Place a Native or H5 order whose `out_trade_no` is vidgate's payment id."""
        if request.currency != "CNY":
            raise ValueError(f"WeChat Pay charges in CNY only, not {request.currency}")
        if request.amount_minor <= 0:
            raise ValueError("the amount must be at least 1 fen")
        if request.expires_at.tzinfo is None:
            raise ValueError("expires_at must be timezone-aware")
        body: dict[str, Any] = {
            "appid": self.appid,
            "mchid": self.mchid,
            "description": request.description,
            "out_trade_no": request.payment_id,
            "time_expire": _rfc3339(request.expires_at),
            "notify_url": request.notify_url,
            "amount": {"total": request.amount_minor, "currency": "CNY"},
        }
        if request.scene == "h5":
            if not request.client_ip:
                raise ValueError("an H5 order needs the payer's IP address (client_ip)")
            body["scene_info"] = {
                "payer_client_ip": request.client_ip,
                "h5_info": {"type": "Wap"},
            }
            answer = await self._call("POST", "/v3/pay/transactions/h5", body)
            return Checkout(provider_ref=request.payment_id, h5_url=_text_field(answer, "h5_url"))
        answer = await self._call("POST", "/v3/pay/transactions/native", body)
        return Checkout(provider_ref=request.payment_id, code_url=_text_field(answer, "code_url"))

    async def query(self, payment_id: str, provider_ref: str) -> GatewayPayment:
        """The order's state at WeChat; raises `WeChatOrderNotFound` if it was never placed."""
        path = f"/v3/pay/transactions/out-trade-no/{_segment(provider_ref)}"
        answer = await self._call("GET", f"{path}?mchid={quote(self.mchid, safe='')}")
        trade_state = answer.get("trade_state")
        state = _TRADE_STATES.get(trade_state) if isinstance(trade_state, str) else None
        if state is None:
            raise GatewayError(f"WeChat Pay answered an unknown trade_state {trade_state!r}")
        amount = answer.get("amount")
        amount = amount if isinstance(amount, dict) else {}
        total = amount.get("total")
        currency = amount.get("currency")
        transaction_id = answer.get("transaction_id")
        try:
            paid_at = _parse_time(answer.get("success_time"))
        except ValueError as exc:
            raise GatewayError(f"WeChat Pay answered a bad success_time: {exc}") from None
        return GatewayPayment(
            state=state,
            amount_minor=total if _is_int(total) else None,
            currency=currency if isinstance(currency, str) else None,
            paid_at=paid_at,
            transaction_id=transaction_id if isinstance(transaction_id, str) else None,
            raw=answer,
        )

    async def close(self, payment_id: str, provider_ref: str) -> None:
        """Close an unpaid order so it can no longer be paid (WeChat answers 204)."""
        path = f"/v3/pay/transactions/out-trade-no/{_segment(provider_ref)}/close"
        await self._call("POST", path, {"mchid": self.mchid})

    async def refund(self, request: RefundRequest) -> GatewayRefund:
        """Ask for a refund by `out_trade_no`; `out_refund_no` is vidgate's refund id, so the
        same request again is the same refund. WeChat usually answers PROCESSING and sends a
        refund notification (REFUND.SUCCESS / ABNORMAL / CLOSED) to `notify_url` later."""
        body: dict[str, Any] = {
            "out_trade_no": request.provider_ref or request.payment_id,
            "out_refund_no": request.refund_id,
            "reason": request.reason[:REASON_MAX],
            "notify_url": request.notify_url,
            "amount": {
                "refund": request.amount_minor,
                "total": request.total_minor,
                "currency": "CNY",
            },
        }
        try:
            answer = await self._call("POST", REFUND_PATH, body)
        except WeChatPayError as exc:
            if 400 <= exc.status_code < 500 and exc.status_code != 429:
                raise RefundRefused(str(exc)) from exc
            raise
        notice = _refund_from(answer, answer.get("status"))
        if notice.amount_minor is None:
            raise GatewayError("WeChat Pay's refund answer has no amount.refund")
        return GatewayRefund(
            gateway_id=notice.gateway_id,
            state=notice.state,
            amount_minor=notice.amount_minor,
            currency="CNY",
            raw=answer,
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    # -----------------------------------------------------------------------------------------
    # Notifications
    # -----------------------------------------------------------------------------------------

    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> VerifiedEvent:
        """Check the platform signature and its age, decrypt `resource`, check it is ours.

        `body` must be the raw bytes received: the signature covers them exactly.
        """
        try:
            return self._verify_notification(headers, body)
        except InvalidNotification:
            raise
        except Exception as exc:
            # Whatever a hostile body trips over (bad base64, a wrong nonce length, odd JSON
            # types) is a failed verification, not a server error.
            raise InvalidNotification(f"malformed notification ({type(exc).__name__})") from None

    def acknowledge(self) -> Acknowledgement:
        return Acknowledgement(204)

    def reject(self, message: str) -> Acknowledgement:
        # WeChat takes 200/204 as received and any 4xx/5xx as "not received, send it again",
        # with `{"code": "FAIL", "message": …}` as the body (docs/vendors.md §3). 400 because
        # the notification itself failed verification; a 5xx would read as our outage.
        body = json.dumps({"code": "FAIL", "message": message}, ensure_ascii=False)
        return Acknowledgement(400, body.encode())

    def _verify_notification(self, headers: Mapping[str, str], body: bytes) -> VerifiedEvent:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidNotification("the body is not UTF-8") from None
        self._verify_signature(headers, text)
        envelope = json.loads(text)
        if not isinstance(envelope, dict):
            raise InvalidNotification("the body is not a JSON object")
        event_id = envelope.get("id")
        if not isinstance(event_id, str) or not event_id:
            raise InvalidNotification("the notification has no id")
        if envelope.get("resource_type") != "encrypt-resource":
            raise InvalidNotification("resource_type is not encrypt-resource")
        transaction = self._decrypt(envelope.get("resource"))
        if transaction.get("mchid") != self.mchid:
            raise InvalidNotification("the notification is for another merchant (mchid)")
        event_type = envelope.get("event_type")
        if isinstance(event_type, str) and event_type.startswith("REFUND."):
            # A refund's resource names no appid; its mchid and the key that decrypted it say
            # it is ours.
            try:
                notice = _refund_from(transaction, transaction.get("refund_status"))
            except GatewayError as exc:
                raise InvalidNotification(str(exc)) from None
            return VerifiedEvent(
                event_id=event_id,
                state=None,
                payment_id=notice.payment_id,
                provider_ref=notice.payment_id,
                amount_minor=notice.amount_minor,
                currency="CNY",
                transaction_id=notice.transaction_id,
                raw={**envelope, "resource": transaction},
                refunds=(notice,),
            )
        if transaction.get("appid") != self.appid:
            raise InvalidNotification("the notification is for another app (appid)")

        out_trade_no = transaction.get("out_trade_no")
        if not isinstance(out_trade_no, str) or not out_trade_no:
            raise InvalidNotification("the transaction has no out_trade_no")
        amount = transaction.get("amount")
        amount = amount if isinstance(amount, dict) else {}
        total = amount.get("total")
        currency = amount.get("currency")
        transaction_id = transaction.get("transaction_id")
        try:
            paid_at = _parse_time(transaction.get("success_time"))
        except ValueError:
            raise InvalidNotification("the transaction has a bad success_time") from None
        return VerifiedEvent(
            event_id=event_id,
            state="paid" if transaction.get("trade_state") == "SUCCESS" else None,
            payment_id=out_trade_no,
            provider_ref=out_trade_no,
            amount_minor=total if _is_int(total) else None,
            currency=currency if isinstance(currency, str) else None,
            paid_at=paid_at,
            transaction_id=transaction_id if isinstance(transaction_id, str) else None,
            raw={**envelope, "resource": transaction},
        )

    def _decrypt(self, resource: Any) -> dict[str, Any]:
        """The AEAD_AES_256_GCM resource, decrypted with the APIv3 key and parsed."""
        if not isinstance(resource, dict):
            raise InvalidNotification("the notification has no resource")
        if resource.get("algorithm") != "AEAD_AES_256_GCM":
            raise InvalidNotification(f"unsupported algorithm {resource.get('algorithm')!r}")
        nonce = resource.get("nonce")
        ciphertext = resource.get("ciphertext")
        associated_data = resource.get("associated_data") or ""
        if not (
            isinstance(nonce, str)
            and nonce
            and isinstance(ciphertext, str)
            and ciphertext
            and isinstance(associated_data, str)
        ):
            raise InvalidNotification("the resource lacks nonce or ciphertext")
        plaintext = aes_decrypt(
            nonce=nonce,
            ciphertext=ciphertext,
            associated_data=associated_data,
            apiv3_key=self._apiv3_key,
        )
        if plaintext is None:  # the GCM tag did not match: altered, or another APIv3 key
            raise InvalidNotification("the resource does not decrypt with our APIv3 key")
        transaction = json.loads(plaintext)
        if not isinstance(transaction, dict):
            raise InvalidNotification("the decrypted resource is not a JSON object")
        return transaction

    # -----------------------------------------------------------------------------------------
    # Transport
    # -----------------------------------------------------------------------------------------

    def _verify_signature(self, headers: Mapping[str, str], body: str) -> None:
        """Raise InvalidNotification unless the Wechatpay-* headers sign `body` freshly."""
        lowered = {key.lower(): value for key, value in headers.items()}
        timestamp = lowered.get("wechatpay-timestamp")
        nonce = lowered.get("wechatpay-nonce")
        signature = lowered.get("wechatpay-signature")
        serial = lowered.get("wechatpay-serial")
        if not (timestamp and nonce and signature and serial):
            raise InvalidNotification("Wechatpay-* signature headers are missing")
        signature_type = lowered.get("wechatpay-signature-type", SIGNATURE_TYPE)
        if signature_type != SIGNATURE_TYPE:
            raise InvalidNotification(f"unsupported signature type {signature_type!r}")
        if serial != self._platform_key_id:
            raise InvalidNotification(f"signed with an unknown key {serial!r}")
        if not timestamp.isdigit() or len(timestamp) > 12:
            raise InvalidNotification("Wechatpay-Timestamp is not a Unix time")
        if abs(time.time() - int(timestamp)) > MAX_CLOCK_SKEW_SECONDS:
            raise InvalidNotification("Wechatpay-Timestamp is more than 5 minutes off")
        if not rsa_verify(timestamp, nonce, body, signature, self._platform_key):
            raise InvalidNotification("the platform signature does not match")

    async def _call(
        self, method: Literal["GET", "POST"], path: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Send one signed request; the verified JSON answer ({} for 204), or GatewayError."""
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")) if body else None
        authorization = build_authorization(
            path, method, self.mchid, self._cert_serial_no, self._private_key, data=content
        )
        headers = {
            "Authorization": authorization,
            "Accept": "application/json",
            "User-Agent": "vidgate (wechatpayv3 signing)",
            # In public-key mode WeChat expects the key id on requests as well.
            "Wechatpay-Serial": self._platform_key_id,
        }
        if content is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = await self._client.request(
                method,
                self._base_url + path,
                content=content.encode() if content is not None else None,
                headers=headers,
            )
        except httpx.HTTPError as exc:
            raise GatewayError(f"WeChat Pay {method} {path} failed: {exc!r}") from None
        if not response.is_success:
            raise _error_from(response)
        try:
            text = response.content.decode("utf-8")
            self._verify_signature(response.headers, text)
        except (UnicodeDecodeError, InvalidNotification) as exc:
            raise GatewayError(
                f"WeChat Pay's answer to {method} {path} is not authentic: {exc}"
            ) from None
        if response.status_code == 204 or not text:
            return {}
        try:
            answer = json.loads(text)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise GatewayError(f"WeChat Pay answered {method} {path} with a non-object body")
        return answer


def _refund_from(refund: Mapping[str, Any], status: Any) -> RefundNotice:
    """A refund as WeChat answers or notifies it (`status` from `status` / `refund_status`)."""
    refund_id = refund.get("refund_id")
    out_trade_no = refund.get("out_trade_no")
    state = _REFUND_STATES.get(status) if isinstance(status, str) else None
    if not isinstance(refund_id, str) or not refund_id:
        raise GatewayError("WeChat Pay's refund has no refund_id")
    if not isinstance(out_trade_no, str) or not out_trade_no:
        raise GatewayError("WeChat Pay's refund has no out_trade_no")
    if state is None:
        raise GatewayError(f"WeChat Pay answered an unknown refund status {status!r}")
    amount = refund.get("amount")
    amount = amount if isinstance(amount, dict) else {}
    refunded = amount.get("refund")
    out_refund_no = refund.get("out_refund_no")
    transaction_id = refund.get("transaction_id")
    return RefundNotice(
        kind="refund",
        gateway_id=refund_id,
        state=state,
        amount_minor=refunded if _is_int(refunded) else None,
        currency="CNY",
        payment_id=out_trade_no,
        transaction_id=transaction_id if isinstance(transaction_id, str) else None,
        refund_id=out_refund_no if isinstance(out_refund_no, str) else None,
    )


def _error_from(response: httpx.Response) -> WeChatPayError:
    """WeChat's `{"code", "message"}` error as an exception (a generic one if the body isn't)."""
    code, message = "HTTP_ERROR", response.text[:200]
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        code = str(payload.get("code") or code)
        message = str(payload.get("message") or message)
    if response.status_code == 404 and code == "ORDER_NOT_EXIST":
        return WeChatOrderNotFound(response.status_code, code, message)
    return WeChatPayError(response.status_code, code, message)


def _rsa_private_key(pem: str) -> rsa.RSAPrivateKey:
    try:
        key = load_private_key(pem)
    except Exception:  # the library raises a bare Exception
        raise ValueError("the merchant private key is not a PEM (PKCS#8) RSA key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the merchant private key is not an RSA key")
    return key


def _rsa_public_key(pem: str) -> rsa.RSAPublicKey:
    try:
        key = load_public_key(pem)
    except Exception:  # the library raises a bare Exception
        raise ValueError("the WeChat Pay public key is not a PEM RSA public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the WeChat Pay public key is not an RSA key")
    return key


def _rfc3339(moment: datetime) -> str:
    """`2025-01-01T12:00:00+08:00`: the form WeChat documents for `time_expire`."""
    return moment.astimezone(CHINA_STANDARD_TIME).isoformat(timespec="seconds")


def _parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time from WeChat as an aware datetime; None if absent."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a time: {value!r}")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"a time without an offset: {value!r}")
    return moment


def _segment(value: str) -> str:
    """One path segment, percent-encoded (the signature covers the encoded form)."""
    return quote(value, safe="")


def _text_field(answer: Mapping[str, Any], name: str) -> str:
    value = answer.get(name)
    if not isinstance(value, str) or not value:
        raise GatewayError(f"WeChat Pay's answer has no {name}")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
