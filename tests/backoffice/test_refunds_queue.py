"""B9 in the back office: the "refunds needing attention" queue and its two actions, used by a
member of the Reservations staff group (retry under a new key; record a refund made outside
Stripe, reason required); a stale page is refused and changes nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse

from payments.models import Payment, PaymentStatus, RefundResolution, RefundStatus
from payments.services import payment_refund
from tests.backoffice.conftest import logged_in, make_staff_member
from tests.factories import ReservationFactory, StaffUserFactory
from tests.payments.conftest import create_payment_method, new_key, pay

pytestmark = pytest.mark.django_db

QUEUE = reverse("admin:backoffice_refundneedingattention_changelist")


@pytest.fixture
def failed_refund(api, customer, product, stripe_local, strict_stripe):
    reservation = ReservationFactory(user=customer, product=product)
    assert pay(api, reservation, key=new_key(), payment_method=create_payment_method(stripe_local)).status_code == 200
    payment = Payment.objects.get(reservation=reservation)
    strict_stripe.refund_status = "failed"  # the bank refused it
    refund = payment_refund(payment=payment, amount=None, reason="cancelled", actor="system", idempotency_key="q")
    strict_stripe.refund_status = None
    assert refund.status == RefundStatus.FAILED
    return refund


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_the_queue_lists_failed_refunds_with_their_actions(member_client, failed_refund):
    page = member_client.get(QUEUE).text
    assert failed_refund.payment.reservation.code in page

    detail = member_client.get(reverse("admin:backoffice_refundneedingattention_change", args=[failed_refund.pk])).text
    assert reverse("admin:backoffice_refundneedingattention_retry", args=[failed_refund.pk]) in detail
    assert reverse("admin:backoffice_refundneedingattention_record_external", args=[failed_refund.pk]) in detail


def test_retry_from_the_queue_refunds_under_a_new_key_and_empties_the_queue(member_client, failed_refund,
                                                                           strict_stripe):
    url = reverse("admin:backoffice_refundneedingattention_retry", args=[failed_refund.pk])
    assert 'name="version"' in member_client.get(url).text

    response = member_client.post(url, {"version": failed_refund.version}, follow=True)

    assert any("retried" in m for m in messages_of(response))
    failed_refund.refresh_from_db()
    assert (failed_refund.resolution, failed_refund.resolved_by) == (RefundResolution.RETRIED, "staff:alice")
    payment = failed_refund.payment
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED
    assert failed_refund.payment.reservation.code not in member_client.get(QUEUE).text


def test_recording_an_external_refund_needs_a_reason(member_client, failed_refund):
    url = reverse("admin:backoffice_refundneedingattention_record_external", args=[failed_refund.pk])

    empty = member_client.post(url, {"version": failed_refund.version, "reason": " "})
    assert empty.status_code == 200
    assert "This field is required" in empty.text
    done = member_client.post(url, {"version": failed_refund.version, "reason": "bank transfer",
                                    "reference": "TRX-9"}, follow=True)

    assert any("outside Stripe recorded" in m for m in messages_of(done))
    failed_refund.refresh_from_db()
    assert failed_refund.resolution == RefundResolution.RECORDED_EXTERNAL
    assert failed_refund.payment.reservation.events.filter(reason__contains="bank transfer").exists()


def test_a_stale_page_is_refused_and_changes_nothing(member_client, failed_refund):
    url = reverse("admin:backoffice_refundneedingattention_retry", args=[failed_refund.pk])

    response = member_client.post(url, {"version": failed_refund.version + 1}, follow=True)

    assert any("changed since you opened the page" in m for m in messages_of(response))
    failed_refund.refresh_from_db()
    assert failed_refund.resolution == ""
    assert failed_refund.retries.count() == 0


def test_staff_outside_the_group_can_neither_see_nor_act(failed_refund):
    outsider = logged_in(StaffUserFactory())
    assert outsider.get(QUEUE).status_code == 403
    url = reverse("admin:backoffice_refundneedingattention_retry", args=[failed_refund.pk])
    assert outsider.post(url, {"version": failed_refund.version}).status_code == 403
    failed_refund.refresh_from_db()
    assert failed_refund.resolution == ""


def test_a_member_of_the_group_has_the_queue(db):
    member = make_staff_member("carol")
    assert member.has_perm("backoffice.resolve_refund")
    assert member.has_perm("backoffice.view_refundneedingattention")
    assert not member.has_perm("payments.change_refund")
