"""`manage.py check_invariants`: the invariant checker (G5) over our database, Stripe's ledger and
the supplier's ledger. Prints a table — faults injected and operations done when a chaos run
passes its logs, then the violations of each invariant — and exits 1 on any violation (2 when a
ledger could not be read).

    manage.py check_invariants --since 7d
    manage.py check_invariants --since 2h --supplier-state-url http://127.0.0.1:8421/_state \\
        --http-log run/http.jsonl --faults run/faults.jsonl --operations run/operations.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ledgers.invariants import INVARIANTS, invariants_check
from ledgers.management.commands.reconcile_ledgers import parse_moment
from ledgers.snapshot import LedgerUnreadable, snapshot_load
from payments import gateway

SHOWN_PER_INVARIANT = 10


class Command(BaseCommand):
    help = "Check the system's invariants over our database, Stripe's ledger and the supplier's ledger."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", default="30d", help="ISO date/time or a duration back from now (default 30d)")
        parser.add_argument("--supplier-state-url", action="append", default=[],
                            help="a supplier's whole ledger (the fake supplier's /_state); default: ask each "
                                 "supplier by reference through its adapter")
        parser.add_argument("--http-log", type=Path, help="JSON lines of HTTP answers a load driver recorded")
        parser.add_argument("--faults", type=Path, help="JSON lines of faults injected (printed)")
        parser.add_argument("--operations", type=Path, help="JSON object of operations done (printed)")

    def handle(self, *args: Any, **options: Any) -> None:
        write = self.stdout.write
        if options["faults"]:
            faults = sorted((json.loads(line) for line in options["faults"].read_text().splitlines() if line.strip()),
                            key=lambda fault: fault["t"])
            write(f"faults injected: {len(faults)}")
            for fault in faults:
                write(f"  t+{fault['t']:>6.1f}s  {fault['fault']:<24} {fault.get('detail', '')}")
        if options["operations"]:
            operations = json.loads(options["operations"].read_text())
            write("operations:")
            for name, count in operations.items():
                write(f"  {name:<44} {count:>7}")
        try:
            snapshot = snapshot_load(since=parse_moment(options["since"]),
                                     supplier_state_urls=options["supplier_state_url"], http_log=options["http_log"])
        except (LedgerUnreadable, gateway.GatewayError) as exc:
            raise CommandError(f"a ledger could not be read: {exc}", returncode=2) from exc
        results = invariants_check(snapshot)
        answers = "not recorded" if snapshot.http_answers is None else len(snapshot.http_answers)
        write(f"ledgers: {len(snapshot.stripe_intents)} Stripe intents, {len(snapshot.stripe_refunds)} refunds, "
              f"{len(snapshot.supplier_bookings)} supplier bookings, HTTP answers {answers}")
        write(f"{'invariant':<100} violations")
        for name, sentence, _ in INVARIANTS:
            skipped = name == "http_answers_documented" and snapshot.http_answers is None
            write(f"  {sentence:<98} {'skipped' if skipped else len(results[name]):>10}")
        total = sum(len(found) for found in results.values())
        write(f"  {'total':<98} {total:>10}")
        for name, found in results.items():
            for violation in found[:SHOWN_PER_INVARIANT]:
                write(f"  ! {name}: {violation.subject}: {violation.detail}")
            if len(found) > SHOWN_PER_INVARIANT:
                write(f"  ! {name}: … and {len(found) - SHOWN_PER_INVARIANT} more")
        if total:
            raise CommandError(f"{total} invariant violation(s)", returncode=1)
