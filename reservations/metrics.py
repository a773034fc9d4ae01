"""Reservation gauges for /metrics (F3): the staff's ON_REQUEST queue."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from reservations.models import Reservation, ReservationStatus, SupplierStatus


def reservation_gauges() -> Iterator[Metric]:
    queue = Reservation.objects.filter(status=ReservationStatus.CONFIRMED_INTERNAL,
                                       supplier_status=SupplierStatus.ON_REQUEST)
    figures = queue.aggregate(n=Count("id"), oldest=Min("updated_at"))
    yield GaugeMetricFamily("reserve_reservations_on_request",
                            "Paid reservations the supplier did not confirm, waiting for staff.", value=figures["n"])
    oldest = figures["oldest"]
    yield GaugeMetricFamily("reserve_reservations_on_request_oldest_age_seconds",
                            "How long the oldest ON_REQUEST reservation has been waiting unchanged (0: none).",
                            value=(timezone.now() - oldest).total_seconds() if oldest else 0.0)
