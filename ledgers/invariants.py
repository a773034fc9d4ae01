"""The promises the system keeps whatever fails (G5), checked over our database, Stripe's
ledger and the supplier's ledger — after a chaos run (`make chaos`), or on any live system
(`manage.py check_invariants`).

Each invariant is one function from a `Snapshot` to the violations it finds; `INVARIANTS`
lists them with the sentence they check. The checker only reads."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q, Sum
from django.utils import timezone

from ledgers.models import Discrepancy, DiscrepancyStatus
from outbox.models import DeadLetter, OutboxEvent, OutboxStatus
from payments import gateway
from payments.models import Payment, Refund, RefundMethod
from payments.state import CAPTURED
from reservations.models import DailyInventory, Reservation, ReservationEvent, ReservationStatus, SupplierStatus
from reservations.state import HOLDING, can_transition
from suppliers.clients import SupplierBooking
from suppliers.models import Product

S = ReservationStatus
BOOKED = frozenset({S.PAID, S.CONFIRMED, S.CONFIRMED_INTERNAL})
ENDED = frozenset({S.CANCELLED, S.EXPIRED})
STRIPE_REFUNDED = frozenset({"pending", "requires_action", "succeeded"})
# A PENDING outbox event this long past its due time is stuck: a drain polls every second.
STUCK_AFTER = dt.timedelta(seconds=120)

# Every status each endpoint may answer (api.md); a 500 is never documented.
DOCUMENTED_STATUSES: dict[str, frozenset[int]] = {
    "reservation.create": frozenset({201, 400, 401, 409, 429, 503}),
    "reservation.get": frozenset({200, 401, 404, 429, 503}),
    "reservation.events": frozenset({200, 401, 404, 429, 503}),
    "reservation.pay": frozenset({200, 202, 400, 401, 402, 404, 409, 429, 503}),
    "reservation.cancel": frozenset({200, 202, 400, 401, 404, 409, 429, 503}),
    "webhook": frozenset({200, 400, 503}),
}


@dataclass(frozen=True)
class Violation:
    invariant: str
    subject: str
    detail: str


@dataclass(frozen=True)
class HttpAnswer:
    """One answer a client got (recorded by the chaos load driver)."""

    endpoint: str  # a key of DOCUMENTED_STATUSES
    status: int
    content_type: str = ""
    code: str = ""
    traceback: bool = False  # the body carried a Python traceback


@dataclass
class Snapshot:
    """What the checker reads besides our database."""

    stripe_intents: list[gateway.LedgerIntent]
    stripe_refunds: list[gateway.LedgerRefund]
    supplier_bookings: list[SupplierBooking]
    http_answers: list[HttpAnswer] | None = None  # None: not recorded, not checked
    now: dt.datetime = field(default_factory=timezone.now)

    # --- derived, once ------------------------------------------------------------------------

    def refunded_at_stripe(self) -> dict[str, int]:
        refunded: dict[str, int] = defaultdict(int)
        for refund in self.stripe_refunds:
            if refund.status in STRIPE_REFUNDED:
                refunded[refund.payment_intent_id] += refund.amount
        return refunded

    def net_by_reservation(self) -> dict[str, list[tuple[gateway.LedgerIntent, int]]]:
        """reservation id (Stripe metadata) → [(succeeded intent, money it still holds)]."""
        refunded = self.refunded_at_stripe()
        held: dict[str, list[tuple[gateway.LedgerIntent, int]]] = defaultdict(list)
        for intent in self.stripe_intents:
            if intent.status == "succeeded" and intent.amount_received:
                held[intent.metadata.get("reservation_id", "")].append(
                    (intent, max(intent.amount_received - refunded.get(intent.id, 0), 0)))
        return held


def _reservations(ids: Iterable[str]) -> dict[str, Reservation]:
    """Our reservations among `ids` (Stripe metadata: anything that is not a UUID is not ours)."""
    valid = []
    for value in ids:
        try:
            valid.append(uuid.UUID(value))
        except ValueError:
            continue
    return {str(r.pk): r for r in Reservation.objects.filter(pk__in=valid)}


# --- money ---------------------------------------------------------------------------------

def charges_belong_to_booked_reservations(snapshot: Snapshot) -> Iterable[Violation]:
    name = "charge_belongs_to_one_booked_reservation"
    held = snapshot.net_by_reservation()
    reservations = _reservations(held)
    intents = [intent for pairs in held.values() for intent, _ in pairs]
    payments = {p.stripe_payment_intent_id: p for p in Payment.objects.filter(
        stripe_payment_intent_id__in=[i.id for i in intents])}
    for reservation_id, pairs in held.items():
        reservation = reservations.get(reservation_id)
        for intent, net in pairs:
            payment = payments.get(intent.id)
            if reservation is None:
                yield Violation(name, f"pi:{intent.id}", f"charge for an unknown reservation {reservation_id!r}")
            elif payment is None or payment.reservation_id != reservation.pk or payment.status not in CAPTURED:
                yield Violation(name, f"pi:{intent.id}", f"charge of {intent.amount_received} not recorded as this "
                                f"reservation's payment (ours: {payment.status if payment else 'none'})")
            elif net and reservation.status not in BOOKED:
                yield Violation(name, f"pi:{intent.id}", f"{reservation.code} is {reservation.status} and still "
                                                         f"holds {net} of this charge")


def no_reservation_charged_twice(snapshot: Snapshot) -> Iterable[Violation]:
    reservations = _reservations(snapshot.net_by_reservation())
    for reservation_id, pairs in snapshot.net_by_reservation().items():
        reservation = reservations.get(reservation_id)
        held = sum(net for _, net in pairs)
        if reservation is not None and held > reservation.amount:
            yield Violation("no_double_charge", f"reservation:{reservation_id}",
                            f"{reservation.code} costs {reservation.amount} and holds {held} over "
                            f"{sum(1 for _, net in pairs if net)} charges")


def ended_reservations_hold_no_money(snapshot: Snapshot) -> Iterable[Violation]:
    held = snapshot.net_by_reservation()
    for reservation_id, reservation in _reservations(held).items():
        money = sum(net for _, net in held[reservation_id])
        if reservation.status in ENDED and money:
            yield Violation("ended_holds_no_money", f"reservation:{reservation_id}",
                            f"{reservation.code} is {reservation.status} and holds {money}")


# --- supplier ------------------------------------------------------------------------------

def supplier_bookings_match(snapshot: Snapshot) -> Iterable[Violation]:
    name = "supplier_bookings_match"
    live: dict[str, list[SupplierBooking]] = defaultdict(list)
    for booking in snapshot.supplier_bookings:
        if booking.live:
            live[booking.reference].append(booking)
    by_code = {r.code: r for r in Reservation.objects.filter(code__in=list(live))}
    for code, bookings in live.items():
        reservation = by_code.get(code)
        ids = ", ".join(b.booking_id for b in bookings)
        if reservation is None:
            yield Violation(name, f"booking:{ids}", f"orphan: no reservation {code}")
        elif reservation.status not in (S.CONFIRMED, S.CONFIRMED_INTERNAL):
            yield Violation(name, f"booking:{ids}", f"orphan: {code} is {reservation.status}")
        elif len(bookings) > 1:
            yield Violation(name, f"booking:{ids}", f"duplicate: {len(bookings)} live bookings for {code}")
        elif reservation.supplier_booking_id and reservation.supplier_booking_id != bookings[0].booking_id:
            yield Violation(name, f"booking:{ids}", f"{code} records booking {reservation.supplier_booking_id}")
    held = {b.booking_id for bookings in live.values() for b in bookings}
    for reservation in Reservation.objects.filter(status=S.CONFIRMED, supplier_status=SupplierStatus.CONFIRMED) \
            .exclude(supplier_booking_id=""):
        if reservation.supplier_booking_id not in held:
            yield Violation(name, f"reservation:{reservation.pk}",
                            f"{reservation.code} is confirmed with booking {reservation.supplier_booking_id}, "
                            "which the supplier does not hold")


def paid_reservations_reached_supplier_terminal(snapshot: Snapshot) -> Iterable[Violation]:
    """Paid once (a transition to PAID on the timeline): booked, in the staff queue, cancelled with
    nothing left at the supplier, or given up into a dead letter."""
    paid = ReservationEvent.objects.filter(to_status=S.PAID).exclude(from_status=S.PAID).values("reservation_id")
    unfinished = set(OutboxEvent.objects.filter(topic__startswith="supplier.", status__in=[
        OutboxStatus.PENDING, OutboxStatus.IN_FLIGHT]).values_list("reservation_id", flat=True))
    dead = set(DeadLetter.objects.filter(topic__startswith="supplier.").values_list("reservation_id", flat=True))
    for reservation in Reservation.objects.filter(pk__in=paid):
        pair = (reservation.status, reservation.supplier_status)
        terminal = (pair in {(S.CONFIRMED, SupplierStatus.CONFIRMED), (S.CONFIRMED_INTERNAL, SupplierStatus.ON_REQUEST)}
                    or (reservation.status == S.CANCELLED
                        and reservation.supplier_status not in (SupplierStatus.CONFIRMED, SupplierStatus.ON_REQUEST)))
        if reservation.pk in dead:
            continue
        if not terminal or reservation.pk in unfinished:
            yield Violation("paid_reached_supplier_terminal", f"reservation:{reservation.pk}",
                            f"{reservation.code} is {reservation.status} / supplier {reservation.supplier_status}"
                            f"{' with supplier events still pending' if reservation.pk in unfinished else ''}")


# --- capacity, outbox, timeline --------------------------------------------------------------

def capacity_respected(snapshot: Snapshot) -> Iterable[Violation]:
    name = "capacity_respected"
    held = (Reservation.objects.filter(status__in=HOLDING, holds_capacity=True, product__daily_capacity__isnull=False)
            .values("product_id", "date").annotate(places=Sum("quantity")))
    capacity = dict(Product.objects.filter(daily_capacity__isnull=False).values_list("pk", "daily_capacity"))
    counted = {(row["product_id"], row["date"]): row["places"] for row in held}
    for (product_id, date), places in counted.items():
        if places > capacity[product_id]:
            yield Violation(name, f"product:{product_id}:{date}",
                            f"{places} places held, capacity {capacity[product_id]}")
    for row in DailyInventory.objects.filter(product_id__in=list(capacity)):
        expected = counted.get((row.product_id, row.date), 0)
        if row.reserved != expected:
            yield Violation(name, f"product:{row.product_id}:{row.date}",
                            f"inventory says {row.reserved} reserved, reservations hold {expected}")


def outbox_settled(snapshot: Snapshot) -> Iterable[Violation]:
    name = "outbox_not_lost_or_stuck"
    now = snapshot.now
    for event in OutboxEvent.objects.filter(
            Q(status=OutboxStatus.IN_FLIGHT, locked_until__lt=now)
            | Q(status=OutboxStatus.PENDING, available_at__lt=now - STUCK_AFTER)):
        past = "lease" if event.status == OutboxStatus.IN_FLIGHT else "due time"
        yield Violation(name, f"event:{event.pk}", f"{event.topic} {event.status} past its {past}")
    letters = set(DeadLetter.objects.values_list("event_id", flat=True))
    for event in OutboxEvent.objects.filter(status=OutboxStatus.DEAD).exclude(pk__in=letters):
        yield Violation(name, f"event:{event.pk}", f"{event.topic} DEAD without a dead letter")
    keys = set(OutboxEvent.objects.filter(Q(topic="supplier.book") | Q(topic="payment.refund"))
               .values_list("dedup_key", flat=True))
    paid = ReservationEvent.objects.filter(to_status=S.PAID).exclude(from_status=S.PAID).values_list(
        "reservation_id", flat=True)
    for reservation_id in set(paid):
        if f"supplier.book:{reservation_id}" not in keys:
            yield Violation(name, f"reservation:{reservation_id}", "paid, but no supplier.book event was written")
    for refund_id in Refund.objects.filter(method=RefundMethod.STRIPE).values_list("pk", flat=True):
        if f"payment.refund:{refund_id}" not in keys:
            yield Violation(name, f"refund:{refund_id}", "decided, but no payment.refund event was written")


def timeline_legal(snapshot: Snapshot) -> Iterable[Violation]:
    name = "timeline_legal"
    current: dict[Any, str] = {}
    for event in ReservationEvent.objects.order_by("reservation_id", "created_at", "id").iterator(chunk_size=2000):
        rid = event.reservation_id
        if rid not in current:
            if event.from_status or event.to_status != S.PENDING_PAYMENT:
                yield Violation(name, f"reservation:{rid}", f"starts {event.from_status or '-'} → {event.to_status}")
            current[rid] = event.to_status
            continue
        if event.from_status != current[rid]:
            yield Violation(name, f"reservation:{rid}",
                            f"entry {event.pk} starts from {event.from_status}, the reservation was {current[rid]}")
        if event.from_status != event.to_status:
            if not can_transition(event.from_status, event.to_status):
                yield Violation(name, f"reservation:{rid}", f"illegal {event.from_status} → {event.to_status}")
            current[rid] = event.to_status
    statuses = dict(Reservation.objects.values_list("pk", "status"))
    for rid, status in current.items():
        if statuses.get(rid) != status:
            yield Violation(name, f"reservation:{rid}",
                            f"timeline ends {status}, the reservation is {statuses.get(rid)}")


def http_answers_documented(snapshot: Snapshot) -> Iterable[Violation]:
    name = "http_answers_documented"
    for answer in snapshot.http_answers or []:
        allowed = DOCUMENTED_STATUSES.get(answer.endpoint, frozenset())
        problem = answer.status < 400 or answer.content_type.startswith("application/problem+json")
        if answer.status not in allowed or answer.traceback or not problem:
            trace = " with a traceback" if answer.traceback else ""
            yield Violation(name, answer.endpoint, f"{answer.status} {answer.code or ''} {answer.content_type}{trace}")


def ledgers_reconciled(snapshot: Snapshot) -> Iterable[Violation]:
    for row in Discrepancy.objects.filter(status=DiscrepancyStatus.OPEN):
        yield Violation("no_open_discrepancy", f"{row.kind}:{row.subject}", row.summary)


INVARIANTS: tuple[tuple[str, str, Callable[[Snapshot], Iterable[Violation]]], ...] = (
    ("charge_belongs_to_one_booked_reservation",
     "every succeeded charge belongs to exactly one reservation, booked or refunded in full",
     charges_belong_to_booked_reservations),
    ("no_double_charge", "no reservation charged twice net", no_reservation_charged_twice),
    ("ended_holds_no_money", "no CANCELLED or EXPIRED reservation holds money", ended_reservations_hold_no_money),
    ("supplier_bookings_match", "every live supplier booking matches a confirmed reservation (no duplicate, "
                                "no orphan)", supplier_bookings_match),
    ("capacity_respected", "no product/date over capacity", capacity_respected),
    ("paid_reached_supplier_terminal", "every paid reservation reached a terminal supplier state or a dead letter",
     paid_reservations_reached_supplier_terminal),
    ("outbox_not_lost_or_stuck", "no outbox event lost or stuck past its lease", outbox_settled),
    ("http_answers_documented", "every HTTP answer a documented status, no traceback", http_answers_documented),
    ("timeline_legal", "every timeline transition legal (reservations/state.py)", timeline_legal),
    ("no_open_discrepancy", "three-way reconciliation left no discrepancy open", ledgers_reconciled),
)


def invariants_check(snapshot: Snapshot) -> dict[str, list[Violation]]:
    """Every invariant's violations, by name (an empty list: it holds)."""
    return {name: list(check(snapshot)) for name, _, check in INVARIANTS}

