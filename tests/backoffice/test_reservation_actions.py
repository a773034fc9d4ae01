"""D2: confirm manually, retry the supplier now, cancel and refund — each recorded on the
timeline as `staff:<username>`, each refused (and nothing changed) when the page is stale."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.urls import reverse

from common.exceptions import VersionConflict
from outbox.models import DeadLetterStatus, OutboxEvent, OutboxStatus
from payments.models import Payment, PaymentStatus, Refund
from reservations.models import ReservationStatus, SupplierStatus
from reservations.services import reservation_set_supplier_status, reservation_transition
from suppliers.staff import reservation_confirm_manually
from tests.backoffice.conftest import make_on_request, timeline
from tests.conftest import client_for
from tests.factories import ReservationFactory
from tests.payments.conftest import create_payment_method, new_key, pay

pytestmark = pytest.mark.django_db


def action_url(reservation, name: str) -> str:
    return reverse(f"admin:reservations_reservation_{name}", args=[reservation.pk])


def detail_url(reservation) -> str:
    return reverse("admin:reservations_reservation_change", args=[reservation.pk])


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def bump_version_concurrently(reservation) -> None:
    """What another staff member's action does after this page was rendered: a new version."""
    with transaction.atomic():
        reservation_set_supplier_status(reservation=reservation, supplier_status=SupplierStatus.ON_REQUEST,
                                        actor="staff:bob", reason="called the supplier, no answer")


# --- confirm manually --------------------------------------------------------------------------

def test_confirm_manually_form_carries_the_rendered_version(member_client, on_request):
    response = member_client.get(action_url(on_request, "confirm_manually"))

    assert response.status_code == 200
    assert f'name="version" value="{on_request.version}"' in response.text
    assert on_request.code in response.text
    assert "250.00 EUR" in response.text


def test_confirm_manually_confirms_with_the_reference_and_records_the_staff_user(member_client, on_request):
    response = member_client.post(action_url(on_request, "confirm_manually"), {
        "version": on_request.version, "supplier_reference": " ACME-778 ", "note": "confirmed by phone with Ana"},
        follow=True)

    assert response.status_code == 200
    assert any("confirmed with supplier reference ACME-778" in m for m in messages_of(response))
    on_request.refresh_from_db()
    assert (on_request.status, on_request.supplier_status, on_request.supplier_reference) == (
        ReservationStatus.CONFIRMED, SupplierStatus.CONFIRMED, "ACME-778")
    last = on_request.events.get(from_status="CONFIRMED_INTERNAL", to_status="CONFIRMED")
    assert last.actor == "staff:alice"
    assert last.reason == "confirmed manually with the supplier: confirmed by phone with Ana"
    assert last.data["supplier_reference"] == "ACME-778"
    # The booking's dead letter is closed with the reason, so it leaves the staff queue.
    dead_letter = on_request.dead_letters.get()
    assert (dead_letter.status, dead_letter.resolved_by) == (DeadLetterStatus.DISCARDED, "staff:alice")
    assert "ACME-778" in dead_letter.reason


def test_confirm_manually_requires_a_supplier_reference(member_client, on_request):
    response = member_client.post(action_url(on_request, "confirm_manually"),
                                  {"version": on_request.version, "supplier_reference": "   "})

    assert response.status_code == 200
    assert "This field is required." in response.text
    on_request.refresh_from_db()
    assert on_request.status == ReservationStatus.CONFIRMED_INTERNAL


def test_confirm_manually_from_a_stale_page_is_refused_and_changes_nothing(member_client, on_request):
    rendered_version = on_request.version
    bump_version_concurrently(on_request)  # someone else acted after the page was rendered
    on_request.refresh_from_db()
    before = (on_request.status, on_request.supplier_status, on_request.version, on_request.events.count())

    response = member_client.post(action_url(on_request, "confirm_manually"), {
        "version": rendered_version, "supplier_reference": "ACME-1"}, follow=True)

    assert response.redirect_chain[-1][0] == detail_url(on_request)
    [message] = messages_of(response)
    assert "changed since you opened the page" in message
    assert "Nothing was changed" in message
    on_request.refresh_from_db()
    assert (on_request.status, on_request.supplier_status, on_request.version, on_request.events.count()) == before
    assert on_request.supplier_reference == ""
    assert on_request.dead_letters.get().status == DeadLetterStatus.OPEN


def test_confirm_manually_of_a_reservation_not_on_request_is_refused(member_client, product):
    reservation = ReservationFactory(product=product)

    response = member_client.post(action_url(reservation, "confirm_manually"),
                                  {"version": reservation.version, "supplier_reference": "X-1"}, follow=True)

    assert "Only a CONFIRMED_INTERNAL reservation can be confirmed manually" in messages_of(response)[0]
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.PENDING_PAYMENT


def test_confirm_manually_service_refuses_a_stale_version(on_request):
    with pytest.raises(VersionConflict):
        reservation_confirm_manually(reservation_id=on_request.pk, supplier_reference="R-1", actor="staff:bob",
                                     expected_version=on_request.version - 1)
    on_request.refresh_from_db()
    assert on_request.status == ReservationStatus.CONFIRMED_INTERNAL


# --- retry supplier booking now ----------------------------------------------------------------

def test_retry_supplier_now_rearms_the_original_booking_event(member_client, on_request):
    event = OutboxEvent.objects.get(reservation=on_request, topic="supplier.book")

    response = member_client.post(action_url(on_request, "retry_supplier"), {"version": on_request.version},
                                  follow=True)

    assert response.status_code == 200
    assert any("being retried now" in m for m in messages_of(response))
    on_request.refresh_from_db()
    assert (on_request.status, on_request.supplier_status) == (ReservationStatus.CONFIRMED_INTERNAL,
                                                               SupplierStatus.PENDING)
    event.refresh_from_db()
    assert (event.status, event.attempts) == (OutboxStatus.PENDING, 0)  # same event: same idempotency key
    assert OutboxEvent.objects.filter(reservation=on_request, topic="supplier.book").count() == 1
    last = on_request.events.order_by("-id").first()
    assert last.actor == "staff:alice"
    assert last.reason == "supplier booking retried by staff"


def test_retry_supplier_from_a_stale_page_is_refused_and_changes_nothing(member_client, on_request):
    rendered_version = on_request.version
    bump_version_concurrently(on_request)
    events_before = on_request.events.count()

    response = member_client.post(action_url(on_request, "retry_supplier"), {"version": rendered_version},
                                  follow=True)

    assert "changed since you opened the page" in messages_of(response)[0]
    on_request.refresh_from_db()
    assert on_request.supplier_status == SupplierStatus.ON_REQUEST
    assert on_request.events.count() == events_before
    assert OutboxEvent.objects.get(reservation=on_request, topic="supplier.book").status == OutboxStatus.DEAD


# --- cancel and refund (real refunds against localstripe) ---------------------------------------

@pytest.fixture
def paid_on_request(customer, product, stripe_local):
    """Paid for real through localstripe, then left ON_REQUEST by the supplier flow."""
    reservation = ReservationFactory(user=customer, product=product)
    response = pay(client_for(customer), reservation, key=new_key(),
                   payment_method=create_payment_method(stripe_local))
    assert response.status_code == 200, response.content
    reservation.refresh_from_db()
    with transaction.atomic():
        reservation_transition(reservation=reservation, to_status=ReservationStatus.CONFIRMED_INTERNAL,
                               actor="system", reason="supplier booking failed",
                               fields={"supplier_status": SupplierStatus.ON_REQUEST})
    reservation.refresh_from_db()
    return reservation


def test_cancel_and_refund_page_shows_the_amount_to_refund(member_client, paid_on_request):
    response = member_client.get(action_url(paid_on_request, "cancel_refund"))

    assert response.status_code == 200
    assert '<strong id="refund-amount">250.00 EUR</strong>' in response.text
    assert f'name="version" value="{paid_on_request.version}"' in response.text


def test_cancel_and_refund_refunds_in_full_and_records_the_staff_user(member_client, paid_on_request):
    response = member_client.post(action_url(paid_on_request, "cancel_refund"), {
        "version": paid_on_request.version, "reason": "customer called: family emergency"}, follow=True)

    assert response.status_code == 200
    assert any("cancelled" in m for m in messages_of(response))
    paid_on_request.refresh_from_db()
    assert paid_on_request.status == ReservationStatus.CANCELLED
    payment = Payment.objects.get(reservation=paid_on_request)
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.REFUNDED, paid_on_request.amount)
    refund = Refund.objects.get(payment=payment)
    assert (refund.actor, refund.amount) == ("staff:alice", paid_on_request.amount)
    assert ("CANCELLED", "staff:alice", "customer called: family emergency") in timeline(paid_on_request)


def test_cancel_and_refund_from_a_stale_page_refunds_nothing(member_client, paid_on_request):
    rendered_version = paid_on_request.version
    bump_version_concurrently(paid_on_request)

    response = member_client.post(action_url(paid_on_request, "cancel_refund"), {
        "version": rendered_version, "reason": "customer called"}, follow=True)

    assert "changed since you opened the page" in messages_of(response)[0]
    paid_on_request.refresh_from_db()
    assert paid_on_request.status == ReservationStatus.CONFIRMED_INTERNAL
    assert not Refund.objects.filter(payment__reservation=paid_on_request).exists()
    assert Payment.objects.get(reservation=paid_on_request).refunded_amount == 0


def test_cancel_requires_a_reason(member_client, on_request):
    response = member_client.post(action_url(on_request, "cancel_refund"), {"version": on_request.version})

    assert response.status_code == 200
    assert "This field is required." in response.text
    on_request.refresh_from_db()
    assert on_request.status == ReservationStatus.CONFIRMED_INTERNAL


# --- what the detail page offers --------------------------------------------------------------

def test_detail_offers_the_actions_that_apply(member_client, on_request, product):
    page = member_client.get(detail_url(on_request)).text
    assert "Confirm manually" in page
    assert "Retry supplier booking now" in page
    assert "Cancel and refund" in page

    unpaid = ReservationFactory(product=product)
    page = member_client.get(detail_url(unpaid)).text
    assert "Confirm manually" not in page
    assert "Retry supplier booking now" not in page


def test_service_confirms_and_a_later_booking_delivery_is_skipped(on_request):
    """The booking handler does nothing for a CONFIRMED reservation: a replay cannot book again."""
    from suppliers.booking import SupplierBookHandler

    reservation_confirm_manually(reservation_id=on_request.pk, supplier_reference="ACME-9", actor="staff:bob",
                                 expected_version=on_request.version)

    event = OutboxEvent.objects.get(reservation=on_request, topic="supplier.book")
    assert SupplierBookHandler().perform(event).note == "already confirmed"


def test_unknown_reservation_is_404(member_client):
    response = member_client.get(reverse("admin:reservations_reservation_confirm_manually",
                                         args=["00000000-0000-0000-0000-000000000000"]))
    assert response.status_code == 404


def test_actions_are_reachable_from_the_on_request_queue(member_client, on_request):
    url = reverse("admin:backoffice_onrequestreservation_confirm_manually", args=[on_request.pk])

    response = member_client.post(url, {"version": on_request.version, "supplier_reference": "Q-1"})

    assert response.status_code == 302
    on_request.refresh_from_db()
    assert on_request.status == ReservationStatus.CONFIRMED


def test_make_on_request_builds_a_queue_item(product):
    reservation = make_on_request(product=product, with_dead_letter=False)
    assert (reservation.status, reservation.supplier_status) == ("CONFIRMED_INTERNAL", "ON_REQUEST")
