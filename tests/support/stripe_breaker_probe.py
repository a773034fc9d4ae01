"""A second process that shares the Stripe breaker's storage with the test process.

Run: python -m tests.support.stripe_breaker_probe  (env: DATABASE_URL of the test database,
STRIPE_API_BASE, STRIPE_TIMEOUT_SECONDS, STRIPE_BREAKER_FAIL_MAX, STRIPE_BREAKER_RESET_SECONDS).
It makes one gateway call (retrieve a PaymentIntent) and prints the outcome as JSON."""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ.setdefault("TEST_QUIET_LOGS", "1")


def main() -> int:
    import django

    django.setup()
    from payments import gateway

    try:
        gateway.payment_intent_retrieve(intent_id="pi_probe_does_not_exist")
        outcome = {"outcome": "ok"}
    except gateway.StripeUnavailable as exc:
        outcome = {"outcome": "unavailable", "reason": exc.reason, "reached": exc.reached}
    except gateway.StripeRequestRejected as exc:
        outcome = {"outcome": "rejected", "http_status": exc.http_status}
    outcome["breaker"] = gateway.stripe_breaker().current_state
    outcome["calls"] = sum(gateway.calls_made.values())
    print(json.dumps(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main())
