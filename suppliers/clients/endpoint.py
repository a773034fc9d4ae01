"""Where a supplier's base_url may point (issue "security": no SSRF through the worker).

The worker sends every booking to `base_url` with the supplier's API key and the guest's
name, from inside our network. So a base_url must be https, and its host must never be
(or resolve to) a loopback, link-local, private or otherwise internal address — unless the
operator names the host in SUPPLIER_ALLOWED_HOSTS (the demo's fake supplier on 127.0.0.1).

Checked twice: when the catalog saves a base_url (`base_url_problem`, a clear 400), and on
every connection (`supplier_session`): requests-hardened (Saleor's library) resolves the
host, refuses an internal address and connects to the very address it checked, so a DNS
answer that changes after the save (rebinding) cannot reach an internal service either."""

from __future__ import annotations

import ipaddress
import logging
import socket
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests_hardened import Config, HTTPSession
from requests_hardened.ip_filter import EXTRA_BLOCKED_NET_RANGES, InvalidIPAddress

logger = logging.getLogger("reserve.suppliers")

# What the connection-time filter raises; the adapter classifies it as a refused endpoint.
EndpointRefused = InvalidIPAddress

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def host_allowed(host: str) -> bool:
    """Named in SUPPLIER_ALLOWED_HOSTS: plain http and internal addresses are accepted."""
    return host.lower().rstrip(".") in {h.lower().rstrip(".") for h in settings.SUPPLIER_ALLOWED_HOSTS}


def address_internal(ip: _IPAddress) -> bool:
    """The rule requests-hardened applies at connection time, for the save-time check."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
            or ip.is_unspecified or any(ip in net for net in EXTRA_BLOCKED_NET_RANGES))


def _resolved_addresses(host: str) -> list[_IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        # Not resolvable now (no DNS yet, or none from here): the connection-time filter
        # still refuses it if it ever resolves to an internal address.
        return []
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]


def base_url_problem(url: str) -> str | None:
    """Why this base_url may not be saved, or None."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        return "Enter an http(s) URL with a host."
    if parts.username or parts.password:
        return "Credentials do not belong in the URL: use the API key field."
    if parts.query or parts.fragment:
        return "The base URL takes no query string or fragment."
    if host_allowed(host):
        return None
    if parts.scheme != "https":
        return "The supplier API must be reached over https (plain http only for hosts on SUPPLIER_ALLOWED_HOSTS)."
    internal = [str(ip) for ip in _resolved_addresses(host) if address_internal(ip)]
    if internal:
        return (f"{host} resolves to an internal address ({', '.join(sorted(set(internal)))}); only hosts on "
                "SUPPLIER_ALLOWED_HOSTS may.")
    return None


def connection_problem(url: str) -> str | None:
    """Checked before each call, for rows saved before this policy or by hand: the scheme.
    Internal addresses are refused by the session itself, at connection time."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host:
        return "base_url has no host"
    if parts.scheme != "https" and not host_allowed(host):
        return f"base_url is {parts.scheme}:// and {host} is not on SUPPLIER_ALLOWED_HOSTS"
    return None


def supplier_session(url: str) -> requests.Session:
    """A session for this base_url: the IP-filtering one unless the host is allowed."""
    if host_allowed(urlsplit(url).hostname or ""):
        return requests.Session()
    # Timeouts and redirects are set on every call by the adapter; the filter is what matters.
    return HTTPSession(Config(ip_filter_enable=True, ip_filter_allow_loopback_ips=False, never_redirect=True,
                              default_timeout=None))
