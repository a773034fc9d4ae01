"""A proxy in front of localstripe that adds what localstripe lacks: Stripe's idempotency
layer. A POST whose Idempotency-Key was seen before is answered from the cache when its body
is the same, and with 400 `idempotency_error` when it is not (what real Stripe does). With
`lose_answers` set, each request is applied upstream but its answer never reaches the client
(the connection is closed), as when a response is lost on the network."""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

KEY_REUSED = json.dumps({"error": {
    "type": "idempotency_error",
    "message": "Keys for idempotent requests can only be used with the same parameters they were first used with.",
}}).encode()


class StripeIdempotencyProxy:
    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        self.lose_answers = False
        self.forwarded: list[tuple[str, str]] = []  # (path, body) that reached localstripe
        cache: dict[str, tuple[bytes, int, bytes]] = {}
        lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _reply(self, status: int, content: bytes) -> None:
                if proxy.lose_answers:
                    self.close_connection = True
                    return
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                key = self.headers.get("Idempotency-Key") if self.command == "POST" else None
                with lock:
                    if key is not None and key in cache:
                        first_body, status, content = cache[key]
                        reply = (status, content) if first_body == body else (400, KEY_REUSED)
                        self._reply(*reply)
                        return
                    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    response = conn.getresponse()
                    status, content = response.status, response.read()
                    conn.close()
                    proxy.forwarded.append((self.path, body.decode()))
                    if key is not None:
                        cache[key] = (body, status, content)
                self._reply(status, content)

            do_GET = do_POST = do_DELETE = _handle

            def log_message(self, *args) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> StripeIdempotencyProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
