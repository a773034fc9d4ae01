"""`python -m chaos` (`make chaos`): the whole run. Exits 0 only when every invariant holds, the
three-way reconciliation leaves no discrepancy open and the flapping supplier's bookings ended
CONFIRMED once it recovered.

    .venv/bin/python -m chaos [--seconds 180] [--customers 50] [--seed 13] [--keep]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from chaos.faults import FaultSchedule
from chaos.load import Recorder, declined_payment_methods, run_customers
from chaos.processes import ROOT
from chaos.topology import ENTRYPOINT, FLAPPING_PRODUCT, STRIPE_KEY, WEBHOOK_SECRET, Topology
from chaos.webhooks import WebhookRelay


def _say(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _supervise(topology: Topology, recorder: Recorder, stop: threading.Event) -> None:
    """Restart a web or worker process that died (a container restart policy)."""
    while not stop.wait(3):
        try:
            for name in topology.ensure_running():
                recorder.count(f"supervisor restarted {name}")
                _say(f"supervisor restarted {name}")
        except Exception as exc:  # a restart that failed is tried again in 3 s
            _say(f"supervisor could not restart a process: {exc}")


def _manage(topology: Topology, *args: str) -> int:
    """A manage.py command under the run's production settings; its output is printed."""
    result = subprocess.run([str(ENTRYPOINT), "manage", *args], cwd=ROOT, env=topology.env(), text=True,
                            capture_output=True, timeout=600, check=False)
    print(result.stdout, end="", flush=True)
    if result.returncode:
        print(result.stderr[-2000:], end="", flush=True)
    return result.returncode


def _load(args: argparse.Namespace, topology: Topology, recorder: Recorder, run_dir: Path,
          stop_supervising: threading.Event) -> None:
    """Customers, staff and the fault schedule for `args.seconds`."""
    from chaos.staff import run_staff

    declined = declined_payment_methods(topology.stripe_url, STRIPE_KEY)
    _say(f"load: {args.customers} customers for {args.seconds:g} s on {len(topology.webs)} web processes and "
         f"{len(topology.clusters)} worker clusters")
    started = time.monotonic()
    deadline = started + args.seconds
    threading.Thread(target=_supervise, args=(topology, recorder, stop_supervising), daemon=True).start()
    faults = FaultSchedule(topology, log=run_dir / "faults.jsonl", seconds=args.seconds, seed=args.seed + 2,
                           started=started)
    faults.start()
    customers = run_customers(tokens=topology.tokens, web_urls=topology.web_urls, products=topology.products,
                              declined=declined, recorder=recorder, deadline=deadline, seed=args.seed)
    staff = run_staff(recorder, deadline=deadline, seed=args.seed + 3)
    faults.join(timeout=args.seconds + 60)
    for thread in [*customers, staff]:
        thread.join(timeout=max(deadline - time.monotonic(), 0) + 60)


def _verdict(topology: Topology, run_dir: Path, since: dt.datetime) -> list[str]:
    """Reconciliation, the invariant checker and the flapping supplier's recovery; the failures."""
    from chaos.settle import flapping_supplier_unconfirmed

    failures = []
    _say("three-way reconciliation (reconcile_ledgers)")
    if _manage(topology, "reconcile_ledgers", "--since", since.isoformat(), "--settle-seconds", "0", "--fail-on-open"):
        failures.append("reconciliation left discrepancies open")
    _say("invariant checker (check_invariants)")
    if _manage(topology, "check_invariants", "--since", since.isoformat(),
               "--supplier-state-url", f"{topology.supplier_url}/_state", "--http-log", str(run_dir / "http.jsonl"),
               "--faults", str(run_dir / "faults.jsonl"), "--operations", str(run_dir / "operations.json")):
        failures.append("invariant violations")
    not_confirmed = flapping_supplier_unconfirmed(FLAPPING_PRODUCT)
    print(f"flapping supplier recovered, its paid bookings CONFIRMED: "
          f"{'yes' if not not_confirmed else 'NO: ' + '; '.join(not_confirmed[:10])}", flush=True)
    if not_confirmed:
        failures.append("the flapping supplier's bookings did not all end CONFIRMED")
    return failures


def run(args: argparse.Namespace, run_dir: Path) -> int:
    topology = Topology(run_dir, customers=args.customers)
    recorder = Recorder()
    relay = WebhookRelay(targets=topology.web_urls, secret=WEBHOOK_SECRET, rng=random.Random(args.seed + 1),
                         record=recorder.record)
    relay.start()
    stop_supervising = threading.Event()
    try:
        _say(f"starting the topology in {run_dir}")
        topology.up(relay_url=relay.url)
        relay.targets = topology.web_urls
        # From here on this process is also a Django client of the run's database (staff,
        # settle): configured for the topology, which only exists now.
        os.environ.update(topology.env(LOG_LEVEL="ERROR"))  # its warnings would drown the run's report
        import django

        django.setup()
        from chaos.settle import settle

        since = dt.datetime.now(tz=dt.UTC) - dt.timedelta(minutes=5)
        _load(args, topology, recorder, run_dir, stop_supervising)
        _say("load over: healing every fault, then the drain and the reconciler until idle")
        topology.stripe_control(reset=True)
        topology.supplier_control(override=None, products={FLAPPING_PRODUCT: "confirm"})  # it recovers
        left = settle(recorder, webhooks_pending=relay.pending)
        stop_supervising.set()
        recorder.count("webhooks received from localstripe", relay.stats["received"])
        for name in ("late", "twice", "stale_snapshot", "retried"):
            recorder.count(f"webhooks {name.replace('_', ' ')}", relay.stats[name])
        recorder.write(run_dir / "http.jsonl")
        (run_dir / "operations.json").write_text(json.dumps(dict(sorted(recorder.ops.items())), indent=1))
        failures = [f"not idle after settling: {left}"] if left else []
        failures += _verdict(topology, run_dir, since)
        _say("PASSED" if not failures else "FAILED: " + "; ".join(failures))
        return 1 if failures else 0
    finally:
        stop_supervising.set()
        relay.close()
        _say("stopping the topology")
        topology.down()


def main() -> None:
    parser = argparse.ArgumentParser(description="Chaos run: the scaled-out topology under load and faults.")
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("CHAOS_SECONDS") or 180))
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--run-dir", type=Path, help="default: a new directory under the system's temp dir")
    parser.add_argument("--keep", action="store_true", help="keep the run directory (logs, ledgers) afterwards")
    args = parser.parse_args()
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="reserve-chaos-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    code = 1
    try:
        code = run(args, run_dir)
    finally:
        if args.keep or code:
            _say(f"logs and ledgers kept in {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
