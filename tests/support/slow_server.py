"""An HTTP server that answers too late: every request waits past the client's timeout.
It counts the requests that reached it, so a test can prove an open breaker calls no one."""

from __future__ import annotations

import contextlib
import threading

from tests.support.http_stub import StubHandler, ThreadedStub


class SlowServer(ThreadedStub):
    def __init__(self, *, delay: float = 30.0) -> None:
        self.delay = delay
        self.requests = 0
        self._lock = threading.Lock()
        self._release = threading.Event()
        server = self

        class Handler(StubHandler):
            def _slow(self) -> None:
                with server._lock:
                    server.requests += 1
                self.read_body()
                # Waits on an event rather than sleeping, so stopping the server ends it at once.
                server._release.wait(server.delay)
                with contextlib.suppress(OSError):  # the client gave up long ago
                    self.reply(200, b"{}")

            do_GET = do_POST = do_DELETE = _slow

        self._serve(Handler)
        self.port = self._httpd.server_address[1]

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        super().__exit__(*exc)
