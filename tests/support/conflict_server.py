"""A Stripe stand-in that answers every request 409 Conflict, as Stripe does while another
request with the same idempotency key is still being processed. Counts the requests."""

from __future__ import annotations

import json
import threading

from tests.support.http_stub import StubHandler, ThreadedStub

IDEMPOTENCY_IN_PROGRESS = {"error": {
    "type": "idempotency_error",
    "message": "There is currently another in-progress request using this Idempotent Key (that probably means "
               "you submitted twice, and the other request is still going through): pay:x. Please try again later.",
}}
CONFLICT = {"error": {"type": "api_error", "message": "Request conflict; please retry."}}


class ConflictServer(ThreadedStub):
    def __init__(self, *, body: dict | None = None) -> None:
        payload = json.dumps(body or IDEMPOTENCY_IN_PROGRESS).encode()
        self.requests = 0
        lock = threading.Lock()
        server = self

        class Handler(StubHandler):
            def _conflict(self) -> None:
                with lock:
                    server.requests += 1
                self.read_body()
                self.reply(409, payload)

            do_GET = do_POST = do_DELETE = _conflict

        self._serve(Handler)
