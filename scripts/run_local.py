#!/usr/bin/env python
"""`make run`: the whole system on one machine, no setup.

SQLite (the default DATABASE_URL), the real local Stripe server (localstripe, on :8419) behind
the stand-in that enforces production Stripe's rules (payments/local_stripe.py) on :8420, with
our webhook registered, the fake supplier on :8421, a django-q2 cluster (outbox delivery,
expiry, reconcile, purge), and the web server on :8000. Ctrl-C stops everything."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
ENV = {**os.environ, "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings.local"),
       "PYTHONUNBUFFERED": "1"}
LOGS = ROOT / ".run"
WEB = ("127.0.0.1", 8000)
STRIPE = ("127.0.0.1", 8420)
LOCALSTRIPE = ("127.0.0.1", 8419)
SUPPLIER = ("127.0.0.1", 8421)


def manage(*args: str) -> str:
    result = subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=ENV, check=True, capture_output=True, text=True)
    return result.stdout


def port_open(addr: tuple[str, int]) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(addr) == 0


def wait_port(addr: tuple[str, int], proc: subprocess.Popen, name: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if port_open(addr):
            return
        if proc.poll() is not None:
            sys.exit(f"{name} exited early; see {LOGS / (name + '.log')}")
        time.sleep(0.1)
    sys.exit(f"{name} did not listen on {addr[0]}:{addr[1]}; see {LOGS / (name + '.log')}")


def start(name: str, cmd: list[str], addr: tuple[str, int] | None = None) -> subprocess.Popen:
    if addr and port_open(addr):
        sys.exit(f"port {addr[1]} is already in use: stop whatever listens there ({name}) and retry")
    log = open(LOGS / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    if addr:
        wait_port(addr, proc, name)
    print(f"  {name:<15} pid {proc.pid}  log {LOGS / (name + '.log')}")
    return proc


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    LOGS.mkdir(exist_ok=True)
    print("migrating the database …")
    manage("migrate", "--noinput")
    print(manage("seed_demo", f"--supplier-url=http://{SUPPLIER[0]}:{SUPPLIER[1]}"), end="")
    manage("setup_schedules")
    procs: list[subprocess.Popen] = []
    try:
        print("starting processes:")
        procs.append(start("localstripe", [str(Path(PY).parent / "localstripe"), "--port", str(LOCALSTRIPE[1])],
                           LOCALSTRIPE))
        procs.append(start("stripe", [PY, "-m", "payments.local_stripe", "--port", str(STRIPE[1]),
                                      "--upstream", f"http://{LOCALSTRIPE[0]}:{LOCALSTRIPE[1]}"], STRIPE))
        procs.append(start("fake-supplier", [PY, "-m", "suppliers.fake_server", "--port", str(SUPPLIER[1])], SUPPLIER))
        procs.append(start("web", [PY, "manage.py", "runserver", "--noreload", f"{WEB[0]}:{WEB[1]}"], WEB))
        procs.append(start("qcluster", [PY, "manage.py", "qcluster"]))
        manage("stripe_register_local_webhook", f"--url=http://{WEB[0]}:{WEB[1]}/webhooks/stripe/")
        print("  webhook         localstripe → /webhooks/stripe/ registered")
        # Needs localstripe up: the ON_REQUEST demo reservation is really paid (and refundable).
        print(manage("seed_backoffice_demo"), end="")
        print("\nReserve & Charge is running:")
        print(f"  API       http://{WEB[0]}:{WEB[1]}/api/v1/   (docs: /api/docs/)")
        print(f"  admin     http://{WEB[0]}:{WEB[1]}/admin/   (staff / staff-demo-pass)")
        print(f"  health    http://{WEB[0]}:{WEB[1]}/health/ready")
        print("Ctrl-C stops everything.")
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        dead = [p for p in procs if p.poll() is not None]
        print(f"a process exited ({dead[0].args[0]} …); stopping the rest. Logs in {LOGS}/")
    except KeyboardInterrupt:
        print("\nstopping …")
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
