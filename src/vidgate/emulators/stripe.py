"""A local model of Stripe Checkout, for development and tests without internet.

It serves the slice of Stripe's API a one-time Checkout integration uses — create, retrieve and
expire Checkout Sessions, and refund their payments (`POST /v1/refunds`) — with Stripe's form
encoding (nested `a[b][0][c]` keys), Bearer key auth, `Idempotency-Key` replay and error
bodies, plus a hosted payment page marked EMULATED. Paying on that page (or through `pay()`)
completes the session and POSTs a `checkout.session.*` event to the webhook URL, signed the way
Stripe signs (`Stripe-Signature: t=…,v1=HMAC-SHA256("{t}.{body}")`) and retried a few times if
the receiver fails. Sessions expire at `expires_at` by the injectable clock (unix seconds). A
delayed payment method (completes unpaid, settles later) and failing creates can be simulated.
A refund (through the API, or made "in the dashboard" with `refund()`) sends `charge.refunded`
(its charge lists its refunds only with `charge_refunds_listed`, as before API version
2022-11-15); `open_dispute()` and `close_dispute()` send
`charge.dispute.created` and `charge.dispute.closed`. Nothing is persisted. Protocol facts:
docs/vendors.md §4; unconfirmed details are noted beside the code.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import html
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from vidgate.emulators.background import Background
from vidgate.emulators.pages import html_page
from vidgate.payments.currency import minor_exponent, to_major

PREFIX = "/_emulator/stripe"
API_VERSION = "2026-10-28.endive"  # stamped on events; stripe-python 16.1.0's default version
SESSION_ID_PLACEHOLDER = "{CHECKOUT_SESSION_ID}"
MIN_LIFETIME_SECONDS = 30 * 60  # bounds Stripe puts on a session's `expires_at`
MAX_LIFETIME_SECONDS = 24 * 3600
DEFAULT_LIFETIME_SECONDS = 24 * 3600  # a session without `expires_at` lives 24 hours
MAX_CLIENT_REFERENCE_ID = 200
MAX_METADATA_KEYS, MAX_METADATA_KEY, MAX_METADATA_VALUE = 50, 40, 500
MAX_IDEMPOTENCY_KEY = 255
_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cny": "CN¥", "hkd": "HK$"}
# Top-level create parameters the emulator knows; Stripe refuses unknown ones by name.
_CREATE_PARAMS = frozenset(
    {
        "mode",
        "line_items",
        "success_url",
        "cancel_url",
        "client_reference_id",
        "metadata",
        "expires_at",
        "customer_email",
        "customer",
        "customer_creation",
        "payment_method_types",
        "payment_intent_data",
        "locale",
        "submit_type",
        "allow_promotion_codes",
        "billing_address_collection",
        "expand",
    }
)
_KEY = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")
_PAGE_TITLE = "Checkout — Stripe emulator (vidgate)"

log = logging.getLogger(__name__)


class StripeApiError(Exception):
    """An API error, answered as Stripe does (`{"error": {"type", "message", …}}`); the test
    hooks raise it too, e.g. when asked to pay a session that is not open."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"type": type_, "message": message}
        if param is not None:
            self.body["param"] = param
        if code is not None:
            self.body["code"] = code


@dataclass(frozen=True)
class _Stored:
    """A response kept under an idempotency key, replayed for the same request."""

    route: str  # method and path: a key reused on another endpoint is refused
    params: dict[str, Any]
    status: int
    body: dict[str, Any]
    request_id: str


@dataclass
class _Session:
    data: dict[str, Any]  # the checkout.session object as the API shows it
    product_name: str
    intent: dict[str, Any] | None = None  # the PaymentIntent once the payer has paid


class StripeEmulator:
    """Stripe's Checkout Session API for one secret key. Mount `router()`; point the SDK's
    `base_addresses={"api": ...}` at `public_base_url`. Call `aclose()` when done.
    """

    def __init__(
        self,
        *,
        secret_key: str,
        webhook_secret: str,
        public_base_url: str,
        webhook_url: str | None = None,
        clock: Callable[[], float] | None = None,
        webhook_attempts: int = 3,
        webhook_retry_seconds: float = 0.2,
        http: httpx.AsyncClient | None = None,
        charge_refunds_listed: bool = False,
    ) -> None:
        self.secret_key = secret_key
        # Since API version 2022-11-15 a charge no longer shows its refunds (`refunds` is not
        # expanded, and events cannot expand it); True models an older version that lists them.
        self.charge_refunds_listed = charge_refunds_listed
        self.webhook_secret = webhook_secret
        self.public_base_url = public_base_url.rstrip("/")
        self.webhook_url = webhook_url
        self.webhook_attempts = webhook_attempts
        self.webhook_retry_seconds = webhook_retry_seconds  # doubled after each failed attempt
        self._clock = clock or time.time
        self._http = http
        self._owns_http = http is None
        self._sessions: dict[str, _Session] = {}
        self._idempotent: dict[str, _Stored] = {}
        self._events: list[dict[str, Any]] = []
        self._deliveries: list[dict[str, Any]] = []
        self._log: list[dict[str, Any]] = []
        self._create_failures = 0
        self._charges: dict[str, dict[str, Any]] = {}  # by id
        self._charge_of_intent: dict[str, str] = {}
        self._refunds: dict[str, dict[str, Any]] = {}
        self._disputes: dict[str, dict[str, Any]] = {}
        self._background = Background()

    # -----------------------------------------------------------------------------------------
    # Hooks for tests and tools
    # -----------------------------------------------------------------------------------------

    @property
    def sessions(self) -> dict[str, dict[str, Any]]:
        """Every Checkout Session as the API would show it now, by id, oldest first."""
        return {sid: copy.deepcopy(self._refresh(s).data) for sid, s in self._sessions.items()}

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every API request received (not the hosted page or controls), oldest first."""
        return list(self._log)

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event generated, oldest first (sent or not)."""
        return copy.deepcopy(self._events)

    @property
    def deliveries(self) -> list[dict[str, Any]]:
        """Every webhook delivery attempt: event id, type, attempt number, HTTP status or error."""
        return list(self._deliveries)

    def fail_next_creates(self, count: int = 1) -> None:
        """Answer the next `count` session creates with a 500, before anything is stored (so the
        idempotency key is not spent and a retry can succeed)."""
        self._create_failures = max(0, count)

    async def pay(self, session_id: str, *, delayed: bool = False) -> dict[str, Any]:
        """Pay as the hosted page does and wait for the webhook delivery; returns the session.

        `delayed` pays with a method that settles later (a bank debit): the session completes
        unpaid and `settle()` decides the outcome.
        """
        event = self._complete(self._get(session_id), delayed=delayed)
        await self._deliver(event)
        return copy.deepcopy(self._sessions[session_id].data)

    async def settle(self, session_id: str, *, succeeded: bool) -> dict[str, Any]:
        """Finish a delayed payment (`async_payment_succeeded` or `_failed`) and deliver it."""
        event = self._settle(self._get(session_id), succeeded=succeeded)
        await self._deliver(event)
        return copy.deepcopy(self._sessions[session_id].data)

    async def expire(self, session_id: str) -> dict[str, Any]:
        """Expire an open session as the API call would, and deliver `checkout.session.expired`."""
        event = self._expire(self._get(session_id))
        await self._deliver(event)
        return copy.deepcopy(self._sessions[session_id].data)

    @property
    def charges(self) -> dict[str, dict[str, Any]]:
        """Every charge (one per paid session) by id, as the API shows it."""
        return {cid: self._charge_view(c) for cid, c in self._charges.items()}

    @property
    def refunds(self) -> dict[str, dict[str, Any]]:
        """Every refund by id, oldest first."""
        return copy.deepcopy(self._refunds)

    def charge_of(self, session_id: str) -> dict[str, Any]:
        """The charge of a paid session (StripeApiError if it has none)."""
        return self._charge_view(self._charge_for_session(self._get(session_id)))

    async def refund(self, session_id: str, amount: int | None = None) -> dict[str, Any]:
        """Refund a paid session as the Dashboard does (no metadata from vidgate), and wait for
        the `charge.refunded` delivery; returns the refund."""
        charge = self._charge_for_session(self._get(session_id))
        refund, event = self._refund(charge, amount, metadata={}, reason=None)
        await self._deliver(event)
        return copy.deepcopy(refund)

    async def open_dispute(self, session_id: str) -> dict[str, Any]:
        """The payer's bank disputes a paid session's charge (for what is not refunded):
        `charge.dispute.created` is delivered; returns the dispute."""
        charge = self._charge_for_session(self._get(session_id))
        if charge["disputed"]:
            raise StripeApiError(400, f"Charge {charge['id']} is already disputed.")
        left = charge["amount"] - charge["amount_refunded"]
        if left <= 0:
            raise StripeApiError(400, f"Charge {charge['id']} is fully refunded.")
        dispute = {
            "id": "dp_" + _random_id(24),
            "object": "dispute",
            "amount": left,
            "charge": charge["id"],
            "currency": charge["currency"],
            "created": int(self._clock()),
            "livemode": False,
            "metadata": {},
            "payment_intent": charge["payment_intent"],
            "reason": "fraudulent",
            "status": "needs_response",
        }
        charge["disputed"] = True
        self._disputes[dispute["id"]] = dispute
        await self._deliver(self._record_event("charge.dispute.created", dispute))
        return copy.deepcopy(dispute)

    async def close_dispute(self, dispute_id: str, *, won: bool) -> dict[str, Any]:
        """Decide a dispute (`won` by the merchant or lost) and deliver
        `charge.dispute.closed`; returns the dispute."""
        dispute = self._disputes.get(dispute_id)
        if dispute is None:
            raise StripeApiError(404, f"No such dispute: '{dispute_id}'", code="resource_missing")
        if dispute["status"] in ("won", "lost"):
            raise StripeApiError(400, f"Dispute {dispute_id} is already closed.")
        dispute["status"] = "won" if won else "lost"
        await self._deliver(self._record_event("charge.dispute.closed", dispute))
        return copy.deepcopy(dispute)

    async def resend(self, event_id: str, *, forged: bool = False) -> int | None:
        """POST a generated event to the webhook URL once more (as Stripe's redelivery does), or
        `forged`: signed with a secret that is not the endpoint's. The receiver's HTTP status
        (None when it could not be reached)."""
        event = next((e for e in self._events if e["id"] == event_id), None)
        if event is None:
            raise StripeApiError(404, f"No such event: '{event_id}'", code="resource_missing")
        if self.webhook_url is None:
            return None
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=10.0)
        body = _event_body(event)
        secret = "whsec_forged_" + _random_id(16) if forged else self.webhook_secret
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign(body, secret, int(time.time())),
        }
        try:
            response = await self._http.post(self.webhook_url, content=body, headers=headers)
        except httpx.HTTPError:
            return None
        return response.status_code

    def signed_event(
        self,
        event_type: str,
        obj: Mapping[str, Any],
        *,
        secret: str | None = None,
        timestamp: int | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """A signed event about any object (a charge, a dispute), built but neither stored nor
        sent: (headers, body). For replay and forgery tests."""
        body = _event_body(self._event(event_type, obj))
        signed_at = int(time.time()) if timestamp is None else timestamp
        return {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign(body, secret or self.webhook_secret, signed_at),
        }, body

    def event_for(
        self,
        session_id: str,
        event_type: str,
        *,
        secret: str | None = None,
        timestamp: int | None = None,
        session: Mapping[str, Any] | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """A signed event about a session, built but neither stored nor sent: (headers, body).

        For attack tests: sign with another `secret`, at an old `timestamp`, or about a `session`
        object other than the stored one (e.g. with a changed amount).
        """
        data = dict(session) if session is not None else self._refresh(self._get(session_id)).data
        event = self._event(event_type, data)
        body = _event_body(event)
        signed_at = int(time.time()) if timestamp is None else timestamp
        return {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign(body, secret or self.webhook_secret, signed_at),
        }, body

    async def wait_deliveries(self) -> None:
        """Wait for webhook deliveries started by the hosted page or lazy expiry."""
        await self._background.wait()

    async def aclose(self) -> None:
        """Stop pending deliveries and close the webhook client if it is ours."""
        await self._background.cancel()
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    # -----------------------------------------------------------------------------------------
    # HTTP
    # -----------------------------------------------------------------------------------------

    def router(self, prefix: str = PREFIX) -> APIRouter:
        """Stripe's API paths, the hosted page (`/c/pay/{id}`) and control endpoints, under
        `prefix` (which must match the path of `public_base_url`)."""
        router = APIRouter(prefix=prefix, tags=["emulators"], include_in_schema=False)
        api = (
            ("/v1/checkout/sessions", self._create, "POST"),
            ("/v1/checkout/sessions/{session_id}", self._retrieve, "GET"),
            ("/v1/checkout/sessions/{session_id}/expire", self._expire_endpoint, "POST"),
            ("/c/pay/{session_id}", self._page, "GET"),
            ("/c/pay/{session_id}", self._page_submit, "POST"),
            ("/_control/faults", self._control_faults, "POST"),
            ("/_control/sessions/{session_id}/settle", self._control_settle, "POST"),
            ("/_control/requests", self._control_requests, "GET"),
            ("/_control/events", self._control_events, "GET"),
            ("/v1/refunds", self._create_refund, "POST"),
            ("/v1/refunds/{refund_id}", self._retrieve_refund, "GET"),
            ("/_control/sessions/{session_id}/refund", self._control_refund, "POST"),
            ("/_control/sessions/{session_id}/dispute", self._control_dispute, "POST"),
            ("/_control/disputes/{dispute_id}/close", self._control_close_dispute, "POST"),
            ("/_control/events/{event_id}/resend", self._control_resend, "POST"),
        )
        for path, endpoint, method in api:
            router.add_api_route(path, endpoint, methods=[method], response_model=None)
        return router

    async def _create(self, request: Request) -> Response:
        entry = self._log_request(request, await _form_pairs(request))
        try:
            self._check_auth(request)
            params = _parse_params(entry["raw"])
            entry["params"] = params
            key = _idempotency_key(request)
            route = "POST /v1/checkout/sessions"
            if key is not None and key in self._idempotent:
                return self._replay(entry, key, route, params)
            if self._create_failures > 0:
                self._create_failures -= 1
                raise StripeApiError(
                    500, "An unexpected error occurred (emulated fault).", type_="api_error"
                )
            session = self._new_session(params)
        except StripeApiError as exc:
            return self._error(entry, exc)
        body = copy.deepcopy(session.data)
        request_id = _request_id()
        if key is not None:
            self._idempotent[key] = _Stored(route, params, 200, body, request_id)
        return self._json(entry, 200, body, request_id=request_id, key=key)

    async def _retrieve(self, request: Request, session_id: str) -> Response:
        entry = self._log_request(request, request.query_params.multi_items())
        try:
            self._check_auth(request)
            params = _parse_params(entry["raw"])
            expand = params.get("expand", [])
            if not isinstance(expand, list) or not all(isinstance(e, str) for e in expand):
                raise StripeApiError(400, "expand must be a list of field names", param="expand")
            unknown = [e for e in expand if e != "payment_intent"]
            if unknown:
                raise StripeApiError(
                    400, f"This property cannot be expanded ({unknown[0]}).", param="expand"
                )
            session = self._refresh(self._get(session_id))
        except StripeApiError as exc:
            return self._error(entry, exc)
        body = copy.deepcopy(session.data)
        if "payment_intent" in expand and session.intent is not None:
            body["payment_intent"] = copy.deepcopy(session.intent)
        return self._json(entry, 200, body)

    async def _expire_endpoint(self, request: Request, session_id: str) -> Response:
        entry = self._log_request(request, await _form_pairs(request))
        try:
            self._check_auth(request)
            params = _parse_params(entry["raw"])
            key = _idempotency_key(request)
            route = f"POST /v1/checkout/sessions/{session_id}/expire"
            if key is not None and key in self._idempotent:
                return self._replay(entry, key, route, params)
            session = self._refresh(self._get(session_id))
            event = self._expire(session)
        except StripeApiError as exc:
            return self._error(entry, exc)
        self._background.spawn(self._deliver(event))
        body = copy.deepcopy(session.data)
        request_id = _request_id()
        if key is not None:
            self._idempotent[key] = _Stored(route, params, 200, body, request_id)
        return self._json(entry, 200, body, request_id=request_id, key=key)

    async def _page(self, session_id: str) -> Response:
        session = self._sessions.get(session_id)
        if session is None:
            return _page_not_found()
        return _checkout_page(self._refresh(session))

    async def _page_submit(self, request: Request, session_id: str) -> Response:
        session = self._sessions.get(session_id)
        if session is None:
            return _page_not_found()
        session = self._refresh(session)
        if session.data["status"] != "open":
            return _checkout_page(session, status_code=409)
        form = await request.form()
        method = form.get("method")
        if method not in ("card", "bank_debit"):
            return _checkout_page(session, status_code=400, error="Choose a way to pay.")
        event = self._complete(session, delayed=method == "bank_debit")
        # Stripe sends the webhook on its own schedule; the browser does not wait for it.
        self._background.spawn(self._deliver(event))
        target = session.data["success_url"].replace(SESSION_ID_PLACEHOLDER, session.data["id"])
        return RedirectResponse(target, status_code=303)

    async def _control_faults(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        count = body.get("create_failures") if isinstance(body, dict) else None
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            return JSONResponse(
                {"detail": "create_failures must be a non-negative integer"}, status_code=422
            )
        self.fail_next_creates(count)
        return JSONResponse({"create_failures": count})

    async def _control_settle(self, request: Request, session_id: str) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        outcome = body.get("outcome") if isinstance(body, dict) else None
        if outcome not in ("succeeded", "failed"):
            return JSONResponse({"detail": "outcome must be succeeded or failed"}, status_code=422)
        try:
            session = await self.settle(session_id, succeeded=outcome == "succeeded")
        except StripeApiError as exc:
            return JSONResponse({"detail": exc.body["message"]}, status_code=exc.status)
        return JSONResponse(session)

    async def _control_requests(self) -> Response:
        return JSONResponse({"requests": self.requests})

    async def _control_refund(self, request: Request, session_id: str) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = {}
        amount = body.get("amount") if isinstance(body, dict) else None
        if amount is not None and (not isinstance(amount, int) or isinstance(amount, bool)):
            return JSONResponse({"detail": "amount must be an integer"}, status_code=422)
        try:
            refund = await self.refund(session_id, amount)
        except StripeApiError as exc:
            return JSONResponse({"detail": exc.body["message"]}, status_code=exc.status)
        return JSONResponse(refund)

    async def _control_resend(self, request: Request, event_id: str) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = {}
        forged = body.get("forged", False) if isinstance(body, dict) else False
        try:
            status = await self.resend(event_id, forged=forged is True)
        except StripeApiError as exc:
            return JSONResponse({"detail": exc.body["message"]}, status_code=exc.status)
        return JSONResponse({"event_id": event_id, "status": status})

    async def _control_dispute(self, session_id: str) -> Response:
        try:
            dispute = await self.open_dispute(session_id)
        except StripeApiError as exc:
            return JSONResponse({"detail": exc.body["message"]}, status_code=exc.status)
        return JSONResponse(dispute)

    async def _control_close_dispute(self, request: Request, dispute_id: str) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        outcome = body.get("outcome") if isinstance(body, dict) else None
        if outcome not in ("won", "lost"):
            return JSONResponse({"detail": "outcome must be won or lost"}, status_code=422)
        try:
            dispute = await self.close_dispute(dispute_id, won=outcome == "won")
        except StripeApiError as exc:
            return JSONResponse({"detail": exc.body["message"]}, status_code=exc.status)
        return JSONResponse(dispute)

    async def _create_refund(self, request: Request) -> Response:
        entry = self._log_request(request, await _form_pairs(request))
        try:
            self._check_auth(request)
            params = _parse_params(entry["raw"])
            entry["params"] = params
            key = _idempotency_key(request)
            route = "POST /v1/refunds"
            if key is not None and key in self._idempotent:
                return self._replay(entry, key, route, params)
            refund, event = self._refund_from_params(params)
        except StripeApiError as exc:
            return self._error(entry, exc)
        # Stripe sends the webhook on its own schedule, maybe before the API answer arrives.
        self._background.spawn(self._deliver(event))
        body = copy.deepcopy(refund)
        request_id = _request_id()
        if key is not None:
            self._idempotent[key] = _Stored(route, params, 200, body, request_id)
        return self._json(entry, 200, body, request_id=request_id, key=key)

    async def _retrieve_refund(self, request: Request, refund_id: str) -> Response:
        entry = self._log_request(request, request.query_params.multi_items())
        try:
            self._check_auth(request)
            refund = self._refunds.get(refund_id)
            if refund is None:
                raise StripeApiError(
                    404, f"No such refund: '{refund_id}'", param="id", code="resource_missing"
                )
        except StripeApiError as exc:
            return self._error(entry, exc)
        return self._json(entry, 200, copy.deepcopy(refund))

    async def _control_events(self) -> Response:
        return JSONResponse({"events": self.events, "deliveries": self.deliveries})

    # -----------------------------------------------------------------------------------------
    # Requests and answers
    # -----------------------------------------------------------------------------------------

    def _check_auth(self, request: Request) -> None:
        """Stripe takes the secret key as a Bearer token (or as the Basic auth user name)."""
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        key = credential.strip()
        if scheme.lower() == "basic":
            try:
                key = base64.b64decode(key, validate=True).decode().partition(":")[0]
            except ValueError:
                key = ""
        elif scheme.lower() != "bearer":
            key = ""
        if not key:
            raise StripeApiError(
                401, "No API key was provided; send it as a Bearer token in Authorization."
            )
        if not secrets.compare_digest(key.encode(), self.secret_key.encode()):
            raise StripeApiError(401, f"Invalid API Key provided: {_redact(key)}")

    def _log_request(self, request: Request, raw: Iterable[tuple[str, Any]]) -> dict[str, Any]:
        pairs = [(k, v) for k, v in raw if isinstance(v, str)]
        entry: dict[str, Any] = {
            "at": self._clock(),
            "method": request.method,
            "path": request.url.path,
            "raw": pairs,
            "form": dict(pairs),  # flat, as sent: {"line_items[0][quantity]": "1", ...}
            "params": None,  # nested, once parsed
            "idempotency_key": request.headers.get("idempotency-key"),
            "stripe_version": request.headers.get("stripe-version"),
            "authorized": False,
            "status": None,
        }
        self._log.append(entry)
        return entry

    def _json(
        self,
        entry: dict[str, Any],
        status: int,
        body: dict[str, Any],
        *,
        request_id: str | None = None,
        key: str | None = None,
        replayed: bool = False,
    ) -> Response:
        entry["authorized"] = status != 401
        entry["status"] = status
        headers = {"Request-Id": request_id or _request_id(), "Stripe-Version": API_VERSION}
        if key is not None:
            headers["Idempotency-Key"] = key
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return JSONResponse(body, status_code=status, headers=headers)

    def _error(self, entry: dict[str, Any], exc: StripeApiError) -> Response:
        return self._json(entry, exc.status, {"error": exc.body})

    def _replay(
        self, entry: dict[str, Any], key: str, route: str, params: dict[str, Any]
    ) -> Response:
        stored = self._idempotent[key]
        if stored.route != route or stored.params != params:
            # Stripe compares the parameters of a retried request with the first one's.
            raise StripeApiError(
                400,
                f"The idempotency key {key!r} was first used with other parameters; "
                "use a new key for a different request.",
                type_="idempotency_error",
            )
        return self._json(
            entry,
            stored.status,
            copy.deepcopy(stored.body),
            request_id=stored.request_id,
            key=key,
            replayed=True,
        )

    # -----------------------------------------------------------------------------------------
    # Checkout Sessions
    # -----------------------------------------------------------------------------------------

    def _get(self, session_id: str) -> _Session:
        session = self._sessions.get(session_id)
        if session is None:
            raise StripeApiError(
                404,
                f"No such checkout.session: '{session_id}'",
                param="session",
                code="resource_missing",
            )
        return session

    def _new_session(self, params: dict[str, Any]) -> _Session:
        """Validate create parameters as Stripe does and open a session."""
        for name in params:
            if name not in _CREATE_PARAMS:
                raise StripeApiError(400, f"Received unknown parameter: {name}", param=name)
        mode = params.get("mode")
        if not mode:
            raise _missing("mode")
        if mode not in ("payment", "setup", "subscription"):
            raise StripeApiError(400, f"Invalid mode: {mode!r}", param="mode")
        if mode != "payment":
            raise StripeApiError(
                400, f"The emulator models mode=payment only, not {mode}.", param="mode"
            )
        success_url = params.get("success_url")
        if not success_url:
            raise _missing("success_url")
        _check_url(success_url, "success_url")
        cancel_url = params.get("cancel_url")
        if cancel_url is not None:
            _check_url(cancel_url, "cancel_url")
        currency, amount, product_name = _line_items(params.get("line_items"))
        reference = _optional_text(params, "client_reference_id")
        if reference is not None and len(reference) > MAX_CLIENT_REFERENCE_ID:
            raise StripeApiError(
                400,
                f"client_reference_id must be at most {MAX_CLIENT_REFERENCE_ID} characters",
                param="client_reference_id",
            )
        metadata = _metadata(params.get("metadata"))
        now = int(self._clock())
        expires_at = now + DEFAULT_LIFETIME_SECONDS
        if "expires_at" in params:
            expires_at = _integer(params["expires_at"], "expires_at")
            if not now + MIN_LIFETIME_SECONDS <= expires_at <= now + MAX_LIFETIME_SECONDS:
                raise StripeApiError(
                    400,
                    "expires_at must be between 30 minutes and 24 hours after creation",
                    param="expires_at",
                )

        session_id = "cs_test_" + _random_id(58)
        data: dict[str, Any] = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": amount,
            "amount_total": amount,
            "cancel_url": cancel_url,
            "client_reference_id": reference,
            "created": now,
            "currency": currency,
            "customer": None,
            "customer_details": None,
            "customer_email": _optional_text(params, "customer_email"),
            "expires_at": expires_at,
            "livemode": False,
            "locale": params.get("locale"),
            "metadata": metadata,
            "mode": mode,
            "payment_intent": None,
            "payment_method_types": ["card"],
            "payment_status": "unpaid",
            "status": "open",
            "success_url": success_url,
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": "hosted",
            "url": f"{self.public_base_url}/c/pay/{session_id}",
        }
        session = _Session(data, product_name)
        self._sessions[session_id] = session
        return session

    def _refresh(self, session: _Session) -> _Session:
        """Expire an open session whose `expires_at` has passed (and send the event)."""
        if session.data["status"] == "open" and self._clock() >= session.data["expires_at"]:
            self._background.spawn(self._deliver(self._expire(session)))
        return session

    def _complete(self, session: _Session, *, delayed: bool) -> dict[str, Any]:
        data = self._refresh(session).data
        if data["status"] != "open":
            raise StripeApiError(
                400, f"Checkout session {data['id']} is {data['status']} and cannot be paid."
            )
        intent_id = "pi_" + _random_id(24)
        session.intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": data["amount_total"],
            "amount_received": 0 if delayed else data["amount_total"],
            "currency": data["currency"],
            "created": int(self._clock()),
            "livemode": False,
            "metadata": {},
            "status": "processing" if delayed else "succeeded",
        }
        data.update(
            status="complete",
            payment_status="unpaid" if delayed else "paid",
            payment_intent=intent_id,
            payment_method_types=["us_bank_account"] if delayed else ["card"],
            customer_details={"email": data["customer_email"] or "payer@example.com"},
            url=None,  # only an open session has a payment page
        )
        if not delayed:
            self._new_charge(session)
        return self._record_event("checkout.session.completed", data)

    def _charge_for_session(self, session: _Session) -> dict[str, Any]:
        intent = session.intent
        charge_id = self._charge_of_intent.get(intent["id"]) if intent is not None else None
        if charge_id is None:
            raise StripeApiError(
                400, f"Checkout session {session.data['id']} has no successful charge."
            )
        return self._charges[charge_id]

    def _new_charge(self, session: _Session) -> None:
        """The charge of a payment that succeeded (what refunds and disputes are made on)."""
        intent = session.intent
        assert intent is not None
        charge_id = "ch_" + _random_id(24)
        self._charges[charge_id] = {
            "id": charge_id,
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": intent["amount"],
            "amount_refunded": 0,
            "currency": intent["currency"],
            "created": int(self._clock()),
            "disputed": False,
            "livemode": False,
            "metadata": dict(session.data.get("metadata") or {}),
            "paid": True,
            "payment_intent": intent["id"],
            "refunded": False,
            "status": "succeeded",
            "refunds": {"object": "list", "data": [], "has_more": False, "total_count": 0},
        }
        self._charge_of_intent[intent["id"]] = charge_id
        intent["latest_charge"] = charge_id

    def _refund_from_params(self, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Validate `POST /v1/refunds` as Stripe does; the refund and its event."""
        for name in params:
            if name not in ("payment_intent", "charge", "amount", "metadata", "reason", "expand"):
                raise StripeApiError(400, f"Received unknown parameter: {name}", param=name)
        intent_id, charge_id = params.get("payment_intent"), params.get("charge")
        if not intent_id and not charge_id:
            raise StripeApiError(
                400, "One of charge or payment_intent is required.", code="parameter_missing"
            )
        if intent_id:
            charge_id = self._charge_of_intent.get(intent_id)
            if charge_id is None:
                known = any(
                    s.intent is not None and s.intent["id"] == intent_id
                    for s in self._sessions.values()
                )
                if not known:
                    raise StripeApiError(
                        404,
                        f"No such payment_intent: '{intent_id}'",
                        param="payment_intent",
                        code="resource_missing",
                    )
                raise StripeApiError(
                    400,
                    f"PaymentIntent {intent_id} does not have a successful charge to refund.",
                    param="payment_intent",
                )
        charge = self._charges.get(charge_id) if isinstance(charge_id, str) else None
        if charge is None:
            raise StripeApiError(
                404, f"No such charge: '{charge_id}'", param="charge", code="resource_missing"
            )
        amount = None
        if params.get("amount") not in (None, ""):
            amount = _integer(params["amount"], "amount", minimum=1)
        reason = _optional_text(params, "reason")
        if reason is not None and reason not in (
            "duplicate",
            "fraudulent",
            "requested_by_customer",
        ):
            raise StripeApiError(400, f"Invalid reason: {reason}", param="reason")
        return self._refund(
            charge, amount, metadata=_metadata(params.get("metadata")), reason=reason
        )

    def _refund(
        self,
        charge: dict[str, Any],
        amount: int | None,
        *,
        metadata: dict[str, str],
        reason: str | None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Refund `amount` (None: all that is left) of a charge; the refund and its
        `charge.refunded` event."""
        left = charge["amount"] - charge["amount_refunded"]
        if charge["disputed"]:
            raise StripeApiError(
                400,
                f"Charge {charge['id']} has been charged back; cannot issue a refund.",
                code="charge_disputed",
            )
        if left <= 0:
            raise StripeApiError(
                400,
                f"Charge {charge['id']} has already been refunded.",
                code="charge_already_refunded",
            )
        amount = left if amount is None else amount
        if amount > left:
            currency = charge["currency"]
            raise StripeApiError(
                400,
                f"Refund amount ({format_amount(amount, currency)}) is greater than unrefunded"
                f" amount on charge ({format_amount(left, currency)})",
                param="amount",
                code="amount_too_large",  # UNCONFIRMED: Stripe's exact code
            )
        refund = {
            "id": "re_" + _random_id(24),
            "object": "refund",
            "amount": amount,
            "charge": charge["id"],
            "created": int(self._clock()),
            "currency": charge["currency"],
            "metadata": metadata,
            "payment_intent": charge["payment_intent"],
            "reason": reason,
            "status": "succeeded",
        }
        self._refunds[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        listed = charge["refunds"]
        listed["data"].insert(0, copy.deepcopy(refund))  # newest first, as Stripe lists them
        listed["total_count"] = len(listed["data"])
        return refund, self._record_event("charge.refunded", self._charge_view(charge))

    def _charge_view(self, charge: dict[str, Any]) -> dict[str, Any]:
        """The charge as this API version shows it (with or without its refunds)."""
        view = copy.deepcopy(charge)
        if not self.charge_refunds_listed:
            del view["refunds"]
        return view

    def _settle(self, session: _Session, *, succeeded: bool) -> dict[str, Any]:
        data = session.data
        if session.intent is None or session.intent["status"] != "processing":
            raise StripeApiError(400, f"Checkout session {data['id']} has no payment settling.")
        if succeeded:
            session.intent.update(status="succeeded", amount_received=data["amount_total"])
            data["payment_status"] = "paid"
            self._new_charge(session)
            return self._record_event("checkout.session.async_payment_succeeded", data)
        # A failed debit sends the PaymentIntent back for another method; the session stays
        # complete and unpaid.
        session.intent["status"] = "requires_payment_method"
        return self._record_event("checkout.session.async_payment_failed", data)

    def _expire(self, session: _Session) -> dict[str, Any]:
        data = session.data
        if data["status"] != "open":
            raise StripeApiError(
                400,
                f"Only open Checkout Sessions can be expired; {data['id']} is {data['status']}.",
                code="checkout_session_not_open",  # UNCONFIRMED: Stripe's exact code
            )
        data.update(status="expired", url=None)
        return self._record_event("checkout.session.expired", data)

    # -----------------------------------------------------------------------------------------
    # Events and webhooks
    # -----------------------------------------------------------------------------------------

    def _event(self, event_type: str, session: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "id": "evt_" + _random_id(24),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(self._clock()),
            "data": {"object": copy.deepcopy(dict(session))},
            "livemode": False,
            "pending_webhooks": 1 if self.webhook_url else 0,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }

    def _record_event(self, event_type: str, session: Mapping[str, Any]) -> dict[str, Any]:
        event = self._event(event_type, session)
        self._events.append(event)
        return event

    async def _deliver(self, event: dict[str, Any]) -> None:
        """POST a signed event to the webhook URL until it answers 2xx or attempts run out."""
        url = self.webhook_url
        if url is None:
            return
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=10.0)
        body = _event_body(event)
        delay = self.webhook_retry_seconds
        for attempt in range(1, self.webhook_attempts + 1):
            # Every attempt is signed afresh, so a late retry is not stale at the receiver; by the
            # wall clock, which is what the receiver checks (the emulator's may be a test's).
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "Stripe-Signature": sign(body, self.webhook_secret, int(time.time())),
            }
            record: dict[str, Any] = {
                "event_id": event["id"],
                "type": event["type"],
                "attempt": attempt,
                "status": None,
                "error": None,
            }
            self._deliveries.append(record)
            try:
                response = await self._http.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                record["error"] = repr(exc)
            else:
                record["status"] = response.status_code
                if 200 <= response.status_code < 300:
                    return
            if attempt < self.webhook_attempts:
                await asyncio.sleep(delay)
                delay *= 2
        log.warning("stripe emulator: gave up delivering %s (%s)", event["id"], event["type"])


# ---------------------------------------------------------------------------------------------
# Signing
# ---------------------------------------------------------------------------------------------


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """A `Stripe-Signature` header value: `t=<unix>,v1=<hex HMAC-SHA256 of "{t}.{body}">`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def _event_body(event: Mapping[str, Any]) -> bytes:
    # Stripe delivers events pretty-printed; the signature covers these exact bytes.
    return json.dumps(event, indent=2).encode()


# ---------------------------------------------------------------------------------------------
# Form parameters
# ---------------------------------------------------------------------------------------------


async def _form_pairs(request: Request) -> list[tuple[str, str]]:
    raw = await request.body()
    try:
        return parse_qsl(raw.decode(), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        return []


def _parse_params(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's nested form keys (`line_items[0][price_data][currency]=usd`, `expand[]=x`) as
    dicts and lists. Indexes must run 0, 1, 2 … as the SDK sends them."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.fullmatch(key)
        if match is None:
            raise StripeApiError(400, f"Invalid parameter name: {key}", param=key)
        path = [match.group(1), *_SEGMENT.findall(match.group(2))]
        node = root
        for depth, part in enumerate(path):
            last = depth == len(path) - 1
            if part == "":  # `a[]`: append
                part = str(sum(1 for k in node if k.isdigit()))
            if last:
                if part in node:
                    raise StripeApiError(400, f"Parameter given twice: {key}", param=key)
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise StripeApiError(400, f"Invalid parameter nesting: {key}", param=key)
                node = child
    result = _lists(root, "")
    assert isinstance(result, dict)
    return result


def _lists(node: Any, where: str) -> Any:
    """Turn dicts keyed 0..n-1 into lists, depth first."""
    if not isinstance(node, dict):
        return node
    converted = {k: _lists(v, f"{where}[{k}]" if where else k) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        indexes = sorted(int(k) for k in converted)
        if indexes != list(range(len(indexes))):
            raise StripeApiError(400, f"Invalid array: {where}", param=where)
        return [converted[str(i)] for i in indexes]
    return converted


def _integer(value: Any, param: str, *, minimum: int | None = None) -> int:
    if not isinstance(value, str) or not re.fullmatch(r"-?[0-9]+", value):
        raise StripeApiError(
            400, f"Invalid integer: {value}", param=param, code="parameter_invalid_integer"
        )
    number = int(value)
    if minimum is not None and number < minimum:
        raise StripeApiError(400, f"{param} must be at least {minimum}", param=param)
    return number


def _missing(param: str) -> StripeApiError:
    return StripeApiError(
        400, f"Missing required param: {param}.", param=param, code="parameter_missing"
    )


def _optional_text(params: Mapping[str, Any], param: str) -> str | None:
    value = params.get(param)
    if value is None or value == "":  # an empty string unsets a field in Stripe's encoding
        return None
    if not isinstance(value, str):
        raise StripeApiError(400, f"Invalid string: {param}", param=param)
    return value


def _check_url(value: Any, param: str) -> None:
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise StripeApiError(400, "Not a valid URL", param=param, code="url_invalid")


def _line_items(items: Any) -> tuple[str, int, str]:
    """(currency, total in minor units, first product's name) of inline-priced line items."""
    if items is None or items == "":
        raise _missing("line_items")
    if not isinstance(items, list) or not items:
        raise StripeApiError(400, "line_items must be a non-empty list", param="line_items")
    currency: str | None = None
    total = 0
    names: list[str] = []
    for index, item in enumerate(items):
        where = f"line_items[{index}]"
        if not isinstance(item, dict):
            raise StripeApiError(400, f"Invalid object: {where}", param=where)
        if "price" in item:
            # The emulator has no Price objects; vidgate prices inline.
            raise StripeApiError(
                400,
                f"No such price: '{item['price']}'",
                param=f"{where}[price]",
                code="resource_missing",
            )
        price = item.get("price_data")
        if not isinstance(price, dict):
            raise _missing(f"{where}[price_data]")
        if "quantity" not in item:
            raise _missing(f"{where}[quantity]")
        quantity = _integer(item["quantity"], f"{where}[quantity]", minimum=1)
        item_currency = price.get("currency")
        if not isinstance(item_currency, str) or not re.fullmatch(r"[A-Za-z]{3}", item_currency):
            raise _missing(f"{where}[price_data][currency]")
        item_currency = item_currency.lower()
        if currency is not None and item_currency != currency:
            raise StripeApiError(
                400, "All line items must use the same currency", param=f"{where}[price_data]"
            )
        currency = item_currency
        if "unit_amount" not in price:
            raise _missing(f"{where}[price_data][unit_amount]")
        unit = _integer(price["unit_amount"], f"{where}[price_data][unit_amount]", minimum=0)
        product = price.get("product_data")
        name = product.get("name") if isinstance(product, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise _missing(f"{where}[price_data][product_data][name]")
        names.append(name)
        total += unit * quantity
    assert currency is not None
    return currency, total, names[0]


def _metadata(value: Any) -> dict[str, str]:
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise StripeApiError(400, "Invalid object: metadata", param="metadata")
    if len(value) > MAX_METADATA_KEYS:
        raise StripeApiError(
            400, f"metadata takes at most {MAX_METADATA_KEYS} keys", param="metadata"
        )
    for key, item in value.items():
        if not isinstance(item, str):
            raise StripeApiError(400, f"Invalid string: metadata[{key}]", param=f"metadata[{key}]")
        if len(key) > MAX_METADATA_KEY or len(item) > MAX_METADATA_VALUE:
            raise StripeApiError(
                400,
                f"metadata keys take at most {MAX_METADATA_KEY} characters and values "
                f"{MAX_METADATA_VALUE}",
                param=f"metadata[{key}]",
            )
    return dict(value)


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not key or len(key) > MAX_IDEMPOTENCY_KEY:
        raise StripeApiError(
            400,
            f"Idempotency keys take 1 to {MAX_IDEMPOTENCY_KEY} characters",
            type_="idempotency_error",
        )
    return key


def _random_id(length: int) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _request_id() -> str:
    return "req_" + _random_id(14)


def _redact(key: str) -> str:
    return f"{key[:8]}{'*' * 8}{key[-4:]}" if len(key) > 12 else "*" * len(key)


# ---------------------------------------------------------------------------------------------
# Hosted page
# ---------------------------------------------------------------------------------------------


def format_amount(amount: int, currency: str) -> str:
    """An amount in minor units as a payer reads it: `$9.99`, `¥1,000`, `CHF 12.50`."""
    code = currency.lower()
    exponent = minor_exponent(code)
    value = f"{to_major(amount, code):,.{exponent}f}"
    symbol = _SYMBOLS.get(code)
    return f"{symbol}{value}" if symbol else f"{code.upper()} {value}"


def _checkout_page(session: _Session, *, status_code: int = 200, error: str = "") -> Response:
    e = html.escape
    data = session.data
    price = format_amount(data["amount_total"], data["currency"])
    summary = f"""
<p class="badge" role="note">EMULATED — vidgate's local stand-in for Stripe Checkout;
no money moves.</p>
<h1>{e(session.product_name)}</h1>
<p class="amount">{e(price)} <span class="code">{e(data["currency"].upper())}</span></p>"""
    if data["status"] == "expired":
        body = f"""{summary}
<h2>This checkout session has expired</h2>
<p>It can no longer be paid. Go back to the merchant to start a new payment.</p>"""
    elif data["status"] == "complete":
        done = "is complete" if data["payment_status"] == "paid" else "is being processed"
        body = f"""{summary}
<h2>This payment {done}</h2>
<p>There is nothing more to do on this page.</p>"""
    else:
        alert = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
        back = (
            f'<p><a href="{e(data["cancel_url"])}">Back to the merchant</a></p>'
            if data["cancel_url"]
            else ""
        )
        body = f"""{summary}
{alert}
<form method="post">
<p><button type="submit" name="method" value="card">Pay {e(price)}</button></p>
<p><button type="submit" name="method" value="bank_debit"
 aria-describedby="debit-note">Pay {e(price)} by bank debit</button>
<span id="debit-note">(settles later: the payment stays pending until the emulator is told
the outcome)</span></p>
</form>
{back}"""
    return _html(body, status_code=status_code)


def _page_not_found() -> Response:
    return _html(
        "<h1>Checkout session not found</h1><p>Check the link you followed.</p>", status_code=404
    )


def _html(body: str, *, status_code: int = 200) -> HTMLResponse:
    style = """.badge { background: #fff3cd; border: 1px solid #c9a227; padding: .3rem .6rem;
         font-weight: 600; }
.amount { font-size: 2rem; font-weight: 700; margin: .5rem 0; }
.code { font-size: 1rem; color: #555; }
button { padding: .6rem 1.2rem; font-size: 1rem; }"""
    return html_page(
        _PAGE_TITLE, body, style=style, status_code=status_code, form_action_anywhere=True
    )
