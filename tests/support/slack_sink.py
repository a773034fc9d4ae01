"""A local Slack incoming-webhook stand-in: records every POSTed JSON body."""

from __future__ import annotations

import json
from typing import Any

from tests.support.http_stub import StubHandler, ThreadedStub


class SlackSink(ThreadedStub):
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        sink = self

        class Handler(StubHandler):
            def do_POST(self) -> None:
                sink.messages.append(json.loads(self.read_body() or b"{}"))
                self.reply(200, b"ok", [("Content-Type", "text/plain")])

        self._serve(Handler)
        self.url += "/services/T000/B000/XXX"
