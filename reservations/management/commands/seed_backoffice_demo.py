"""Back-office demo data (D1-D5), safe to run repeatedly:

- the staff user `staff` / `staff-demo-pass` in the "Reservations staff" group (no superuser);
- a paid ON_REQUEST reservation (CONFIRMED_INTERNAL) with its failed supplier request audit,
  its timeline and its supplier.book event in the dead-letter queue;
- a dead Slack alert in the dead-letter queue.

Run it while `make run` is up: the payment is then a real PaymentIntent in the local Stripe
server, so "Cancel and refund" works end to end. Without a reachable Stripe, the payment is
recorded with a placeholder intent id (inspect only; refunding it would fail)."""

from __future__ import annotations

import datetime as dt
import uuid

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from common.checks import refuse_demo_data
from outbox.models import DeadLetter, OutboxEvent, OutboxStatus
from payments.models import Payment, PaymentStatus
from reservations.models import Reservation, ReservationStatus, SupplierStatus
from reservations.services import reservation_amount, reservation_record_event, reservation_transition
from reservations.staff_group import GROUP_NAME as STAFF_GROUP_NAME
from suppliers.models import Product, Supplier, SupplierRequest

STAFF_USERNAME = "staff"
STAFF_PASSWORD = "staff-demo-pass"  # noqa: S105 - demo credentials, documented in the README
DEMO_GUEST_EMAIL = "grace.hopper@example.test"
SUPPLIER_ERROR = "HTTPConnectionPool: connect timeout (supplier unreachable)"


class Command(BaseCommand):
    help = "Create the back-office demo: staff user in the Reservations staff group, an ON_REQUEST reservation, " \
           "dead letters (idempotent)."

    def handle(self, *args, **options) -> None:
        refuse_demo_data()
        staff = self._staff_user()
        product = self._product()
        reservation = Reservation.objects.filter(guest_email=DEMO_GUEST_EMAIL, product=product).first()
        if reservation is None:
            reservation = self._on_request_reservation(product=product, customer=self._customer())
        self._slack_dead_letter()
        self.stdout.write(f"back office: log in at /admin/ as {staff.username} / {STAFF_PASSWORD}")
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
        # A supplier that does not answer: why the booking ended ON_REQUEST. "Retry supplier
        # booking now" fails again against it; "Confirm manually" is the way out.
        supplier, _ = Supplier.objects.get_or_create(
            slug="harbour-boats", defaults={"name": "Harbour Boats (offline demo supplier)",
                                            "base_url": "http://127.0.0.1:9", "api_key": "demo-offline-key",
                                            "connect_timeout_seconds": 1, "timeout_seconds": 2})
        product, _ = Product.objects.get_or_create(
            supplier=supplier, code="BOAT-DAWN", defaults={"name": "Dawn boat tour", "unit_amount": 8900,
                                                           "currency": "eur", "daily_capacity": None})
        return product

    def _charge(self, *, reservation: Reservation) -> tuple[str, str]:
        """A real PaymentIntent in the configured Stripe (the local one under `make run`)."""
        from payments import gateway

        try:
            # Stripe's test PaymentMethod (a Visa card), known to Stripe in test mode and to localstripe.
            intent = gateway.payment_intent_create(
                amount=reservation.amount, currency=reservation.currency, payment_method="pm_card_visa",
                metadata={"reservation_id": str(reservation.id)}, idempotency_key=f"seed-backoffice:{reservation.id}")
        except gateway.GatewayError as exc:
            self.stderr.write(f"Stripe not reachable ({type(exc).__name__}): the demo payment uses a placeholder "
                              "intent, so cancel and refund cannot work for it. Run this while `make run` is up.")
            return f"pi_demo_{uuid.uuid4().hex[:16]}", ""
        return intent.id, intent.latest_charge_id or ""

    def _on_request_reservation(self, *, product: Product, customer) -> Reservation:
        reservation = Reservation.objects.create(
            user=customer, product=product, date=timezone.localdate() + dt.timedelta(days=3), quantity=2,
            amount=reservation_amount(product=product, quantity=2), currency=product.currency,
            guest_name="Grace Hopper", guest_email=DEMO_GUEST_EMAIL, expires_at=timezone.now())
        intent_id, charge_id = self._charge(reservation=reservation)
        now = timezone.now()
        with transaction.atomic():
            reservation_record_event(reservation=reservation, to_status=reservation.status, actor="customer",
                                     reason="created", data={"quantity": 2, "amount": reservation.amount})
            Payment.objects.create(reservation=reservation, amount=reservation.amount, currency=reservation.currency,
                                   status=PaymentStatus.SUCCEEDED, stripe_payment_intent_id=intent_id,
                                   stripe_charge_id=charge_id)
            reservation_transition(reservation=reservation, to_status=ReservationStatus.PAID, actor="stripe",
                                   reason="payment succeeded", fields={"supplier_status": SupplierStatus.PENDING,
                                                                       "expires_at": None})
            errors = [{"attempt": n, "at": (now - dt.timedelta(minutes=6 - n)).isoformat(), "error": SUPPLIER_ERROR}
                      for n in range(1, 6)]
            # The PAID transition queued the booking (suppliers' hook); it died against the offline supplier.
            OutboxEvent.objects.filter(dedup_key=f"supplier.book:{reservation.id}").update(
                status=OutboxStatus.DEAD, attempts=5, available_at=now, last_error=SUPPLIER_ERROR, errors=errors)
            event = OutboxEvent.objects.get(dedup_key=f"supplier.book:{reservation.id}")
            for entry in errors:
                SupplierRequest.objects.create(
                    reservation=reservation, supplier=product.supplier, outbox_event_id=event.id, operation="book",
                    attempt=entry["attempt"], idempotency_key=f"reservation:{reservation.id}:book",
                    request_payload={"reference": reservation.code, "product_code": product.code,
                                     "date": reservation.date.isoformat(), "quantity": 2,
                                     "guest_name": reservation.guest_name},
                    response_payload=None, http_status=None, outcome="retryable", error_code="connect_timeout",
                    duration_ms=1000)
            DeadLetter.objects.create(event=event, topic=event.topic, reservation=reservation, payload=event.payload,
                                      error_history=errors, last_error=SUPPLIER_ERROR, attempts=5)
            reservation_transition(reservation=reservation, to_status=ReservationStatus.CONFIRMED_INTERNAL,
                                   actor="system", reason=f"supplier booking failed: {SUPPLIER_ERROR}",
                                   data={"event_id": str(event.id)},
                                   fields={"supplier_status": SupplierStatus.ON_REQUEST})
        return reservation

    def _slack_dead_letter(self) -> None:
        dedup_key = "alert.slack:backoffice-demo"
        if OutboxEvent.objects.filter(dedup_key=dedup_key).exists():
            return
        error = "ReadTimeout: hooks.slack.com (read timeout=5)"
        with transaction.atomic():
            event = OutboxEvent.objects.create(
                topic="alert.slack", dedup_key=dedup_key, status=OutboxStatus.DEAD, attempts=5,
                payload={"subject": "Supplier booking needs staff: ON_REQUEST", "body": "demo alert"},
                available_at=timezone.now(), last_error=error,
                errors=[{"attempt": n, "at": timezone.now().isoformat(), "error": error} for n in range(1, 6)])
            DeadLetter.objects.create(event=event, topic=event.topic, payload=event.payload,
                                      error_history=event.errors, last_error=error, attempts=5)
