"""A Stripe stand-in for load tests: answers PaymentIntent create / retrieve and refunds in
constant time after a configurable latency (localstripe is too slow for load, facts.md).

    python bench/stripe_standin.py --port 8431 --latency-ms 50
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


def make_handler(latency: float):
    seen_keys: dict[str, dict] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out as two writes; with Nagle on, the body waits for the
        # client's delayed ACK (~40 ms), which would be measured as our latency.
        disable_nagle_algorithm = True

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            time.sleep(latency)
            key = self.headers.get("Idempotency-Key")
            with lock:  # like Stripe: a repeated key replays the first answer
                if key and key in seen_keys:
                    return self._reply(200, seen_keys[key])
            if self.path == "/v1/payment_intents":
                body = {"id": f"pi_{uuid.uuid4().hex[:24]}", "object": "payment_intent", "status": "succeeded",
                        "amount": int(form.get("amount", 0)), "currency": form.get("currency", "eur"),
                        "latest_charge": f"ch_{uuid.uuid4().hex[:24]}", "client_secret": "",
                        "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")}}
            elif self.path == "/v1/refunds":
                body = {"id": f"re_{uuid.uuid4().hex[:24]}", "object": "refund", "status": "succeeded",
                        "amount": int(form.get("amount", 0))}
            else:
                return self._reply(404, {"error": {"type": "invalid_request_error", "message": "not found"}})
            with lock:
                if key:
                    seen_keys[key] = body
            return self._reply(200, body)

        def do_GET(self) -> None:
            time.sleep(latency)
            self._reply(404, {"error": {"type": "invalid_request_error", "code": "resource_missing"}})

        def log_message(self, *args) -> None:
            pass

    return Handler


def serve(port: int, latency_ms: float) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(latency_ms / 1000))
    server.daemon_threads = True
    server.request_queue_size = 256
    return server


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8431)
    parser.add_argument("--latency-ms", type=float, default=50)
    args = parser.parse_args()
    serve(args.port, args.latency_ms).serve_forever()
