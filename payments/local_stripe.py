"""Production Stripe's rules in front of localstripe (B7): the "Stripe" of the tests and of
`make run`.

    python -m payments.local_stripe --port 8420 --upstream http://127.0.0.1:8419

localstripe is a real Stripe server for functional tests, but it accepts requests that
production Stripe refuses, refuses parameters production Stripe requires, and ignores
`Idempotency-Key`. Every test that talks to "Stripe", and the demo run, go through this
stand-in, so a request production Stripe would refuse fails a test:

- **Automatic payment methods.** On current API versions a PaymentIntent has automatic
  payment methods on by default; for an account with a redirect-based method enabled in the
  Dashboard (the default here), `confirm=true` without `return_url` is refused unless the
  intent sets `automatic_payment_methods[enabled]=true` with `allow_redirects=never`, or
  explicit `payment_method_types`. `return_url` needs `confirm=true`; the two ways of choosing
  methods exclude each other. With a `return_url`, the next action is a redirect.
- **Idempotency layer** (docs.stripe.com/idempotency): the first result of a key is saved once
  the endpoint began executing (a 2xx, a 402 decline, a 5xx) and replayed to every retry; the
  same key with other parameters or on another endpoint is 400 `idempotency_error`; a key whose
  first request is still executing is 409 `idempotency_key_in_use`; validation failures are
  not saved.
- **Unknown PaymentMethod** is 400 `resource_missing` on `payment_method` (localstripe: 404).
- **Refunds** never exceed what is left of the charge (`charge_already_refunded`).
- **API keys**: with `expected_key` set, any other key is 401 (a rotated or wrong key).
- **Search** by `metadata['payment_id']` (localstripe has no search API).

Fault modes for the failure tests: `fail_with` (answer an HTTP error without executing),
`fail_after_executing` (execute, then answer and save a 500: its key replays the 500),
`delay` (answer late, after executing or before), `lose_answers` (execute, then drop the
connection: the answer is lost), `stop()`/`start()` (connection refused), `refund_status`
(Stripe answers a refund as `pending` or `failed`). `requests` records what arrived.

Run as a process (`--control-port`), the same modes are switched from outside by `POST
/_control` with JSON on the control port, which stays up while the API port is down (the
chaos run, `chaos/`): `{"down": true}`, `{"delay_seconds": 10}` (hanging), `{"fail_with":
[500, "api_error", ""]}`, `{"execution_seconds": 4}` (409 in flight), `{"lose_answers":
true}`, `{"reset": true}`; `GET /_control` shows the modes and how many requests arrived."""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

RETURN_URL_REQUIRED = (
    "A 'return_url' must be specified because this Payment Intent is configured to automatically accept the "
    "payment methods enabled in the Dashboard, some of which may require a full page redirect to succeed. If you "
    "do not want to accept redirect-based payment methods, set 'automatic_payment_methods[enabled]' to true and "
    "'automatic_payment_methods[allow_redirects]' to 'never' when creating Setup Intents and Payment Intents."
)
KEY_REUSED = ("Keys for idempotent requests can only be used with the same parameters they were first used with. "
              "Try using a key other than '{key}' if you meant to execute a different request.")
KEY_IN_USE = ("There is currently another in-progress request using this Idempotent Key (that probably means you "
              "submitted twice, and the other request is still going through): {key}. Please try again later.")
# Parameters production Stripe understands that localstripe refuses ("Unexpected ...").
_NOT_FORWARDED_PREFIXES = ("automatic_payment_methods", "return_url")


def _error(status: int, message: str, *, type_: str = "invalid_request_error", **extra: Any) -> tuple[int, bytes]:
    return status, json.dumps({"error": {"type": type_, "message": message, **extra}}).encode()


@dataclass
class Seen:
    method: str
    path: str
    idempotency_key: str | None
    params: dict[str, str]
    stripe_version: str | None = None
    status: int = 0
    replayed: bool = False


@dataclass
class _Saved:
    fingerprint: tuple
    status: int
    content: bytes


@dataclass
class StrictStripe:
    upstream: str
    # Real accounts have redirect-based methods (iDEAL, Klarna, ...) enabled in the Dashboard.
    redirect_methods_enabled: bool = True
    expected_key: str | None = None
    # (status, stripe error type, code): answer this instead of executing (e.g. 500 api_error).
    fail_with: tuple[int, str, str] | None = None
    fail_count: int | None = None  # how many requests fail_with applies to (None: all)
    # Execute the request, then answer (and save for its key) a 500 api_error instead.
    fail_after_executing: bool = False
    delay_seconds: float = 0.0
    delay_after_executing: bool = False
    execution_seconds: float = 0.0  # the first request of a key stays "executing" this long (409s)
    lose_answers: bool = False
    refund_status: str | None = None  # answer refunds with this status (pending, failed)
    port: int = 0  # 0: any free port
    host: str = "127.0.0.1"
    requests: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._target = urlsplit(self.upstream)
        self._lock = threading.Lock()
        self._saved: dict[str, _Saved] = {}
        self._executing: set[str] = set()
        self._refunded: dict[str, int] = {}  # payment_intent -> amount refunded
        self._scan_lock = threading.Lock()
        self._scanned_to: str | None = None  # the last intent the search index has read
        self._by_metadata: dict[tuple[str, str], list[str]] = {}  # (metadata key, value) -> intent ids
        self._port = self.port
        self._httpd: ThreadingHTTPServer | None = None
        self._open: set[Any] = set()  # connections being served (kept alive by the clients)
        self.start()

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> None:
        """Listen (again, on the same port after stop())."""
        handler = self._handler_class()
        self._httpd = ThreadingHTTPServer((self.host, self._port), handler)
        self._httpd.daemon_threads = True
        self._port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Close the listening socket: every connection is refused until start()."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def drop_connections(self) -> None:
        """Close every connection a client holds open: with stop(), Stripe is down for clients
        that keep connections alive too (a stopped listener alone still serves those)."""
        with self._lock:
            open_now = list(self._open)
        for sock in open_now:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def reset(self) -> None:
        """Back to a healthy, strict Stripe (saved idempotent results are kept, as Stripe keeps them)."""
        self.redirect_methods_enabled = True
        self.expected_key = None
        self.fail_with = None
        self.fail_count = None
        self.fail_after_executing = False
        self.delay_seconds = 0.0
        self.delay_after_executing = False
        self.execution_seconds = 0.0
        self.lose_answers = False
        self.refund_status = None
        with self._lock:
            self.requests.clear()
        if self._httpd is None:
            self.start()

    # --- switched from outside (the control port) --------------------------------------------

    CONTROLLED = ("delay_seconds", "delay_after_executing", "fail_with", "fail_count", "fail_after_executing",
                  "execution_seconds", "lose_answers", "refund_status", "redirect_methods_enabled")

    def control(self, body: dict[str, Any]) -> dict[str, Any]:
        """Apply a control request (see the module docstring); returns the modes now in force."""
        if body.get("reset"):
            self.reset()
        for name in self.CONTROLLED:
            if name in body:
                value = body[name]
                setattr(self, name, tuple(value) if name == "fail_with" and value else value)
        if "down" in body:
            if body["down"]:
                self.stop()
                self.drop_connections()
            elif self._httpd is None:
                self.start()
        return self.control_state()

    def control_state(self) -> dict[str, Any]:
        with self._lock:
            arrived = len(self.requests)
        return {"down": self._httpd is None, "requests": arrived,
                **{name: getattr(self, name) for name in self.CONTROLLED}}

    # --- what arrived ------------------------------------------------------------------------

    def seen(self, method: str, path: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.requests if s.method == method and s.path == path]

    def intent_creates(self) -> list[Seen]:
        return self.seen("POST", "/v1/payment_intents")

    def executed_intent_creates(self) -> list[Seen]:
        """Creates that reached localstripe (not replayed from the idempotency layer, not refused)."""
        return [s for s in self.intent_creates() if s.status and not s.replayed and s.status < 500
                and s.status not in (400, 401, 409)]

    # --- the rules ---------------------------------------------------------------------------

    def _validate(self, method: str, path: str, params: dict[str, str]) -> tuple[int, bytes] | None:
        if method != "POST" or path != "/v1/payment_intents":
            return None
        apm = {k: v for k, v in params.items() if k.startswith("automatic_payment_methods")}
        types = [k for k in params if k.startswith("payment_method_types")]
        confirm = params.get("confirm") == "true"
        if apm and types:
            return _error(400, "You may only specify one of these parameters: automatic_payment_methods, "
                               "payment_method_types.", param="automatic_payment_methods")
        if apm.get("automatic_payment_methods[enabled]", "true") not in ("true", "false"):
            return _error(400, "Invalid boolean", param="automatic_payment_methods[enabled]")
        redirects = apm.get("automatic_payment_methods[allow_redirects]", "always")
        if redirects not in ("always", "never"):
            return _error(400, "Invalid allow_redirects", param="automatic_payment_methods[allow_redirects]",
                          code="parameter_invalid_string")
        if "return_url" in params and not confirm:
            return _error(400, "The parameter 'return_url' can only be used when confirm=true.", param="return_url",
                          code="parameter_invalid_empty")
        automatic = not types and apm.get("automatic_payment_methods[enabled]", "true") == "true"
        if (confirm and automatic and redirects != "never" and "return_url" not in params
                and self.redirect_methods_enabled):
            return _error(400, RETURN_URL_REQUIRED, param="return_url")
        return None

    def _refund_check(self, params: dict[str, str], headers: dict[str, str]) -> tuple[int, bytes] | None:
        intent = params.get("payment_intent", "")
        amount = int(params.get("amount") or 0)
        done = self._refunded.get(intent, 0)
        captured = self._captured(intent, headers)
        if captured is None:
            return None
        if done >= captured:
            return _error(400, f"Charge for {intent} has already been refunded.", code="charge_already_refunded")
        if amount and done + amount > captured:
            return _error(400, f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                               f"({captured - done})", param="amount", code="amount_too_large")
        return None

    def _captured(self, intent_id: str, headers: dict[str, str]) -> int | None:
        status, _, content = self._upstream("GET", f"/v1/payment_intents/{intent_id}", b"", headers)
        if status != 200:
            return None
        body = json.loads(content)
        return int(body.get("amount_received") or body.get("amount") or 0) if body.get("status") == "succeeded" \
            else None

    def _search(self, query: str, headers: dict[str, str]) -> tuple[int, bytes]:
        """Only the query the gateway uses: metadata['payment_id']:'<uuid>'. localstripe has no
        search: the stand-in indexes metadata from its intent list, reading only the intents
        created since its last search (the list keeps creation order), then fetches the matches
        afresh — a full scan per search would stall localstripe under load (the chaos run)."""
        wanted = query.partition(":")[2].strip("'\"")
        key = query.partition("[")[2].partition("]")[0].strip("'\"")
        with self._scan_lock:
            while True:
                qs = urlencode({"limit": 100, **({"starting_after": self._scanned_to} if self._scanned_to else {})})
                status, _, content = self._upstream("GET", f"/v1/payment_intents?{qs}", b"", headers)
                if status != 200:
                    return status, content
                page = json.loads(content)
                for intent in page["data"]:
                    for name, value in (intent.get("metadata") or {}).items():
                        self._by_metadata.setdefault((name, str(value)), []).append(intent["id"])
                if page["data"]:
                    self._scanned_to = page["data"][-1]["id"]
                if not page.get("has_more") or not page["data"]:
                    break
            matches = list(self._by_metadata.get((key, wanted), []))
        found = []
        for intent_id in matches:
            status, _, content = self._upstream("GET", f"/v1/payment_intents/{intent_id}", b"", headers)
            if status != 200:
                return status, content
            found.append(json.loads(content))
        return 200, json.dumps({"object": "search_result", "url": "/v1/payment_intents/search", "data": found,
                                "has_more": False, "next_page": None}).encode()

    # --- plumbing ----------------------------------------------------------------------------

    def _upstream(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, list, bytes]:
        conn = http.client.HTTPConnection(self._target.hostname, self._target.port, timeout=30)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()

    def _execute(self, method: str, path: str, params: dict[str, str], raw: bytes,
                 headers: dict[str, str]) -> tuple[int, bytes]:
        if self.fail_with is not None and (self.fail_count is None or self.fail_count > 0):
            if self.fail_count is not None:
                self.fail_count -= 1
            status, type_, code = self.fail_with
            return _error(status, f"Simulated {status}", type_=type_, code=code)
        if method == "GET" and path.startswith("/v1/payment_intents/search"):
            return self._search(dict(parse_qsl(urlsplit(path).query)).get("query", ""), headers)
        if method == "POST" and path == "/v1/refunds":
            refused = self._refund_check(params, headers)
            if refused:
                return refused
        forwarded = params
        if method == "POST" and path == "/v1/payment_intents":
            forwarded = {k: v for k, v in params.items() if not k.startswith(_NOT_FORWARDED_PREFIXES)}
            raw = urlencode(forwarded).encode()
        status, _, content = self._upstream(method, path, raw, headers)
        if method == "POST" and path == "/v1/payment_intents" and status == 404:
            return _error(400, f"No such PaymentMethod: '{params.get('payment_method', '')}'",
                          code="resource_missing", param="payment_method")
        if status == 200 and method == "POST" and path == "/v1/payment_intents":
            content = self._as_production_intent(params, content)
        if status == 200 and method == "POST" and path == "/v1/refunds":
            refund = json.loads(content)
            if self.refund_status:
                refund["status"] = self.refund_status
                content = json.dumps(refund).encode()
            if refund["status"] not in ("failed", "canceled"):  # a failed refund moved no money
                with self._lock:
                    self._refunded[params.get("payment_intent", "")] = (
                        self._refunded.get(params.get("payment_intent", ""), 0) + int(refund.get("amount") or 0))
        return status, content

    def _as_production_intent(self, params: dict[str, str], content: bytes) -> bytes:
        intent = json.loads(content)
        intent["automatic_payment_methods"] = (
            None if any(k.startswith("payment_method_types") for k in params) else
            {"enabled": True, "allow_redirects": params.get("automatic_payment_methods[allow_redirects]", "always")})
        if "return_url" in params and intent.get("status") == "requires_action":
            intent["next_action"] = {"type": "redirect_to_url", "redirect_to_url": {
                "url": f"{self.url}/3ds/{intent['id']}", "return_url": params["return_url"]}}
        return json.dumps(intent).encode()

    def _serve(self, seen: Seen, path: str, raw: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """Authentication, then Stripe's idempotency layer around validation and execution."""
        if self.expected_key and headers.get("Authorization", "") != f"Bearer {self.expected_key}":
            return _error(401, "Invalid API Key provided: sk_***", code="api_key_invalid")
        key, params = seen.idempotency_key, seen.params
        fingerprint = (seen.path, tuple(sorted(params.items())))
        with self._lock:
            saved = self._saved.get(key) if key else None
            in_use = key is not None and saved is None and key in self._executing
            if key and saved is None and not in_use:
                self._executing.add(key)
        if saved is not None:
            seen.replayed = True
            if saved.fingerprint != fingerprint:
                return _error(400, KEY_REUSED.format(key=key), type_="idempotency_error")
            return saved.status, saved.content
        if in_use:
            return _error(409, KEY_IN_USE.format(key=key), code="idempotency_key_in_use")
        try:
            refused = self._validate(seen.method, seen.path, params)
            if refused is not None:
                return refused  # validation failures are not saved
            if self.execution_seconds:
                time.sleep(self.execution_seconds)
            status, content = self._execute(seen.method, path, params, raw, headers)
            if self.fail_after_executing and seen.method == "POST":
                status, content = _error(500, "An unknown error occurred", type_="api_error")
            if key and status not in (400, 401, 404, 409, 429):  # the endpoint began executing
                with self._lock:
                    self._saved[key] = _Saved(fingerprint, status, content)
            return status, content
        finally:
            if key:
                with self._lock:
                    self._executing.discard(key)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as two writes

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with stand_in._lock:
                    stand_in._open.add(self.connection)

            def finish(self) -> None:
                with stand_in._lock:
                    stand_in._open.discard(self.connection)
                super().finish()

            def read_body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def reply(self, status: int, content: bytes, headers: list[tuple[str, str]]) -> None:
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def _answer(self, status: int, content: bytes, *, replayed: bool = False) -> None:
                if stand_in.lose_answers:
                    self.close_connection = True
                    return
                headers = [("Content-Type", "application/json")]
                if replayed:
                    headers.append(("Idempotent-Replayed", "true"))
                self.reply(status, content, headers)

            def _handle(self) -> None:
                raw = self.read_body()
                params = dict(parse_qsl(raw.decode())) if self.command == "POST" else {}
                key = self.headers.get("Idempotency-Key") if self.command == "POST" else None
                seen = Seen(self.command, urlsplit(self.path).path, key, params,
                            stripe_version=self.headers.get("Stripe-Version"))
                with stand_in._lock:
                    stand_in.requests.append(seen)
                if stand_in.delay_seconds and not stand_in.delay_after_executing:
                    time.sleep(stand_in.delay_seconds)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection", "content-length")}
                status, content = stand_in._serve(seen, self.path, raw, headers)
                seen.status = status
                if stand_in.delay_seconds and stand_in.delay_after_executing:
                    time.sleep(stand_in.delay_seconds)
                self._answer(status, content, replayed=seen.replayed)

            do_GET = do_POST = do_DELETE = _handle

        return Handler


def serve_control(stand_in: StrictStripe, *, host: str, port: int) -> ThreadingHTTPServer:
    """`POST /_control` (JSON) switches the stand-in's fault modes; `GET /_control` shows them."""

    class ControlHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            if self.path != "/_control":
                self._reply(404, {"error": "not_found"})
                return
            self._reply(200, stand_in.control_state())

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                body = None
            if self.path != "/_control" or not isinstance(body, dict):
                self._reply(400, {"error": "POST /_control with a JSON object"})
                return
            self._reply(200, stand_in.control(body))

    server = ThreadingHTTPServer((host, port), ControlHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description="Production Stripe's rules in front of localstripe.")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--upstream", default="http://127.0.0.1:8419", help="the localstripe to forward to")
    parser.add_argument("--control-port", type=int, default=0, help="serve POST /_control here (0: off)")
    args = parser.parse_args()
    stand_in = StrictStripe(args.upstream, port=args.port, host=args.host)
    print(f"Stripe stand-in on {stand_in.url} (production rules) -> localstripe {args.upstream}", flush=True)
    control = serve_control(stand_in, host=args.host, port=args.control_port) if args.control_port else None
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        if control is not None:
            control.shutdown()
        stand_in.stop()


if __name__ == "__main__":
    main()
