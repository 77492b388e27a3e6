"""A local model of WeChat Pay API v3 for one direct merchant, for development and tests.

It serves Native and H5 order creation, query and close at WeChat's paths, and refunds
(`/v3/refund/domestic/refunds`), checks the merchant's `WECHATPAY2-SHA256-RSA2048` request
signatures, answers with WeChat's `{"code", "message"}` errors and signs every answer with its own
platform key (the "WeChat Pay public key" mode, id `PUB_KEY_ID_…`). A pay page stands in for the
WeChat app: paying there (or through `pay()`) settles the order and POSTs an
AEAD_AES_256_GCM-encrypted, platform-signed notification to the order's `notify_url`, retrying on
failure. Faults for the next API request are set through `set_next_fault()` or
`POST /_control/faults`. A refund is answered PROCESSING, then settles (SUCCESS, or the outcome
set with `set_refund_outcome()`) and its REFUND.* notification, encrypted and signed the same way,
is POSTed to the refund's `notify_url`. Nothing is persisted.

Crypto is done with `cryptography` directly, not with `wechatpayv3` as the gateway does, so a
test of one against the other is a test of two implementations. Protocol facts:
docs/vendors.md §3; where WeChat's behaviour is unconfirmed the choice is
noted beside the code.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import html
import ipaddress
import json
import logging
import re
import secrets
import string
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from vidgate.emulators.background import Background
from vidgate.emulators.pages import html_page

PREFIX = "/_emulator/wechatpay"
NATIVE_PATH = "/v3/pay/transactions/native"
H5_PATH = "/v3/pay/transactions/h5"
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
MAX_CLOCK_SKEW_SECONDS = 300  # requests signed further from now are refused
# Without `time_expire` an order stays payable this long. WeChat's default is UNCONFIRMED.
DEFAULT_ORDER_SECONDS = 2 * 3600
FAULTS = (
    "system_error",  # 500 SYSTEM_ERROR before the request is looked at
    "frequency_limited",  # 429 FREQUENCY_LIMITED
    "bad_signature",  # the answer is signed with a key that is not the platform's
    "tampered_body",  # the answer is altered after signing (as a man in the middle would)
    "unknown_serial",  # the answer names another key in Wechatpay-Serial
)
CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")

_OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
_AUTH_PARAM = re.compile(r'(\w+)="([^"]*)"')
_H5_TYPES = frozenset({"Wap", "iOS", "Android"})
_STATE_DESC = {  # the emulator's own wording for trade_state_desc
    "NOTPAY": "not paid",
    "SUCCESS": "paid",
    "REFUND": "refund started",
    "CLOSED": "closed",
}
REFUND_PATH = "/v3/refund/domestic/refunds"
REFUND_OUTCOMES = ("SUCCESS", "ABNORMAL", "CLOSED")
_OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")
_ALNUM = string.ascii_letters + string.digits
_PAGE_TITLE = "WeChat Pay (EMULATED) — vidgate"

log = logging.getLogger(__name__)


class PaymentRefused(Exception):
    """The order cannot be paid: unknown, already paid, closed or expired."""


class _WeChatError(Exception):
    """An answer WeChat gives as HTTP `status` with `{"code", "message"}`."""

    def __init__(
        self, status: int, code: str, message: str, *, field_name: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field_name = field_name

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field_name is not None:
            body["detail"] = {"location": "body", "field": self.field_name}
        return body


def _param_error(field_name: str, message: str) -> _WeChatError:
    return _WeChatError(400, "PARAM_ERROR", message, field_name=field_name)


@dataclass(frozen=True)
class MerchantKeys:
    """A merchant API key pair and certificate serial, as the merchant console would issue."""

    private_key_pem: str  # PKCS#8, like apiclient_key.pem
    public_key_pem: str  # what the emulator verifies request signatures with
    cert_serial_no: str  # 40 upper-case hex digits


def generate_merchant_keys() -> MerchantKeys:
    """A fresh RSA-2048 merchant key pair and serial, for development and tests."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return MerchantKeys(
        private_key_pem=_private_pem(key),
        public_key_pem=_public_pem(key.public_key()),
        cert_serial_no=secrets.token_hex(20).upper(),
    )


def generate_platform_key() -> str:
    """A fresh RSA-2048 platform private key (PKCS#8 PEM), to share between processes."""
    return _private_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@dataclass
class EmulatedOrder:
    """One order as WeChat holds it."""

    out_trade_no: str
    trade_type: Literal["NATIVE", "MWEB"]
    request: dict[str, Any]  # the accepted body, to tell a repeat from a conflicting reuse
    appid: str
    mchid: str
    description: str
    notify_url: str
    total: int
    currency: str
    attach: str | None
    expires_at: float  # emulator clock
    created_at: float  # emulator clock
    token: str  # the pay page's key (`pr=` in code_url)
    prepay_id: str
    trade_state: Literal["NOTPAY", "SUCCESS", "REFUND", "CLOSED"] = "NOTPAY"
    transaction_id: str | None = None
    success_time: str | None = None
    payer_openid: str | None = None
    notification_id: str | None = None


@dataclass
class EmulatedRefund:
    """One refund as WeChat holds it."""

    out_refund_no: str
    refund_id: str
    out_trade_no: str
    transaction_id: str
    request: dict[str, Any]  # the accepted body, to tell a repeat from a conflicting reuse
    refund: int
    total: int
    reason: str | None
    notify_url: str | None
    create_time: str
    status: Literal["PROCESSING", "SUCCESS", "ABNORMAL", "CLOSED"] = "PROCESSING"
    success_time: str | None = None
    notification_id: str | None = None


@dataclass
class _Served:
    """What one API request is answered with, before signing."""

    status: int
    payload: dict[str, Any] | None
    code: str | None = None
    logged_body: Any = None
    authorized: bool = True


class WeChatPayEmulator:
    """WeChat Pay API v3 for one merchant (`mchid`) and app (`appid`).

    Mount `router()`; `public_base_url` is the absolute URL it is mounted at (ending in
    `/_emulator/wechatpay`) and is the gateway's base URL. Give the gateway
    `platform_public_key_pem` and `platform_public_key_id`. The platform key is generated unless
    `platform_private_key_pem` is given (`generate_platform_key()`); its id derives from it.
    Call `aclose()` when done.

    Signature timestamps are wall-clock time (the gateway checks them against its own clock);
    `clock` (epoch seconds) drives order times only: expiry, `success_time`, `create_time`.
    """

    def __init__(
        self,
        *,
        mchid: str,
        appid: str,
        apiv3_key: str,
        merchant_public_key_pem: str,
        public_base_url: str,
        merchant_cert_serial_no: str | None = None,
        platform_private_key_pem: str | None = None,
        clock: Callable[[], float] | None = None,
        notify_retry_delays: Sequence[float] = (0.2, 0.5, 1.0),
        notify_timeout: float = 5.0,
    ) -> None:
        if len(apiv3_key.encode()) != 32:
            raise ValueError("the APIv3 key must be exactly 32 ASCII characters")
        self.mchid = mchid
        self.appid = appid
        self.apiv3_key = apiv3_key
        self.public_base_url = public_base_url.rstrip("/")
        # None accepts any serial_no, as the merchant may hold several certificates.
        self.merchant_cert_serial_no = merchant_cert_serial_no
        # WeChat retries for about a day; the emulator keeps the same idea, quickly.
        self.notify_retry_delays = tuple(notify_retry_delays)
        self.notify_timeout = notify_timeout
        merchant_key = serialization.load_pem_public_key(merchant_public_key_pem.encode())
        if not isinstance(merchant_key, rsa.RSAPublicKey):
            raise ValueError("the merchant public key is not an RSA key")
        self._merchant_key = merchant_key
        # A given platform key lets several processes (API, workers) emulate one WeChat.
        self._platform_key = _rsa_private_key(platform_private_key_pem or generate_platform_key())
        self.platform_public_key_pem = _public_pem(self._platform_key.public_key())
        self.platform_public_key_id = _public_key_id(self._platform_key.public_key())
        self._clock = clock or time.time
        self._orders: dict[str, EmulatedOrder] = {}
        self._by_token: dict[str, str] = {}
        self._refunds: dict[str, EmulatedRefund] = {}  # by out_refund_no
        self._refund_outcome: Literal["SUCCESS", "ABNORMAL", "CLOSED"] = "SUCCESS"
        self._next_fault: str | None = None
        self._log: list[dict[str, Any]] = []
        self._deliveries: list[dict[str, Any]] = []
        self._background = Background()
        self._http: httpx.AsyncClient | None = None

    # -----------------------------------------------------------------------------------------
    # Hooks for tests and tools
    # -----------------------------------------------------------------------------------------

    @property
    def orders(self) -> dict[str, EmulatedOrder]:
        """Every order by `out_trade_no`, oldest first (copies: changing them changes nothing)."""
        return {key: replace(order) for key, order in self._orders.items()}

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request the API endpoints received, oldest first."""
        return list(self._log)

    @property
    def deliveries(self) -> list[dict[str, Any]]:
        """Every notification attempt: out_trade_no, notification id, attempt, status or error."""
        return list(self._deliveries)

    @property
    def refunds(self) -> dict[str, EmulatedRefund]:
        """Every refund by `out_refund_no`, oldest first (copies)."""
        return {key: replace(refund) for key, refund in self._refunds.items()}

    def set_refund_outcome(self, outcome: str) -> None:
        """What refunds asked for from now on end as: SUCCESS, ABNORMAL or CLOSED."""
        if outcome not in REFUND_OUTCOMES:
            raise ValueError(
                f"unknown refund outcome {outcome!r}; one of SUCCESS, ABNORMAL, CLOSED"
            )
        self._refund_outcome = outcome  # type: ignore[assignment]

    def refund_notification_for(
        self, out_refund_no: str, *, sign: bool = True
    ) -> tuple[dict[str, str], bytes]:
        """The refund's notification as it is now: (headers, body); `sign=False` signs it with
        a key that is not the platform's (a forgery)."""
        refund = self._refunds[out_refund_no]
        body = self._refund_notification_body(refund)
        signer = self._platform_key if sign else _throwaway_key()
        return _signature_headers(signer, self.platform_public_key_id, body), body

    async def notify_refund(self, out_refund_no: str, *, forged: bool = False) -> int | None:
        """POST the refund's notification once more (as WeChat's retries do), or a forgery of
        it; the merchant's HTTP status (None when it could not be reached)."""
        refund = self._refunds[out_refund_no]
        if refund.notify_url is None:
            return None
        headers, body = self.refund_notification_for(out_refund_no, sign=not forged)
        headers["Content-Type"] = "application/json"
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.notify_timeout)
        try:
            response = await self._http.post(refund.notify_url, content=body, headers=headers)
        except httpx.HTTPError:
            return None
        return response.status_code

    def set_next_fault(self, fault: str | None) -> None:
        """Make the next API request misbehave (one of `FAULTS`), or clear it."""
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
        self._next_fault = fault

    def pay_page_url(self, out_trade_no: str) -> str:
        """Where the payer approves the order (what code_url and h5_url lead to)."""
        order = self._orders[out_trade_no]
        return f"{self.public_base_url}/pay/{order.token}"

    async def pay(self, out_trade_no: str) -> EmulatedOrder:
        """Pay the order as the payer would on the pay page; the notification follows.

        Raises PaymentRefused if the order is unknown, paid, closed or expired.
        """
        order = self._orders.get(out_trade_no)
        if order is None:
            raise PaymentRefused(f"no order {out_trade_no!r}")
        self._settle(order)
        return replace(order)

    def notification_for(
        self,
        out_trade_no: str,
        *,
        tamper_amount: int | None = None,
        sign: bool = True,
        timestamp: int | None = None,
        key_id: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        apiv3_key: str | None = None,
        event_id: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """A notification about the order as it is now, for attack tests: (headers, body).

        `tamper_amount` replaces `amount.total`; with `sign=True` the result is a notification
        WeChat itself signed (the receiver must compare the amount with its order), with
        `sign=False` it is signed by a key that is not the platform's (a forgery). `overrides`
        replaces fields of the decrypted transaction, `apiv3_key` encrypts with another key,
        `timestamp` and `key_id` set Wechatpay-Timestamp and Wechatpay-Serial.
        """
        order = self._orders[out_trade_no]
        transaction = self._transaction(order)
        if tamper_amount is not None:
            transaction["amount"] = {**transaction["amount"], "total": tamper_amount}
            if "payer_total" in transaction["amount"]:
                transaction["amount"]["payer_total"] = tamper_amount
        transaction.update(overrides or {})
        body = self._notification_body(
            order, transaction, event_id=event_id, apiv3_key=apiv3_key or self.apiv3_key
        )
        signer = self._platform_key if sign else _throwaway_key()
        headers = _signature_headers(
            signer, key_id or self.platform_public_key_id, body, timestamp=timestamp
        )
        return headers, body

    def signature_headers(self, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        """Wechatpay-* headers signing `body` with the platform key (for crafting bodies)."""
        return _signature_headers(
            self._platform_key, self.platform_public_key_id, body, timestamp=timestamp
        )

    async def wait_idle(self) -> None:
        """Wait until every notification in flight is delivered or given up."""
        await self._background.wait()

    async def aclose(self) -> None:
        """Stop notification deliveries and close the HTTP client."""
        await self._background.cancel()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # -----------------------------------------------------------------------------------------
    # HTTP
    # -----------------------------------------------------------------------------------------

    def router(self) -> APIRouter:
        """WeChat's endpoints under /_emulator/wechatpay, the pay page and control endpoints."""
        router = APIRouter(prefix=PREFIX, tags=["emulators"], include_in_schema=False)
        router.add_api_route(NATIVE_PATH, self._create, methods=["POST"], response_model=None)
        router.add_api_route(H5_PATH, self._create, methods=["POST"], response_model=None)
        router.add_api_route(
            "/v3/pay/transactions/out-trade-no/{out_trade_no}",
            self._query,
            methods=["GET"],
            response_model=None,
        )
        router.add_api_route(
            "/v3/pay/transactions/id/{transaction_id}",
            self._query_by_id,
            methods=["GET"],
            response_model=None,
        )
        router.add_api_route(
            "/v3/pay/transactions/out-trade-no/{out_trade_no}/close",
            self._close,
            methods=["POST"],
            response_model=None,
        )
        router.add_api_route(
            REFUND_PATH, self._create_refund, methods=["POST"], response_model=None
        )
        router.add_api_route(
            REFUND_PATH + "/{out_refund_no}",
            self._query_refund,
            methods=["GET"],
            response_model=None,
        )
        router.add_api_route(
            "/_control/refunds", self._control_refunds, methods=["GET"], response_model=None
        )
        router.add_api_route(
            "/_control/refunds/{out_refund_no}/notify",
            self._control_notify_refund,
            methods=["POST"],
            response_model=None,
        )
        router.add_api_route(
            "/_control/refund_outcome",
            self._control_refund_outcome,
            methods=["POST"],
            response_model=None,
        )
        router.add_api_route("/pay/{token}", self._pay_page, methods=["GET"], response_model=None)
        router.add_api_route(
            "/pay/{token}", self._pay_decision, methods=["POST"], response_model=None
        )
        router.add_api_route(
            "/_control/faults", self._control_faults, methods=["POST"], response_model=None
        )
        router.add_api_route(
            "/_control/requests", self._control_requests, methods=["GET"], response_model=None
        )
        router.add_api_route(
            "/_control/orders", self._control_orders, methods=["GET"], response_model=None
        )
        router.add_api_route(
            "/_control/orders/{out_trade_no}/pay",
            self._control_pay,
            methods=["POST"],
            response_model=None,
        )
        return router

    async def _create(self, request: Request) -> Response:
        raw = await request.body()
        path, _ = _signed_path(request)
        return self._serve(request, raw, lambda: self._accept(path, raw))

    async def _query(self, request: Request, out_trade_no: str) -> Response:
        def answer() -> _Served:
            self._check_query_mchid(request)
            order = self._orders.get(out_trade_no)
            if order is None:
                raise _WeChatError(404, "ORDER_NOT_EXIST", "no such order")
            return _Served(200, self._transaction(order))

        return self._serve(request, await request.body(), answer)

    async def _query_by_id(self, request: Request, transaction_id: str) -> Response:
        def answer() -> _Served:
            self._check_query_mchid(request)
            for order in self._orders.values():
                if order.transaction_id == transaction_id:
                    return _Served(200, self._transaction(order))
            raise _WeChatError(404, "ORDER_NOT_EXIST", "no such order")

        return self._serve(request, await request.body(), answer)

    async def _close(self, request: Request, out_trade_no: str) -> Response:
        raw = await request.body()

        def answer() -> _Served:
            body = _json_object(raw)
            mchid = body.get("mchid")
            if not isinstance(mchid, str) or not mchid:
                raise _param_error("/mchid", "mchid is required")
            if mchid != self.mchid:
                raise _WeChatError(
                    400, "INVALID_REQUEST", "mchid is not the merchant that signed the request"
                )
            order = self._orders.get(out_trade_no)
            if order is None:
                raise _WeChatError(404, "ORDER_NOT_EXIST", "no such order")
            if order.trade_state in ("SUCCESS", "REFUND"):
                # The code WeChat uses for closing a paid order is UNCONFIRMED.
                raise _WeChatError(400, "ORDERPAID", "the order is paid and cannot be closed")
            # Closing a closed order again succeeds, as a retried close should.
            order.trade_state = "CLOSED"
            return _Served(204, None, logged_body=body)

        return self._serve(request, raw, answer)

    async def _create_refund(self, request: Request) -> Response:
        raw = await request.body()
        return self._serve(request, raw, lambda: self._accept_refund(raw))

    async def _query_refund(self, request: Request, out_refund_no: str) -> Response:
        def answer() -> _Served:
            refund = self._refunds.get(out_refund_no)
            if refund is None:
                raise _WeChatError(404, "RESOURCE_NOT_EXISTS", "no such refund")
            return _Served(200, self._refund_view(refund))

        return self._serve(request, await request.body(), answer)

    async def _control_refunds(self) -> Response:
        return JSONResponse({"refunds": [self._refund_view(r) for r in self._refunds.values()]})

    async def _control_notify_refund(self, request: Request, out_refund_no: str) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = {}
        if out_refund_no not in self._refunds:
            return JSONResponse({"detail": "no such refund"}, status_code=404)
        forged = isinstance(body, dict) and body.get("forged") is True
        status = await self.notify_refund(out_refund_no, forged=forged)
        return JSONResponse({"out_refund_no": out_refund_no, "status": status})

    async def _control_refund_outcome(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        outcome = body.get("outcome") if isinstance(body, dict) else None
        if outcome not in REFUND_OUTCOMES:
            return JSONResponse(
                {"detail": "outcome must be SUCCESS, ABNORMAL or CLOSED"}, status_code=422
            )
        self.set_refund_outcome(outcome)
        return JSONResponse({"outcome": outcome})

    async def _pay_page(self, request: Request, token: str) -> Response:
        order = self._order_by_token(token)
        if order is None:
            return _page("<h1>Order not found</h1><p>This payment link is not valid.</p>", 404)
        redirect_url = _http_url(request.query_params.get("redirect_url"))
        return self._order_page(request, order, redirect_url)

    async def _pay_decision(self, request: Request, token: str) -> Response:
        order = self._order_by_token(token)
        if order is None:
            return _page("<h1>Order not found</h1><p>This payment link is not valid.</p>", 404)
        form = await request.form()
        value = form.get("redirect_url")
        redirect_url = _http_url(value if isinstance(value, str) else None)
        try:
            self._settle(order)
        except PaymentRefused as exc:
            return self._order_page(request, order, redirect_url, error=str(exc), status=409)
        if redirect_url is not None:
            # H5: WeChat sends the browser back to the merchant's page afterwards.
            return RedirectResponse(redirect_url, status_code=303)
        return self._order_page(request, order, None)

    async def _control_faults(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        fault = body.get("next_request") if isinstance(body, dict) else None
        if fault is not None and fault not in FAULTS:
            return JSONResponse(
                {"detail": f"next_request must be one of {', '.join(FAULTS)} or null"},
                status_code=422,
            )
        self._next_fault = fault
        return JSONResponse({"next_request": fault})

    async def _control_requests(self) -> Response:
        return JSONResponse({"requests": self.requests})

    async def _control_orders(self) -> Response:
        return JSONResponse(
            {
                "orders": [
                    {**self._transaction(order), "pay_page": self.pay_page_url(key)}
                    for key, order in self._orders.items()
                ],
                "deliveries": self.deliveries,
            }
        )

    async def _control_pay(self, out_trade_no: str) -> Response:
        try:
            order = await self.pay(out_trade_no)
        except PaymentRefused as exc:
            return JSONResponse({"detail": str(exc)}, status_code=409)
        return JSONResponse(self._transaction(order))

    # -----------------------------------------------------------------------------------------
    # The API: signatures, faults, answers
    # -----------------------------------------------------------------------------------------

    def _serve(self, request: Request, raw: bytes, answer: Callable[[], _Served]) -> Response:
        """Take the next fault, check the signature, run `answer`, sign and log the result."""
        fault, self._next_fault = self._next_fault, None
        path, query = _signed_path(request)
        logged: Any = None
        with contextlib.suppress(ValueError):
            logged = json.loads(raw) if raw else None
        try:
            if fault == "system_error":
                raise _WeChatError(500, "SYSTEM_ERROR", "system busy, try again later")
            if fault == "frequency_limited":
                raise _WeChatError(429, "FREQUENCY_LIMITED", "too many requests")
            self._check_signature(request, path + query, raw)
            served = answer()
        except _WeChatError as exc:
            served = _Served(
                exc.status, exc.body(), code=exc.code, authorized=exc.code != "SIGN_ERROR"
            )
        self._log.append(
            {
                "at": self._clock(),
                "method": request.method,
                "path": path,
                "query": query,
                "body": logged,
                "authorized": served.authorized,
                "status": served.status,
                "code": served.code,
            }
        )
        return self._signed_response(served, fault)

    def _signed_response(self, served: _Served, fault: str | None) -> Response:
        """The answer with WeChat's Wechatpay-* signature headers (on errors too)."""
        payload = served.payload
        body = b"" if payload is None else _json_bytes(payload)
        signer = _throwaway_key() if fault == "bad_signature" else self._platform_key
        key_id = "PUB_KEY_ID_0000000000000000000000000000" if fault == "unknown_serial" else None
        headers = _signature_headers(signer, key_id or self.platform_public_key_id, body)
        headers["Request-ID"] = uuid.uuid4().hex
        if fault == "tampered_body" and payload is not None:
            body = _json_bytes(_tampered(payload))
        if served.status == 204:
            return Response(status_code=204, headers=headers)
        return Response(
            body, status_code=served.status, headers=headers, media_type="application/json"
        )

    def _check_signature(self, request: Request, signed_path: str, raw: bytes) -> None:
        """Verify the merchant's Authorization header (401 SIGN_ERROR unless it holds)."""
        scheme, _, params = request.headers.get("authorization", "").partition(" ")
        if scheme != SIGNATURE_TYPE:
            raise _WeChatError(401, "SIGN_ERROR", "Authorization is missing or not WECHATPAY2")
        fields: dict[str, str] = dict(_AUTH_PARAM.findall(params))
        missing = [
            name
            for name in ("mchid", "nonce_str", "signature", "timestamp", "serial_no")
            if not fields.get(name)
        ]
        if missing:
            raise _WeChatError(401, "SIGN_ERROR", f"Authorization lacks {', '.join(missing)}")
        if fields["mchid"] != self.mchid:
            # WeChat has no key to check another merchant's signature with.
            raise _WeChatError(401, "SIGN_ERROR", "unknown merchant in Authorization")
        if self.merchant_cert_serial_no is not None and (
            fields["serial_no"].upper() != self.merchant_cert_serial_no.upper()
        ):
            raise _WeChatError(401, "SIGN_ERROR", "unknown merchant certificate serial_no")
        timestamp = fields["timestamp"]
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > MAX_CLOCK_SKEW_SECONDS:
            raise _WeChatError(401, "SIGN_ERROR", "the signature timestamp is too far from now")
        try:
            text = raw.decode("utf-8")
            signature = base64.b64decode(fields["signature"], validate=True)
            message = f"{request.method}\n{signed_path}\n{timestamp}\n{fields['nonce_str']}\n"
            self._merchant_key.verify(
                signature,
                f"{message}{text}\n".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (ValueError, InvalidSignature):
            raise _WeChatError(401, "SIGN_ERROR", "the signature does not verify") from None

    def _check_query_mchid(self, request: Request) -> None:
        mchid = request.query_params.get("mchid")
        if not mchid:
            raise _WeChatError(
                400,
                "PARAM_ERROR",
                "mchid is required",
                field_name="/mchid",
            )
        if mchid != self.mchid:
            raise _WeChatError(
                400, "INVALID_REQUEST", "mchid is not the merchant that signed the request"
            )

    # -----------------------------------------------------------------------------------------
    # Orders
    # -----------------------------------------------------------------------------------------

    def _accept(self, path: str, raw: bytes) -> _Served:
        """Validate a Native or H5 order the way WeChat does; place it or find its twin."""
        trade_type: Literal["NATIVE", "MWEB"] = "MWEB" if path == H5_PATH else "NATIVE"
        body = _json_object(raw)
        for name in ("appid", "mchid", "description", "out_trade_no", "notify_url"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise _param_error(f"/{name}", f"{name} is required")
        if body["mchid"] != self.mchid:
            raise _WeChatError(
                400, "INVALID_REQUEST", "mchid is not the merchant that signed the request"
            )
        if body["appid"] != self.appid:
            raise _WeChatError(400, "APPID_MCHID_NOT_MATCH", "appid is not bound to this merchant")
        description: str = body["description"]
        if len(description) > 127:
            raise _param_error("/description", "description is longer than 127 characters")
        out_trade_no: str = body["out_trade_no"]
        if not _OUT_TRADE_NO.fullmatch(out_trade_no):
            raise _param_error(
                "/out_trade_no", "out_trade_no must be 6-32 characters of 0-9A-Za-z_-|*"
            )
        notify_url: str = body["notify_url"]
        # WeChat wants HTTPS; the emulator also takes http so a laptop can receive notifications.
        if _http_url(notify_url) is None or len(notify_url) > 256:
            raise _param_error("/notify_url", "notify_url must be an absolute http(s) URL")
        if urlsplit(notify_url).query:
            raise _param_error("/notify_url", "notify_url must not carry a query string")
        amount = body.get("amount")
        if not isinstance(amount, dict):
            raise _param_error("/amount", "amount is required")
        total = amount.get("total")
        if not isinstance(total, int) or isinstance(total, bool):
            raise _param_error("/amount/total", "amount.total is required (integer, fen)")
        if total < 1:
            raise _param_error("/amount/total", "amount.total must be at least 1")
        currency = amount.get("currency", "CNY")
        if currency != "CNY":
            raise _param_error("/amount/currency", "amount.currency must be CNY")
        attach = body.get("attach")
        if attach is not None and (not isinstance(attach, str) or len(attach) > 128):
            raise _param_error("/attach", "attach must be a string of at most 128 characters")
        now = self._clock()
        expires_at = now + DEFAULT_ORDER_SECONDS
        if body.get("time_expire") is not None:
            expires_at = _parse_time_expire(body["time_expire"])
            if expires_at <= now:
                raise _param_error("/time_expire", "time_expire is in the past")
        if trade_type == "MWEB":
            _check_h5_scene(body.get("scene_info"))

        existing = self._orders.get(out_trade_no)
        if existing is not None:
            if existing.trade_type != trade_type or existing.request != body:
                raise _WeChatError(
                    400,
                    "INVALID_REQUEST",
                    "201 out_trade_no already used with different parameters",
                )
            # Repeats of a placed order answer the same link; a settled one is refused.
            # The codes for the paid and closed cases are UNCONFIRMED.
            if existing.trade_state in ("SUCCESS", "REFUND"):
                raise _WeChatError(400, "ORDERPAID", "the order is already paid")
            if existing.trade_state == "CLOSED":
                raise _WeChatError(400, "ORDER_CLOSED", "the order is closed")
            return _Served(200, self._link(existing), logged_body=body)

        token = _random_text(16)
        order = EmulatedOrder(
            out_trade_no=out_trade_no,
            trade_type=trade_type,
            request=body,
            appid=body["appid"],
            mchid=body["mchid"],
            description=description,
            notify_url=notify_url,
            total=total,
            currency="CNY",
            attach=attach,
            expires_at=expires_at,
            created_at=now,
            token=token,
            prepay_id="wx" + _cst(now).strftime("%d%H%M%S") + secrets.token_hex(12),
        )
        self._orders[out_trade_no] = order
        self._by_token[token] = out_trade_no
        return _Served(200, self._link(order), logged_body=body)

    def _link(self, order: EmulatedOrder) -> dict[str, Any]:
        if order.trade_type == "NATIVE":
            return {"code_url": f"weixin://wxpay/bizpayurl?pr={order.token}"}
        # Like WeChat's h5_url it has a query, so the merchant can append `&redirect_url=…`.
        page = f"{self.public_base_url}/pay/{order.token}"
        return {"h5_url": f"{page}?prepay_id={order.prepay_id}&package={secrets.randbelow(10**10)}"}

    def _order_by_token(self, token: str) -> EmulatedOrder | None:
        out_trade_no = self._by_token.get(token)
        return None if out_trade_no is None else self._orders.get(out_trade_no)

    def _expired(self, order: EmulatedOrder) -> bool:
        return order.trade_state == "NOTPAY" and self._clock() >= order.expires_at

    def _settle(self, order: EmulatedOrder) -> None:
        """Mark the order paid and start its notification; no await between check and set."""
        if order.trade_state in ("SUCCESS", "REFUND"):
            raise PaymentRefused("This order is already paid.")
        if order.trade_state == "CLOSED":
            raise PaymentRefused("The merchant closed this order; it can no longer be paid.")
        if self._expired(order):
            raise PaymentRefused("This order has expired; it can no longer be paid.")
        now = self._clock()
        order.trade_state = "SUCCESS"
        order.success_time = _rfc3339(now)
        order.transaction_id = (
            "4200" + _cst(now).strftime("%Y%m%d") + f"{secrets.randbelow(10**16):016d}"
        )
        order.payer_openid = "o" + _random_text(27)
        order.notification_id = str(uuid.uuid4())
        self._background.spawn(self._deliver(order))

    def _transaction(self, order: EmulatedOrder) -> dict[str, Any]:
        """The order as query answers show it (and as a notification's resource decrypts to).

        An unpaid order past its time_expire still reads NOTPAY until the merchant closes it;
        whether WeChat itself ever reports such an order as CLOSED is UNCONFIRMED.
        """
        transaction: dict[str, Any] = {
            "appid": order.appid,
            "mchid": order.mchid,
            "out_trade_no": order.out_trade_no,
            "trade_type": order.trade_type,
            "trade_state": order.trade_state,
            "trade_state_desc": _STATE_DESC[order.trade_state],
            "amount": {"total": order.total, "currency": order.currency},
        }
        if order.attach is not None:
            transaction["attach"] = order.attach
        if order.trade_state in ("SUCCESS", "REFUND"):
            transaction.update(
                transaction_id=order.transaction_id,
                bank_type="OTHERS",
                success_time=order.success_time,
                payer={"openid": order.payer_openid},
                amount={
                    "total": order.total,
                    "payer_total": order.total,
                    "currency": order.currency,
                    "payer_currency": order.currency,
                },
            )
        return transaction

    # -----------------------------------------------------------------------------------------
    # Refunds
    # -----------------------------------------------------------------------------------------

    def _accept_refund(self, raw: bytes) -> _Served:
        """Validate a refund the way WeChat does; accept it (PROCESSING) or find its twin."""
        body = _json_object(raw)
        out_refund_no = body.get("out_refund_no")
        if not isinstance(out_refund_no, str) or not _OUT_REFUND_NO.fullmatch(out_refund_no):
            raise _param_error("/out_refund_no", "out_refund_no must be 1-64 characters")
        order: EmulatedOrder | None = None
        if isinstance(body.get("transaction_id"), str):
            order = next(
                (o for o in self._orders.values() if o.transaction_id == body["transaction_id"]),
                None,
            )
        elif isinstance(body.get("out_trade_no"), str):
            order = self._orders.get(body["out_trade_no"])
        else:
            raise _param_error("/out_trade_no", "out_trade_no or transaction_id is required")
        amount = body.get("amount")
        if not isinstance(amount, dict):
            raise _param_error("/amount", "amount is required")
        refund, total = amount.get("refund"), amount.get("total")
        if not isinstance(refund, int) or isinstance(refund, bool) or refund < 1:
            raise _param_error("/amount/refund", "amount.refund must be at least 1 (fen)")
        if not isinstance(total, int) or isinstance(total, bool) or total < 1:
            raise _param_error("/amount/total", "amount.total is required (integer, fen)")
        if amount.get("currency", "CNY") != "CNY":
            raise _param_error("/amount/currency", "amount.currency must be CNY")
        reason = body.get("reason")
        if reason is not None and (not isinstance(reason, str) or len(reason) > 80):
            raise _param_error("/reason", "reason must be a string of at most 80 characters")
        notify_url = body.get("notify_url")
        if notify_url is not None and _http_url(notify_url) is None:
            raise _param_error("/notify_url", "notify_url must be an absolute http(s) URL")

        existing = self._refunds.get(out_refund_no)
        if existing is not None:
            if existing.request != body:
                raise _WeChatError(
                    400, "INVALID_REQUEST", "out_refund_no already used with different parameters"
                )
            return _Served(200, self._refund_view(existing), logged_body=body)
        # The codes for these refusals are UNCONFIRMED.
        if order is None:
            raise _WeChatError(404, "RESOURCE_NOT_EXISTS", "no such order")
        if order.trade_state not in ("SUCCESS", "REFUND") or order.transaction_id is None:
            raise _WeChatError(400, "INVALID_REQUEST", "the order is not paid")
        if total != order.total:
            raise _param_error("/amount/total", "amount.total is not the order's total")
        refunded = sum(
            r.refund
            for r in self._refunds.values()
            if r.out_trade_no == order.out_trade_no and r.status != "CLOSED"
        )
        if refunded + refund > order.total:
            raise _WeChatError(
                400, "NOT_ENOUGH", "the refund is more than the order has left to refund"
            )
        now = self._clock()
        created = EmulatedRefund(
            out_refund_no=out_refund_no,
            refund_id="50" + _cst(now).strftime("%Y%m%d") + f"{secrets.randbelow(10**20):020d}",
            out_trade_no=order.out_trade_no,
            transaction_id=order.transaction_id,
            request=body,
            refund=refund,
            total=order.total,
            reason=reason,
            notify_url=notify_url,
            create_time=_rfc3339(now),
        )
        self._refunds[out_refund_no] = created
        order.trade_state = "REFUND"
        self._background.spawn(self._finish_refund(created))
        return _Served(200, self._refund_view(created), logged_body=body)

    async def _finish_refund(self, refund: EmulatedRefund) -> None:
        """The bank's part: the refund settles a moment later and its notification follows."""
        await asyncio.sleep(0.05)
        refund.status = self._refund_outcome
        if refund.status == "SUCCESS":
            refund.success_time = _rfc3339(self._clock())
        refund.notification_id = str(uuid.uuid4())
        if refund.notify_url is None:
            return
        body = self._refund_notification_body(refund)
        record = {
            "out_trade_no": refund.out_trade_no,
            "out_refund_no": refund.out_refund_no,
            "notification_id": refund.notification_id,
        }
        await self._post(refund.notify_url, body, record)

    def _refund_view(self, refund: EmulatedRefund) -> dict[str, Any]:
        """The refund as the API answers it."""
        view: dict[str, Any] = {
            "refund_id": refund.refund_id,
            "out_refund_no": refund.out_refund_no,
            "transaction_id": refund.transaction_id,
            "out_trade_no": refund.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": refund.create_time,
            "status": refund.status,
            "funds_account": "AVAILABLE",
            "amount": {
                "total": refund.total,
                "refund": refund.refund,
                "payer_total": refund.total,
                "payer_refund": refund.refund,
                "settlement_total": refund.total,
                "settlement_refund": refund.refund,
                "discount_refund": 0,
                "currency": "CNY",
            },
        }
        if refund.success_time is not None:
            view["success_time"] = refund.success_time
        return view

    def _refund_notification_body(self, refund: EmulatedRefund) -> bytes:
        """REFUND.SUCCESS / ABNORMAL / CLOSED, encrypted like a payment notification."""
        resource: dict[str, Any] = {
            "mchid": self.mchid,
            "out_trade_no": refund.out_trade_no,
            "transaction_id": refund.transaction_id,
            "out_refund_no": refund.out_refund_no,
            "refund_id": refund.refund_id,
            "refund_status": refund.status,
            "user_received_account": "支付用户零钱",
            "amount": {
                "total": refund.total,
                "refund": refund.refund,
                "payer_total": refund.total,
                "payer_refund": refund.refund,
            },
        }
        if refund.success_time is not None:
            resource["success_time"] = refund.success_time
        nonce = _random_text(12)
        associated_data = "refund"
        ciphertext = AESGCM(self.apiv3_key.encode()).encrypt(
            nonce.encode(), _json_bytes(resource), associated_data.encode()
        )
        summaries = {"SUCCESS": "退款成功", "ABNORMAL": "退款异常", "CLOSED": "退款关闭"}
        envelope = {
            "id": refund.notification_id or str(uuid.uuid4()),
            "create_time": _rfc3339(self._clock()),
            "resource_type": "encrypt-resource",
            "event_type": f"REFUND.{refund.status}",
            "summary": summaries.get(refund.status, refund.status),
            "resource": {
                "original_type": "refund",
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": base64.b64encode(ciphertext).decode(),
                "associated_data": associated_data,
                "nonce": nonce,
            },
        }
        return _json_bytes(envelope)

    # -----------------------------------------------------------------------------------------
    # Notifications
    # -----------------------------------------------------------------------------------------

    def _notification_body(
        self,
        order: EmulatedOrder,
        transaction: dict[str, Any],
        *,
        event_id: str | None = None,
        apiv3_key: str | None = None,
    ) -> bytes:
        nonce = _random_text(12)
        associated_data = "transaction"
        ciphertext = AESGCM((apiv3_key or self.apiv3_key).encode()).encrypt(
            nonce.encode(), _json_bytes(transaction), associated_data.encode()
        )
        envelope = {
            "id": event_id or order.notification_id or str(uuid.uuid4()),
            "create_time": _rfc3339(self._clock()),
            "resource_type": "encrypt-resource",
            "event_type": "TRANSACTION.SUCCESS",
            "summary": "payment succeeded",
            "resource": {
                "original_type": "transaction",
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": base64.b64encode(ciphertext).decode(),
                "associated_data": associated_data,
                "nonce": nonce,
            },
        }
        return _json_bytes(envelope)

    async def _deliver(self, order: EmulatedOrder) -> None:
        """POST the payment notification until the merchant answers 2xx or retries run out."""
        body = self._notification_body(order, self._transaction(order))
        record = {"out_trade_no": order.out_trade_no, "notification_id": order.notification_id}
        await self._post(order.notify_url, body, record)

    async def _post(self, url: str, body: bytes, about: dict[str, Any]) -> None:
        """POST a notification until the merchant answers 2xx or retries run out: the same
        notification id and ciphertext every time, each attempt signed afresh."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.notify_timeout)
        delays = (*self.notify_retry_delays, None)
        for attempt, delay in enumerate(delays, start=1):
            headers = _signature_headers(self._platform_key, self.platform_public_key_id, body)
            headers["Content-Type"] = "application/json"
            record: dict[str, Any] = {
                **about,
                "attempt": attempt,
                "status_code": None,
                "error": None,
            }
            try:
                response = await self._http.post(url, content=body, headers=headers)
                record["status_code"] = response.status_code
            except httpx.HTTPError as exc:
                record["error"] = repr(exc)
            self._deliveries.append(record)
            if record["status_code"] is not None and 200 <= record["status_code"] < 300:
                return
            if delay is None:
                log.warning(
                    "wechatpay emulator: gave up notifying %s after %d attempts",
                    about.get("out_refund_no") or about.get("out_trade_no"),
                    attempt,
                )
                return
            await asyncio.sleep(delay)

    # -----------------------------------------------------------------------------------------
    # Pages
    # -----------------------------------------------------------------------------------------

    def _order_page(
        self,
        request: Request,
        order: EmulatedOrder,
        redirect_url: str | None,
        *,
        error: str = "",
        status: int = 200,
    ) -> Response:
        e = html.escape
        price = _yuan(order.total)
        if error:
            outcome = f'<p class="error" role="alert">{e(error)}</p>'
        elif order.trade_state == "SUCCESS":
            outcome = f'<p class="ok" role="status">Paid at {e(order.success_time or "")}.</p>'
        elif order.trade_state == "CLOSED":
            outcome = '<p class="error" role="status">The merchant closed this order.</p>'
        elif self._expired(order):
            outcome = (
                '<p class="error" role="status">This order has expired; it can no longer be '
                "paid.</p>"
            )
        else:
            outcome = ""
        form = ""
        if order.trade_state == "NOTPAY" and not self._expired(order):
            hidden = (
                f'<input type="hidden" name="redirect_url" value="{e(redirect_url)}">'
                if redirect_url
                else ""
            )
            form = f"""
<form method="post" action="{e(request.url.path)}">
{hidden}
<button type="submit">Pay {e(price)}</button>
</form>"""
        back = ""
        if redirect_url and order.trade_state != "NOTPAY":
            back = f'<p><a href="{e(redirect_url)}">Back to the merchant</a></p>'
        body = f"""
<p class="badge">EMULATED — vidgate's local stand-in for WeChat Pay. No money moves.</p>
<h1>WeChat Pay</h1>
<dl>
<dt>Item</dt><dd>{e(order.description)}</dd>
<dt>Amount</dt><dd class="amount">{e(price)}</dd>
<dt>Merchant</dt><dd>{e(order.mchid)}</dd>
<dt>Order number</dt><dd><code>{e(order.out_trade_no)}</code></dd>
</dl>
{outcome}{form}{back}"""
        return _page(body, status)


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _signed_path(request: Request) -> tuple[str, str]:
    """(path, "?query") as the merchant signed them: after the mount point, still encoded."""
    raw_path = request.scope.get("raw_path")
    path = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else request.url.path
    index = path.find(PREFIX + "/")
    if index >= 0:
        path = path[index + len(PREFIX) :]
    query = request.scope.get("query_string", b"").decode("latin-1")
    return path, f"?{query}" if query else ""


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise _param_error("/", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _param_error("/", "the body must be a JSON object")
    return body


def _check_h5_scene(scene: Any) -> None:
    if not isinstance(scene, dict):
        raise _param_error("/scene_info", "scene_info is required for H5")
    ip = scene.get("payer_client_ip")
    if not isinstance(ip, str) or not ip:
        raise _param_error("/scene_info/payer_client_ip", "scene_info.payer_client_ip is required")
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        raise _param_error(
            "/scene_info/payer_client_ip", "scene_info.payer_client_ip is not an IP address"
        ) from None
    h5_info = scene.get("h5_info")
    if not isinstance(h5_info, dict) or h5_info.get("type") not in _H5_TYPES:
        raise _param_error(
            "/scene_info/h5_info/type", "scene_info.h5_info.type must be Wap, iOS or Android"
        )


def _parse_time_expire(value: Any) -> float:
    """Epoch seconds of an RFC 3339 time with an offset (`2025-01-01T12:00:00+08:00`)."""
    if isinstance(value, str) and "T" in value:
        with contextlib.suppress(ValueError):
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is not None:
                return moment.timestamp()
    raise _param_error("/time_expire", "time_expire must be RFC 3339 with an offset")


def _tampered(payload: dict[str, Any]) -> dict[str, Any]:
    """What a man in the middle would change: where to pay, or whether it was paid."""
    altered = dict(payload)
    if "code_url" in altered:
        altered["code_url"] = "weixin://wxpay/bizpayurl?pr=intercepted"
    elif "h5_url" in altered:
        altered["h5_url"] = "https://attacker.example/pay"
    elif "trade_state" in altered:
        altered["trade_state"] = "SUCCESS"
    else:
        altered["tampered"] = True
    return altered


def _signature_headers(
    key: rsa.RSAPrivateKey, key_id: str, body: bytes, *, timestamp: int | None = None
) -> dict[str, str]:
    """Wechatpay-* headers signing `timestamp\\nnonce\\nbody\\n` with `key`."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = _random_text(32)
    message = stamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"
    signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return {
        "Wechatpay-Timestamp": stamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": base64.b64encode(signature).decode(),
        "Wechatpay-Serial": key_id,
        "Wechatpay-Signature-Type": SIGNATURE_TYPE,
    }


@functools.cache
def _throwaway_key() -> rsa.RSAPrivateKey:
    """A key that is not the platform's, for forged signatures (made once: keygen is slow)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _rsa_private_key(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the platform private key is not an RSA key")
    return key


def _public_key_id(key: rsa.RSAPublicKey) -> str:
    """A `PUB_KEY_ID_…` derived from the key, so every process holding it names it alike."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digits = int.from_bytes(hashlib.sha256(der).digest()[:12], "big") % 10**26
    return f"PUB_KEY_ID_0114{digits:026d}"


def _private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _public_pem(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _random_text(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def _cst(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, CHINA_STANDARD_TIME)


def _rfc3339(epoch: float) -> str:
    return _cst(epoch).isoformat(timespec="seconds")


def _yuan(fen: int) -> str:
    return f"¥{fen // 100}.{fen % 100:02d}"


def _http_url(value: str | None) -> str | None:
    """The value if it is an absolute http(s) URL, else None."""
    if not value:
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return value if parts.scheme in ("http", "https") and parts.hostname else None


def _page(body: str, status: int = 200) -> HTMLResponse:
    style = """.badge { background: #fff3cd; border: 1px solid #c9a227; padding: .4rem .6rem; }
dt { font-weight: 600; }
dd { margin: 0 0 .5rem 0; }
.amount { font-size: 1.6rem; }
button { padding: .6rem 1.4rem; font-size: 1.1rem; background: #07c160; color: #fff;
         border: 0; border-radius: .3rem; }
.ok { color: #05632f; font-weight: 600; }"""
    return html_page(_PAGE_TITLE, body, style=style, status_code=status, width="28rem")
