"""A recording proxy in front of localstripe: it forwards every request unchanged and
remembers (method, path, Idempotency-Key), because localstripe itself ignores that header
and tests must prove which key Stripe received and how many creates reached it."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from tests.support.http_stub import StubHandler, ThreadedStub


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    idempotency_key: str | None


class StripeProxy(ThreadedStub):
    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        self.seen: list[Seen] = []
        lock = threading.Lock()
        proxy = self

        class Handler(StubHandler):
            def _forward(self) -> None:
                body = self.read_body()
                with lock:
                    proxy.seen.append(Seen(self.command, self.path, self.headers.get("Idempotency-Key")))
                status, headers, content = self.forward(target, body)
                self.reply(status, content, headers)

            do_GET = do_POST = do_DELETE = _forward

        self._serve(Handler)

    def creates(self) -> list[Seen]:
        return [s for s in self.seen if s.method == "POST" and s.path == "/v1/payment_intents"]
