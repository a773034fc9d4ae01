"""Supplier calls read the proxy variables once per origin (suppliers.clients.http._environment),
not on every call as requests does: the variables must still apply, NO_PROXY included, and
~/.netrc must never replace the supplier's key."""

from __future__ import annotations

import pytest

from suppliers.clients import http
from suppliers.clients.base import BookingRequest, SupplierOutcome
from suppliers.clients.http import HttpSupplierAdapter
from tests.support.servers import closed_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def fresh_environment():
    http._environment.cache_clear()
    yield
    http._environment.cache_clear()


def _book(product, key: str):
    booking = BookingRequest(reference=key, product_code=product.code, date="2030-01-01", quantity=1,
                             guest_name="Ada")
    return HttpSupplierAdapter(product.supplier).book(booking=booking, idempotency_key=key)


def test_a_proxy_from_the_environment_is_used_and_no_proxy_bypasses_it(fake_supplier, product, monkeypatch,
                                                                     fresh_environment):
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")  # a proxy that is down

    through_proxy = _book(product, "proxy-1")
    assert through_proxy.outcome is SupplierOutcome.RETRYABLE
    assert through_proxy.error_code == "connection_error"  # the proxy was tried, not the supplier

    http._environment.cache_clear()  # the environment is read once per origin, at first use
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    assert not fake_supplier.bookings(reference="proxy-1")
    direct = _book(product, "proxy-2")
    assert direct.outcome is SupplierOutcome.CONFIRMED
    assert fake_supplier.bookings(reference="proxy-2")


def test_netrc_credentials_never_replace_the_suppliers_key(fake_supplier, product, monkeypatch, tmp_path):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password not-the-key\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    # The fake supplier answers 401 unless it gets "Bearer <the supplier's key>".
    assert _book(product, "netrc-1").outcome is SupplierOutcome.CONFIRMED
