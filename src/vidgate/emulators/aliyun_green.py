"""A local model of Alibaba Cloud Content Moderation's text moderation (`TextModeration`,
green 2022-03-02), for development and tests without internet.

It checks the signed RPC request as the vendor would (action, version, access key, HMAC-SHA1
signature, a JSON `ServiceParameters` with `content`) and answers with the vendor's envelope.
What it flags is chosen by markers in the text, since a model of the vendor's judgement would be
pretend: `[label:<name>]` flags the text with that label (several markers, several labels),
`[fault:5xx]` answers HTTP 500, `[fault:slow]` answers after `slow_seconds`. Error bodies
(`{"Code": "<name>", "Message", "RequestId"}` with a 4xx) follow the RPC API's common form and
are unconfirmed for this product.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from vidgate.auth.sms.aliyun import rpc_signature
from vidgate.moderation.aliyun import API_VERSION

PREFIX = "/_emulator/aliyun-green"
_LABEL = re.compile(r"\[label:([a-z_]{1,40})\]")


def _error(status: int, code: str, message: str) -> JSONResponse:
    body = {"Code": code, "Message": message, "RequestId": str(uuid.uuid4())}
    return JSONResponse(body, status_code=status)


class AliyunGreenEmulator:
    def __init__(
        self, access_key_id: str, access_key_secret: str, *, slow_seconds: float = 30.0
    ) -> None:
        self.access_key_id = access_key_id
        self._secret = access_key_secret
        self.slow_seconds = slow_seconds
        self.checked: list[str] = []  # every content moderated, in order

    def _refusal(self, params: dict[str, str]) -> JSONResponse | None:
        """The vendor's error for a request it would not run, or None."""
        if params.get("Action") != "TextModeration" or params.get("Version") != API_VERSION:
            return _error(400, "InvalidAction.NotFound", "Specified api is not found")
        if params.get("AccessKeyId") != self.access_key_id:
            return _error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found")
        signed = {k: v for k, v in params.items() if k != "Signature"}
        if params.get("Signature") != rpc_signature("POST", signed, self._secret):
            return _error(400, "SignatureDoesNotMatch", "Specified signature is not matched")
        if not params.get("Service"):
            return _error(400, "MissingService", "Service is mandatory for this action")
        return None

    async def moderate(self, request: Request) -> JSONResponse:
        form = await request.form()
        params = {key: str(value) for key, value in form.items()}
        refused = self._refusal(params)
        if refused is not None:
            return refused
        try:
            service_parameters: Any = json.loads(params.get("ServiceParameters", ""))
            content = str(service_parameters["content"])
        except (ValueError, KeyError, TypeError):
            return _error(400, "InvalidParameter", "ServiceParameters has no content")
        self.checked.append(content)
        if "[fault:slow]" in content:
            await asyncio.sleep(self.slow_seconds)
        if "[fault:5xx]" in content:
            return _error(500, "InternalError", "The request processing has failed")
        labels = _LABEL.findall(content)
        reason = {"riskTips": ",".join(labels), "riskWords": ""} if labels else {}
        data = {"labels": ",".join(labels), "reason": json.dumps(reason) if labels else ""}
        body = {"Code": 200, "Data": data, "Message": "OK", "RequestId": str(uuid.uuid4())}
        return JSONResponse(body)

    def router(self) -> APIRouter:
        router = APIRouter(prefix=PREFIX, include_in_schema=False)
        router.add_api_route("/", self.moderate, methods=["POST"])
        return router
