"""A fake supplier speaking the reference API (api.md), for the demo run and the tests.

    python -m suppliers.fake_server --port 8421

Behaviour per product code, chosen by `POST /_control` (`{"products": {code: mode}}`,
`{"default_mode": mode}`, `{"reset": true}`) or by a code prefix (`REJECT-`, `ONREQ-`,
`FAIL-`, `FLAKY-`, `SLOW-`, `BAD-`). Modes:

- `confirm` (default) 201 CONFIRMED      - `on_request` 202 ON_REQUEST
- `reject` 409 no_availability           - `permanent` 400 invalid_request
- `fail` 503 always                      - `fail_then_confirm:N` 503 N times per key, then confirm
- `slow:S[:N]` books, then answers after S seconds (only the first N requests per key)

A repeated Idempotency-Key returns the first booking (never a second one). `GET /_state`
returns the bookings and request counts; `GET /_log` the recent (key, unix time) of POSTs."""

from __future__ import annotations

import argparse
import json
import secrets
import threading
import time
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX_MODES = {"REJECT-": "reject", "ONREQ-": "on_request", "FAIL-": "fail", "FLAKY-": "fail_then_confirm:2",
                "SLOW-": "slow:15:1", "BAD-": "permanent"}


class SupplierState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.default_mode = "confirm"
        self.product_modes: dict[str, str] = {}
        self.bookings: dict[str, dict[str, Any]] = {}  # booking_id -> booking
        self.by_key: dict[str, str] = {}  # idempotency key -> booking_id
        self.requests: Counter[str] = Counter()  # "POST /bookings" -> n
        self.key_requests: Counter[str] = Counter()  # idempotency key -> n
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
                "product_modes": dict(self.product_modes), "auth_failures": self.auth_failures}

    def request_log(self) -> list[tuple[str, float]]:
        return list(self.log)


STATE = SupplierState()


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

    def do_GET(self) -> None:
        if self.path == "/_state":
            with STATE.lock:
                self._send(200, STATE.snapshot())
            return
        if self.path == "/_log":
            with STATE.lock:
                self._send(200, STATE.request_log())
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
                STATE.product_modes.update(body.get("products") or {})
                self._send(200, STATE.snapshot())
            return
        if self.path.rstrip("/") != "/bookings":
            self._send(404, {"error": "not_found"})
            return
        body = self._body()  # read before answering anything, so keep-alive stays in sync
        if not self._authorised():
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
        if not self._authorised():
            return
        booking_id = self.path.removeprefix("/bookings/").strip("/")
        with STATE.lock:
            STATE.requests["DELETE /bookings"] += 1
            booking = STATE.bookings.get(booking_id)
            if booking is None or booking["status"] == "CANCELLED":
                self._send(404, {"error": "not_found"})
                return
            booking["status"] = "CANCELLED"
        self._send(200, {"booking_id": booking_id, "status": "CANCELLED"})


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
