"""Run inside `manage.py shell` on a SQLite database (tests/reservations/test_reservation_body_sqlite.py):
the list's bodies, read as SQLite's text (char(32) ids, datetimes stored as text, with and
without a fraction), against the serializers'; and the rows common.compiled.insert_row writes
against the ORM's. Prints one JSON line: what differs."""

import datetime as dt
import json

from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from common.compiled import insert_row
from outbox.models import OutboxEvent
from payments.models import PaymentStatus
from reservations.api.serializers import LISTED_BODIES, ReservationOutputSerializer
from reservations.models import Reservation, ReservationEvent
from reservations.selectors import reservation_list_for_user
from tests.factories import ReservationFactory
from tests.payments.factories import PaymentFactory

whole_second = timezone.now().replace(microsecond=0)
customer = ReservationFactory(expires_at=whole_second).user
ReservationFactory(user=customer, expires_at=None)
paid = ReservationFactory(user=customer, expires_at=whole_second + dt.timedelta(microseconds=120))
PaymentFactory(reservation=paid, status=PaymentStatus.FAILED)
PaymentFactory(reservation=paid, status=PaymentStatus.REQUIRES_ACTION, client_secret="pi_secret_x",
               next_action={"type": "redirect_to_url", "redirect_to_url": {"url": "https://bank.test/3ds"}})

differ = []
for zone in ("UTC", "America/St_Johns"):
    with timezone.override(zone):
        for body in reservation_list_for_user(user=customer, pages=LISTED_BODIES)[0:20]:
            expected = ReservationOutputSerializer(Reservation.objects.get(pk=body["id"])).data
            if JSONRenderer().render(body) != JSONRenderer().render(expected):
                differ.append([zone, body, expected])

def stored(model, pk):
    return {k: v for k, v in model.objects.filter(pk=pk).values().get().items() if k not in ("id", "created_at")}


inserts_differ = []
timeline = {"reservation": paid, "actor": "a", "reason": "ñ", "data": {"n": [1, None]}}
ours, theirs = insert_row(ReservationEvent(**timeline)), ReservationEvent.objects.create(**timeline)
if not (isinstance(ours.pk, int) and stored(ReservationEvent, ours.pk) == stored(ReservationEvent, theirs.pk)):
    inserts_differ.append(["timeline", ours.pk, theirs.pk])
event = {"topic": "t", "payload": {"a": 1}, "reservation": paid, "available_at": whole_second}
ours = insert_row(OutboxEvent(dedup_key="ours", **event))
theirs = OutboxEvent.objects.create(dedup_key="theirs", **event)
if {**stored(OutboxEvent, ours.pk), "dedup_key": ""} != {**stored(OutboxEvent, theirs.pk), "dedup_key": ""}:
    inserts_differ.append(["outbox", str(ours.pk), str(theirs.pk)])
print(json.dumps({"listed": 3, "differ": differ, "inserts_differ": inserts_differ}, default=str))
