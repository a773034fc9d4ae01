"""No SSRF through the worker (issue "security" 2), at the moment of the call.

The save-time check (tests/security/test_catalog_attacks.py) is not enough: a name that
resolved to a public address when it was saved can resolve to 127.0.0.1 later (DNS
rebinding), and rows may predate the policy. So the adapter refuses plain http to a host not
on SUPPLIER_ALLOWED_HOSTS, and its session refuses to connect to an internal address. A raw
TCP listener counts the connections that actually reach it: refused means none."""

from __future__ import annotations

import socket
import threading

import pytest

from outbox.models import DeadLetter, OutboxEvent, OutboxStatus
from reservations.models import ReservationStatus
from suppliers.booking import supplier_may_hold_booking
from suppliers.clients import BookingRequest, SupplierOutcome, supplier_adapter_for
from suppliers.models import SupplierRequest
from tests.support.outbox import drain_all, paid_reservation

pytestmark = pytest.mark.django_db

BOOKING = BookingRequest(reference="R-SSRF01", product_code="P-1", date="2030-01-01", quantity=1,
                         guest_name="Ada Lovelace")


class Listener:
    """Accepts TCP connections on loopback, counts them, sends nothing back."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


def _book(supplier):
    return supplier_adapter_for(supplier).book(booking=BOOKING, idempotency_key="reservation:ssrf:book")


def test_a_name_that_now_resolves_to_loopback_is_never_connected_to(supplier, listener, settings):
    settings.SUPPLIER_ALLOWED_HOSTS = []
    supplier.base_url = f"https://localhost:{listener.port}/api"  # as if its DNS changed after the save

    result = _book(supplier)

    assert (result.outcome, result.error_code) == (SupplierOutcome.PERMANENT, "endpoint_refused")
    assert listener.accepted == 0


def test_the_same_call_reaches_the_listener_when_the_host_is_allowed(supplier, listener, settings):
    """The control: the listener does see a connection the filter lets through."""
    settings.SUPPLIER_ALLOWED_HOSTS = ["localhost"]
    supplier.base_url = f"https://localhost:{listener.port}/api"

    result = _book(supplier)

    assert result.error_code == "connection_error"  # no TLS there: but it was reached
    assert listener.accepted == 1


def test_plain_http_to_a_host_not_allowed_is_never_sent(supplier, listener, settings):
    settings.SUPPLIER_ALLOWED_HOSTS = []
    supplier.base_url = f"http://127.0.0.1:{listener.port}"

    result = _book(supplier)

    assert (result.outcome, result.error_code) == (SupplierOutcome.PERMANENT, "endpoint_refused")
    assert listener.accepted == 0


def test_a_refused_endpoint_goes_to_staff_and_counts_as_no_booking(product, supplier, listener, settings):
    settings.SUPPLIER_ALLOWED_HOSTS = []
    supplier.base_url = f"https://localhost:{listener.port}"
    supplier.save(update_fields=["base_url"])
    reservation = paid_reservation(product)

    drain_all()

    reservation.refresh_from_db()
    assert listener.accepted == 0
    assert OutboxEvent.objects.get(reservation=reservation).status == OutboxStatus.DEAD
    assert DeadLetter.objects.filter(event__reservation=reservation).exists()
    assert reservation.status == ReservationStatus.CONFIRMED_INTERNAL  # in the staff queue
    [audit] = SupplierRequest.objects.filter(reservation=reservation)
    assert (audit.outcome, audit.error_code, audit.http_status) == ("permanent", "endpoint_refused", None)
    # Nothing left this process, so a cancellation need not ask the supplier to undo anything.
    assert not supplier_may_hold_booking(reservation=reservation)


def test_plain_http_is_refused_even_to_a_public_address(supplier, settings):
    """The scheme rule on its own: the address filter would let a public address through, and
    plain http would carry the API key and the guest's name readable on the way."""
    settings.SUPPLIER_ALLOWED_HOSTS = []
    supplier.base_url = "http://93.184.215.14/api"  # a public address (no network is needed: nothing is sent)

    result = _book(supplier)

    assert (result.outcome, result.error_code) == (SupplierOutcome.PERMANENT, "endpoint_refused")
    assert "http://" in result.details["reason"]
