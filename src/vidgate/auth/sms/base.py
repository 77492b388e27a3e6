"""The protocol every SMS vendor adapter implements."""

from __future__ import annotations

from typing import Any, Protocol

import httpx


class SmsSendError(Exception):
    """The vendor did not accept the message. `retryable` is False when it said no for good."""

    def __init__(self, message: str, *, vendor_code: str | None = None, retryable: bool = True):
        super().__init__(message)
        self.vendor_code = vendor_code
        self.retryable = retryable


class SmsSender(Protocol):
    """Sends a sign-in code to one phone number given in E.164 form (`+8613800138000`)."""

    name: str

    async def send_code(self, phone_e164: str, code: str) -> None: ...

    async def aclose(self) -> None: ...


def scrub_code(text: str, code: str) -> str:
    """Vendor text fit for logs: the code masked (vendors may echo the message), length capped."""
    return (text.replace(code, "******") if code else text)[:300]


def status_retryable(status: int) -> bool:
    """An HTTP failure may pass later unless the vendor said the request itself is wrong (4xx)."""
    return not (400 <= status < 500) or status == 429


async def post_for_json(
    client: httpx.AsyncClient, vendor: str, url: str, **request: Any
) -> tuple[int, Any]:
    """POST to a vendor: `(status, parsed JSON or None)`; a transport failure is retryable."""
    try:
        response = await client.post(url, **request)
    except httpx.RequestError as exc:
        raise SmsSendError(
            f"{vendor}: request failed: {type(exc).__name__}: {exc}", retryable=True
        ) from exc
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, None
