"""TLS behind a proxy, as an attacker and an operator see it over real HTTP (issue "security",
api.md "Configuration"): the web role under production settings, started with each setting the
contract names.

- Behind a TLS-terminating proxy (SECURE_SSL_REDIRECT=false, NUM_PROXIES=1) cookies keep the
  Secure flag and HSTS is sent: turning the redirect off must not turn transport security off.
- X-Forwarded-Proto counts only when a trusted proxy wrote it (NUM_PROXIES > 0): otherwise a
  plain-HTTP client could claim to be on TLS and skip the redirect.
- Only INSECURE_LOCAL_HTTP=true (the shared deployment's setting) drops the Secure flags."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import requests

from tests.support.servers import free_port, stop_server, wait_for_port

pytestmark = [pytest.mark.xdist_group("deploy"), pytest.mark.timeout(300)]

PRODUCTION_TLS = {"INSECURE_LOCAL_HTTP": "false", "GUNICORN_WORKERS": "1", "GUNICORN_THREADS": "2"}


@contextlib.contextmanager
def web(deployment, **settings: str) -> Iterator[str]:
    port = free_port()
    proc = deployment.spawn("web", log=f"web-tls-{port}", PORT=str(port), **{**PRODUCTION_TLS, **settings})
    try:
        wait_for_port(port, timeout=60, proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(proc)


def csrf_cookie(response: requests.Response) -> str:
    cookies = [v for k, v in response.raw.headers.items() if k.lower() == "set-cookie" and v.startswith("csrftoken=")]
    assert cookies, response.headers
    return cookies[0]


def test_behind_a_tls_proxy_cookies_stay_secure_and_hsts_is_sent(deployment):
    with web(deployment, SECURE_SSL_REDIRECT="false", NUM_PROXIES="1") as base_url:
        via_proxy = requests.get(f"{base_url}/admin/login/", timeout=20, allow_redirects=False,
                                 headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})

    assert via_proxy.status_code == 200
    assert "; secure" in csrf_cookie(via_proxy).lower()
    assert via_proxy.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_a_client_cannot_claim_tls_when_no_proxy_is_trusted(deployment):
    with web(deployment, SECURE_SSL_REDIRECT="true", NUM_PROXIES="0") as base_url:
        claimed = requests.get(f"{base_url}/api/v1/products/", timeout=20, allow_redirects=False,
                               headers={"X-Forwarded-Proto": "https"})
    with web(deployment, SECURE_SSL_REDIRECT="true", NUM_PROXIES="1") as base_url:
        proxied = requests.get(f"{base_url}/api/v1/products/", timeout=20, allow_redirects=False,
                               headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})

    assert claimed.status_code == 301
    assert claimed.headers["Location"].startswith("https://")
    assert proxied.status_code == 401  # on TLS as the trusted proxy says: no redirect, the API answers


def test_only_insecure_local_http_drops_the_secure_flags(deployment):
    # The shared deployment runs plain HTTP on loopback with INSECURE_LOCAL_HTTP=true.
    response = requests.get(f"{deployment.base_url}/admin/login/", timeout=20)

    assert response.status_code == 200
    assert "secure" not in csrf_cookie(response).lower()
    assert "Strict-Transport-Security" not in response.headers
