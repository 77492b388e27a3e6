"""The Aliyun, Tencent and Twilio SMS adapters against fake vendor servers on loopback.

Each fake checks requests the way its vendor does: the Aliyun and Tencent fakes recompute the
signature with the known secret (using their own implementation, not the adapter's), the Twilio
fake checks Basic auth. They record what they received and can be told how to answer.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from vidgate.auth.sms import tencent as tencent_module
from vidgate.auth.sms.aliyun import AliyunSmsSender, percent_encode, rpc_signature
from vidgate.auth.sms.base import SmsSender, SmsSendError
from vidgate.auth.sms.tencent import TencentSmsSender, tc3_authorization
from vidgate.auth.sms.twilio import TwilioSmsSender

from ..fixtures.loopback import closed_port_url, serve_on_loopback

# A leading zero: the code must travel as a string everywhere.
CODE = "048213"

ALIYUN_ID = "LTAI5tTestAccessKeyId"
ALIYUN_SECRET = "aliyun-test-secret"
ALIYUN_SIGN = "阿里云短信测试"
ALIYUN_TEMPLATE = "SMS_154950909"

TENCENT_ID = "AKIDtestsecretid0123456789"
TENCENT_KEY = "tencent-test-secret-key"
TENCENT_APP = "1400006666"
TENCENT_SIGN = "腾讯云"
TENCENT_TEMPLATE = "449739"

TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "twilio-test-auth-token"
TWILIO_KEY_SID = "SK" + "fedcba9876543210" * 2
TWILIO_KEY_SECRET = "twilio-test-key-secret"
TWILIO_FROM = "+15005550006"
TWILIO_SERVICE = "MG" + "00112233445566778899aabbccddeeff"


# ---------------------------------------------------------------------------------------------
# Fake vendor servers
# ---------------------------------------------------------------------------------------------


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True, strict_parsing=True))

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Fake:
    """What a fake vendor received, and how it answers once the request is authenticated."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    reply: Callable[[], Response] | None = None
    delay: float = 0.0

    async def record(self, request: Request) -> Recorded:
        recorded = Recorded(request.url.path, dict(request.headers), await request.body())
        self.requests.append(recorded)
        if self.delay:
            await asyncio.sleep(self.delay)
        return recorded

    @property
    def last(self) -> Recorded:
        assert self.requests, "the fake vendor received nothing"
        return self.requests[-1]


def _request_id() -> str:
    return str(uuid.uuid4()).upper()


def ref_rpc_signature(method: str, params: dict[str, str], secret: str) -> str:
    """Alibaba's RPC signature, written independently of the adapter for the fake server."""
    canonical = urlencode(sorted(params.items()), quote_via=quote, safe="~")
    string_to_sign = "&".join([method, quote("/", safe="~"), quote(canonical, safe="~")])
    mac = hmac.new((secret + "&").encode(), string_to_sign.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def aliyun_app(fake: Fake) -> Starlette:
    nonces: set[str] = set()

    def error(code: str, message: str, status: int) -> Response:
        body = {"Code": code, "Message": message, "RequestId": _request_id()}
        return JSONResponse(body, status_code=status)

    async def rpc(request: Request) -> Response:
        form = (await fake.record(request)).form
        params = {k: v for k, v in form.items() if k != "Signature"}
        expected = ref_rpc_signature("POST", params, ALIYUN_SECRET)
        if not hmac.compare_digest(form.get("Signature", ""), expected):
            return error("SignatureDoesNotMatch", "Specified signature is not matched.", 400)
        if params.get("AccessKeyId") != ALIYUN_ID:
            return error("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
        if params.get("SignatureNonce") in nonces:
            return error("SignatureNonceUsed", "Specified signature nonce was used already.", 400)
        nonces.add(params.get("SignatureNonce", ""))
        if fake.reply is not None:
            return fake.reply()
        return JSONResponse(
            {"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0", "RequestId": "X"}
        )

    return Starlette(routes=[Route("/", rpc, methods=["POST"])])


def ref_tc3_signature(secret_key: str, date: str, service: str, string_to_sign: str) -> str:
    """TC3-HMAC-SHA256 key derivation and signature, independent of the adapter."""
    key = ("TC3" + secret_key).encode()
    for part in (date, service, "tc3_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


_TC3_AUTH = re.compile(
    r"TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[a-z]+)"
    r"/tc3_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})"
)


def tencent_app(fake: Fake) -> Starlette:
    def error(code: str, message: str) -> Response:
        # Tencent answers errors with HTTP 200 too.
        return JSONResponse({"Response": {"Error": {"Code": code, "Message": message}}})

    async def api(request: Request) -> Response:
        recorded = await fake.record(request)
        headers = recorded.headers
        auth = _TC3_AUTH.fullmatch(headers.get("authorization", ""))
        if auth is None:
            return error("AuthFailure.InvalidAuthorization", "Authorization is malformed.")
        if auth["id"] != TENCENT_ID:
            return error("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
        timestamp = int(headers.get("x-tc-timestamp", "0"))
        if abs(time.time() - timestamp) > 300:
            return error("AuthFailure.SignatureExpire", "Signature expired.")
        signed = auth["signed"].split(";")
        if not {"content-type", "host"} <= set(signed):
            return error("AuthFailure.SignatureFailure", "content-type and host must be signed.")
        canonical_headers = "".join(f"{h}:{headers.get(h, '').strip().lower()}\n" for h in signed)
        canonical = "\n".join(
            [
                request.method,
                request.url.path,
                request.url.query,
                canonical_headers,
                auth["signed"],
                hashlib.sha256(recorded.body).hexdigest(),
            ]
        )
        scope_date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
        string_to_sign = "\n".join(
            [
                "TC3-HMAC-SHA256",
                str(timestamp),
                f"{auth['date']}/{auth['service']}/tc3_request",
                hashlib.sha256(canonical.encode()).hexdigest(),
            ]
        )
        expected = ref_tc3_signature(TENCENT_KEY, auth["date"], auth["service"], string_to_sign)
        if (
            auth["date"] != scope_date
            or auth["service"] != "sms"
            or not hmac.compare_digest(auth["sig"], expected)
        ):
            return error("AuthFailure.SignatureFailure", "The provided credentials failed.")
        if headers.get("x-tc-action") != "SendSms" or headers.get("x-tc-version") != "2021-01-11":
            return error("InvalidAction", "The action or version is wrong.")
        if fake.reply is not None:
            return fake.reply()
        phone = recorded.json["PhoneNumberSet"][0]
        status = {
            "SerialNo": "5000:1045710669157053657849499619",
            "PhoneNumber": phone,
            "Fee": 1,
            "SessionContext": "",
            "Code": "Ok",
            "Message": "send success",
            "IsoCode": "CN",
        }
        return JSONResponse(
            {"Response": {"SendStatusSet": [status], "RequestId": _request_id().lower()}}
        )

    return Starlette(routes=[Route("/", api, methods=["POST"])])


def tencent_status(code: str, message: str) -> Callable[[], Response]:
    """A reply whose single send status carries a per-number failure."""

    def reply() -> Response:
        status = {"SerialNo": "", "PhoneNumber": "+8613800138000", "Fee": 0, "Code": code}
        status |= {"Message": message, "IsoCode": "CN", "SessionContext": ""}
        return JSONResponse({"Response": {"SendStatusSet": [status], "RequestId": "r"}})

    return reply


def twilio_app(fake: Fake) -> Starlette:
    def error(code: int, message: str, status: int) -> Response:
        body = {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
        return JSONResponse(body, status_code=status)

    async def create_message(request: Request) -> Response:
        form = (await fake.record(request)).form
        account = request.path_params["account_sid"]
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        user, _, password = base64.b64decode(encoded or "Og==").decode().partition(":")
        valid = {(TWILIO_SID, TWILIO_TOKEN), (TWILIO_KEY_SID, TWILIO_KEY_SECRET)}
        if scheme != "Basic" or account != TWILIO_SID or (user, password) not in valid:
            return error(20003, "Authenticate", 401)
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return error(21603, "A 'From' or 'MessagingServiceSid' parameter is required.", 400)
        if fake.reply is not None:
            return fake.reply()
        message = {
            "sid": "SM" + uuid.uuid4().hex,
            "account_sid": account,
            "to": form["To"],
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form["Body"],
            "status": "accepted" if form.get("MessagingServiceSid") else "queued",
            "error_code": None,
            "error_message": None,
        }
        return JSONResponse(message, status_code=201)

    path = "/2010-04-01/Accounts/{account_sid}/Messages.json"
    return Starlette(routes=[Route(path, create_message, methods=["POST"])])


@contextlib.asynccontextmanager
async def running(app_factory: Callable[[Fake], Starlette]) -> AsyncIterator[Fake]:
    """Serve a fake vendor on 127.0.0.1 on a free port for the duration of the block."""
    fake = Fake()
    async with serve_on_loopback(app_factory(fake)) as url:
        fake.url = url
        yield fake


@pytest.fixture
async def aliyun_fake() -> AsyncIterator[Fake]:
    async with running(aliyun_app) as fake:
        yield fake


@pytest.fixture
async def tencent_fake() -> AsyncIterator[Fake]:
    async with running(tencent_app) as fake:
        yield fake


@pytest.fixture
async def twilio_fake() -> AsyncIterator[Fake]:
    async with running(twilio_app) as fake:
        yield fake


def make_aliyun(url: str, **kwargs: Any) -> AliyunSmsSender:
    args: dict[str, Any] = {
        "access_key_id": ALIYUN_ID,
        "access_key_secret": ALIYUN_SECRET,
        "sign_name": ALIYUN_SIGN,
        "template_code": ALIYUN_TEMPLATE,
        "endpoint": url,
    }
    return AliyunSmsSender(**(args | kwargs))


def make_tencent(url: str, **kwargs: Any) -> TencentSmsSender:
    args: dict[str, Any] = {
        "secret_id": TENCENT_ID,
        "secret_key": TENCENT_KEY,
        "sdk_app_id": TENCENT_APP,
        "sign_name": TENCENT_SIGN,
        "template_id": TENCENT_TEMPLATE,
        "endpoint": url,
    }
    return TencentSmsSender(**(args | kwargs))


def make_twilio(url: str, **kwargs: Any) -> TwilioSmsSender:
    args: dict[str, Any] = {
        "account_sid": TWILIO_SID,
        "auth_token": TWILIO_TOKEN,
        "from_number": TWILIO_FROM,
        "base_url": url,
    }
    return TwilioSmsSender(**(args | kwargs))


async def send_failure(sender: SmsSender, phone: str = "+8613800138000") -> SmsSendError:
    """Send, expect SmsSendError, and check the code did not leak into the message."""
    async with contextlib.aclosing(sender):
        with pytest.raises(SmsSendError) as info:
            await sender.send_code(phone, CODE)
    assert CODE not in str(info.value)
    return info.value


# ---------------------------------------------------------------------------------------------
# Aliyun
# ---------------------------------------------------------------------------------------------

ALIYUN_DOC_PARAMS = {
    "AccessKeyId": "testid",
    "Action": "DescribeRegions",
    "Format": "XML",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
    "SignatureVersion": "1.0",
    "Timestamp": "2016-02-23T12:46:24Z",
    "Version": "2014-05-26",
}


def test_rpc_signature_matches_alibaba_documented_example() -> None:
    assert rpc_signature("GET", ALIYUN_DOC_PARAMS, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
    # The fake server's own implementation must agree, or its checks prove nothing.
    assert ref_rpc_signature("GET", ALIYUN_DOC_PARAMS, "testsecret") == (
        "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
    )


def test_percent_encode_follows_rfc3986() -> None:
    assert percent_encode("a b*c~d/e+f=g&h") == "a%20b%2Ac~d%2Fe%2Bf%3Dg%26h"
    assert percent_encode("阿") == "%E9%98%BF"
    assert percent_encode("-_.") == "-_."


def test_rpc_signature_agrees_with_reference_on_awkward_values() -> None:
    params = {"SignName": "阿里 云*~", "TemplateParam": '{"code":"048213"}', "Z": "", "A": "1"}
    assert rpc_signature("POST", params, "s3cr*t") == ref_rpc_signature("POST", params, "s3cr*t")


async def test_aliyun_sends_signed_request(aliyun_fake: Fake) -> None:
    sender = make_aliyun(aliyun_fake.url)
    assert sender.name == "aliyun"
    async with contextlib.aclosing(sender):
        await sender.send_code("+8613800138000", CODE)
        await sender.send_code("+8613800138000", CODE)  # a fresh nonce each time

    first, second = aliyun_fake.requests
    assert first.path == "/"
    assert first.headers["content-type"].startswith("application/x-www-form-urlencoded")
    form = first.form
    assert form["Action"] == "SendSms"
    assert form["Version"] == "2017-05-25"
    assert form["Format"] == "JSON"
    assert form["SignatureMethod"] == "HMAC-SHA1"
    assert form["SignatureVersion"] == "1.0"
    assert form["AccessKeyId"] == ALIYUN_ID
    assert form["PhoneNumbers"] == "13800138000"
    assert form["SignName"] == ALIYUN_SIGN
    assert form["TemplateCode"] == ALIYUN_TEMPLATE
    assert form["TemplateParam"] == '{"code":"048213"}'
    assert json.loads(form["TemplateParam"]) == {"code": CODE}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", form["Timestamp"])
    sent_at = datetime.strptime(form["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - sent_at).total_seconds()) < 60
    assert uuid.UUID(form["SignatureNonce"]).version == 4
    assert form["SignatureNonce"] != second.form["SignatureNonce"]
    unsigned = {k: v for k, v in form.items() if k != "Signature"}
    assert form["Signature"] == rpc_signature("POST", unsigned, ALIYUN_SECRET)


@pytest.mark.parametrize(
    ("phone", "expected"),
    [
        ("+8613800138000", "13800138000"),
        ("+85291234567", "85291234567"),
        ("+14155550100", "14155550100"),
    ],
)
async def test_aliyun_phone_number_format(aliyun_fake: Fake, phone: str, expected: str) -> None:
    async with contextlib.aclosing(make_aliyun(aliyun_fake.url)) as sender:
        await sender.send_code(phone, CODE)
    assert aliyun_fake.last.form["PhoneNumbers"] == expected


@pytest.mark.parametrize(
    ("vendor_code", "retryable"),
    [
        ("isv.MOBILE_NUMBER_ILLEGAL", False),
        ("isv.SMS_SIGNATURE_ILLEGAL", False),
        ("isv.SMS_TEMPLATE_ILLEGAL", False),
        ("isv.TEMPLATE_MISSING_PARAMETERS", False),
        ("isv.INVALID_JSON_PARAM", False),
        ("isv.PARAM_LENGTH_LIMIT", False),
        ("isv.BUSINESS_LIMIT_CONTROL", True),
        ("isv.AMOUNT_NOT_ENOUGH", True),
        ("isp.SYSTEM_ERROR", True),
    ],
)
async def test_aliyun_business_error(aliyun_fake: Fake, vendor_code: str, retryable: bool) -> None:
    # HTTP 200 with a non-OK Code is still a failure; the message echoes the code to check it
    # is scrubbed.
    aliyun_fake.reply = lambda: JSONResponse(
        {"Code": vendor_code, "Message": f"rejected {CODE}", "RequestId": "R1"}
    )
    error = await send_failure(make_aliyun(aliyun_fake.url))
    assert error.vendor_code == vendor_code
    assert error.retryable is retryable
    assert vendor_code in str(error)


async def test_aliyun_wrong_secret_is_rejected(aliyun_fake: Fake) -> None:
    error = await send_failure(make_aliyun(aliyun_fake.url, access_key_secret="not-the-secret"))
    assert error.vendor_code == "SignatureDoesNotMatch"
    assert error.retryable is False


async def test_aliyun_unknown_access_key(aliyun_fake: Fake) -> None:
    # Signed correctly with the secret, but under an id the vendor does not know.
    error = await send_failure(make_aliyun(aliyun_fake.url, access_key_id="LTAIunknown"))
    assert error.vendor_code == "InvalidAccessKeyId.NotFound"
    assert error.retryable is False


async def test_aliyun_rejects_non_e164_number_without_calling(aliyun_fake: Fake) -> None:
    error = await send_failure(make_aliyun(aliyun_fake.url), phone="13800138000")
    assert error.retryable is False
    assert aliyun_fake.requests == []


# ---------------------------------------------------------------------------------------------
# Tencent
# ---------------------------------------------------------------------------------------------

# Tencent's TC3 documentation example (CVM DescribeInstances), with its published signature.
TC3_DOC_PAYLOAD = (
    rb'{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}'
)
TC3_DOC_AUTHORIZATION = (
    "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, "
    "SignedHeaders=content-type;host, "
    "Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
)


def test_tc3_authorization_matches_tencent_documented_example() -> None:
    authorization = tc3_authorization(
        "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
        "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
        timestamp=1551113065,
        host="cvm.tencentcloudapi.com",
        payload=TC3_DOC_PAYLOAD,
        service="cvm",
    )
    assert authorization == TC3_DOC_AUTHORIZATION


def test_tc3_authorization_is_deterministic_and_covers_its_inputs() -> None:
    base: dict[str, Any] = {
        "timestamp": 1551113065,
        "host": "sms.tencentcloudapi.com",
        "payload": b'{"a":1}',
    }
    signature = tc3_authorization(TENCENT_ID, TENCENT_KEY, **base)
    assert signature == tc3_authorization(TENCENT_ID, TENCENT_KEY, **base)
    # 1551113065 is 2019-02-26 00:44 in UTC+8: the scope must use the UTC date.
    assert f"Credential={TENCENT_ID}/2019-02-25/sms/tc3_request," in signature
    assert "SignedHeaders=content-type;host," in signature
    variants = [
        tc3_authorization(TENCENT_ID, "other-key", **base),
        tc3_authorization(TENCENT_ID, TENCENT_KEY, **(base | {"timestamp": 1551113066})),
        tc3_authorization(TENCENT_ID, TENCENT_KEY, **(base | {"host": "127.0.0.1:8080"})),
        tc3_authorization(TENCENT_ID, TENCENT_KEY, **(base | {"payload": b'{"a":2}'})),
    ]
    assert len({signature.rsplit("=", 1)[1], *(v.rsplit("=", 1)[1] for v in variants)}) == 5


async def test_tencent_sends_signed_request(tencent_fake: Fake) -> None:
    sender = make_tencent(tencent_fake.url)
    assert sender.name == "tencent"
    async with contextlib.aclosing(sender):
        await sender.send_code("+8613800138000", CODE)

    request = tencent_fake.last
    assert request.path == "/"
    assert request.headers["host"] == tencent_fake.url.removeprefix("http://")
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    assert request.headers["x-tc-action"] == "SendSms"
    assert request.headers["x-tc-version"] == "2021-01-11"
    assert request.headers["x-tc-region"] == "ap-guangzhou"
    assert abs(int(request.headers["x-tc-timestamp"]) - time.time()) < 60
    assert request.json == {
        "PhoneNumberSet": ["+8613800138000"],
        "SmsSdkAppId": TENCENT_APP,
        "SignName": TENCENT_SIGN,
        "TemplateId": TENCENT_TEMPLATE,
        "TemplateParamSet": [CODE],
    }
    expected = tc3_authorization(
        TENCENT_ID,
        TENCENT_KEY,
        timestamp=int(request.headers["x-tc-timestamp"]),
        host=request.headers["host"],
        payload=request.body,
    )
    assert request.headers["authorization"] == expected


async def test_tencent_template_can_carry_ttl_minutes(tencent_fake: Fake) -> None:
    sender = make_tencent(
        tencent_fake.url, template_params_include_ttl_minutes=5, region="ap-beijing"
    )
    async with contextlib.aclosing(sender):
        await sender.send_code("+14155550100", CODE)
    assert tencent_fake.last.json["TemplateParamSet"] == [CODE, "5"]
    assert tencent_fake.last.json["PhoneNumberSet"] == ["+14155550100"]
    assert tencent_fake.last.headers["x-tc-region"] == "ap-beijing"


@pytest.mark.parametrize(
    ("vendor_code", "retryable"),
    [
        ("InvalidParameterValue.IncorrectPhoneNumber", False),
        ("FailedOperation.PhoneNumberInBlacklist", False),
        ("LimitExceeded.PhoneNumberDailyLimit", True),
        ("LimitExceeded.PhoneNumberThirtySecondLimit", True),
    ],
)
async def test_tencent_per_number_failure(
    tencent_fake: Fake, vendor_code: str, retryable: bool
) -> None:
    tencent_fake.reply = tencent_status(vendor_code, f"failed to send {CODE}")
    error = await send_failure(make_tencent(tencent_fake.url))
    assert error.vendor_code == vendor_code
    assert error.retryable is retryable


@pytest.mark.parametrize(
    ("vendor_code", "retryable"),
    [
        ("FailedOperation.SignatureIncorrectOrUnapproved", False),
        ("FailedOperation.TemplateIncorrectOrUnapproved", False),
        ("InvalidParameterValue.IncorrectPhoneNumber", False),
        ("LimitExceeded.AppDailyLimit", True),
        ("AuthFailure.SignatureExpire", True),
        ("InternalError.Timeout", True),
    ],
)
async def test_tencent_request_error(tencent_fake: Fake, vendor_code: str, retryable: bool) -> None:
    tencent_fake.reply = lambda: JSONResponse(
        {"Response": {"Error": {"Code": vendor_code, "Message": "no"}, "RequestId": "r"}}
    )
    error = await send_failure(make_tencent(tencent_fake.url))
    assert error.vendor_code == vendor_code
    assert error.retryable is retryable


async def test_tencent_wrong_key_fails_signature(tencent_fake: Fake) -> None:
    error = await send_failure(make_tencent(tencent_fake.url, secret_key="not-the-key"))
    assert error.vendor_code == "AuthFailure.SignatureFailure"
    assert error.retryable is False


async def test_tencent_stale_clock_is_retryable(
    tencent_fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_time = time.time
    monkeypatch.setattr(tencent_module, "time", SimpleNamespace(time=lambda: real_time() - 900))
    error = await send_failure(make_tencent(tencent_fake.url))
    assert error.vendor_code == "AuthFailure.SignatureExpire"
    assert error.retryable is True


# ---------------------------------------------------------------------------------------------
# Twilio
# ---------------------------------------------------------------------------------------------


def _basic_user(headers: dict[str, str]) -> str:
    scheme, _, encoded = headers["authorization"].partition(" ")
    assert scheme == "Basic"
    return base64.b64decode(encoded).decode().partition(":")[0]


async def test_twilio_sends_from_number(twilio_fake: Fake) -> None:
    sender = make_twilio(twilio_fake.url)
    assert sender.name == "twilio"
    async with contextlib.aclosing(sender):
        await sender.send_code("+14155550100", CODE)

    request = twilio_fake.last
    assert request.path == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    assert request.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert _basic_user(request.headers) == TWILIO_SID
    assert request.form == {
        "To": "+14155550100",
        "From": TWILIO_FROM,
        "Body": "Your vidgate verification code is 048213. It expires in 5 minutes.",
    }


async def test_twilio_messaging_service_with_api_key(twilio_fake: Fake) -> None:
    sender = make_twilio(
        twilio_fake.url,
        from_number=None,
        messaging_service_sid=TWILIO_SERVICE,
        api_key_sid=TWILIO_KEY_SID,
        auth_token=TWILIO_KEY_SECRET,
        body_template="{code} is your code. {Do not share it.}",
    )
    async with contextlib.aclosing(sender):
        await sender.send_code("+447700900123", CODE)

    request = twilio_fake.last
    assert request.path == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    assert _basic_user(request.headers) == TWILIO_KEY_SID
    assert request.form == {
        "To": "+447700900123",
        "MessagingServiceSid": TWILIO_SERVICE,
        "Body": "048213 is your code. {Do not share it.}",
    }


def test_twilio_needs_a_sender_and_a_code_slot() -> None:
    with pytest.raises(ValueError, match="from_number or messaging_service_sid"):
        TwilioSmsSender(TWILIO_SID, TWILIO_TOKEN)
    with pytest.raises(ValueError, match="code"):
        TwilioSmsSender(TWILIO_SID, TWILIO_TOKEN, from_number=TWILIO_FROM, body_template="Hi")


@pytest.mark.parametrize(
    ("status", "vendor_code", "retryable"),
    [(400, 21211, False), (400, 21610, False), (429, 20429, True), (503, 20500, True)],
)
async def test_twilio_error(
    twilio_fake: Fake, status: int, vendor_code: int, retryable: bool
) -> None:
    body = {"code": vendor_code, "message": f"Body '{CODE}' refused", "status": status}
    twilio_fake.reply = lambda: JSONResponse(body, status_code=status)
    error = await send_failure(make_twilio(twilio_fake.url), phone="+14155550100")
    assert error.vendor_code == str(vendor_code)
    assert error.retryable is retryable


async def test_twilio_wrong_token_fails_auth(twilio_fake: Fake) -> None:
    error = await send_failure(make_twilio(twilio_fake.url, auth_token="wrong"), "+14155550100")
    assert error.vendor_code == "20003"
    assert error.retryable is False


async def test_twilio_failed_message_status(twilio_fake: Fake) -> None:
    twilio_fake.reply = lambda: JSONResponse(
        {"sid": "SM" + "0" * 32, "status": "failed", "error_code": 30006, "error_message": "x"},
        status_code=201,
    )
    error = await send_failure(make_twilio(twilio_fake.url), phone="+14155550100")
    assert error.vendor_code == "30006"


# ---------------------------------------------------------------------------------------------
# All vendors: transport failures and client ownership
# ---------------------------------------------------------------------------------------------

VENDORS: dict[str, tuple[Callable[[Fake], Starlette], Callable[..., SmsSender]]] = {
    "aliyun": (aliyun_app, make_aliyun),
    "tencent": (tencent_app, make_tencent),
    "twilio": (twilio_app, make_twilio),
}


@pytest.mark.parametrize("vendor", VENDORS)
async def test_http_500_is_retryable(vendor: str) -> None:
    app, make = VENDORS[vendor]
    async with running(app) as fake:
        fake.reply = lambda: PlainTextResponse("Internal Server Error", status_code=500)
        error = await send_failure(make(fake.url))
    assert error.retryable is True
    assert error.vendor_code is None
    assert "500" in str(error)


@pytest.mark.parametrize("vendor", VENDORS)
async def test_connection_refused_is_retryable(vendor: str) -> None:
    _, make = VENDORS[vendor]
    error = await send_failure(make(closed_port_url()))
    assert error.retryable is True
    assert error.vendor_code is None


@pytest.mark.parametrize("vendor", VENDORS)
async def test_timeout_is_retryable(vendor: str) -> None:
    app, make = VENDORS[vendor]
    async with running(app) as fake:
        fake.delay = 0.5
        error = await send_failure(make(fake.url, timeout=0.1))
    assert error.retryable is True
    assert "Timeout" in str(error)


@pytest.mark.parametrize("vendor", VENDORS)
async def test_client_is_closed_only_when_owned(vendor: str) -> None:
    app, make = VENDORS[vendor]
    async with running(app) as fake, httpx.AsyncClient() as shared:
        sender = make(fake.url, client=shared)
        await sender.send_code("+8613800138000", CODE)
        await sender.aclose()
        assert not shared.is_closed
        assert len(fake.requests) == 1

        owned = make(fake.url)
        client = owned._client  # type: ignore[attr-defined]
        await owned.aclose()
        assert client.is_closed
