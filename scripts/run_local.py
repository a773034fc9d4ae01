#!/usr/bin/env python
"""`make run`: the whole system on one machine, no setup.

SQLite (the default DATABASE_URL), the real local Stripe server (localstripe, on :8419) behind
the stand-in that enforces production Stripe's rules (payments/local_stripe.py) on :8420, with
our webhook registered, the fake supplier on :8421, a django-q2 cluster (outbox delivery,
expiry, reconcile, purge), and the web server on :8000. Ctrl-C or SIGTERM stops everything:
the first signal starts the shutdown, later ones are ignored until every process it started
has exited (SIGTERM, then SIGKILL after a grace period)."""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import localstripe.resources  # noqa: F401 - the classes localstripe's store names (unpickled below)

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
ENV = {**os.environ, "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings.local"),
       "PYTHONUNBUFFERED": "1"}
LOGS = Path(os.environ.get("RUN_LOG_DIR", ROOT / ".run"))
WEB = ("127.0.0.1", int(os.environ.get("RUN_WEB_PORT", "8000")))
STRIPE = ("127.0.0.1", int(os.environ.get("RUN_STRIPE_PORT", "8420")))
# localstripe itself, behind the stand-in that enforces production Stripe's rules on STRIPE.
LOCALSTRIPE = ("127.0.0.1", int(os.environ.get("RUN_LOCALSTRIPE_PORT", "8419")))
SUPPLIER = ("127.0.0.1", int(os.environ.get("RUN_SUPPLIER_PORT", "8421")))
ENV.setdefault("STRIPE_API_BASE", f"http://{STRIPE[0]}:{STRIPE[1]}")
STOP_GRACE_SECONDS = 20  # the worker lets a call in progress finish


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
    print(f"  {name:<15} pid {proc.pid}  log {LOGS / (name + '.log')}", flush=True)
    return proc


def _stop_requested(signum: int, frame: object) -> None:
    _ignore_signals()
    raise KeyboardInterrupt


def _ignore_signals() -> None:
    """From the first signal on, cleanup must run to its end: a second Ctrl-C or SIGTERM used
    to raise inside it and leave children running."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def stop_all(procs: list[subprocess.Popen]) -> None:
    """SIGTERM to each child, as an orchestrator sends it to a container's first process: the
    worker and gunicorn stop their own processes gracefully (a signal to the whole group would
    kill the cluster's processes mid-task). Each child leads its own process group
    (start_new_session): whatever is left of a group after the grace period is killed."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=max(deadline - time.monotonic(), 0.1))
    for p in procs:
        with contextlib.suppress(ProcessLookupError):  # whatever is left in the group, the leader too
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()


LOCALSTRIPE_STORE = Path("/tmp/localstripe.pickle")  # where localstripe keeps its objects between runs


def localstripe_store_usable(path: Path = LOCALSTRIPE_STORE) -> bool:
    """localstripe rewrites its whole store on every change: a run stopped mid-write leaves it
    truncated, and localstripe then refuses to start. Such a file is moved aside (with a word on
    what that means for the demo data); False when that happened."""
    if not path.exists():
        return True
    try:
        with path.open("rb") as store:
            pickle.load(store)  # localstripe's own file, written on this machine
    except Exception:  # any unreadable store is the same case
        aside = path.with_name(path.name + ".unreadable")
        path.replace(aside)
        print(f"localstripe's store {path} was unreadable (a run stopped mid-write): moved to {aside}; "
              "localstripe starts empty, so earlier demo payments are unknown to it (make demo-reset "
              "starts the demo data afresh too)")
        return False
    return True


def main() -> None:
    signal.signal(signal.SIGTERM, _stop_requested)
    signal.signal(signal.SIGINT, _stop_requested)
    LOGS.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []
    try:
        print("migrating the database (and its schedules) …")
        manage("migrate", "--noinput")
        print(manage("seed_demo", f"--supplier-url=http://{SUPPLIER[0]}:{SUPPLIER[1]}"), end="")
        print("starting processes:")
        stripe_args = ["--from-scratch"] if os.environ.get("RUN_STRIPE_FROM_SCRATCH") else []
        localstripe_store_usable()
        procs.append(start("localstripe", [str(Path(PY).parent / "localstripe"), "--port", str(LOCALSTRIPE[1]),
                                           *stripe_args], LOCALSTRIPE))
        procs.append(start("stripe", [PY, "-m", "payments.local_stripe", "--port", str(STRIPE[1]),
                                      "--upstream", f"http://{LOCALSTRIPE[0]}:{LOCALSTRIPE[1]}"], STRIPE))
        procs.append(start("fake-supplier", [PY, "-m", "suppliers.fake_server", "--port", str(SUPPLIER[1])], SUPPLIER))
        procs.append(start("web", [PY, "manage.py", "runserver", "--noreload", f"{WEB[0]}:{WEB[1]}"], WEB))
        # The worker role (a django-q2 cluster that stops gracefully); its metrics port is off here.
        procs.append(start("qcluster", [PY, "manage.py", "run_worker", "--metrics-port", "0"]))
        manage("stripe_register_local_webhook", f"--url=http://{WEB[0]}:{WEB[1]}/webhooks/stripe/")
        print("  webhook         localstripe → /webhooks/stripe/ registered")
        # Needs localstripe up: the ON_REQUEST demo reservation is really paid (and refundable).
        print(manage("seed_backoffice_demo"), end="")
        print("\nReserve & Charge is running:")
        print(f"  API       http://{WEB[0]}:{WEB[1]}/api/v1/   (docs: /api/docs/, /api/redoc/)")
        print(f"  admin     http://{WEB[0]}:{WEB[1]}/admin/   (staff / staff-demo-pass)")
        print(f"  health    http://{WEB[0]}:{WEB[1]}/health/ready   metrics: /metrics (from this machine)")
        print(f"  e-mails   printed by the worker (console backend): {LOGS / 'qcluster.log'}")
        print("Ctrl-C stops everything.", flush=True)
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        dead = [p for p in procs if p.poll() is not None]
        print(f"a process exited ({dead[0].args[0]} …); stopping the rest. Logs in {LOGS}/")
    except KeyboardInterrupt:
        print("\nstopping …", flush=True)
    finally:
        _ignore_signals()
        stop_all(procs)
        print("stopped.", flush=True)


if __name__ == "__main__":
    main()
