"""A proxy in front of localstripe that adds what localstripe lacks: Stripe's idempotency
layer. A POST whose Idempotency-Key was seen before is answered from the cache when its body
is the same, and with 400 `idempotency_error` when it is not (what real Stripe does). With
`lose_answers` set, each request is applied upstream but its answer never reaches the client
(the connection is closed), as when a response is lost on the network."""

from __future__ import annotations

import json
import threading
from urllib.parse import urlsplit

from tests.support.http_stub import StubHandler, ThreadedStub

KEY_REUSED = json.dumps({"error": {
    "type": "idempotency_error",
    "message": "Keys for idempotent requests can only be used with the same parameters they were first used with.",
}}).encode()


class StripeIdempotencyProxy(ThreadedStub):
    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        self.lose_answers = False
        self.forwarded: list[tuple[str, str]] = []  # (path, body) that reached localstripe
        cache: dict[str, tuple[bytes, int, bytes]] = {}
        lock = threading.Lock()
        proxy = self

        class Handler(StubHandler):
            def _answer(self, status: int, content: bytes) -> None:
                if proxy.lose_answers:
                    self.close_connection = True
                    return
                self.reply(status, content)

            def _handle(self) -> None:
                body = self.read_body()
                key = self.headers.get("Idempotency-Key") if self.command == "POST" else None
                with lock:
                    if key is not None and key in cache:
                        first_body, status, content = cache[key]
                        self._answer(*((status, content) if first_body == body else (400, KEY_REUSED)))
                        return
                    status, _, content = self.forward(target, body)
                    proxy.forwarded.append((self.path, body.decode()))
                    if key is not None:
                        cache[key] = (body, status, content)
                self._answer(status, content)

            do_GET = do_POST = do_DELETE = _handle

        self._serve(Handler)
