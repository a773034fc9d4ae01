"""Plumbing shared by the in-process HTTP stand-ins of the tests (proxies, fault servers):
a threaded server on a free loopback port, run for the length of a `with` block."""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import SplitResult


class StubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def reply(self, status: int, content: bytes, headers: list[tuple[str, str]] | None = None) -> None:
        self.send_response(status)
        sent = set()
        for name, value in headers or [("Content-Type", "application/json")]:
            if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(name, value)
                sent.add(name.lower())
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def forward(self, target: SplitResult, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send this request on to `target` unchanged; returns (status, headers, content)."""
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            conn.request(self.command, self.path, body=body or None, headers=headers)
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()

    def log_message(self, *args) -> None:
        pass


class ThreadedStub:
    """Subclasses call `_serve(HandlerClass)` in __init__; `url` is then set."""

    def _serve(self, handler: type[StubHandler]) -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
