"""The webhook address guard as the dialer reads hosts: embedded IPv4 and IPv4 numbers."""

from __future__ import annotations

import ipaddress

import pytest

from logharbor.alerts import urls

STRICT = urls.UrlPolicy()

# An IPv6 address that carries an IPv4 address is judged by that IPv4 address too.
EMBEDDED_REFUSED = [
    ("64:ff9b::a9fe:a9fe", "169.254.169.254"),  # NAT64 well-known prefix -> metadata service
    ("64:ff9b::7f00:1", "127.0.0.1"),
    ("64:ff9b::a01:203", "10.1.2.3"),
    ("64:ff9b:1::808:808", "local-use NAT64"),  # RFC 8215: the operator picks the layout
    ("64:ff9b:1:ffff::1", "local-use NAT64"),
    ("::ffff:127.0.0.1", "127.0.0.1"),  # IPv4-mapped
    ("::ffff:0:a9fe:a9fe", "169.254.169.254"),  # IPv4-translated (SIIT)
    ("::169.254.169.254", "169.254.169.254"),  # IPv4-compatible
    ("::10.0.0.1", "10.0.0.1"),
    ("2002:a9fe:a9fe::1", "169.254.169.254"),  # 6to4
    ("2002:c0a8:1::1", "192.168.0.1"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:0:4136"),  # Teredo (itself not global)
    ("2a00:1450::5efe:a9fe:a9fe", "169.254.169.254"),  # ISATAP interface identifier
    ("2a00:1450::200:5efe:a00:1", "10.0.0.1"),
]
# Their neighbours: the same prefixes carrying a public address, and plain global IPv6.
EMBEDDED_ALLOWED = [
    "64:ff9b::808:808",
    "::ffff:8.8.8.8",
    "::ffff:0:808:808",
    "::8.8.8.8",
    "2002:808:808::1",
    "2a00:1450::5efe:808:808",
    "2001:4860:4860::8888",
    "64:ff9b:2::a9fe:a9fe",  # outside 64:ff9b:1::/48 and 64:ff9b::/96: no IPv4 inside
]


@pytest.mark.parametrize(("literal", "reason"), EMBEDDED_REFUSED)
def test_ipv6_carrying_a_forbidden_ipv4_is_refused(literal: str, reason: str) -> None:
    with pytest.raises(urls.UrlRefused, match=reason.replace(".", r"\.")):
        urls.validate_url(f"https://[{literal}]/hook", STRICT)


@pytest.mark.parametrize("literal", EMBEDDED_ALLOWED)
def test_ipv6_carrying_a_public_ipv4_is_allowed(literal: str) -> None:
    url = f"https://[{literal}]/hook"
    assert urls.validate_url(url, STRICT) == url


def test_reached_ipv4_reads_each_embedding() -> None:
    def reached(text: str) -> list[str]:
        return [str(a) for a in urls.reached_ipv4(ipaddress.IPv6Address(text))]

    assert reached("64:ff9b::c000:221") == ["192.0.2.33"]
    assert reached("2002:c000:221::1") == ["192.0.2.33"]
    assert reached("2001:0:4136:e378:8000:63bf:3fff:fdd2") == ["65.54.227.120", "192.0.2.45"]
    assert reached("2001:4860:4860::8888") == []


# Each is read as 127.0.0.1 by the C resolver, differently (or not at all) by httpx.
NON_CANONICAL = [
    "0x7f.1",
    "0x7f000001",
    "017700000001",
    "2130706433",
    "127.1",
    "127.0.1",
    "0177.0.0.1",
    "0x7f.0.0.1",
    "127.0.0.1.",
    "010.8.8.8",  # 8.8.8.8 to the resolver, an invalid URL to httpx
    "8.8.8.08",
    "1.2.3.4.5",
    "example.123",  # ends in a number: browsers read it as IPv4, the resolver as a name
    "example.0x1f",
]


@pytest.mark.parametrize("host", NON_CANONICAL)
@pytest.mark.parametrize("policy", [STRICT, urls.UrlPolicy(allow_http=True, allow_private=True)])
def test_ipv4_numbers_not_in_dotted_decimal_are_refused(host: str, policy: urls.UrlPolicy) -> None:
    with pytest.raises(urls.UrlRefused, match="IPv4 address"):
        urls.validate_url(f"https://{host}/hook", policy)


def test_the_guard_reads_hosts_as_the_dialer_does() -> None:
    assert urls.parse_host("8.8.8.8") == ipaddress.IPv4Address("8.8.8.8")
    assert urls.parse_host("2001:db8::1") == ipaddress.IPv6Address("2001:db8::1")
    # Names, numbers and hex-looking words included, stay names for DNS.
    for name in ("hooks.slack.com", "1e100.net", "0x7f.example", "123.example.com", "a.b."):
        assert urls.parse_host(name) == name
    for bad in ("exa mple.com", "%31%32%37.0.0.1", "-x.example", "fe80::1%eth0", "1::2::3"):
        with pytest.raises(urls.UrlRefused):
            urls.parse_host(bad)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://example.com:99999/hook", "port"),
        ("https://\uff11\uff12\uff17.0.0.1/hook", "valid URL"),  # fullwidth digits
        ("https://[fe80::1%25eth0]/hook", "zone id"),
        ("https://user:pw@example.com/hook", "credentials"),
    ],
)
def test_urls_the_client_would_read_otherwise_are_refused(url: str, reason: str) -> None:
    with pytest.raises(urls.UrlRefused, match=reason):
        urls.validate_url(url, urls.UrlPolicy(allow_private=True))
