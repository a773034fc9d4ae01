"""Back-office demo data (D1-D5), made through the services, safe to run repeatedly:

- the staff user `staff` / `staff-demo-pass` in the "Reservations staff" group (no superuser);
- a reservation created, paid (a real PaymentIntent in the local Stripe server) and booked with a
  supplier that never answers: its attempts are driven at once instead of waiting out the
  backoff, so it ends as production would after them — CONFIRMED_INTERNAL / ON_REQUEST, with its
  supplier request audit, its timeline and its supplier.book event in the dead-letter queue.

Run it while `make run` is up (it needs the local Stripe server); "Cancel and refund" then
works end to end. Without a reachable Stripe it creates only the staff user and says so."""

from __future__ import annotations

import datetime as dt
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.utils import timezone

from backoffice.staff_group import GROUP_NAME as STAFF_GROUP_NAME
from common.checks import refuse_demo_data
from common.exceptions import ApplicationError
from outbox.models import OutboxEvent, OutboxStatus
from outbox.tasks import outbox_deliver_event
from payments.services import reservation_pay
from reservations.models import Reservation
from reservations.services import reservation_create
from suppliers import services as catalog
from suppliers.booking import supplier_book_dedup_key
from suppliers.models import Product, Supplier

STAFF_USERNAME = "staff"
STAFF_PASSWORD = "staff-demo-pass"  # noqa: S105 - demo credentials, documented in the README
DEMO_GUEST_EMAIL = "grace.hopper@example.test"
ACTOR = "command:seed_backoffice_demo"
OFFLINE_SUPPLIER_URL = "http://127.0.0.1:9"  # nothing listens on the discard port: refused at once


class Command(BaseCommand):
    help = ("Create the back-office demo through the services: a staff user in the Reservations staff group and an "
            "ON_REQUEST reservation with its dead letter (idempotent; needs the local Stripe server).")

    def handle(self, *args, **options) -> None:
        refuse_demo_data()
        staff = self._staff_user()
        self.stdout.write(f"back office: log in at /admin/ as {staff.username} / {STAFF_PASSWORD}")
        product = self._product()
        reservation = Reservation.objects.filter(guest_email=DEMO_GUEST_EMAIL, product=product).first()
        if reservation is None:
            reservation = self._on_request_reservation(product=product, customer=self._customer())
        if reservation is not None:
            self.stdout.write(f"ON_REQUEST reservation: {reservation.code} ({reservation.status}, "
                              f"supplier {reservation.supplier_status})")

    def _staff_user(self):
        user, created = get_user_model().objects.get_or_create(
            username=STAFF_USERNAME, defaults={"email": "staff@example.test", "is_staff": True})
        if created:
            user.set_password(STAFF_PASSWORD)
            user.save(update_fields=["password"])
        user.groups.add(Group.objects.get(name=STAFF_GROUP_NAME))
        return user

    def _customer(self):
        user, created = get_user_model().objects.get_or_create(
            username="grace", defaults={"email": DEMO_GUEST_EMAIL})
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        return user

    def _product(self) -> Product:
        # A supplier that does not answer: why the booking ends ON_REQUEST. "Retry supplier
        # booking now" fails again against it; "Confirm manually" is the way out.
        supplier = Supplier.objects.filter(slug="harbour-boats").first() or catalog.supplier_create(
            slug="harbour-boats", name="Harbour Boats (offline demo supplier)", base_url=OFFLINE_SUPPLIER_URL,
            api_key="demo-offline-key", connect_timeout_seconds=1, timeout_seconds=2, actor=ACTOR)
        return Product.objects.filter(supplier=supplier, code="BOAT-DAWN").first() or catalog.product_create(
            supplier=supplier, code="BOAT-DAWN", name="Dawn boat tour", unit_amount=8900, currency="eur",
            daily_capacity=None, actor=ACTOR)

    def _on_request_reservation(self, *, product: Product, customer) -> Reservation | None:
        reservation = reservation_create(user=customer, product=product, quantity=2, guest_name="Grace Hopper",
                                         date=timezone.localdate() + dt.timedelta(days=3), guest_email=DEMO_GUEST_EMAIL)
        try:
            # Stripe's test PaymentMethod (a Visa card), known to Stripe in test mode and to localstripe.
            reservation_pay(reservation_id=reservation.id, payment_method="pm_card_visa",
                            attempt_key=f"seed-backoffice:{reservation.id}")
        except ApplicationError as exc:
            self.stderr.write(f"Stripe not reachable ({exc.detail}): no ON_REQUEST demo reservation. Run this while "
                              "`make run` is up.")
            return None
        self._drive_booking_to_its_end(reservation)
        reservation.refresh_from_db()
        return reservation

    def _drive_booking_to_its_end(self, reservation: Reservation) -> None:
        """Every attempt the outbox would make over the next minutes, now: each is due at once
        (the backoff skipped) until the event is dead, as production would leave it."""
        event_id = OutboxEvent.objects.values_list("pk", flat=True).get(
            dedup_key=supplier_book_dedup_key(reservation.id))
        deadline = time.monotonic() + 60 + settings.OUTBOX_LEASE_SECONDS
        while time.monotonic() < deadline:
            status = OutboxEvent.objects.values_list("status", flat=True).get(pk=event_id)
            if status in (OutboxStatus.DEAD, OutboxStatus.DELIVERED):
                return
            OutboxEvent.objects.filter(pk=event_id, status=OutboxStatus.PENDING).update(available_at=timezone.now())
            if outbox_deliver_event(str(event_id)) == "not claimable":
                time.sleep(0.2)  # a running worker holds it now
