"""Webhook URLs must not turn the server against internal hosts (SSRF).

Checked twice: when a webhook is created or updated (a clear 400 for the user), and again for
every connection the sender opens, because DNS can change after the check. The second check is
inside the HTTP client's network backend: it resolves the host itself, refuses forbidden addresses
and connects to the address it checked, so a DNS answer cannot change between check and connect.
TLS still verifies the certificate against the URL's host name. Redirects are never followed.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

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


def _forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


def check_address(host: str, address: str, policy: UrlPolicy) -> None:
    if policy.allow_private:
        return
    parsed = ipaddress.ip_address(address.split("%", 1)[0])
    if _forbidden(parsed):
        raise UrlRefused(
            f"{host} resolves to {parsed}, a loopback, private, link-local or reserved address"
        )


def resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UrlRefused(f"Could not resolve host {host}") from exc
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UrlRefused(f"Could not resolve host {host}")
    return addresses


def checked_addresses(host: str, port: int, policy: UrlPolicy) -> list[str]:
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
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused("Webhook value must be a valid URL") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise UrlRefused("Webhook value must be an https:// URL (an incoming-webhook URL)")
    if scheme == "http" and not policy.allow_http:
        raise UrlRefused("Webhook URL must use https (http is disabled on this server)")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("Webhook URL must not contain credentials")
    host = parts.hostname
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
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
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
