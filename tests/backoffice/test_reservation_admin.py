"""D1: the reservation list, the ON_REQUEST work queue and its count on the index page, and
the detail with payment, supplier request audit and timeline — all read-only."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from reservations.models import ReservationStatus
from tests.backoffice.conftest import make_on_request
from tests.factories import ProductFactory, ReservationFactory, SupplierFactory

pytestmark = pytest.mark.django_db

LIST = reverse("admin:reservations_reservation_changelist")
QUEUE = reverse("admin:backoffice_onrequestreservation_changelist")


def codes(response) -> set[str]:
    return {r.code for r in response.context["cl"].result_list}


def test_index_shows_the_on_request_count_with_a_link_to_the_queue(member_client, product):
    make_on_request(product=product)
    make_on_request(product=product)
    ReservationFactory(product=product)

    page = member_client.get(reverse("admin:index")).text

    assert 'id="on-request-summary"' in page
    assert "<strong>2</strong>" in page
    assert f'href="{QUEUE}"' in page


def test_queue_lists_only_on_request_reservations_nearest_date_first_with_counts(member_client, product):
    later = make_on_request(product=product, date=timezone.localdate() + dt.timedelta(days=20))
    sooner = make_on_request(product=product, date=timezone.localdate() + dt.timedelta(days=2))
    ReservationFactory(product=product)  # unpaid: not staff work
    other_supplier = ProductFactory(supplier=SupplierFactory(name="Zeta Boats"))
    elsewhere = make_on_request(product=other_supplier)

    response = member_client.get(QUEUE)

    assert response.status_code == 200
    assert [r.code for r in response.context["cl"].result_list] == [sooner.code, elsewhere.code, later.code]
    assert '<p id="on-request-total">' in response.text
    assert "<strong>3</strong>" in response.text
    assert "Zeta Boats" in response.text
    assert "(1)" in response.text
    assert "(2)" in response.text
    assert "503 http_503" in response.text  # the last supplier error, per row

    by_supplier = member_client.get(QUEUE, {"product__supplier__id__exact": str(other_supplier.supplier_id)})
    assert codes(by_supplier) == {elsewhere.code}


def test_list_filters_by_status_supplier_status_date_and_supplier(member_client, product):
    on_request = make_on_request(product=product)
    unpaid = ReservationFactory(product=product, date=timezone.localdate())
    other = ReservationFactory(product=ProductFactory())

    assert codes(member_client.get(LIST, {"status__exact": "CONFIRMED_INTERNAL"})) == {on_request.code}
    assert codes(member_client.get(LIST, {"supplier_status__exact": "ON_REQUEST"})) == {on_request.code}
    assert codes(member_client.get(LIST, {"service_date": "today"})) == {unpaid.code}
    assert codes(member_client.get(LIST, {"product__supplier__id__exact": str(other.product.supplier_id)})) == {
        other.code}


def test_list_searches_by_code_and_guest_email(member_client, product):
    ada = ReservationFactory(product=product, guest_email="ada@example.test")
    bob = ReservationFactory(product=product, guest_email="bob@builder.test")

    assert codes(member_client.get(LIST, {"q": bob.code})) == {bob.code}
    assert codes(member_client.get(LIST, {"q": "ada@example"})) == {ada.code}


def test_detail_shows_payment_supplier_audit_and_timeline_read_only(member_client, on_request):
    response = member_client.get(reverse("admin:reservations_reservation_change", args=[on_request.pk]))

    page = response.text
    assert response.status_code == 200
    assert "Payment" in page
    assert "SUCCEEDED" in page
    assert f"pi_test_{on_request.pk.hex}" in page
    assert "Supplier request audit" in page
    assert "http_503" in page
    assert "upstream unavailable" in page
    assert "Timeline" in page
    assert "supplier booking failed: HTTP 503 from supplier" in page
    assert "250.00 EUR" in page
    # Read-only: no input for amount, status or any reservation field; no save button.
    for name in ("amount", "status", "supplier_status", "supplier_reference", "quantity", "guest_email"):
        assert f'name="{name}"' not in page
    assert 'name="_save"' not in page


def test_the_change_form_cannot_write_even_for_a_superuser(db, on_request, django_user_model):
    from django.test import Client

    root = django_user_model.objects.create_superuser("root", "root@example.test", "pw-root-123")
    client = Client()
    client.force_login(root)
    url = reverse("admin:reservations_reservation_change", args=[on_request.pk])

    response = client.post(url, {"amount": 1, "status": "CONFIRMED"})

    assert response.status_code == 403
    on_request.refresh_from_db()
    assert (on_request.amount, on_request.status) == (25000, ReservationStatus.CONFIRMED_INTERNAL)


def test_queue_item_opens_with_its_actions(member_client, on_request):
    url = reverse("admin:backoffice_onrequestreservation_change", args=[on_request.pk])

    page = member_client.get(url).text

    assert reverse("admin:backoffice_onrequestreservation_confirm_manually", args=[on_request.pk]) in page
    assert "Retry supplier booking now" in page
