"""A fake supplier speaking the reference API (api.md), for the demo run and the tests.

    python -m suppliers.fake_server --port 8421

Behaviour per product code, chosen by `POST /_control` (`{"products": {code: mode}}`,
`{"default_mode": mode}`, `{"reset": true}`) or by a code prefix (`REJECT-`, `ONREQ-`,
`FAIL-`, `FLAKY-`, `SLOW-`, `BAD-`). Modes:

- `confirm` (default) 201 CONFIRMED      - `on_request` 202 ON_REQUEST
- `reject` 409 no_availability           - `permanent` 400 invalid_request
- `fail` 503 always                      - `fail_then_confirm:N` 503 N times per key, then confirm
- `slow:S[:N]` books, then answers after S seconds (only the first N requests per key)
- `rate_limited` 429 always              - `rate_limited_then_confirm:N` 429 N times per key, then confirm
- `flap:P` each request fails (503 or 429, alternating) with probability P, else confirms;
  decided by a hash of (key, request number), so a run is repeatable

`{"override": mode}` puts every endpoint under one mode, whatever the product (`{"override":
null}` lifts it): `down` drops each connection unanswered, `fail` answers 503, `rate_limited`
429, `flap:P` either of those with probability P — a supplier that is down or flapping as a
whole, lookups and cancellations included.

A repeated Idempotency-Key returns the first booking (never a second one). `GET /_state`
returns the bookings and request counts; `GET /_log` the recent (key, unix time) of POSTs.
`GET /bookings/{id}` and `GET /bookings?reference=<code>` are the supplier API's lookups
(api.md): what reconciliation reads."""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
import threading
import time
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

PREFIX_MODES = {"REJECT-": "reject", "ONREQ-": "on_request", "FAIL-": "fail", "FLAKY-": "fail_then_confirm:2",
                "SLOW-": "slow:15:1", "BAD-": "permanent"}


class SupplierState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.default_mode = "confirm"
        self.override_mode: str | None = None  # every endpoint, every product: down, fail, flap:P …
        self.product_modes: dict[str, str] = {}
        self.bookings: dict[str, dict[str, Any]] = {}  # booking_id -> booking
        self.by_key: dict[str, str] = {}  # idempotency key -> booking_id
        self.requests: Counter[str] = Counter()  # "POST /bookings" -> n
        self.key_requests: Counter[str] = Counter()  # idempotency key -> n
        self.override_requests: Counter[str] = Counter()  # endpoint -> requests seen under an override
        self.auth_failures = 0
        # (idempotency key, unix time) of recent POSTs: lets a bench measure commit → request delay
        self.log: deque[tuple[str, float]] = deque(maxlen=50000)

    def mode_for(self, product_code: str) -> str:
        if product_code in self.product_modes:
            return self.product_modes[product_code]
        for prefix, mode in PREFIX_MODES.items():
            if product_code.startswith(prefix):
                return mode
        return self.default_mode

    def snapshot(self) -> dict[str, Any]:
        return {"bookings": list(self.bookings.values()), "requests": dict(self.requests),
                "key_requests": dict(self.key_requests), "default_mode": self.default_mode,
                "override_mode": self.override_mode,
                "product_modes": dict(self.product_modes), "auth_failures": self.auth_failures}

    def request_log(self) -> list[tuple[str, float]]:
        return list(self.log)


STATE = SupplierState()


def flaps(probability: float, *parts: object) -> bool:
    """A repeatable coin: True with `probability`, from a hash of `parts` (key, request number)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < probability


def failure_for(mode: str, *parts: object) -> int | None:
    """The HTTP status a failing mode answers for this request (None: it does not fail now).
    `down` is 0: the connection is dropped unanswered."""
    name, _, arg = mode.partition(":")
    if name == "down":
        return 0
    if name == "fail":
        return 503
    if name == "rate_limited":
        return 429
    if name == "flap" and flaps(float(arg or 0.5), *parts):
        return 503 if flaps(0.5, "status", *parts) else 429
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle on, each answer would wait ~40 ms
    # for the client's delayed ACK (a "fast" supplier must be fast).
    disable_nagle_algorithm = True
    server_version = "FakeSupplier/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # the default writes to stderr per request
        return

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return {}
        try:
            data = json.loads(self.rfile.read(length))
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def _send(self, status: int, body: Any = None) -> None:
        raw = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        if raw:
            self.wfile.write(raw)

    def _authorised(self) -> bool:
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or len(auth) <= len("Bearer "):
            with STATE.lock:
                STATE.auth_failures += 1
            self._send(401, {"error": "unauthorized"})
            return False
        return True

    def _overridden(self, endpoint: str) -> bool:
        """Answer (or drop) the request as the global override says; True when it did."""
        with STATE.lock:
            mode = STATE.override_mode
            if not mode:
                return False
            STATE.override_requests[endpoint] += 1
            seen = STATE.override_requests[endpoint]
        status = failure_for(mode, endpoint, seen)
        if status is None:
            return False
        if status == 0:
            self.close_connection = True  # down: no answer at all
            return True
        self._send(status, {"error": "unavailable" if status >= 500 else "rate_limited"})
        return True

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/_state":
            with STATE.lock:
                self._send(200, STATE.snapshot())
            return
        if url.path == "/_log":
            with STATE.lock:
                self._send(200, STATE.request_log())
            return
        if url.path.rstrip("/") == "/bookings":
            if self._authorised() and not self._overridden("GET /bookings"):
                reference = (parse_qs(url.query).get("reference") or [""])[0]
                with STATE.lock:
                    found = [_public(b) for b in STATE.bookings.values() if b["reference"] == reference]
                self._send(200, {"bookings": found})
            return
        if url.path.startswith("/bookings/"):
            if self._authorised() and not self._overridden("GET /bookings/{id}"):
                booking_id = unquote(url.path.removeprefix("/bookings/").strip("/"))
                with STATE.lock:
                    booking = STATE.bookings.get(booking_id)
                    found = _public(booking) if booking else None
                if found:
                    self._send(200, found)
                else:
                    self._send(404, {"error": "not_found"})
            return
        self._send(404, {"error": "not_found"})

    def do_POST(self) -> None:
        if self.path == "/_control":
            body = self._body()
            with STATE.lock:
                if body.get("reset"):
                    STATE.reset()
                if "default_mode" in body:
                    STATE.default_mode = body["default_mode"]
                if "override" in body:
                    STATE.override_mode = body["override"] or None
                STATE.product_modes.update(body.get("products") or {})
                self._send(200, STATE.snapshot())
            return
        if self.path.rstrip("/") != "/bookings":
            self._send(404, {"error": "not_found"})
            return
        body = self._body()  # read before answering anything, so keep-alive stays in sync
        if not self._authorised() or self._overridden("POST /bookings"):
            return
        self._book(body)

    def _book(self, body: dict[str, Any]) -> None:
        key = self.headers.get("Idempotency-Key", "")
        if not key or not body.get("product_code"):
            self._send(400, {"error": "invalid_request"})
            return
        with STATE.lock:
            STATE.requests["POST /bookings"] += 1
            STATE.key_requests[key] += 1
            STATE.log.append((key, time.time()))
            seen = STATE.key_requests[key]
            mode = STATE.mode_for(str(body["product_code"]))
            existing = STATE.by_key.get(key)
        name, _, arg = mode.partition(":")
        if existing is None:
            if name == "fail" or (name == "fail_then_confirm" and seen <= int(arg or 1)):
                self._send(503, {"error": "unavailable"})
                return
            if name == "rate_limited" or (name == "rate_limited_then_confirm" and seen <= int(arg or 1)):
                self._send(429, {"error": "rate_limited"})
                return
            failed = failure_for(mode, key, seen) if name == "flap" else None
            if failed:
                self._send(failed, {"error": "unavailable" if failed >= 500 else "rate_limited"})
                return
            if name == "reject":
                self._send(409, {"error": "no_availability"})
                return
            if name == "permanent":
                self._send(400, {"error": "invalid_request"})
                return
            existing = self._create(key, body, "ON_REQUEST" if name == "on_request" else "CONFIRMED")
        if name == "slow":
            seconds, _, slow_count = arg.partition(":")
            if not slow_count or seen <= int(slow_count):
                time.sleep(float(seconds or 5))  # booked already: the caller's timeout loses the answer
        with STATE.lock:
            booking = dict(STATE.bookings[existing])
        if booking["status"] == "ON_REQUEST":
            self._send(202, {"booking_id": booking["booking_id"], "status": "ON_REQUEST"})
        else:
            self._send(201, {"booking_id": booking["booking_id"], "status": booking["status"],
                             "confirmation_code": booking["confirmation_code"]})

    @staticmethod
    def _create(key: str, body: dict[str, Any], status: str) -> str:
        with STATE.lock:
            if key in STATE.by_key:  # two concurrent first requests with one key
                return STATE.by_key[key]
            booking_id = "bk_" + secrets.token_hex(8)
            STATE.bookings[booking_id] = {
                "booking_id": booking_id, "status": status, "idempotency_key": key,
                "confirmation_code": "CONF-" + secrets.token_hex(3).upper() if status == "CONFIRMED" else "",
                "reference": body.get("reference"), "product_code": body.get("product_code"),
                "date": body.get("date"), "quantity": body.get("quantity"), "guest_name": body.get("guest_name"),
            }
            STATE.by_key[key] = booking_id
            return booking_id

    def do_DELETE(self) -> None:
        if not self.path.startswith("/bookings/"):
            self._send(404, {"error": "not_found"})
            return
        if not self._authorised() or self._overridden("DELETE /bookings"):
            return
        booking_id = unquote(self.path.removeprefix("/bookings/").strip("/"))
        with STATE.lock:
            STATE.requests["DELETE /bookings"] += 1
            booking = STATE.bookings.get(booking_id)
            if booking is None or booking["status"] == "CANCELLED":
                self._send(404, {"error": "not_found"})
                return
            booking["status"] = "CANCELLED"
        self._send(200, {"booking_id": booking_id, "status": "CANCELLED"})


def _public(booking: dict[str, Any]) -> dict[str, Any]:
    """A booking as the supplier API shows it (api.md)."""
    return {"booking_id": booking["booking_id"], "reference": booking["reference"], "status": booking["status"],
            "confirmation_code": booking["confirmation_code"]}


def serve(host: str, port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8421)
    parser.add_argument("--mode", default="confirm", help="default mode for products without one")
    args = parser.parse_args()
    STATE.default_mode = args.mode
    server = serve(args.host, args.port)
    print(f"fake supplier listening on http://{args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
