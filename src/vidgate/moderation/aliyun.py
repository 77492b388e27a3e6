"""Alibaba Cloud Content Moderation, text moderation (green 2022-03-02, `TextModeration`) over
the signed RPC API, as a `Moderator`.

The request and answer as documented (docs/vendors.md, "Alibaba Cloud Content Moderation"):
form fields `Service` (the moderation service, `ai_art_detection` for prompts of generated media)
and `ServiceParameters` (a JSON string with `content`); the answer `{"Code": 200, "Data":
{"labels": "a,b", "reason": ...}, "Message", "RequestId"}`, where empty labels pass.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import httpx

from vidgate.auth.sms.aliyun import rpc_signature
from vidgate.moderation.base import ModeratorUnavailable, Verdict

API_VERSION = "2022-03-02"
DEFAULT_ENDPOINT = "https://green-cip.cn-shanghai.aliyuncs.com"
DEFAULT_SERVICE = "ai_art_detection"
# The most characters one request moderates (unconfirmed: the documented limit as read); longer
# prompts are sent in pieces, and one flagged piece refuses the prompt.
MAX_CONTENT_CHARS = 600


def pieces(text: str, size: int = MAX_CONTENT_CHARS) -> list[str]:
    return [text[start : start + size] for start in range(0, len(text), size)] or [""]


class AliyunTextModerator:
    name = "aliyun"

    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str,
        *,
        endpoint: str = DEFAULT_ENDPOINT,
        service: str = DEFAULT_SERVICE,
        timeout: float = 5.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._access_key_id = access_key_id
        self._access_key_secret = access_key_secret
        self._url = endpoint.rstrip("/") + "/"
        self._service = service
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    def _params(self, content: str) -> dict[str, str]:
        params = {
            "AccessKeyId": self._access_key_id,
            "Action": "TextModeration",
            "Format": "JSON",
            "Service": self._service,
            "ServiceParameters": json.dumps({"content": content}, ensure_ascii=False),
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": str(uuid.uuid4()),
            "SignatureVersion": "1.0",
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": API_VERSION,
        }
        params["Signature"] = rpc_signature("POST", params, self._access_key_secret)
        return params

    async def _labels(self, content: str) -> list[str]:
        """The labels the vendor gives `content` (none: it passes)."""
        try:
            response = await self._client.post(self._url, data=self._params(content))
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ModeratorUnavailable(f"aliyun: {type(exc).__name__}: {exc}") from None
        if not isinstance(body, dict) or body.get("Code") != 200 or response.status_code != 200:
            code = body.get("Code") if isinstance(body, dict) else None
            message = body.get("Message") if isinstance(body, dict) else None
            raise ModeratorUnavailable(
                f"aliyun: HTTP {response.status_code}, Code {code}: {str(message)[:200]}"
            )
        data = body.get("Data")
        labels = data.get("labels") if isinstance(data, dict) else None
        if labels is None:
            raise ModeratorUnavailable("aliyun: answer without Data.labels")
        return [label.strip() for label in str(labels).split(",") if label.strip()]

    async def check(self, text: str) -> Verdict:
        for piece in pieces(text):
            labels = await self._labels(piece)
            if labels:
                shown = ", ".join(labels)
                return Verdict(False, shown, f"aliyun labels {shown}", self.name)
        return Verdict.allow()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
