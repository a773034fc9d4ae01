"""A local Sentry ingest stand-in: records the envelopes the real sentry-sdk sends it."""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

from tests.support.http_stub import StubHandler, ThreadedStub


class SentrySink(ThreadedStub):
    def __init__(self) -> None:
        self.raw: list[bytes] = []
        sink = self

        class Handler(StubHandler):
            def do_POST(self) -> None:
                body = self.read_body()
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                elif encoding == "br":
                    import brotli

                    body = brotli.decompress(body)
                sink.raw.append(body)
                self.reply(200, b"{}")

        self._serve(Handler)

    @property
    def dsn(self) -> str:
        return self.url.replace("http://", "http://publickey@") + "/1"

    def events(self) -> list[dict[str, Any]]:
        """Error events (envelope items of type "event")."""
        found = []
        for envelope in self.raw:
            lines = envelope.split(b"\n")
            for header, payload in zip(lines[1::2], lines[2::2], strict=False):
                if json.loads(header).get("type") == "event":
                    found.append(json.loads(payload))
        return found
