"""Tell the local Stripe server (localstripe) where our webhook is; the demo run calls this."""

from __future__ import annotations

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

# localstripe only ever emits these two.
EVENTS = ["payment_intent.succeeded", "payment_intent.payment_failed"]


class Command(BaseCommand):
    help = "Register our Stripe webhook with localstripe (POST {STRIPE_API_BASE}/_config/webhooks/{id})."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--url", required=True, help="e.g. http://127.0.0.1:8000/webhooks/stripe/")
        parser.add_argument("--id", default="reserve", help="webhook id in localstripe")

    def handle(self, *args, **options) -> None:
        if not settings.STRIPE_WEBHOOK_SECRET:
            raise CommandError("STRIPE_WEBHOOK_SECRET is not set")
        endpoint = f"{settings.STRIPE_API_BASE.rstrip('/')}/_config/webhooks/{options['id']}"
        data = [("url", options["url"]), ("secret", settings.STRIPE_WEBHOOK_SECRET)]
        data += [(f"events[{i}]", name) for i, name in enumerate(EVENTS)]
        try:
            response = requests.post(endpoint, data=data, timeout=settings.STRIPE_TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            raise CommandError(f"localstripe not reachable at {settings.STRIPE_API_BASE}: {exc}") from exc
        if response.status_code != 200:
            raise CommandError(f"localstripe answered {response.status_code}: {response.text[:200]}")
        self.stdout.write(f"webhook {options['id']} → {options['url']} registered")
