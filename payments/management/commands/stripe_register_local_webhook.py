"""Tell the local Stripe server (localstripe) where our webhook is; the demo run calls this."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

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
        if urllib.parse.urlsplit(endpoint).scheme not in ("http", "https"):
            raise CommandError(f"STRIPE_API_BASE must be an http(s) URL, not {settings.STRIPE_API_BASE!r}")
        request = urllib.request.Request(endpoint, data=urllib.parse.urlencode(data).encode(),  # noqa: S310
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=settings.STRIPE_TIMEOUT_SECONDS) as response:  # noqa: S310
                response.read()
        except urllib.error.HTTPError as exc:
            raise CommandError(f"localstripe answered {exc.code}: {exc.read()[:200]!r}") from exc
        except OSError as exc:  # refused, unreachable, timed out
            raise CommandError(f"localstripe not reachable at {settings.STRIPE_API_BASE}: {exc}") from exc
        self.stdout.write(f"webhook {options['id']} → {options['url']} registered")
