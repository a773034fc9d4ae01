"""Prometheus metrics (F3).

Two kinds, both correct however many processes serve:
- Counters and histograms of events that happen in a process (Stripe and supplier calls,
  deadlock retries, idempotent replays, webhook results). With PROMETHEUS_MULTIPROC_DIR set
  (gunicorn.conf.py and the worker role set it) every process writes its own file there and
  a scrape sums them, so any gunicorn worker answers for all of them.
- Gauges of state, computed from the database at scrape time by the sources the apps register
  (`register_gauge_source`, like health's ready checks): outbox backlog, dead letters,
  ON_REQUEST, payments and refunds by status, breaker states. Any process gives the same answer.

Access (api.md): `Authorization: Bearer <METRICS_TOKEN>` or a client address inside
METRICS_ALLOWED_NETWORKS (common.net.client_ip); otherwise 403."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from common.net import client_ip

logger = logging.getLogger("reserve.metrics")

# No `*_created` series: they double the output and nothing here alerts on them.
disable_created_metrics()

# Outbound call latencies: Stripe answers in hundreds of ms, a supplier in up to its timeout.
CALL_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64)

STRIPE_CALL_SECONDS = Histogram("reserve_stripe_call_seconds", "Stripe API call latency (calls made).",
                                ["operation"], buckets=CALL_BUCKETS)
STRIPE_CALLS = Counter("reserve_stripe_calls", "Stripe API calls by outcome (breaker_open: no call made).",
                       ["operation", "outcome"])
SUPPLIER_CALL_SECONDS = Histogram("reserve_supplier_call_seconds", "Supplier API call latency (calls made).",
                                  ["supplier", "operation"], buckets=CALL_BUCKETS)
SUPPLIER_CALLS = Counter("reserve_supplier_calls", "Supplier API attempts, by outcome (breaker_open: no call).",
                         ["supplier", "operation", "outcome"])
DEADLOCK_RETRIES = Counter("reserve_db_deadlock_retries", "Transactions re-run after MySQL 1213/1205/1020.")
IDEMPOTENT_REPLAYS = Counter("reserve_idempotent_replays", "Requests answered from a stored Idempotency-Key response.")
WEBHOOK_EVENTS = Counter("reserve_stripe_webhook_events", "Stripe webhook deliveries, by result.", ["result"])

GaugeSource = Callable[[], Iterable[Metric]]
_GAUGE_SOURCES: dict[str, GaugeSource] = {}


def register_gauge_source(name: str, source: GaugeSource) -> None:
    """`source()` yields metric families computed now (from the database, usually)."""
    _GAUGE_SOURCES[name] = source


class _ScrapeTimeGauges(Collector):
    """Runs every source; one that fails (the database is down) is reported as down by
    `reserve_metrics_source_up` instead of failing the whole scrape."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("reserve_metrics_source_up", "1 if the gauge source answered this scrape.",
                               labels=["source"])
        for name, source in _GAUGE_SOURCES.items():
            try:
                families = list(source())
            except Exception:  # a scrape must still return the counters and say what is missing
                logger.warning("metrics source %s failed", name, exc_info=True)
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from families
        yield up


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def counters_exposition() -> bytes:
    """This process's counters, or the sum over every process writing to the multiprocess dir."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def gauges_exposition() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ScrapeTimeGauges())
    return generate_latest(registry)


def access_allowed(*, authorization: str, address: str) -> bool:
    token = settings.METRICS_TOKEN
    if token and hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode()):
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for network in settings.METRICS_ALLOWED_NETWORKS:
        try:
            if ip in ipaddress.ip_network(network, strict=False):
                return True
        except ValueError:
            logger.error("METRICS_ALLOWED_NETWORKS has an invalid entry: %s", network)
    return False


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not access_allowed(authorization=request.headers.get("Authorization", ""), address=client_ip(request)):
        return HttpResponse("forbidden\n", status=403, content_type="text/plain")
    started = time.perf_counter()
    body = counters_exposition() + gauges_exposition()
    body += (b"# HELP reserve_metrics_scrape_seconds Time this scrape took.\n"
             b"# TYPE reserve_metrics_scrape_seconds gauge\n"
             b"reserve_metrics_scrape_seconds %.6f\n" % (time.perf_counter() - started))
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
