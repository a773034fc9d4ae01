"""The worker role (`deploy/entrypoint.sh worker`): a django-q2 cluster, plus

- a graceful SIGTERM: drains stop taking events (outbox.worker_shutdown), the event in
  progress finishes, queued deliveries are handed back to the cluster's stop, and the
  process exits well inside a 60 s grace period;
- a drain started at once, not at the scheduler's first tick ~30 s after start;
- its own metrics port (WORKER_METRICS_PORT, default 9100; 0 turns it off): supplier calls,
  refunds' Stripe calls and deadlock retries happen in the cluster's worker processes, which
  write to PROMETHEUS_MULTIPROC_DIR; this port serves their sum, with the same access rule as
  /metrics, and answers /health/live for the container's health check.

    python manage.py run_worker [--metrics-port 9100]
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from django.core.management.base import BaseCommand, CommandParser
from django_q.brokers import get_broker
from django_q.cluster import Cluster

from common.metrics import access_allowed, counters_exposition, multiprocess_dir
from outbox import worker_shutdown
from outbox.tasks import enqueue_drain

logger = logging.getLogger("reserve.worker")


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def metrics_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/health/live":
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"status": "ok"}']
    if path != "/metrics":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    if not access_allowed(authorization=environ.get("HTTP_AUTHORIZATION", ""), address=environ.get("REMOTE_ADDR", "")):
        start_response("403 Forbidden", [("Content-Type", "text/plain")])
        return [b"forbidden\n"]
    start_response("200 OK", [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")])
    return [counters_exposition()]


class Command(BaseCommand):
    help = "Run the worker role: a django-q2 cluster with a graceful SIGTERM and a metrics port."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--metrics-port", type=int, default=int(os.environ.get("WORKER_METRICS_PORT", "9100")))
        parser.add_argument("--metrics-host", default=os.environ.get("WORKER_METRICS_HOST", "0.0.0.0"))  # noqa: S104

    def handle(self, *args: Any, **options: Any) -> None:
        if options["metrics_port"]:
            if not multiprocess_dir():
                logger.warning("PROMETHEUS_MULTIPROC_DIR is not set: the metrics port shows this process only")
            server = make_server(options["metrics_host"], options["metrics_port"], metrics_app,
                                 handler_class=_QuietHandler)
            threading.Thread(target=server.serve_forever, name="worker-metrics", daemon=True).start()
        worker_shutdown.install()  # before the cluster forks: its processes share the event
        cluster = Cluster(get_broker())
        stop_requested = threading.Event()

        def on_signal(signum: int, frame: Any) -> None:
            # Drains notice within a second; the cluster is stopped from the main loop below,
            # not from inside the signal handler.
            worker_shutdown.request_stop()
            stop_requested.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        cluster.start()
        enqueue_drain(reason="worker start")
        logger.info("worker running", extra={"metrics_port": options["metrics_port"]})
        while not stop_requested.is_set() and cluster.sentinel.is_alive():
            stop_requested.wait(0.5)
        started = time.monotonic()
        logger.info("worker stopping")
        cluster.stop()
        logger.info("worker stopped", extra={"stop_seconds": round(time.monotonic() - started, 1)})
