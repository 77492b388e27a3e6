"""Twilio Programmable Messaging: create a Message (2010-04-01 REST API) with Basic auth."""

from __future__ import annotations

from urllib.parse import quote

import httpx

from vidgate.auth.sms.base import (
    SmsSendError,
    post_for_json,
    scrub_code,
    status_retryable,
)

DEFAULT_BASE_URL = "https://api.twilio.com"
DEFAULT_BODY_TEMPLATE = "Your vidgate verification code is {code}. It expires in 5 minutes."

# A message Twilio has already given up on at creation time.
_FAILED_STATUSES = frozenset({"failed", "undelivered"})


class TwilioSmsSender:
    """Sends `body_template` with `{code}` filled in, from a number or a Messaging Service."""

    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        body_template: str = DEFAULT_BODY_TEMPLATE,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
        api_key_sid: str | None = None,
    ) -> None:
        if not from_number and not messaging_service_sid:
            raise ValueError("Twilio needs from_number or messaging_service_sid")
        if "{code}" not in body_template:
            raise ValueError("body_template must contain {code}")
        self._from_number = from_number
        self._messaging_service_sid = messaging_service_sid
        self._body_template = body_template
        self._url = (
            f"{base_url.rstrip('/')}/2010-04-01/Accounts/{quote(account_sid, safe='')}"
            "/Messages.json"
        )
        # With an API key the username is the key SID and the password its secret, while the
        # URL still names the account.
        self._auth = httpx.BasicAuth(api_key_sid or account_sid, auth_token)
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    def _form(self, phone_e164: str, code: str) -> dict[str, str]:
        # replace(), not format(): other braces in an operator's template are literal text.
        form = {"To": phone_e164, "Body": self._body_template.replace("{code}", code)}
        if self._from_number:
            form["From"] = self._from_number
        if self._messaging_service_sid:
            form["MessagingServiceSid"] = self._messaging_service_sid
        return form

    async def send_code(self, phone_e164: str, code: str) -> None:
        status, body = await post_for_json(
            self._client, "twilio", self._url, data=self._form(phone_e164, code), auth=self._auth
        )
        if not isinstance(body, dict):
            body = {}
        if 200 <= status < 300:
            sid = body.get("sid")
            message_status = body.get("status")
            if isinstance(sid, str) and sid.startswith("SM"):
                if message_status not in _FAILED_STATUSES:
                    return
                error_code = body.get("error_code")
                raise SmsSendError(
                    f"twilio: message {sid} is {message_status}: "
                    f"{scrub_code(str(body.get('error_message') or ''), code)}",
                    vendor_code=str(error_code) if error_code is not None else None,
                    retryable=True,
                )
            raise SmsSendError(f"twilio: HTTP {status} without a message SID", retryable=True)

        vendor_code = body.get("code")
        message = scrub_code(str(body.get("message") or ""), code)
        raise SmsSendError(
            f"twilio: HTTP {status}: {vendor_code}: {message}",
            vendor_code=str(vendor_code) if vendor_code is not None else None,
            # Twilio said no to this request (bad number, unsubscribed, auth); only rate limits
            # and its own failures are worth another try.
            retryable=status_retryable(status),
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
