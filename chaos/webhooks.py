"""Stripe's webhooks as they really arrive: late, twice and out of order.

localstripe posts each event once, a second after it happens, to the URL registered with it:
here. The relay acknowledges at once and delivers to the web processes itself, signed afresh
at each delivery as Stripe signs each attempt:

- most events within a second, some 3 to 15 s late;
- some twice (the second copy seconds later);
- for some `payment_intent.succeeded`, also a stale `payment_intent.processing` snapshot of the
  same intent (its own event id), which may land before or after the success — out of order;
- a delivery answered 5xx or not at all is retried with backoff, as Stripe does, until the
  relay is closed."""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from chaos.processes import free_port

LATE_SHARE, TWICE_SHARE, STALE_SHARE = 0.3, 0.25, 0.3


def signature(payload: bytes, secret: str) -> str:
    """`Stripe-Signature: t=…,v1=…` — HMAC-SHA256 of "{t}.{payload}" with the endpoint secret."""
    timestamp = int(time.time())
    mac = hmac.new(secret.encode(), b"%d." % timestamp + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    payload: bytes = field(compare=False)
    attempt: int = field(default=1, compare=False)


class WebhookRelay:
    def __init__(self, *, targets: list[str], secret: str, rng: random.Random,
                 record: Callable[[str, requests.Response | None], None], senders: int = 4) -> None:
        self.targets, self.secret, self.rng, self.record = targets, secret, rng, record
        self.port = free_port()
        self.stats: Counter[str] = Counter()
        self._queue: list[_Delivery] = []
        self._seq = itertools.count()
        self._lock = threading.Condition()
        self._closed = False
        self._in_flight = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self._threads = [threading.Thread(target=self._serve_deliveries, name=f"webhook-sender-{i}", daemon=True)
                         for i in range(senders)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stripe"

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, name="webhook-relay", daemon=True).start()
        for thread in self._threads:
            thread.start()

    def pending(self) -> int:
        with self._lock:
            return len(self._queue) + self._in_flight

    def close(self) -> None:
        self._server.shutdown()
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    # --- receiving from localstripe --------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                try:
                    event = json.loads(body)
                except ValueError:
                    return
                relay._received(event)

        return Handler

    def _received(self, event: dict[str, Any]) -> None:
        rng = self.rng
        self.stats["received"] += 1
        late = rng.random() < LATE_SHARE
        first = rng.uniform(3, 15) if late else rng.uniform(0, 1)
        self.stats["late"] += int(late)
        self._schedule(event, first)
        if rng.random() < TWICE_SHARE:
            self.stats["twice"] += 1
            self._schedule(event, first + rng.uniform(1, 10))
        if event.get("type") == "payment_intent.succeeded" and rng.random() < STALE_SHARE:
            self.stats["stale_snapshot"] += 1
            obj = {**event["data"]["object"], "status": "processing"}
            stale = {**event, "id": f"evt_stale_{uuid.uuid4().hex[:16]}", "type": "payment_intent.processing",
                     "data": {"object": obj}}
            self._schedule(stale, rng.uniform(0, 8))

    def _schedule(self, event: dict[str, Any], delay: float, attempt: int = 1) -> None:
        payload = json.dumps(event).encode()
        with self._lock:
            heapq.heappush(self._queue, _Delivery(time.monotonic() + delay, next(self._seq), payload, attempt))
            self._lock.notify()

    # --- delivering to us ------------------------------------------------------------------------

    def _next(self) -> _Delivery | None:
        with self._lock:
            while not self._closed:
                if self._queue and self._queue[0].due <= time.monotonic():
                    self._in_flight += 1
                    return heapq.heappop(self._queue)
                wait = self._queue[0].due - time.monotonic() if self._queue else 1.0
                self._lock.wait(timeout=max(min(wait, 1.0), 0.01))
            return None

    def _serve_deliveries(self) -> None:
        session = requests.Session()
        while (delivery := self._next()) is not None:
            try:
                self._deliver(session, delivery)
            finally:
                with self._lock:
                    self._in_flight -= 1

    def _deliver(self, session: requests.Session, delivery: _Delivery) -> None:
        target = self.rng.choice(self.targets)
        try:
            response = session.post(f"{target}/webhooks/stripe/", data=delivery.payload, timeout=30, headers={
                "Content-Type": "application/json", "Stripe-Signature": signature(delivery.payload, self.secret)})
        except requests.RequestException:
            response = None
        self.record("webhook", response)
        self.stats["delivered"] += 1
        if response is None or response.status_code >= 500:
            # Stripe retries failed deliveries with backoff (for days); here, until the relay closes.
            self.stats["retried"] += 1
            with self._lock:
                heapq.heappush(self._queue, _Delivery(time.monotonic() + min(2 ** delivery.attempt, 10),
                                                      next(self._seq), delivery.payload, delivery.attempt + 1))
                self._lock.notify()
