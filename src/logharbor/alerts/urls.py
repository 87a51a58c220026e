"""Webhook URLs must not turn the server against internal hosts (SSRF).

Checked twice: when a webhook is created or updated (a clear 400 for the user), and again for
every connection the sender opens, because DNS can change after the check. The second check is
inside the HTTP client's network backend: it resolves the host itself, refuses forbidden addresses
and connects to the address it checked, so a DNS answer cannot change between check and connect.
TLS still verifies the certificate against the URL's host name. Redirects are never followed.

Both checks read the URL with httpx's parser and the host with ``parse_host``, the dialer's own
reading, so that the guard never judges one address while the client dials another. An IPv6
address that carries an IPv4 address (NAT64, 6to4, Teredo, mapped ...) is judged by the IPv4
address too, since that is where its packets can end up.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass

import httpcore
import httpx

MAX_URL_CHARS = 2048
MAX_RESPONSE_BYTES = 64 * 1024


class UrlRefused(ValueError):
    """A webhook URL or address that the policy refuses; the message is meant for users."""


@dataclass(frozen=True)
class UrlPolicy:
    allow_http: bool = False
    allow_private: bool = False


Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Prefixes whose last 32 bits are the IPv4 address a packet ends up at: SIIT's IPv4-translated
# (RFC 2765), the deprecated IPv4-compatible (RFC 4291) and NAT64's well-known prefix (RFC 6052).
_LOW_32_EMBEDDING = tuple(
    ipaddress.IPv6Network(net) for net in ("::ffff:0:0:0/96", "::/96", "64:ff9b::/96")
)
# NAT64's local-use prefix (RFC 8215) places the IPv4 address wherever the operator's prefix
# length says, so no one address can be read out of it: it is refused whole.
_UNREADABLE_EMBEDDING = ipaddress.IPv6Network("64:ff9b:1::/48")
# ISATAP interface identifiers (RFC 5214): ::0:5efe:a.b.c.d or ::200:5efe:a.b.c.d.
_ISATAP_MARKERS = (0x0000_5EFE, 0x0200_5EFE)
_NUMBER = re.compile(r"^(?:[0-9]+|0x[0-9a-f]*)$")
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")


def parse_host(host: str) -> Address | str:
    """The host as the dialer reads it: an IP address, or a DNS name to resolve.

    Guard and dialer both call this, so they cannot disagree on what a host is. A host that
    some reader takes for an IPv4 number (``0x7f.1``, ``017700000001``, ``2130706433``,
    ``127.1``) is refused unless it is the one form every reader agrees on, four decimal
    numbers: the C resolver, httpx and browsers each read the other forms their own way.
    """
    if ":" in host:  # httpx hands over IPv6 literals without their brackets
        if "%" in host:
            raise UrlRefused(f"{host} carries a zone id, which webhook URLs must not")
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            raise UrlRefused(f"{host} is not a valid IPv6 address") from None
    name = host.lower()
    labels = name.removesuffix(".").split(".")
    if _NUMBER.match(labels[-1]):
        try:
            return ipaddress.IPv4Address(name)
        except ValueError:
            raise UrlRefused(
                f"{host} is not an IPv4 address in its usual form: write four decimal "
                "numbers, like 203.0.113.7"
            ) from None
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise UrlRefused(f"{host} is not a valid host name")
    return name


def reached_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries, which is where its packets can end up."""
    value = int(address)
    low = ipaddress.IPv4Address(value & 0xFFFF_FFFF)
    reached: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        reached.append(address.ipv4_mapped)
    if any(address in net for net in _LOW_32_EMBEDDING) or (
        (value >> 32) & 0xFFFF_FFFF in _ISATAP_MARKERS
    ):
        reached.append(low)
    if address.sixtofour is not None:
        reached.append(address.sixtofour)
    if address.teredo is not None:
        reached.extend(address.teredo)
    return reached


def _forbidden(address: Address) -> bool:
    return not address.is_global or address.is_multicast


def check_address(host: str, address: Address, policy: UrlPolicy) -> None:
    if policy.allow_private:
        return
    if _forbidden(address):
        raise UrlRefused(
            f"{host} resolves to {address}, a loopback, private, link-local or reserved address"
        )
    if isinstance(address, ipaddress.IPv6Address):
        if address in _UNREADABLE_EMBEDDING:
            raise UrlRefused(
                f"{host} resolves to {address}, a local-use NAT64 address whose IPv4 "
                "destination cannot be told"
            )
        for inner in reached_ipv4(address):
            if _forbidden(inner):
                raise UrlRefused(
                    f"{host} resolves to {address}, which reaches {inner}, a loopback, "
                    "private, link-local or reserved address"
                )


def resolve(host: str, port: int) -> list[Address]:
    """The addresses the dialer connects to: an IP literal as written, a name through DNS."""
    parsed = parse_host(host)
    if not isinstance(parsed, str):
        return [parsed]
    try:
        infos = socket.getaddrinfo(parsed, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UrlRefused(f"Could not resolve host {host}") from exc
    addresses: list[Address] = []
    for info in infos:
        # A link-local answer may carry a zone id ("fe80::1%eth0"); the policy judges the address.
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UrlRefused(f"Could not resolve host {host}")
    return addresses


def checked_addresses(host: str, port: int, policy: UrlPolicy) -> list[Address]:
    """The addresses of ``host``, all of which the policy allows; raises UrlRefused."""
    addresses = resolve(host, port)
    for address in addresses:
        check_address(host, address, policy)
    return addresses


def validate_url(url: str, policy: UrlPolicy) -> str:
    """The URL, stripped, if it may receive webhooks; raises UrlRefused with the reason."""
    url = url.strip()
    if not url:
        raise UrlRefused("Webhook value must not be empty")
    if len(url) > MAX_URL_CHARS:
        raise UrlRefused(f"Webhook URL must be at most {MAX_URL_CHARS} characters")
    # httpx's own parser, so that the host checked here is the host the client dials.
    try:
        parts = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise UrlRefused(f"Webhook value must be a valid URL ({exc})") from None
    scheme = parts.scheme
    if scheme not in ("http", "https") or not parts.raw_host:
        raise UrlRefused("Webhook value must be an https:// URL (an incoming-webhook URL)")
    if scheme == "http" and not policy.allow_http:
        raise UrlRefused("Webhook URL must use https (http is disabled on this server)")
    if parts.userinfo:
        raise UrlRefused("Webhook URL must not contain credentials")
    port = parts.port
    if port is not None and not 0 < port < 65536:
        raise UrlRefused("Webhook URL port must be between 1 and 65535")
    host = parts.raw_host.decode("ascii")
    checked_addresses(host, port or (443 if scheme == "https" else 80), policy)
    return url


class _GuardedBackend(httpcore.SyncBackend):
    def __init__(self, policy: UrlPolicy) -> None:
        self.policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = checked_addresses(host, port, self.policy)
        except UrlRefused as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        error: Exception | None = None
        for address in addresses:
            try:
                return super().connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error


class GuardedTransport(httpx.BaseTransport):
    """An httpx transport whose every connection goes through the address policy."""

    def __init__(self, policy: UrlPolicy, ssl_context: ssl.SSLContext | None = None) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),
            network_backend=_GuardedBackend(policy),
            max_connections=20,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.read(),
            extensions=request.extensions,
        )
        try:
            core_response = self._pool.handle_request(core_request)
            try:
                # Only the head of the answer is kept (for error messages); a receiver cannot
                # make us buffer an endless body.
                content = b""
                for chunk in core_response.iter_stream():
                    content += chunk
                    if len(content) >= MAX_RESPONSE_BYTES:
                        content = content[:MAX_RESPONSE_BYTES]
                        break
            finally:
                core_response.close()
        except httpcore.TimeoutException as exc:
            raise httpx.TimeoutException(str(exc) or "timed out", request=request) from exc
        except httpcore.ConnectError as exc:
            raise httpx.ConnectError(str(exc) or "connection failed", request=request) from exc
        except httpcore.NetworkError as exc:
            raise httpx.NetworkError(str(exc) or "network error", request=request) from exc
        except httpcore.ProtocolError as exc:
            raise httpx.RemoteProtocolError(str(exc) or "protocol error", request=request) from exc
        return httpx.Response(
            status_code=core_response.status,
            headers=core_response.headers,
            content=content,
        )

    def close(self) -> None:
        self._pool.close()


def client(policy: UrlPolicy, timeout: float) -> httpx.Client:
    return httpx.Client(
        transport=GuardedTransport(policy),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": "LogHarbor-Webhooks/1"},
    )
