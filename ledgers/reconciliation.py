"""Three-way reconciliation (H1): what Stripe's ledger, ours and the suppliers' say about one
time window, compared. Reads only; `ledgers.services` records what is found.

- Stripe ↔ ours: every PaymentIntent created in the window that carries our metadata, and
  every payment of ours created in it. Money Stripe captured that we do not hold as paid is
  *charged-not-recorded*; a payment we hold as paid that Stripe did not capture is
  *recorded-not-charged*; differing amounts are *amount-mismatch*; refunds (pending or
  succeeded) that add up differently on the two sides are *refund-mismatch*.
- Suppliers ↔ ours: every reservation created in the window that the supplier may have booked,
  asked by reference (`GET /bookings?reference=`). A live booking for a reservation we do not
  hold as booked, a second live booking, or one whose id is not ours is *booked-not-recorded*;
  a booking we hold as confirmed that the supplier does not is *recorded-not-booked*.

Anything touched after `until` is too recent to judge (a refund on its way, a booking being
applied): it is left out, neither reported nor closed. A section whose ledger could not be read
completely is marked incomplete, so that nothing it did not see is closed."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from ledgers.models import DiscrepancyKind as K
from payments import gateway
from payments.models import Payment, Refund, RefundMethod, RefundStatus
from payments.state import CAPTURED
from reservations.models import Reservation, ReservationStatus, SupplierStatus
from suppliers.clients import LookupOutcome, SupplierBooking, supplier_adapter_for
from suppliers.models import Supplier

logger = logging.getLogger("reserve.ledgers")

# Stripe refund statuses that move (or moved) money back, and ours.
STRIPE_REFUND_COUNTED = frozenset({"pending", "requires_action", "succeeded"})
OUR_REFUND_COUNTED = frozenset({RefundStatus.PENDING, RefundStatus.SUCCEEDED})
# Reservations that should hold a supplier booking (or are about to).
HOLDS_BOOKING = frozenset({ReservationStatus.PAID, ReservationStatus.CONFIRMED, ReservationStatus.CONFIRMED_INTERNAL})
STRIPE_KINDS = (K.CHARGED_NOT_RECORDED, K.RECORDED_NOT_CHARGED, K.AMOUNT_MISMATCH, K.REFUND_MISMATCH)
SUPPLIER_KINDS = (K.BOOKED_NOT_RECORDED, K.RECORDED_NOT_BOOKED)


@dataclass(frozen=True)
class Finding:
    kind: str
    subject: str
    summary: str
    subject_created_at: dt.datetime
    details: dict[str, Any] = field(default_factory=dict)
    reservation_id: Any = None
    payment_id: Any = None


@dataclass
class Comparison:
    since: dt.datetime
    until: dt.datetime
    findings: list[Finding] = field(default_factory=list)
    stripe_complete: bool = False
    supplier_complete: bool = False
    intents_checked: int = 0
    payments_checked: int = 0
    reservations_checked: int = 0
    notes: list[str] = field(default_factory=list)


def _ts(value: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(value, tz=dt.UTC)


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value or ""))
    except ValueError:
        return None


# --- Stripe ↔ ours --------------------------------------------------------------------------

def _payment_for(intent: gateway.LedgerIntent, by_intent: dict[str, Payment],
                 by_id: dict[Any, Payment]) -> Payment | None:
    return by_intent.get(intent.id) or by_id.get(_uuid(intent.metadata.get("payment_id")))


def _ours(intent: gateway.LedgerIntent) -> bool:
    """Ours when its metadata names one of our attempts or reservations (other integrations on
    the same account are not our business)."""
    return _uuid(intent.metadata.get("payment_id")) is not None or \
        _uuid(intent.metadata.get("reservation_id")) is not None


def _our_refunded(payment: Payment) -> tuple[int, list[Refund]]:
    """(what our Stripe refunds of `payment` add up to, those refunds)."""
    refunds = [r for r in payment.refunds.all() if r.method == RefundMethod.STRIPE]
    return sum(r.amount for r in refunds if r.status in OUR_REFUND_COUNTED), refunds


def _compare_intent(intent: gateway.LedgerIntent, payment: Payment | None, stripe_refunds: list[gateway.LedgerRefund],
                    until: dt.datetime) -> Iterable[Finding]:
    captured = intent.amount_received if intent.status == "succeeded" else 0
    created = _ts(intent.created)
    stripe_side = {"payment_intent": intent.id, "status": intent.status, "captured": captured,
                   "currency": intent.currency, "metadata": intent.metadata}
    base = {"subject": f"pi:{intent.id}", "subject_created_at": created,
            "reservation_id": payment.reservation_id if payment else _uuid(intent.metadata.get("reservation_id")),
            "payment_id": payment.pk if payment else None}
    if payment is not None and payment.updated_at >= until:
        return  # being applied right now
    if captured and (payment is None or payment.status not in CAPTURED):
        yield Finding(kind=K.CHARGED_NOT_RECORDED, details={"stripe": stripe_side, "ours": _payment_side(payment)},
                      summary=f"Stripe captured {captured} {intent.currency.upper()} on {intent.id}; we hold "
                              f"{'no payment for it' if payment is None else f'the payment as {payment.status}'}.",
                      **base)
        return
    if payment is None or not captured:
        return
    if captured != payment.amount:
        yield Finding(kind=K.AMOUNT_MISMATCH, details={"stripe": stripe_side, "ours": _payment_side(payment)},
                      summary=f"Stripe captured {captured} on {intent.id}; our payment is for {payment.amount}.",
                      **base)
    ours, our_refunds = _our_refunded(payment)
    recent = [r for r in our_refunds if r.updated_at >= until] + [r for r in stripe_refunds if _ts(r.created) >= until]
    if recent:
        return  # a refund on its way: judged by a later run
    theirs = sum(r.amount for r in stripe_refunds if r.status in STRIPE_REFUND_COUNTED)
    if theirs != ours:
        yield Finding(
            kind=K.REFUND_MISMATCH,
            details={"stripe": {**stripe_side, "refunds": [{"id": r.id, "status": r.status, "amount": r.amount}
                                                          for r in stripe_refunds], "refunded": theirs},
                     "ours": {**_payment_side(payment), "refunded": ours,
                              "refunds": [{"id": str(r.pk), "status": r.status, "amount": r.amount,
                                           "stripe_refund_id": r.stripe_refund_id} for r in our_refunds]}},
            summary=f"Stripe refunded {theirs} of {intent.id}; our refunds add up to {ours}.", **base)


def _payment_side(payment: Payment | None) -> dict[str, Any] | None:
    if payment is None:
        return None
    return {"payment_id": str(payment.pk), "status": payment.status, "amount": payment.amount,
            "refunded_amount": payment.refunded_amount, "reservation_id": str(payment.reservation_id)}


def _compare_payment(payment: Payment, intent_status: str | None) -> Iterable[Finding]:
    """One of our captured payments against what Stripe says of its intent (None: unknown)."""
    base = {"subject": f"payment:{payment.pk}", "subject_created_at": payment.created_at,
            "reservation_id": payment.reservation_id, "payment_id": payment.pk}
    if intent_status != "succeeded":
        yield Finding(kind=K.RECORDED_NOT_CHARGED,
                      summary=f"We hold payment {payment.pk} as {payment.status}; Stripe's intent "
                              f"{payment.stripe_payment_intent_id or '(none)'} is {intent_status or 'unknown to it'}.",
                      details={"ours": _payment_side(payment),
                               "stripe": {"payment_intent": payment.stripe_payment_intent_id, "status": intent_status}},
                      **base)
    if payment.amount != payment.reservation.amount:
        yield Finding(kind=K.AMOUNT_MISMATCH,
                      summary=f"Payment {payment.pk} is for {payment.amount}; its reservation costs "
                              f"{payment.reservation.amount}.",
                      details={"ours": _payment_side(payment), "reservation_amount": payment.reservation.amount},
                      **base)


def compare_stripe(comparison: Comparison) -> None:
    """Stripe ↔ ours for the comparison's window. Leaves `stripe_complete` False when Stripe
    could not be read (the error is noted); findings so far are kept."""
    since, until = comparison.since, comparison.until
    try:
        intents = gateway.payment_intents_list(created_gte=int(since.timestamp()), created_lt=int(until.timestamp()))
        refunds = gateway.refunds_list(created_gte=int(since.timestamp()))
    except gateway.GatewayError as exc:
        comparison.notes.append(f"Stripe could not be listed: {type(exc).__name__}: {exc}")
        return
    intents = [intent for intent in intents if _ours(intent)]
    refunds_by_intent: dict[str, list[gateway.LedgerRefund]] = defaultdict(list)
    for refund in refunds:
        refunds_by_intent[refund.payment_intent_id].append(refund)
    ids = [_uuid(intent.metadata.get("payment_id")) for intent in intents]
    candidates = Payment.objects.filter(Q(stripe_payment_intent_id__in=[i.id for i in intents])
                                        | Q(pk__in=[i for i in ids if i])).prefetch_related("refunds")
    by_intent = {p.stripe_payment_intent_id: p for p in candidates if p.stripe_payment_intent_id}
    by_id = {p.pk: p for p in candidates}
    statuses: dict[str, str] = {}
    for intent in intents:
        comparison.intents_checked += 1
        statuses[intent.id] = intent.status
        payment = _payment_for(intent, by_intent, by_id)
        comparison.findings += _compare_intent(intent, payment, refunds_by_intent.get(intent.id, []), until)

    complete = True
    ours = Payment.objects.filter(created_at__gte=since, created_at__lt=until, status__in=CAPTURED,
                                  updated_at__lt=until).select_related("reservation")
    for payment in ours:
        comparison.payments_checked += 1
        intent_id = payment.stripe_payment_intent_id or ""
        status = statuses.get(intent_id)
        if status is None and intent_id:
            try:  # created just outside the window, or not listed: ask for it alone
                status = gateway.payment_intent_retrieve(intent_id=intent_id).status
            except gateway.StripeUnavailable as exc:
                comparison.notes.append(f"Stripe could not be asked about {intent_id}: {exc}")
                complete = False
                continue
            except gateway.StripeRequestRejected:
                status = None  # 404: Stripe does not know it
        comparison.findings += _compare_payment(payment, status)
    comparison.stripe_complete = complete


# --- suppliers ↔ ours ----------------------------------------------------------------------

def _compare_bookings(reservation: Reservation, bookings: tuple[SupplierBooking, ...]) -> Iterable[Finding]:
    live = [b for b in bookings if b.live]
    holds = reservation.status in HOLDS_BOOKING
    ours = reservation.supplier_booking_id
    ours_side = {"reservation_id": str(reservation.pk), "code": reservation.code, "status": reservation.status,
                 "supplier_status": reservation.supplier_status, "supplier_booking_id": ours,
                 "supplier_reference": reservation.supplier_reference}
    supplier_side = [{"booking_id": b.booking_id, "status": b.status, "confirmation_code": b.confirmation_code}
                     for b in bookings]
    base = {"subject_created_at": reservation.created_at, "reservation_id": reservation.pk,
            "details": {"ours": ours_side, "supplier": supplier_side}}
    # The one booking we may hold: the one we recorded, or, when every booking call went
    # unanswered (no id recorded), the single one the supplier made under our key.
    kept = ours if ours else (live[0].booking_id if live else None)
    kept = kept if holds else None
    for booking in live:
        if booking.booking_id == kept:
            continue
        why = (f"reservation {reservation.code} is {reservation.status}" if not holds else
               f"a second live booking for {reservation.code} (ours is {kept})")
        yield Finding(kind=K.BOOKED_NOT_RECORDED, subject=f"booking:{booking.booking_id}",
                      summary=f"The supplier holds booking {booking.booking_id} ({booking.status}): {why}.", **base)
    if holds and ours and reservation.supplier_status == SupplierStatus.CONFIRMED and ours not in {
            b.booking_id for b in live}:
        yield Finding(kind=K.RECORDED_NOT_BOOKED, subject=f"reservation:{reservation.pk}",
                      summary=f"We hold {reservation.code} as booked ({ours}); the supplier holds no live booking "
                              "with that id.", **base)


def compare_suppliers(comparison: Comparison) -> None:
    """Suppliers ↔ ours: each reservation of the window that a supplier may have booked (one we
    asked to book: a worker may have died after the supplier booked and before any audit row),
    asked by reference. A supplier that does not answer makes the section incomplete."""
    since, until = comparison.since, comparison.until
    asked = Reservation.objects.filter(created_at__gte=since, created_at__lt=until, updated_at__lt=until).filter(
        Q(outbox_events__topic="supplier.book") | Q(supplier_requests__operation="book")
        | ~Q(supplier_booking_id="")).distinct()
    suppliers = {s.pk: s for s in Supplier.objects.filter(products__reservations__in=asked).distinct()}
    complete = True
    for reservation in asked.select_related("product").order_by("created_at"):
        comparison.reservations_checked += 1
        supplier = suppliers[reservation.product.supplier_id]
        lookup = supplier_adapter_for(supplier).bookings_for_reference(reference=reservation.code)
        if lookup.outcome not in (LookupOutcome.FOUND, LookupOutcome.NOT_FOUND):
            complete = False
            comparison.notes.append(f"{supplier.slug} did not answer for {reservation.code}: "
                                    f"{lookup.outcome.value} {lookup.error_code}")
            continue
        comparison.findings += _compare_bookings(reservation, lookup.bookings)
    comparison.supplier_complete = complete


def ledgers_compare(*, since: dt.datetime, until: dt.datetime) -> Comparison:
    comparison = Comparison(since=since, until=until)
    compare_stripe(comparison)
    compare_suppliers(comparison)
    return comparison


__all__ = ["STRIPE_KINDS", "SUPPLIER_KINDS", "Comparison", "Finding", "ledgers_compare"]
