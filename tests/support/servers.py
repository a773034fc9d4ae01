"""Start real local servers (localstripe, the fake supplier, stand-ins) for tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port() -> int:
    """A port nobody listens on: connections are refused at once."""
    return free_port()


def wait_for_port(port: int, *, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


def start_server(cmd: Sequence[str], port: int, *, env: dict[str, str] | None = None,
                 log_name: str = "server") -> subprocess.Popen:
    log_dir = ROOT / ".test-logs"
    log_dir.mkdir(exist_ok=True)
    log = open(log_dir / f"{log_name}-{port}.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(list(cmd), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                            env={**os.environ, **(env or {})}, start_new_session=True)
    try:
        wait_for_port(port, proc=proc)
    except Exception:
        stop_server(proc)
        raise
    return proc


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def python_cmd(*args: str) -> list[str]:
    return [sys.executable, *args]
