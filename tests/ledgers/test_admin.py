"""The discrepancy queue in the back office (H1): staff see the OPEN discrepancies with the action
that resolves each, and mark one resolved with a note — audited, version-checked, permitted to the
staff group."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from ledgers.models import Discrepancy, DiscrepancyKind, DiscrepancyStatus
from tests.backoffice.conftest import logged_in, make_staff_member
from tests.factories import ReservationFactory, StaffUserFactory

pytestmark = pytest.mark.django_db


def _discrepancy(reservation=None, **kwargs) -> Discrepancy:
    fields = {"kind": DiscrepancyKind.CHARGED_NOT_RECORDED, "subject": "pi:abc", "summary": "Stripe captured 2500",
              "subject_created_at": timezone.now(), "last_seen_at": timezone.now(), "reservation": reservation}
    return Discrepancy.objects.create(**{**fields, **kwargs})


def test_the_queue_shows_open_discrepancies_with_their_resolving_action(product):
    reservation = ReservationFactory(product=product)
    _discrepancy(reservation, subject="pi:open")
    _discrepancy(subject="pi:closed", status=DiscrepancyStatus.CLOSED)
    client = logged_in(make_staff_member())

    listing = client.get(reverse("admin:ledgers_discrepancy_changelist")).content.decode()
    detail = client.get(reverse("admin:ledgers_discrepancy_change",
                                args=[Discrepancy.objects.get(subject="pi:open").pk])).content.decode()

    assert "pi:open" in listing
    assert "pi:closed" not in listing
    assert reverse("admin:reservations_reservation_change", args=[reservation.pk]) in detail
    assert "refund the intent" in detail  # the hint for charged-not-recorded
    assert "Mark resolved" in detail


def test_a_staff_member_marks_a_discrepancy_resolved_with_a_note(product):
    reservation = ReservationFactory(product=product)
    row = _discrepancy(reservation)
    member = make_staff_member("ops")
    url = reverse("admin:ledgers_discrepancy_resolve", args=[row.pk])

    response = logged_in(member).post(url, {"version": row.version, "note": "refunded in the Dashboard"})

    row.refresh_from_db()
    assert response.status_code == 302
    assert (row.status, row.resolved_by, row.resolution_note) == (DiscrepancyStatus.RESOLVED, "staff:ops",
                                                                  "refunded in the Dashboard")
    assert reservation.events.filter(actor="staff:ops", reason__contains="refunded in the Dashboard").exists()
    assert LogEntry.objects.filter(object_id=str(row.pk), change_message__contains="refunded").exists()


def test_a_stale_page_or_an_empty_note_changes_nothing(product):
    row = _discrepancy(ReservationFactory(product=product))
    client = logged_in(make_staff_member())
    url = reverse("admin:ledgers_discrepancy_resolve", args=[row.pk])

    client.post(url, {"version": row.version + 1, "note": "seen"})
    empty = client.post(url, {"version": row.version, "note": "  "})

    row.refresh_from_db()
    assert row.status == DiscrepancyStatus.OPEN
    assert empty.status_code == 200  # the form again, with its error


def test_resolving_needs_the_permission():
    row = _discrepancy()
    plain_staff = StaffUserFactory()  # may log in, holds no permission

    response = logged_in(plain_staff).post(reverse("admin:ledgers_discrepancy_resolve", args=[row.pk]),
                                           {"version": row.version, "note": "x"})

    row.refresh_from_db()
    assert response.status_code == 403
    assert row.status == DiscrepancyStatus.OPEN
