#!/usr/bin/env python
"""Webhook ingest throughput: signed `payment_intent.succeeded` events POSTed to
/webhooks/stripe/ through gunicorn (production settings) against MariaDB; each event pays one
reservation (inbox row, locks, payment, reservation, timeline, outbox row in one transaction).
A second run re-delivers the same events (duplicates: acknowledged, not re-applied).
Prints figures; asserts nothing.

    .venv/bin/python bench/webhook_ingest.py [--seconds 10] [--clients 8] [--workers 4]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._harness import SETUP_PREAMBLE, bench_env, describe, django_shell, load, prepare_database, serving

DB = "reserve_bench_webhook"
SECRET = "whsec_bench_ingest"
SETUP = SETUP_PREAMBLE + """
pays = attempts_for(unpaid_reservations(product("WH"), %d), in_flight=True)
print(json.dumps(hook_ids(pays)))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--events", type=int, default=12000)
    args = parser.parse_args()

    env = bench_env(DB, STRIPE_WEBHOOK_SECRET=SECRET, STRIPE_API_KEY="sk_test_bench")
    prepare_database(env, DB)
    intents = json.loads(django_shell(env, SETUP % args.events))
    per_client = [intents[c::args.clients] for c in range(args.clients)]

    def make_request(worker: int, i: int):
        intent_id, reservation_id, payment_id = per_client[worker][i % len(per_client[worker])]
        event = {"id": f"evt_{intent_id}", "object": "event", "type": "payment_intent.succeeded",
                 "created": int(time.time()),
                 "data": {"object": {"id": intent_id, "object": "payment_intent", "status": "succeeded",
                                     "amount": 1000, "currency": "eur",
                                     "metadata": {"reservation_id": reservation_id, "payment_id": payment_id}}}}
        body = json.dumps(event)
        ts = int(time.time())
        mac = hmac.new(SECRET.encode(), f"{ts}.{body}".encode(), hashlib.sha256).hexdigest()
        # The harness JSON-encodes dict bodies; send the already-encoded event as the body.
        return "POST", "/webhooks/stripe/", json.loads(body), {"Stripe-Signature": f"t={ts},v1={mac}"}

    with serving(env, workers=args.workers) as port:
        first = load(port, make_request, clients=args.clients, seconds=args.seconds)
        print(f"webhook ingest (new events)  gunicorn {args.workers}w  clients {args.clients}: "
              f"{describe(first, 'events/s')}", flush=True)
        again = load(port, make_request, clients=args.clients, seconds=args.seconds)
        print(f"webhook ingest (mostly duplicates)  gunicorn {args.workers}w  clients {args.clients}: "
              f"{describe(again, 'events/s')}", flush=True)

if __name__ == "__main__":
    main()
