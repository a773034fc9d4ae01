"""The fake supplier (suppliers/fake_server.py) as a real subprocess, and a handle to steer it."""

from __future__ import annotations

from typing import Any

import requests

from tests.support.servers import free_port, python_cmd, start_server, stop_server


class FakeSupplier:
    def __init__(self, port: int) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"

    def control(self, **body: Any) -> dict[str, Any]:
        response = requests.post(f"{self.base_url}/_control", json=body, timeout=5)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        self.control(reset=True)

    def set_mode(self, product_code: str, mode: str) -> None:
        self.control(products={product_code: mode})

    def state(self) -> dict[str, Any]:
        return requests.get(f"{self.base_url}/_state", timeout=5).json()

    def bookings(self, *, reference: str | None = None) -> list[dict[str, Any]]:
        return [b for b in self.state()["bookings"] if reference is None or b["reference"] == reference]

    def post_count(self) -> int:
        return self.state()["requests"].get("POST /bookings", 0)


def start_fake_supplier() -> tuple[FakeSupplier, Any]:
    port = free_port()
    proc = start_server(python_cmd("-m", "suppliers.fake_server", "--port", str(port)), port,
                        log_name="fake-supplier")
    return FakeSupplier(port), proc


def stop_fake_supplier(proc: Any) -> None:
    stop_server(proc)
