"""The load: simulated customers over HTTP, every answer recorded for the invariant checker.

Each customer, until the deadline: reserves (sometimes with an Idempotency-Key, retried with it
after a 503 or no answer), sometimes cancels unpaid, pays — retrying the same key after a 503 or
a lost answer, sometimes a new key, a new key after a decline — sometimes cancels once paid, and
reads its reservation. The web processes are picked at random per request (a load balancer)."""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from chaos.topology import PRODUCTS

REQUEST_TIMEOUT = 20  # above the 4 x STRIPE_TIMEOUT_SECONDS (12 s) the pay answer is bound by
CUSTOMER_CHECK_EVERY = 0.2


def problem_code(response: requests.Response) -> str:
    """The stable `code` of an error answer ("" for anything else)."""
    if response.status_code < 400 or "json" not in response.headers.get("Content-Type", ""):
        return ""
    try:
        body = response.json()
    except ValueError:
        return "(unreadable json)"
    return str(body.get("code", "")) if isinstance(body, dict) else ""


class Recorder:
    """Every HTTP answer (endpoint, status, content type, problem code, traceback?) and the
    operations done, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.answers: list[dict[str, Any]] = []
        self.ops: Counter[str] = Counter()

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.ops[name] += n

    def record(self, endpoint: str, response: requests.Response | None) -> None:
        if response is None:
            self.count(f"{endpoint}: no answer (connection lost or timed out)")
            return
        content_type = response.headers.get("Content-Type", "")
        code = problem_code(response)
        with self._lock:
            self.answers.append({"endpoint": endpoint, "status": response.status_code, "content_type": content_type,
                                 "code": code, "traceback": "Traceback (most recent call last)" in response.text})
            self.ops[f"{endpoint}: {response.status_code}{' ' + code if code else ''}"] += 1

    def write(self, path: Path) -> None:
        with self._lock:
            path.write_text("".join(json.dumps(answer) + "\n" for answer in self.answers))


@dataclass
class Customer:
    index: int
    token: str
    web_urls: list[str]
    products: dict[str, str]
    declined_methods: list[str]
    recorder: Recorder
    deadline: float
    rng: random.Random
    session: requests.Session = field(default_factory=requests.Session)

    # --- HTTP -----------------------------------------------------------------------------------

    def _call(self, endpoint: str, method: str, path: str, *, body: Any = None, key: str | None = None
              ) -> requests.Response | None:
        headers = {"Authorization": f"Token {self.token}"}
        if key:
            headers["Idempotency-Key"] = key
        url = f"{self.rng.choice(self.web_urls)}/api/v1{path}"
        try:
            response = self.session.request(method, url, json=body, headers=headers, timeout=REQUEST_TIMEOUT)
        except requests.RequestException:
            response = None
            self.session = requests.Session()  # a dead connection must not be reused
        self.recorder.record(endpoint, response)
        return response

    @staticmethod
    def _retry_after(response: requests.Response) -> float:
        try:
            return min(float(response.headers.get("Retry-After", "1")), 3.0)
        except ValueError:
            return 1.0

    def _sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, min(seconds, self.deadline + 15 - time.monotonic())))

    # --- what a customer does ---------------------------------------------------------------------

    def run(self) -> None:
        while time.monotonic() < self.deadline:
            reservation = self.reserve()
            if reservation is None:
                self._sleep(self.rng.uniform(0.2, 1.0))
                continue
            if self.rng.random() < 0.08:
                self.cancel(reservation, paid=False)
            elif self.pay(reservation) and self.rng.random() < 0.2:
                self._sleep(self.rng.uniform(0, 3))
                self.cancel(reservation, paid=True)
            if self.rng.random() < 0.3:
                self._call("reservation.get", "GET", f"/reservations/{reservation['id']}/")
                self._call("reservation.events", "GET", f"/reservations/{reservation['id']}/events/")
            self._sleep(self.rng.uniform(0.1, 1.0))

    def _product(self) -> tuple[str, str]:
        codes = list(PRODUCTS)
        code = self.rng.choices(codes, weights=[PRODUCTS[c]["weight"] for c in codes])[0]
        # The hot product sells two dates only: its inventory rows are contended and sell out.
        days = self.rng.choice([3, 4]) if PRODUCTS[code]["capacity"] else self.rng.randint(2, 60)
        return code, (dt.date.today() + dt.timedelta(days=days)).isoformat()

    def reserve(self) -> dict[str, Any] | None:
        code, date = self._product()
        body = {"product": self.products[code], "date": date, "quantity": self.rng.randint(1, 3),
                "guest_name": f"Guest {self.index}", "guest_email": f"guest{self.index}@example.com"}
        key = f"create-{uuid.uuid4()}" if self.rng.random() < 0.5 else None
        for _ in range(4):
            response = self._call("reservation.create", "POST", "/reservations/", body=body, key=key)
            if response is not None and response.status_code == 201:
                self.recorder.count("reservations created")
                return response.json()
            if response is not None and response.status_code not in (503, 429):
                return None  # sold out, too many holds: the customer moves on
            if key is None:
                return None  # without a key a retry could make a second reservation: stop
            self.recorder.count("create retried with the same key")
            self._sleep(1)
        return None

    def pay(self, reservation: dict[str, Any]) -> bool:
        """True once paid (200, or 202 then settled by Stripe)."""
        key = f"pay-{uuid.uuid4()}"
        method = self.rng.choice(self.declined_methods) if self.rng.random() < 0.1 else "pm_card_visa"
        for _ in range(12):
            if time.monotonic() > self.deadline + 10:
                self.recorder.count("pay abandoned at the end of the load")
                return False
            self.recorder.count("pay requests")
            response = self._call("reservation.pay", "POST", f"/reservations/{reservation['id']}/pay/",
                                  body={"payment_method": method}, key=key)
            if response is None:
                self.recorder.count("pay retried with the same key after no answer")
                self._sleep(1)
                continue
            status, code = response.status_code, problem_code(response)
            if status in (200, 202):
                self.recorder.count("paid" if status == 200 else "pay accepted, Stripe not finished")
                return True
            if status == 402:
                self.recorder.count("declined, paid again with another card and a new key")
                key, method = f"pay-{uuid.uuid4()}", "pm_card_visa"
                continue
            if status == 503:
                self._sleep(self._retry_after(response))
                if self.rng.random() < 0.25:
                    self.recorder.count("pay retried with a new key after a 503")
                    key = f"pay-{uuid.uuid4()}"
                else:
                    self.recorder.count("pay retried with the same key after a 503")
                continue
            if status in (409, 429) and code != "invalid_state":
                self._sleep(self._retry_after(response))
                continue
            return False  # invalid_state (expired, cancelled, paid by another attempt), validation
        return False

    def cancel(self, reservation: dict[str, Any], *, paid: bool) -> None:
        for _ in range(4):
            response = self._call("reservation.cancel", "POST", f"/reservations/{reservation['id']}/cancel/", body={})
            if response is not None and response.status_code in (200, 202):
                self.recorder.count("cancelled after paying" if paid else "cancelled unpaid")
                return
            if response is not None and response.status_code != 503:
                return
            self._sleep(1)


def declined_payment_methods(stripe_url: str, api_key: str, n: int = 3) -> list[str]:
    """Cards localstripe declines at charge time (4000000000000341)."""
    methods = []
    for _ in range(n):
        response = requests.post(f"{stripe_url}/v1/payment_methods", auth=(api_key, ""), timeout=10, data={
            "type": "card", "card[number]": "4000000000000341", "card[exp_month]": "12", "card[exp_year]": "2034",
            "card[cvc]": "123"})
        response.raise_for_status()
        methods.append(response.json()["id"])
    return methods


def run_customers(*, tokens: list[str], web_urls: list[str], products: dict[str, str], declined: list[str],
                  recorder: Recorder, deadline: float, seed: int) -> list[threading.Thread]:
    threads = []
    for i, token in enumerate(tokens):
        customer = Customer(index=i, token=token, web_urls=web_urls, products=products, declined_methods=declined,
                            recorder=recorder, deadline=deadline, rng=random.Random(seed * 1000 + i))
        thread = threading.Thread(target=customer.run, name=f"customer-{i}", daemon=True)
        thread.start()
        threads.append(thread)
    return threads
