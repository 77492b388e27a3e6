"""The SSRF-safe client against real servers on loopback (plain HTTP, TLS, IPv6).

Loopback is private, so most tests allow 127.0.0.1/32 the way an operator would allowlist a
network; the refusal tests use the default policy. Host names that need DNS go through a fake
resolver, which also shows that the client looks each host up once and connects to that answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route
from starlette.types import ASGIApp

from vidgate.net.safe_http import (
    FetchFailed,
    IPAddress,
    SafeHttpClient,
    TooLarge,
    UnsafeUrl,
    UrlPolicy,
    check_url,
    is_public_address,
)

from ..fixtures.loopback import closed_port_url, serve_on_loopback

FRAME = bytes(range(256)) * 20  # 5120 bytes standing in for an image
BIG = 10_000  # size of the /declared-big and /streamed-big bodies
LOOPBACK = UrlPolicy(allowed_networks=UrlPolicy.parse_networks(["127.0.0.1/32"]))


# --- the "public internet" app ------------------------------------------------------------------


async def _frame(request: Request) -> Response:
    return Response(FRAME, media_type="image/png")


async def _echo(request: Request) -> Response:
    """What arrived: the tests read it from the response or the downloaded file."""
    return JSONResponse(
        {
            "method": request.method,
            "host": request.headers.get("host"),
            "cookie": request.headers.get("cookie"),
            "authorization": request.headers.get("authorization"),
            "body": (await request.body()).decode(),
        }
    )


async def _set_cookie(request: Request) -> Response:
    response = PlainTextResponse("ok")
    response.set_cookie("session", "abc")
    return response


async def _redirect(request: Request) -> Response:
    status = int(request.query_params.get("status", "302"))
    return RedirectResponse(request.query_params["to"], status_code=status)


async def _chain(request: Request) -> Response:
    left = request.path_params["left"]
    if left == 0:
        return PlainTextResponse("end of chain")
    return RedirectResponse(f"/chain/{left - 1}")


async def _declared_big(request: Request) -> Response:
    return Response(b"x" * BIG, media_type="application/octet-stream")


async def _streamed_big(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(BIG // 1000):
            yield b"x" * 1000

    return StreamingResponse(chunks(), media_type="application/octet-stream")  # no Content-Length


async def _missing(request: Request) -> Response:
    return PlainTextResponse("no such thing", status_code=404)


async def _slow(request: Request) -> Response:
    for _ in range(100):  # up to 5 s, but stop as soon as the client gives up
        if await request.is_disconnected():
            break
        await anyio.sleep(0.05)
    return PlainTextResponse("late")


async def _trickle(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):  # a byte every 50 ms: never idle long enough for a read timeout
            yield b"x"
            await anyio.sleep(0.05)

    return StreamingResponse(chunks(), media_type="application/octet-stream")


def _web_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/media/frame.png", _frame),
            Route("/echo", _echo, methods=["GET", "POST"]),
            Route("/set-cookie", _set_cookie),
            Route("/redirect", _redirect, methods=["GET", "POST"]),
            Route("/chain/{left:int}", _chain),
            Route("/declared-big", _declared_big),
            Route("/streamed-big", _streamed_big),
            Route("/missing", _missing),
            Route("/slow", _slow),
            Route("/trickle", _trickle),
        ]
    )


@pytest.fixture(scope="module")
async def web() -> AsyncIterator[str]:
    async with serve_on_loopback(_web_app()) as base:
        yield base


def _port(base: str) -> int:
    port = httpx.URL(base).port
    assert port is not None
    return port


@dataclass
class FakeDns:
    """Answers from a table; a host's later lookups get its later answers (the last repeats)."""

    answers: dict[str, list[list[str]]]
    lookups: list[str] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.lookups.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        replies = self.answers[host]
        reply = replies[min(self.lookups.count(host), len(replies)) - 1]
        return [ipaddress.ip_address(a) for a in reply]


# --- downloads that are allowed -----------------------------------------------------------------


async def test_download_writes_the_body_to_disk(web: str, tmp_path: Path) -> None:
    dest = tmp_path / "input.png"
    async with SafeHttpClient(LOOPBACK) as client:
        download = await client.download(f"{web}/media/frame.png", dest, max_bytes=1024 * 1024)

    assert dest.read_bytes() == FRAME
    assert download.path == dest
    assert download.size == len(FRAME)
    assert download.content_type == "image/png"
    assert download.final_url == f"{web}/media/frame.png"


async def test_allow_private_lets_loopback_through(web: str, tmp_path: Path) -> None:
    dest = tmp_path / "input.png"
    async with SafeHttpClient(UrlPolicy(allow_private=True)) as client:
        download = await client.download(f"{web}/media/frame.png", dest, max_bytes=BIG)

    assert dest.read_bytes() == FRAME
    assert download.size == len(FRAME)


async def test_ipv6_literal_host_is_reached_on_its_address(tmp_path: Path) -> None:
    policy = UrlPolicy(allowed_networks=UrlPolicy.parse_networks(["::1/128"]))
    dest = tmp_path / "input.png"
    async with _serve(_web_app(), host="::1") as port, SafeHttpClient(policy) as client:
        download = await client.download(
            f"http://[::1]:{port}/media/frame.png", dest, max_bytes=BIG
        )

    assert dest.read_bytes() == FRAME
    assert download.final_url == f"http://[::1]:{port}/media/frame.png"


# --- addresses that are refused -----------------------------------------------------------------

PRIVATE_LITERALS = [
    "127.0.0.1",
    "[::1]",
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "[fd00::1]",
    "[::ffff:127.0.0.1]",
    "0.0.0.0",
]


@pytest.mark.parametrize("host", PRIVATE_LITERALS)
async def test_private_address_literals_are_refused(host: str, tmp_path: Path) -> None:
    dns = FakeDns({})
    dest = tmp_path / "input.png"
    async with SafeHttpClient(UrlPolicy(), resolver=dns) as client:
        with pytest.raises(UnsafeUrl) as refused:
            await client.download(f"http://{host}/media/frame.png", dest, max_bytes=BIG)

    assert str(refused.value) == f"URL host is a private address ({host.strip('[]')})"
    assert dns.lookups == []
    assert not dest.exists()


async def test_a_host_resolving_to_any_private_address_is_refused(tmp_path: Path) -> None:
    dns = FakeDns({"media.test": [["93.184.216.34", "10.0.0.5"]]})
    dest = tmp_path / "input.png"
    async with SafeHttpClient(UrlPolicy(), resolver=dns) as client:
        with pytest.raises(UnsafeUrl) as refused:
            await client.download("https://media.test/frame.png", dest, max_bytes=BIG)

    assert str(refused.value) == "URL host resolves to a private address (10.0.0.5)"
    assert not dest.exists()


async def test_the_checked_address_is_the_one_connected_to(web: str, tmp_path: Path) -> None:
    # Any later lookup would rebind media.test to 10.0.0.1; the client must not make one, and
    # media.test does not resolve outside the fake, so only the pinned address can work.
    dns = FakeDns({"media.test": [["127.0.0.1"], ["10.0.0.1"]]})
    url = f"http://media.test:{_port(web)}/echo"
    dest = tmp_path / "echo.json"
    async with SafeHttpClient(LOOPBACK, resolver=dns) as client:
        download = await client.download(url, dest, max_bytes=BIG)

    seen = json.loads(dest.read_bytes())
    assert seen["host"] == f"media.test:{_port(web)}"
    assert dns.lookups == ["media.test"]
    assert download.final_url == url


async def test_the_next_address_is_tried_when_one_refuses(web: str, tmp_path: Path) -> None:
    # The server listens on 127.0.0.1 only, so 127.0.0.2 refuses the connection.
    dns = FakeDns({"media.test": [["127.0.0.2", "127.0.0.1"]]})
    policy = UrlPolicy(allowed_networks=UrlPolicy.parse_networks(["127.0.0.0/8"]))
    dest = tmp_path / "input.png"
    async with SafeHttpClient(policy, resolver=dns) as client:
        await client.download(
            f"http://media.test:{_port(web)}/media/frame.png", dest, max_bytes=BIG
        )

    assert dest.read_bytes() == FRAME


# --- redirects -----------------------------------------------------------------------------------


async def test_a_relative_redirect_is_followed(web: str, tmp_path: Path) -> None:
    dest = tmp_path / "input.png"
    async with SafeHttpClient(LOOPBACK) as client:
        download = await client.download(f"{web}/redirect?to=/media/frame.png", dest, max_bytes=BIG)

    assert dest.read_bytes() == FRAME
    assert download.final_url == f"{web}/media/frame.png"


async def test_a_redirect_to_a_private_address_is_refused(web: str, tmp_path: Path) -> None:
    dest = tmp_path / "input.png"
    async with SafeHttpClient(LOOPBACK) as client:
        with pytest.raises(UnsafeUrl) as refused:
            await client.download(f"{web}/redirect?to=http://10.0.0.1/x", dest, max_bytes=BIG)

    assert str(refused.value) == "Redirect refused: URL host is a private address (10.0.0.1)"
    assert not dest.exists()


async def test_a_redirect_to_a_host_resolving_privately_is_refused(
    web: str, tmp_path: Path
) -> None:
    dns = FakeDns({"intranet.test": [["192.168.1.10"]]})
    dest = tmp_path / "input.png"
    async with SafeHttpClient(LOOPBACK, resolver=dns) as client:
        with pytest.raises(UnsafeUrl) as refused:
            await client.download(f"{web}/redirect?to=http://intranet.test/x", dest, max_bytes=BIG)

    assert str(refused.value) == (
        "Redirect refused: URL host resolves to a private address (192.168.1.10)"
    )


async def test_a_redirect_to_another_scheme_is_refused(web: str, tmp_path: Path) -> None:
    dest = tmp_path / "input.png"
    async with SafeHttpClient(LOOPBACK) as client:
        with pytest.raises(UnsafeUrl) as refused:
            await client.download(f"{web}/redirect?to=file:///etc/passwd", dest, max_bytes=BIG)

    assert str(refused.value) == "Redirect refused: URL must start with http:// or https://"


async def test_redirects_up_to_the_limit_are_followed(web: str, tmp_path: Path) -> None:
    dest = tmp_path / "out.txt"
    async with SafeHttpClient(LOOPBACK, max_redirects=3) as client:
        await client.download(f"{web}/chain/3", dest, max_bytes=BIG)

    assert dest.read_text() == "end of chain"


async def test_a_redirect_chain_past_the_limit_is_refused(web: str, tmp_path: Path) -> None:
    dest = tmp_path / "out.txt"
    async with SafeHttpClient(LOOPBACK, max_redirects=3) as client:
        with pytest.raises(FetchFailed) as failed:
            await client.download(f"{web}/chain/4", dest, max_bytes=BIG)

    assert str(failed.value) == "URL redirected more than 3 times"
    assert not dest.exists()


async def test_request_returns_redirects_unfollowed_by_default(web: str) -> None:
    async with SafeHttpClient(LOOPBACK) as client:
        response = await client.request("POST", f"{web}/redirect?to=/echo", content=b"{}")

    assert response.status_code == 302
    assert response.headers["Location"] == "/echo"


@pytest.mark.parametrize(
    ("status", "method", "body"), [(303, "GET", ""), (302, "GET", ""), (307, "POST", "hello")]
)
async def test_a_followed_redirect_keeps_or_drops_the_body(
    web: str, status: int, method: str, body: str
) -> None:
    async with SafeHttpClient(LOOPBACK) as client:
        response = await client.request(
            "POST",
            f"{web}/redirect?to=/echo&status={status}",
            content=b"hello",
            follow_redirects=True,
        )

    assert response.status_code == 200
    assert response.json()["method"] == method
    assert response.json()["body"] == body


async def test_credentials_are_not_sent_to_another_origin(web: str) -> None:
    dns = FakeDns({"media.test": [["127.0.0.1"]]})
    elsewhere = f"http://media.test:{_port(web)}/echo"
    async with SafeHttpClient(LOOPBACK, resolver=dns) as client:
        response = await client.request(
            "GET",
            f"{web}/redirect?to={elsewhere}",
            headers={"Authorization": "Bearer secret"},
            follow_redirects=True,
        )

    assert response.json()["host"] == f"media.test:{_port(web)}"
    assert response.json()["authorization"] is None


# --- sizes, statuses, time -----------------------------------------------------------------------


async def test_a_body_too_large_by_content_length_is_refused(web: str, tmp_path: Path) -> None:
    dest = tmp_path / "big.bin"
    async with SafeHttpClient(LOOPBACK) as client:
        with pytest.raises(TooLarge) as too_large:
            await client.download(f"{web}/declared-big", dest, max_bytes=1000)

    assert str(too_large.value) == (
        "URL content is larger than the limit of 1,000 bytes (Content-Length 10,000)"
    )
    assert too_large.value.status == 200
    assert not dest.exists()


async def test_a_body_too_large_while_streaming_is_refused(web: str, tmp_path: Path) -> None:
    dest = tmp_path / "big.bin"
    async with SafeHttpClient(LOOPBACK) as client:
        with pytest.raises(TooLarge) as too_large:
            await client.download(f"{web}/streamed-big", dest, max_bytes=1024)

    assert str(too_large.value) == "URL content is larger than the limit of 1 KiB"
    assert not dest.exists()


async def test_a_body_exactly_at_the_limit_is_kept(web: str, tmp_path: Path) -> None:
    dest = tmp_path / "big.bin"
    async with SafeHttpClient(LOOPBACK) as client:
        declared = await client.download(f"{web}/declared-big", dest, max_bytes=BIG)
        streamed = await client.download(f"{web}/streamed-big", dest, max_bytes=BIG)

    assert declared.size == streamed.size == BIG
    assert dest.stat().st_size == BIG


async def test_request_caps_the_answer_it_reads(web: str) -> None:
    async with SafeHttpClient(LOOPBACK) as client:
        with pytest.raises(TooLarge) as too_large:
            await client.request("GET", f"{web}/streamed-big", max_bytes=1000)
        kept = await client.request("GET", f"{web}/streamed-big")

    assert too_large.value.status == 200
    assert kept.content == b"x" * BIG


async def test_a_404_is_a_failed_fetch_with_its_status(web: str, tmp_path: Path) -> None:
    dest = tmp_path / "input.png"
    async with SafeHttpClient(LOOPBACK) as client:
        with pytest.raises(FetchFailed) as failed:
            await client.download(f"{web}/missing", dest, max_bytes=BIG)

    assert str(failed.value) == "URL answered HTTP 404 Not Found"
    assert failed.value.status == 404
    assert not dest.exists()


async def test_a_server_that_does_not_answer_times_out(web: str, tmp_path: Path) -> None:
    dest = tmp_path / "input.png"
    started = time.monotonic()
    async with SafeHttpClient(LOOPBACK, timeout=0.5) as client:
        with pytest.raises(FetchFailed) as failed:
            await client.download(f"{web}/slow", dest, max_bytes=BIG)

    assert time.monotonic() - started < 2
    assert "in time" in str(failed.value) or "longer than 0.5 s" in str(failed.value)
    assert not dest.exists()


async def test_a_trickling_body_is_cut_off_by_the_overall_deadline(
    web: str, tmp_path: Path
) -> None:
    # Bytes keep arriving, so no read timeout fires; only the whole-call deadline can stop it.
    dest = tmp_path / "input.bin"
    started = time.monotonic()
    async with SafeHttpClient(LOOPBACK) as client:
        with pytest.raises(FetchFailed) as failed:
            await client.download(f"{web}/trickle", dest, max_bytes=BIG, timeout=0.5)

    assert time.monotonic() - started < 2
    assert str(failed.value) == "Fetching the URL took longer than 0.5 s"
    assert not dest.exists()


async def test_a_closed_port_is_a_failed_fetch(tmp_path: Path) -> None:
    dest = tmp_path / "input.png"
    async with SafeHttpClient(LOOPBACK) as client:
        with pytest.raises(FetchFailed) as failed:
            await client.download(f"{closed_port_url()}/x", dest, max_bytes=BIG)

    assert str(failed.value).startswith("Could not connect to the URL host (127.0.0.1)")
    assert failed.value.status is None


async def test_an_unknown_host_is_a_failed_fetch(tmp_path: Path) -> None:
    async with SafeHttpClient(UrlPolicy(), resolver=FakeDns({})) as client:
        with pytest.raises(FetchFailed) as failed:
            await client.download("https://nowhere.test/x", tmp_path / "x", max_bytes=BIG)

    assert str(failed.value) == "Could not resolve the URL host (nowhere.test)"


# --- state the client must not carry ------------------------------------------------------------


async def test_no_cookies_are_kept_between_calls(web: str) -> None:
    async with SafeHttpClient(LOOPBACK) as client:
        first = await client.request("GET", f"{web}/set-cookie")
        second = await client.request("GET", f"{web}/echo")

    assert "session=abc" in first.headers["Set-Cookie"]
    assert second.json()["cookie"] is None


async def test_proxies_from_the_environment_are_ignored(
    web: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, closed_port_url())
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with SafeHttpClient(LOOPBACK) as client:
        response = await client.request("GET", f"{web}/echo")

    assert response.status_code == 200


# --- TLS: the pinned address, verified against the real name ------------------------------------


@dataclass
class TlsServer:
    port: int
    trust: ssl.SSLContext  # trusts the server's certificate (issued for media.test only)


@pytest.fixture(scope="module")
async def tls_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TlsServer]:
    cert_pem, key_pem = _self_signed_certificate("media.test")
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert_pem)
    (folder / "key.pem").write_bytes(key_pem)
    config = {
        "ssl_certfile": str(folder / "cert.pem"),
        "ssl_keyfile": str(folder / "key.pem"),
    }
    async with _serve(_web_app(), host="127.0.0.1", **config) as port:
        yield TlsServer(port, ssl.create_default_context(cadata=cert_pem.decode()))


async def test_https_connects_to_the_checked_address_as_the_real_host(
    tls_server: TlsServer,
) -> None:
    # The certificate names media.test and not 127.0.0.1, so this only works if TLS (SNI and
    # verification) uses the host name while the connection goes to the pinned address.
    dns = FakeDns({"media.test": [["127.0.0.1"], ["10.0.0.1"]]})
    async with SafeHttpClient(LOOPBACK, resolver=dns, ssl_context=tls_server.trust) as client:
        response = await client.request("GET", f"https://media.test:{tls_server.port}/echo")

    assert response.status_code == 200
    assert response.json()["host"] == f"media.test:{tls_server.port}"
    assert dns.lookups == ["media.test"]


async def test_https_refuses_a_certificate_for_another_name(tls_server: TlsServer) -> None:
    dns = FakeDns({"other.test": [["127.0.0.1"]]})
    async with SafeHttpClient(LOOPBACK, resolver=dns, ssl_context=tls_server.trust) as client:
        with pytest.raises(FetchFailed) as failed:
            await client.request("GET", f"https://other.test:{tls_server.port}/echo")

    assert str(failed.value).startswith("Could not connect to the URL host (other.test)")
    assert "certificate" in str(failed.value).lower()


async def test_https_only_policy_refuses_plain_http(web: str) -> None:
    async with SafeHttpClient(UrlPolicy(allow_private=True, https_only=True)) as client:
        with pytest.raises(UnsafeUrl) as refused:
            await client.request("POST", f"{web}/echo", content=b"{}")

    assert str(refused.value) == "URL must start with https://"


# --- check_url, is_public_address, parse_networks ------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/a.png", "URL must start with http:// or https://"),
        ("file:///etc/passwd", "URL must start with http:// or https://"),
        ("gopher://example.com:70/", "URL must start with http:// or https://"),
        ("example.com/a.png", "URL must start with http:// or https://"),
        ("http://user:pass@example.com/a.png", "URL must not contain a user name or password"),
        ("http://user@example.com/a.png", "URL must not contain a user name or password"),
        ("http:///a.png", "URL has no host"),
        ("https://", "URL has no host"),
        ("http://example.com:0/", "URL port must be between 1 and 65535"),
        ("http://example.com:65536/", "URL port must be between 1 and 65535"),
        ("http://exa mple.com/", "URL host is not a valid host name"),
        ("http://[fe80::1%25eth0]/", "URL host must not name an IPv6 zone"),
        ("https://example.com/" + "a" * 2048, "URL is longer than 2048 characters"),
    ],
)
def test_check_url_refuses(url: str, reason: str) -> None:
    with pytest.raises(UnsafeUrl) as refused:
        check_url(url, UrlPolicy())

    assert str(refused.value) == reason


def test_check_url_with_https_only_refuses_http() -> None:
    with pytest.raises(UnsafeUrl) as refused:
        check_url("http://example.com/hook", UrlPolicy(https_only=True))

    assert str(refused.value) == "URL must start with https://"
    assert check_url("https://example.com/hook", UrlPolicy(https_only=True)).host == "example.com"


def test_check_url_accepts_ordinary_urls() -> None:
    url = check_url("https://cdn.example.com:8443/a/b.png?sig=1", UrlPolicy())

    assert (url.scheme, url.host, url.port, url.path) == (
        "https",
        "cdn.example.com",
        8443,
        "/a/b.png",
    )
    assert check_url("http://münchen.example/x", UrlPolicy()).raw_host == b"xn--mnchen-3ya.example"


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("93.184.216.34", True),
        ("2606:4700:4700::1111", True),
        ("::ffff:8.8.8.8", True),  # IPv4-mapped: judged as 8.8.8.8
        ("2002:808:808::1", True),  # 6to4 around 8.8.8.8
        ("64:ff9b::808:808", True),  # NAT64 around 8.8.8.8
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.31.255.255", False),
        ("192.168.0.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("192.0.2.1", False),  # documentation
        ("198.18.0.1", False),  # benchmarking
        ("224.0.0.1", False),  # multicast
        ("240.0.0.1", False),  # reserved
        ("255.255.255.255", False),
        ("::", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd12:3456::1", False),
        ("ff02::1", False),
        ("2001:db8::1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:169.254.169.254", False),
        ("::127.0.0.1", False),  # IPv4-compatible
        ("2002:a00:1::1", False),  # 6to4 around 10.0.0.1
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", False),  # Teredo, client 10.0.0.1
        ("64:ff9b::a00:1", False),  # NAT64 around 10.0.0.1
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is public


def test_parse_networks() -> None:
    networks = UrlPolicy.parse_networks(["10.1.0.0/16", " fd00::/8 ", "", "127.0.0.1"])

    assert [str(n) for n in networks] == ["10.1.0.0/16", "fd00::/8", "127.0.0.1/32"]
    with pytest.raises(ValueError):
        UrlPolicy.parse_networks(["not-a-network"])
    with pytest.raises(ValueError):
        UrlPolicy.parse_networks(["10.1.2.3/16"])  # host bits set: almost surely a typo


# --- helpers --------------------------------------------------------------------------------------


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # leave pytest's own Ctrl-C handling in place


@contextlib.asynccontextmanager
async def _serve(app: ASGIApp, *, host: str, **config: Any) -> AsyncIterator[int]:
    """Serve ``app`` on ``host`` (IPv6 or TLS, which serve_on_loopback does not do); yields the
    port. Skips the test when the address cannot be bound (no IPv6 loopback)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.bind((host, 0))
    except OSError as exc:
        sock.close()
        pytest.skip(f"cannot listen on {host}: {exc}")
    server = _QuietServer(uvicorn.Config(app, lifespan="off", log_level="warning", **config))
    # A plain task rather than a task group: module fixtures start and stop in different tasks.
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task
        sock.close()


def _self_signed_certificate(name: str) -> tuple[bytes, bytes]:
    """A certificate for ``name`` only (no IP address), and its key, both PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem
