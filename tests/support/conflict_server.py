"""A Stripe stand-in that answers every request 409 Conflict, as Stripe does while another
request with the same idempotency key is still being processed. Counts the requests."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

IDEMPOTENCY_IN_PROGRESS = {"error": {
    "type": "idempotency_error",
    "message": "There is currently another in-progress request using this Idempotent Key (that probably means "
               "you submitted twice, and the other request is still going through): pay:x. Please try again later.",
}}
CONFLICT = {"error": {"type": "api_error", "message": "Request conflict; please retry."}}


class ConflictServer:
    def __init__(self, *, body: dict | None = None) -> None:
        payload = json.dumps(body or IDEMPOTENCY_IN_PROGRESS).encode()
        self.requests = 0
        lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _conflict(self) -> None:
                with lock:
                    server.requests += 1
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(409)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _conflict

            def log_message(self, *args) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> ConflictServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
