"""D3: dead letters — inspect (error, attempts, age, payload, attempt history), replay and
discard with a reason, one at a time or in bulk; audited; a stale page is refused."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from outbox.models import DeadLetterStatus, OutboxStatus
from reservations.models import SupplierStatus
from tests.backoffice.conftest import make_dead_letter, make_on_request

pytestmark = pytest.mark.django_db

LIST = reverse("admin:outbox_deadletter_changelist")


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_list_shows_error_attempts_and_age(member_client, on_request):
    page = member_client.get(LIST).text

    assert on_request.code in page
    assert "HTTP 503 from supplier" in page
    assert '<td class="field-attempts">5</td>' in page
    assert "field-age_display" in page
    assert "minute" in page


def test_detail_shows_payload_and_attempt_history(member_client, on_request):
    dead_letter = on_request.dead_letters.get()

    page = member_client.get(reverse("admin:outbox_deadletter_change", args=[dead_letter.pk])).text

    assert str(on_request.pk) in page  # the payload
    assert page.count("HTTP 503 from supplier</td>") == 5  # one history row per attempt
    assert reverse("admin:outbox_deadletter_replay", args=[dead_letter.pk]) in page
    assert reverse("admin:outbox_deadletter_discard", args=[dead_letter.pk]) in page


def test_replay_one_rearms_its_event_and_is_audited(member_client, on_request):
    dead_letter = on_request.dead_letters.get()
    url = reverse("admin:outbox_deadletter_replay", args=[dead_letter.pk])
    assert f'name="version" value="{dead_letter.version}"' in member_client.get(url).text

    response = member_client.post(url, {"version": dead_letter.version}, follow=True)

    assert any("replayed" in m for m in messages_of(response))
    dead_letter.refresh_from_db()
    assert (dead_letter.status, dead_letter.resolved_by) == (DeadLetterStatus.REPLAYED, "staff:alice")
    dead_letter.event.refresh_from_db()
    assert (dead_letter.event.status, dead_letter.event.attempts) == (OutboxStatus.PENDING, 0)
    on_request.refresh_from_db()
    assert on_request.supplier_status == SupplierStatus.PENDING
    assert on_request.events.order_by("-id").first().actor == "staff:alice"
    assert LogEntry.objects.filter(object_id=str(dead_letter.pk), change_message="Replayed").exists()


def test_discard_one_needs_a_reason_and_records_it(member_client, on_request):
    dead_letter = on_request.dead_letters.get()
    url = reverse("admin:outbox_deadletter_discard", args=[dead_letter.pk])

    missing = member_client.post(url, {"version": dead_letter.version, "reason": " "})
    assert "This field is required." in missing.text
    dead_letter.refresh_from_db()
    assert dead_letter.status == DeadLetterStatus.OPEN

    member_client.post(url, {"version": dead_letter.version, "reason": "booked by phone, see ticket 42"})

    dead_letter.refresh_from_db()
    assert (dead_letter.status, dead_letter.resolved_by, dead_letter.reason) == (
        DeadLetterStatus.DISCARDED, "staff:alice", "booked by phone, see ticket 42")
    dead_letter.event.refresh_from_db()
    assert dead_letter.event.status == OutboxStatus.DISCARDED
    assert "booked by phone, see ticket 42" in on_request.events.order_by("-id").first().reason


def test_replay_from_a_stale_page_is_refused_and_changes_nothing(member_client, on_request):
    dead_letter = on_request.dead_letters.get()
    rendered_version = dead_letter.version
    from outbox.services import dead_letter_discard

    dead_letter_discard(dead_letter=dead_letter, actor="staff:bob", reason="handled by Bob")

    response = member_client.post(reverse("admin:outbox_deadletter_replay", args=[dead_letter.pk]),
                                  {"version": rendered_version}, follow=True)

    assert "changed since you opened the page" in messages_of(response)[0]
    dead_letter.refresh_from_db()
    assert (dead_letter.status, dead_letter.resolved_by) == (DeadLetterStatus.DISCARDED, "staff:bob")
    dead_letter.event.refresh_from_db()
    assert dead_letter.event.status == OutboxStatus.DISCARDED


def test_bulk_replay(member_client, product):
    letters = [make_on_request(product=product).dead_letters.get() for _ in range(2)]
    already = make_dead_letter()
    already.status = DeadLetterStatus.DISCARDED
    already.save(update_fields=["status"])

    response = member_client.post(LIST, {"action": "replay_selected",
                                         "_selected_action": [d.pk for d in [*letters, already]]}, follow=True)

    assert "2 dead letter(s) replayed." in messages_of(response)
    assert "1 dead letter(s) skipped: not OPEN any more." in messages_of(response)
    for dead_letter in letters:
        dead_letter.refresh_from_db()
        assert dead_letter.status == DeadLetterStatus.REPLAYED


def test_bulk_discard_asks_for_a_reason_first(member_client):
    letters = [make_dead_letter(), make_dead_letter()]
    selected = {"action": "discard_selected", "_selected_action": [d.pk for d in letters]}

    form = member_client.post(LIST, selected)
    assert form.status_code == 200
    assert "Discard these dead letters?" in form.text
    assert all(d.status == DeadLetterStatus.OPEN for d in [type(x).objects.get(pk=x.pk) for x in letters])

    response = member_client.post(LIST, {**selected, "_apply": "1", "reason": "Slack channel retired"}, follow=True)

    assert "2 dead letter(s) discarded." in messages_of(response)
    for dead_letter in letters:
        dead_letter.refresh_from_db()
        assert (dead_letter.status, dead_letter.reason, dead_letter.resolved_by) == (
            DeadLetterStatus.DISCARDED, "Slack channel retired", "staff:alice")


def test_outbox_events_are_read_only(member_client, on_request):
    event = on_request.outbox_events.get()
    url = reverse("admin:outbox_outboxevent_change", args=[event.pk])

    page = member_client.get(url).text
    assert "supplier.book" in page
    assert 'name="_save"' not in page
    assert member_client.post(url, {"status": "DELIVERED"}).status_code == 403
    event.refresh_from_db()
    assert event.status == OutboxStatus.DEAD
