"""D4: the Stripe event inbox (inspect, re-process FAILED events) and read-only payments."""

from __future__ import annotations

import pytest
from django.urls import reverse

from payments.models import Payment, StripeEventStatus
from tests.backoffice.conftest import make_failed_stripe_event

pytestmark = pytest.mark.django_db

LIST = reverse("admin:payments_stripeevent_changelist")


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_stripe_event_detail_shows_payload_and_error_with_a_reprocess_button(member_client):
    event = make_failed_stripe_event()

    page = member_client.get(reverse("admin:payments_stripeevent_change", args=[event.pk])).text

    assert "cus_1" in page
    assert "KeyError: &#x27;boom&#x27;" in page
    assert reverse("admin:payments_stripeevent_reprocess", args=[event.pk]) in page
    assert 'name="_save"' not in page


def test_reprocess_one_failed_event(member_client):
    event = make_failed_stripe_event()

    url = reverse("admin:payments_stripeevent_reprocess", args=[event.pk])
    assert 'name="version"' in member_client.get(url).text  # a confirmation page, carrying the version
    response = member_client.post(url, {"version": event.version}, follow=True)

    assert any("re-processed (ignored)" in m for m in messages_of(response))
    event.refresh_from_db()
    assert (event.status, event.attempts, event.error) == (StripeEventStatus.IGNORED, 2, "")


def test_bulk_reprocess_skips_events_that_did_not_fail(member_client):
    failed = make_failed_stripe_event(event_id="evt_a")
    done = make_failed_stripe_event(event_id="evt_b")
    done.status = StripeEventStatus.PROCESSED
    done.save(update_fields=["status"])

    response = member_client.post(LIST, {"action": "reprocess_selected", "_selected_action": [failed.pk, done.pk]},
                                  follow=True)

    assert "1 event(s) skipped: only FAILED events are re-processed." in messages_of(response)
    failed.refresh_from_db()
    done.refresh_from_db()
    assert (failed.status, done.status) == (StripeEventStatus.IGNORED, StripeEventStatus.PROCESSED)


def test_payments_are_read_only(member_client, on_request):
    payment = Payment.objects.get(reservation=on_request)
    url = reverse("admin:payments_payment_change", args=[payment.pk])

    page = member_client.get(url).text
    assert "250.00 EUR" in page
    assert 'name="amount"' not in page
    assert member_client.post(url, {"amount": 1, "refunded_amount": 0}).status_code == 403
    payment.refresh_from_db()
    assert payment.amount == on_request.amount
