"""After the load: heal everything, then run the drain and the reconciler until the system is
idle — nothing left to deliver, no payment attempt or refund unsettled, no webhook on its way.
Staff replay what gave up while things were failing (as they would once the dust settles), and
the system is drained to idle again. Django is configured for the run's topology."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.db import InterfaceError, OperationalError, close_old_connections, connection

from chaos.load import Recorder
from chaos.staff import staff_replay_after_recovery
from outbox.delivery import outbox_drain
from outbox.models import UNFINISHED, OutboxEvent
from payments.models import Payment, Refund, RefundStatus
from payments.services import payments_reconcile
from payments.state import IN_FLIGHT
from reservations.models import Reservation, ReservationStatus


def unsettled() -> dict[str, int]:
    """What still has to happen (empty: idle)."""
    counts = {
        "outbox events pending or in flight": OutboxEvent.objects.filter(status__in=UNFINISHED).count(),
        "payment attempts unsettled": Payment.objects.filter(status__in=IN_FLIGHT).count(),
        "refunds pending": Refund.objects.filter(status=RefundStatus.PENDING).count(),
    }
    return {name: n for name, n in counts.items() if n}


def _until_idle(recorder: Recorder, webhooks_pending: Callable[[], int], *, timeout: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    left: dict[str, int] = {}
    while time.monotonic() < deadline:
        close_old_connections()
        try:
            # Every open row is due now, as when an operator runs the reconciler by hand: the
            # scheduled runs would look again only after their backoff.
            Payment.objects.filter(status__in=IN_FLIGHT).update(next_check_at=None)
            Refund.objects.filter(status=RefundStatus.PENDING).update(next_check_at=None)
            payments_reconcile()
            recorder.count("settle: reconciler runs")
            outbox_drain(duration_seconds=2)
            left = unsettled()
        except (OperationalError, InterfaceError):
            connection.close()
            time.sleep(1)
            continue
        if webhooks_pending():
            left["webhooks on their way"] = webhooks_pending()
        if not left:
            return {}
        time.sleep(1)
    return left


def settle(recorder: Recorder, *, webhooks_pending: Callable[[], int], timeout: float = 300) -> dict[str, int]:
    """Returns what is still unsettled when `timeout` runs out (empty: idle)."""
    started = time.monotonic()
    left = _until_idle(recorder, webhooks_pending, timeout=timeout)
    if not left:
        staff_replay_after_recovery(recorder)
        left = _until_idle(recorder, webhooks_pending, timeout=max(timeout - (time.monotonic() - started), 30))
    recorder.count("settle: seconds to idle", round(time.monotonic() - started))
    return left


def flapping_supplier_unconfirmed(product_code: str) -> list[str]:
    """Issue 13 item 6: a supplier that flapped and then recovered ends with its bookings
    CONFIRMED (those paid and not cancelled afterwards). Returns the ones that did not."""
    paid = Reservation.objects.filter(product__code=product_code, events__to_status=ReservationStatus.PAID) \
        .exclude(status=ReservationStatus.CANCELLED).distinct()
    return [f"{r.code} is {r.status} / {r.supplier_status}" for r in paid if r.status != ReservationStatus.CONFIRMED]
