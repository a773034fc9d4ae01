"""The client's address, one rule for throttling, the admin login lockout and /metrics.

NUM_PROXIES trusted proxies in front of us each append the address they received from to
X-Forwarded-For, so the client is the NUM_PROXIES-th address from the right. Whatever a
client writes further left is ignored; with NUM_PROXIES = 0 the header is ignored entirely.
This is DRF's rule (BaseThrottle.get_ident) with the setting read from one place."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    remote_addr = request.META.get("REMOTE_ADDR", "")
    proxies = settings.NUM_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies <= 0 or not forwarded:
        return remote_addr
    addresses = [part.strip() for part in forwarded.split(",")]
    return addresses[-min(proxies, len(addresses))]
