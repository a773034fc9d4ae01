"""The reference HTTP adapter against the fake supplier over real HTTP (C4)."""

from __future__ import annotations

import pytest

from suppliers.clients import BookingRequest, LookupOutcome, SupplierBooking, SupplierOutcome, supplier_adapter_for
from tests.support.servers import closed_port

pytestmark = pytest.mark.django_db

BOOKING = BookingRequest(reference="R-TEST01", product_code="P-1", date="2030-01-01", quantity=2,
                         guest_name="Ada Lovelace")


def _book(supplier, key: str = "reservation:1:book", product_code: str = "P-1"):
    booking = BookingRequest(**{**BOOKING.__dict__, "product_code": product_code})
    return supplier_adapter_for(supplier).book(booking=booking, idempotency_key=key)


@pytest.mark.parametrize(("mode", "outcome", "status", "error_code"), [
    ("confirm", SupplierOutcome.CONFIRMED, 201, ""),
    ("on_request", SupplierOutcome.ON_REQUEST, 202, ""),
    ("reject", SupplierOutcome.REJECTED, 409, "no_availability"),
    ("permanent", SupplierOutcome.PERMANENT, 400, "invalid_request"),
    ("fail", SupplierOutcome.RETRYABLE, 503, "http_503"),
])
def test_answers_are_classified(fake_supplier, supplier, mode, outcome, status, error_code):
    fake_supplier.set_mode("P-1", mode)

    result = _book(supplier)

    assert (result.outcome, result.http_status, result.error_code) == (outcome, status, error_code)


def test_confirmation_carries_booking_id_and_code_and_a_redacted_request(fake_supplier, supplier):
    result = _book(supplier)

    [booking] = fake_supplier.bookings()
    assert result.booking_id == booking["booking_id"]
    assert result.reference == booking["confirmation_code"]
    assert result.request["headers"] == {"Authorization": "Bearer ***", "Idempotency-Key": "reservation:1:book"}
    assert result.request["body"]["reference"] == "R-TEST01"
    assert supplier.api_key not in repr(result)


def test_a_repeated_idempotency_key_returns_the_first_booking(fake_supplier, supplier):
    first, second = _book(supplier), _book(supplier)

    assert first.booking_id == second.booking_id
    assert len(fake_supplier.bookings()) == 1


def test_read_timeout_is_retryable(fake_supplier, supplier):
    supplier.timeout_seconds = 0.2
    fake_supplier.set_mode("P-1", "slow:1:1")

    result = _book(supplier)

    assert (result.outcome, result.error_code, result.http_status) == (SupplierOutcome.RETRYABLE, "read_timeout", None)


def test_connection_refused_is_retryable(supplier):
    supplier.base_url = f"http://127.0.0.1:{closed_port()}"

    result = _book(supplier)

    assert (result.outcome, result.error_code) == (SupplierOutcome.RETRYABLE, "connection_error")


def test_open_breaker_answers_retryable_without_calling(fake_supplier, supplier, settings):
    settings.SUPPLIER_BREAKER_FAIL_MAX = 3
    fake_supplier.set_mode("P-1", "fail")

    results = [_book(supplier, key=f"k{i}") for i in range(5)]

    assert [r.error_code for r in results] == ["http_503"] * 3 + ["breaker_open"] * 2
    assert [r.call_made for r in results] == [True] * 3 + [False] * 2
    assert fake_supplier.post_count() == 3


def test_client_errors_do_not_open_the_breaker(fake_supplier, supplier, settings):
    settings.SUPPLIER_BREAKER_FAIL_MAX = 2
    fake_supplier.set_mode("P-1", "permanent")

    results = [_book(supplier, key=f"k{i}") for i in range(4)]

    assert {r.outcome for r in results} == {SupplierOutcome.PERMANENT}
    assert fake_supplier.post_count() == 4


def test_cancel_is_idempotent_and_404_means_already_cancelled(fake_supplier, supplier):
    booked = _book(supplier)
    adapter = supplier_adapter_for(supplier)

    first = adapter.cancel(booking_id=booked.booking_id, idempotency_key="reservation:1:cancel")
    again = adapter.cancel(booking_id=booked.booking_id, idempotency_key="reservation:1:cancel")
    unknown = adapter.cancel(booking_id="bk_missing", idempotency_key="reservation:2:cancel")

    assert [first.http_status, again.http_status, unknown.http_status] == [200, 404, 404]
    assert {first.outcome, again.outcome, unknown.outcome} == {SupplierOutcome.CANCELLED}
    assert fake_supplier.bookings()[0]["status"] == "CANCELLED"


# --- lookups (reconciliation, H1) ---------------------------------------------------------------

def test_lookups_read_the_suppliers_ledger_by_id_and_by_reference(fake_supplier, supplier):
    booked = _book(supplier)
    adapter = supplier_adapter_for(supplier)

    by_id = adapter.booking_get(booking_id=booked.booking_id)
    by_reference = adapter.bookings_for_reference(reference="R-TEST01")
    missing = adapter.booking_get(booking_id="bk_missing")
    nothing = adapter.bookings_for_reference(reference="R-NONE")

    expected = SupplierBooking(booking_id=booked.booking_id, reference="R-TEST01", status="CONFIRMED",
                               confirmation_code=booked.confirmation_code)
    assert (by_id.outcome, by_id.bookings) == (LookupOutcome.FOUND, (expected,))
    assert (by_reference.outcome, by_reference.bookings) == (LookupOutcome.FOUND, (expected,))
    assert (missing.outcome, missing.http_status) == (LookupOutcome.NOT_FOUND, 404)
    assert (nothing.outcome, nothing.bookings) == (LookupOutcome.NOT_FOUND, ())
    assert fake_supplier.state()["auth_failures"] == 0  # the key was sent


def test_a_supplier_down_for_lookups_is_unavailable_and_opens_the_breaker(fake_supplier, supplier, settings):
    settings.SUPPLIER_BREAKER_FAIL_MAX = 2
    fake_supplier.control(override="fail")
    adapter = supplier_adapter_for(supplier)

    lookups = [adapter.bookings_for_reference(reference=f"R-{i}") for i in range(3)]

    assert [lk.outcome for lk in lookups] == [LookupOutcome.UNAVAILABLE] * 3
    assert [lk.error_code for lk in lookups] == ["http_503", "http_503", "breaker_open"]
    assert [lk.call_made for lk in lookups] == [True, True, False]


def test_a_lookup_of_an_unreachable_supplier_is_unavailable(fake_supplier, supplier):
    supplier.base_url = f"http://127.0.0.1:{closed_port()}"

    lookup = supplier_adapter_for(supplier).booking_get(booking_id="bk_1")

    assert (lookup.outcome, lookup.error_code) == (LookupOutcome.UNAVAILABLE, "connection_error")
