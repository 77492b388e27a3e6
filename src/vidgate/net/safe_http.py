"""An HTTP client for URLs chosen by users: media URLs we fetch and webhook URLs we call.

Following the OWASP SSRF guidance, every hop of every call is checked before anything is sent:
the scheme is http(s), the URL carries no credentials, and every address its host resolves to is
public (or in the operator's allowlist). The client then connects to exactly the address it
checked — the request goes to the IP literal, with the real name in the ``Host`` header and in TLS
SNI / certificate verification — so DNS that changes its answer between check and connect
("rebinding") cannot steer it inside. Redirects are followed by hand, re-checking every hop, and
only when asked. Each call has one overall deadline and a size cap on the body.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import BinaryIO

import anyio
import anyio.to_thread
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

MAX_URL_LENGTH = 2048
MAX_RESPONSE_BYTES = 1024 * 1024  # what request() keeps of an answer (webhook receivers' replies)
CONNECT_TIMEOUT = 5.0  # per address, so a dead first address leaves time to try the next one
WRITE_BUFFER = 1024 * 1024  # downloads are written in chunks of this size (one thread hop each)
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")

# Not reachable on the public internet (IANA special-purpose registries). Checked on top of
# `is_global`, whose answers differ between Python patch releases.
_NON_PUBLIC_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network", unspecified
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT, shared address space
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata at 169.254.169.254
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
    )
)
_NON_PUBLIC_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/128",  # unspecified
        "::1/128",  # loopback
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
        "5f00::/16",  # segment routing
        "fc00::/7",  # unique-local
        "fe80::/10",  # link-local
        "fec0::/10",  # deprecated site-local
        "ff00::/8",  # multicast
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # well-known prefix: last 32 bits are IPv4
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


class UnsafeUrl(ValueError):
    """The URL was refused before (or while) connecting; the message says why, for the user."""


class FetchFailed(Exception):
    """The URL was allowed but fetching it failed: network error, timeout, bad status, too big."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TooLarge(FetchFailed):
    """The body was larger than the caller's limit."""


@dataclass(frozen=True)
class UrlPolicy:
    """Which addresses outbound calls may reach."""

    allow_private: bool = False  # development only: loopback receivers on a laptop
    allowed_networks: tuple[IPNetwork, ...] = ()  # reachable even though not public
    https_only: bool = False

    @classmethod
    def parse_networks(cls, values: Iterable[str]) -> tuple[IPNetwork, ...]:
        """``"10.1.0.0/16"``-style strings (blanks skipped) as networks; ValueError on junk."""
        return tuple(ipaddress.ip_network(v.strip()) for v in values if v.strip())

    def permits(self, address: IPAddress) -> bool:
        """Whether a connection to ``address`` is allowed."""
        if self.allow_private or is_public_address(address):
            return True
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.allowed_networks)


@dataclass(frozen=True)
class Download:
    path: Path
    size: int  # bytes written to path
    content_type: str | None  # media type without parameters, e.g. "image/png"
    final_url: str  # after redirects


def check_url(url: str, policy: UrlPolicy) -> httpx.URL:
    """Syntactic checks only: scheme http/https (https only if policy.https_only), a host, no
    userinfo (user:pass@), length ≤ 2048, port 1-65535. Raises UnsafeUrl."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise UnsafeUrl("URL is not valid") from None
    if policy.https_only and parsed.scheme != "https":
        raise UnsafeUrl("URL must start with https://")
    if parsed.scheme not in _DEFAULT_PORTS:
        raise UnsafeUrl("URL must start with http:// or https://")
    if parsed.userinfo:
        raise UnsafeUrl("URL must not contain a user name or password")
    if not parsed.host:
        raise UnsafeUrl("URL has no host")
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise UnsafeUrl("URL port must be between 1 and 65535")
    host = _host(parsed)
    literal = _ip_literal(host)
    if literal is None and (len(host) > 253 or not _HOST_NAME.fullmatch(host)):
        raise UnsafeUrl("URL host is not a valid host name")
    if isinstance(literal, ipaddress.IPv6Address) and literal.scope_id:
        raise UnsafeUrl("URL host must not name an IPv6 zone")
    return parsed


def is_public_address(ip: IPAddress) -> bool:
    """False for private, loopback, link-local (incl. 169.254.169.254 metadata), unique-local
    fc00::/7, shared 100.64/10, unspecified, multicast, reserved, documentation, benchmarking;
    IPv4-mapped/compat IPv6 and 6to4/Teredo-embedded IPv4 judged by the embedded address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded:
            return all(is_public_address(v4) for v4 in embedded)
        return ip.is_global and not any(ip in network for network in _NON_PUBLIC_V6)
    return ip.is_global and not any(ip in network for network in _NON_PUBLIC_V4)


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Every address (A and AAAA) the system resolver gives for ``host``, in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [
        ipaddress.ip_address(str(info[4][0]))
        for info in infos
        if info[0] in (socket.AF_INET, socket.AF_INET6)
    ]


class SafeHttpClient:
    """Outbound HTTP for user-chosen URLs. One instance can be shared; it keeps no cookies and
    no idle connections between calls."""

    def __init__(
        self,
        policy: UrlPolicy,
        *,
        timeout: float = 15.0,
        max_redirects: int = 3,
        user_agent: str = "vidgate",
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``timeout`` caps each whole call (every hop and the body); ``ssl_context`` replaces
        the default certificate authorities (tests use a private one)."""
        self._policy = policy
        self._timeout = timeout
        self._max_redirects = max_redirects
        self._resolve = resolver or resolve_host
        self._http = httpx.AsyncClient(
            headers={"User-Agent": user_agent, "Accept-Encoding": "identity"},
            timeout=_phase_timeouts(timeout),
            follow_redirects=False,
            trust_env=False,  # no proxies or certificate paths from the environment
            cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])),  # accepts no cookie
            # A pooled connection is keyed by IP and port only; reusing one made (and verified)
            # for another host name that resolved to the same IP would skip this call's checks.
            limits=httpx.Limits(max_keepalive_connections=0),
            verify=ssl_context if ssl_context is not None else True,
        )

    async def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the cap is applied with anyio.fail_after
        follow_redirects: bool = False,
        max_bytes: int = MAX_RESPONSE_BYTES,
    ) -> httpx.Response:
        """Send one request and read the whole answer (TooLarge past ``max_bytes``).

        Any status is returned as is, 3xx included unless ``follow_redirects``. The response's
        ``request.url`` names the IP address that was connected to; its ``Host`` header the host.
        """
        limit = self._timeout if timeout is None else timeout
        try:
            with anyio.fail_after(limit):
                async with self._exchange(
                    method.upper(),
                    url,
                    content=content,
                    headers=headers,
                    follow_redirects=follow_redirects,
                    phase_limit=limit,
                ) as (response, _):
                    _refuse_declared_size(response, max_bytes)
                    body = await _read_capped(response, max_bytes)
        except TimeoutError:
            raise FetchFailed(f"Fetching the URL took longer than {limit:g} s") from None
        return _buffered(response, body)

    async def download(
        self,
        url: str,
        dest: Path,
        *,
        max_bytes: int,
        timeout: float | None = None,  # noqa: ASYNC109 - the cap is applied with anyio.fail_after
    ) -> Download:
        """GET ``url`` into ``dest``, following up to ``max_redirects`` checked redirects.

        Raises FetchFailed for a non-2xx answer and TooLarge past ``max_bytes`` (by
        Content-Length before reading, or while streaming); ``dest`` is removed on any failure.
        """
        limit = self._timeout if timeout is None else timeout
        writing = False
        try:
            with anyio.fail_after(limit):
                async with self._exchange(
                    "GET", url, content=None, headers=None, follow_redirects=True, phase_limit=limit
                ) as (response, final_url):
                    if not response.is_success:
                        reason = f"{response.status_code} {response.reason_phrase}".strip()
                        raise FetchFailed(
                            f"URL answered HTTP {reason}", status=response.status_code
                        )
                    _refuse_declared_size(response, max_bytes)
                    writing = True
                    size = await _stream_to_file(response, dest, max_bytes)
        except BaseException as exc:
            if writing:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(_unlink, dest)
            if isinstance(exc, TimeoutError):
                raise FetchFailed(f"Fetching the URL took longer than {limit:g} s") from None
            raise
        return Download(
            path=dest,
            size=size,
            content_type=_media_type(response.headers.get("Content-Type")),
            final_url=str(final_url),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> SafeHttpClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @contextlib.asynccontextmanager
    async def _exchange(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None,
        headers: Mapping[str, str] | None,
        follow_redirects: bool,
        phase_limit: float,
    ) -> AsyncIterator[tuple[httpx.Response, httpx.URL]]:
        """The final response (body not yet read) and its URL; httpx errors become FetchFailed."""
        target = check_url(url, self._policy)
        addresses = await self._vet(target)
        send_headers = httpx.Headers(headers)
        redirects = 0
        while True:
            response = await self._send_pinned(
                method, target, addresses, content, send_headers, phase_limit
            )
            if not (follow_redirects and response.status_code in REDIRECT_STATUSES):
                break
            location = response.headers.get("Location")
            await response.aclose()
            if location is None:
                raise FetchFailed(
                    f"URL answered HTTP {response.status_code} without a Location",
                    status=response.status_code,
                )
            if redirects == self._max_redirects:
                raise FetchFailed(
                    f"URL redirected more than {self._max_redirects} times",
                    status=response.status_code,
                )
            redirects += 1
            previous = target
            try:
                target = check_url(_join(previous, location), self._policy)
                addresses = await self._vet(target)
            except UnsafeUrl as exc:
                raise UnsafeUrl(f"Redirect refused: {exc}") from exc
            method, content, send_headers = _redirected(
                method, content, send_headers, response.status_code, previous, target
            )
        try:
            with _network_errors():
                yield response, target
        finally:
            with anyio.CancelScope(shield=True):
                await response.aclose()

    async def _vet(self, url: httpx.URL) -> list[IPAddress]:
        """The addresses to connect to for ``url``: all of them permitted, or UnsafeUrl."""
        host = _host(url)
        literal = _ip_literal(host)
        if literal is not None:
            if not self._policy.permits(literal):
                raise UnsafeUrl(f"URL host is a private address ({url.host})")
            return [literal]
        try:
            addresses = await self._resolve(host, url.port or _DEFAULT_PORTS[url.scheme])
        except OSError as exc:
            raise FetchFailed(f"Could not resolve the URL host ({host})") from exc
        if not addresses:
            raise FetchFailed(f"Could not resolve the URL host ({host})")
        for address in addresses:
            if not self._policy.permits(address):
                raise UnsafeUrl(f"URL host resolves to a private address ({address})")
        return list(dict.fromkeys(addresses))

    async def _send_pinned(
        self,
        method: str,
        url: httpx.URL,
        addresses: list[IPAddress],
        content: bytes | None,
        headers: httpx.Headers,
        phase_limit: float,
    ) -> httpx.Response:
        """Send to the first of ``addresses`` that accepts a connection; headers only read."""
        host = _host(url)
        pinned_headers = httpx.Headers(headers)
        pinned_headers["Host"] = url.netloc.decode("ascii")
        # httpcore verifies the certificate against the SNI name, so it must be the real host.
        extensions = {"sni_hostname": host} if url.scheme == "https" else {}
        refused: httpx.TransportError | None = None
        for address in addresses:
            request = self._http.build_request(
                method,
                url.copy_with(host=str(address)),
                content=content,
                headers=pinned_headers,
                timeout=_phase_timeouts(phase_limit),
                extensions=extensions,
            )
            try:
                return await self._http.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                refused = exc  # nothing was sent, so the next address is safe to try
            except httpx.HTTPError as exc:
                raise _fetch_failed(exc) from exc
        raise FetchFailed(f"Could not connect to the URL host ({host}): {refused}") from refused


def _host(url: httpx.URL) -> str:
    """The host as sent on the wire: IDNA-encoded, IPv6 without brackets."""
    return url.raw_host.decode("ascii", errors="replace")


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses a packet to ``ip`` is really bound for, if it embeds any."""
    if ip.ipv4_mapped is not None:
        return (ip.ipv4_mapped,)
    if ip.sixtofour is not None:
        return (ip.sixtofour,)
    if ip.teredo is not None:
        return ip.teredo  # (server, client)
    if ip in _NAT64:
        return (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF),)
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:  # ::a.b.c.d, but not :: or ::1
        return (ipaddress.IPv4Address(int(ip)),)
    return ()


def _phase_timeouts(timeout: float) -> httpx.Timeout:
    return httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT))


def _join(base: httpx.URL, location: str) -> str:
    try:
        return str(base.join(location))
    except httpx.InvalidURL:
        raise UnsafeUrl("URL is not valid") from None


def _redirected(
    method: str,
    content: bytes | None,
    headers: httpx.Headers,
    status: int,
    previous: httpx.URL,
    target: httpx.URL,
) -> tuple[str, bytes | None, httpx.Headers]:
    """The request to send to the redirect target, following the rules browsers use."""
    headers = httpx.Headers(headers)
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, content = "GET", None
        for name in ("Content-Type", "Content-Length", "Transfer-Encoding"):
            headers.pop(name, None)
    if (previous.scheme, previous.host, previous.port) != (target.scheme, target.host, target.port):
        headers.pop("Authorization", None)  # credentials meant for one origin stay there
    return method, content, headers


@contextlib.contextmanager
def _network_errors() -> Iterator[None]:
    try:
        yield
    except httpx.HTTPError as exc:
        raise _fetch_failed(exc) from exc


def _fetch_failed(exc: httpx.HTTPError) -> FetchFailed:
    if isinstance(exc, httpx.TimeoutException):
        return FetchFailed("The URL host did not answer in time")
    return FetchFailed(f"Fetching the URL failed: {exc or type(exc).__name__}")


def _refuse_declared_size(response: httpx.Response, max_bytes: int) -> None:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise TooLarge(
            f"URL content is larger than the limit of {_bytes(max_bytes)} "
            f"(Content-Length {int(declared):,})",
            status=response.status_code,
        )


def _too_large(response: httpx.Response, max_bytes: int) -> TooLarge:
    return TooLarge(
        f"URL content is larger than the limit of {_bytes(max_bytes)}",
        status=response.status_code,
    )


async def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise _too_large(response, max_bytes)
    return bytes(body)


async def _stream_to_file(response: httpx.Response, dest: Path, max_bytes: int) -> int:
    """Write the body to ``dest`` as it arrives; the caller removes ``dest`` on failure."""
    file: BinaryIO = await anyio.to_thread.run_sync(dest.open, "wb")
    size = 0
    buffer = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise _too_large(response, max_bytes)
            buffer += chunk
            if len(buffer) >= WRITE_BUFFER:
                await anyio.to_thread.run_sync(file.write, bytes(buffer))
                buffer.clear()
        await anyio.to_thread.run_sync(file.write, bytes(buffer))
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(file.close)
    return size


def _buffered(response: httpx.Response, body: bytes) -> httpx.Response:
    """A closed copy of ``response`` holding ``body`` (already decoded)."""
    headers = [
        (name, value)
        for name, value in response.headers.multi_items()
        if name.lower() not in ("content-encoding", "content-length", "transfer-encoding")
    ]
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=body,
        request=response.request,
        extensions={
            key: response.extensions[key]
            for key in ("http_version", "reason_phrase")
            if key in response.extensions
        },
    )


def _media_type(content_type: str | None) -> str | None:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type or None


def _bytes(count: int) -> str:
    for unit, size in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if count >= size and count % size == 0:
            return f"{count // size} {unit}"
    return f"{count:,} bytes"


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)
