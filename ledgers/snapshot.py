"""Reading the three ledgers for the invariant checker: Stripe's (its lists, through the
gateway), the supplier's (its whole ledger where it exposes one, else each reservation asked by
reference through the adapter) and the answers a load driver recorded."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path

import requests
from django.db.models import Q

from ledgers.invariants import HttpAnswer, Snapshot
from payments import gateway
from reservations.models import Reservation
from suppliers.clients import LookupOutcome, SupplierBooking, supplier_adapter_for


class LedgerUnreadable(Exception):
    """A ledger could not be read completely: nothing can be concluded from it."""


def supplier_ledger_from_state(url: str) -> list[SupplierBooking]:
    """Every booking of a supplier that shows its whole ledger (the fake supplier's GET /_state)."""
    try:
        response = requests.get(url, timeout=10)
        response.raise_for_status()
        bookings = response.json()["bookings"]
    except (requests.RequestException, ValueError, KeyError) as exc:
        raise LedgerUnreadable(f"supplier ledger at {url}: {exc}") from exc
    return [SupplierBooking(booking_id=b["booking_id"], reference=b.get("reference") or "", status=b["status"],
                            confirmation_code=b.get("confirmation_code") or "") for b in bookings]


def supplier_ledger_by_reference(*, since: dt.datetime) -> list[SupplierBooking]:
    """The bookings suppliers hold for our reservations since `since`, asked one by one."""
    bookings: list[SupplierBooking] = []
    asked = Reservation.objects.filter(created_at__gte=since).filter(
        Q(outbox_events__topic="supplier.book") | Q(supplier_requests__operation="book")
        | ~Q(supplier_booking_id="")).distinct().select_related(
        "product__supplier")
    for reservation in asked:
        lookup = supplier_adapter_for(reservation.product.supplier).bookings_for_reference(reference=reservation.code)
        if lookup.outcome not in (LookupOutcome.FOUND, LookupOutcome.NOT_FOUND):
            raise LedgerUnreadable(f"{reservation.product.supplier.slug} did not answer for {reservation.code}: "
                                   f"{lookup.outcome.value} {lookup.error_code}")
        bookings += lookup.bookings
    return bookings


def http_answers_from(path: Path) -> list[HttpAnswer]:
    """JSON lines {"endpoint", "status", "content_type", "code", "traceback"}."""
    answers = []
    for line in path.read_text().splitlines():
        if line.strip():
            data = json.loads(line)
            answers.append(HttpAnswer(endpoint=data["endpoint"], status=int(data["status"]),
                                      content_type=data.get("content_type", ""), code=data.get("code", ""),
                                      traceback=bool(data.get("traceback"))))
    return answers


def snapshot_load(*, since: dt.datetime, supplier_state_urls: Iterable[str] = (),
                  http_log: Path | None = None) -> Snapshot:
    """Raises LedgerUnreadable (or gateway.GatewayError) when a ledger cannot be read."""
    created_gte = int(since.timestamp())
    intents = gateway.payment_intents_list(created_gte=created_gte)
    refunds = gateway.refunds_list(created_gte=created_gte)
    urls = list(supplier_state_urls)
    bookings = ([b for url in urls for b in supplier_ledger_from_state(url)] if urls
                else supplier_ledger_by_reference(since=since))
    return Snapshot(stripe_intents=intents, stripe_refunds=refunds, supplier_bookings=bookings,
                    http_answers=http_answers_from(http_log) if http_log else None)
