"""The chaos run (G5): the scaled-out topology under load with faults injected for real, then
the invariant checker over our database, Stripe's ledger and the supplier's ledger.

    make chaos                      # CHAOS_SECONDS=180 by default
    .venv/bin/python -m chaos --seconds 60 --customers 50 --seed 13

- `processes` — real processes on loopback: a MariaDB and a Redis of the run's own (so they can
  be stopped and restarted), helpers to start, kill and find them;
- `topology` — what runs: two gunicorn web processes and two worker clusters (the image's
  `web` and `worker` roles, production settings, Redis broker), localstripe behind the strict
  Stripe stand-in (switched through its control port), the fake supplier, the webhook relay;
- `webhooks` — Stripe's events delivered late, twice and out of order;
- `load` — simulated customers over HTTP (every answer recorded) and staff acting through the
  services;
- `faults` — the fault schedule, each fault logged with its time;
- `settle` — after the load: heal, run the drain and the reconciler until idle;
- `__main__` — the run, then `reconcile_ledgers` and `check_invariants`; exits non-zero on
  any violation or open discrepancy.

The harness is not part of the apps: it drives them from outside, through their processes,
their HTTP APIs and (for staff) their services."""
