"""Production guards (E7), as Django system checks: `manage.py migrate`, `qcluster` and the
web role (gunicorn.conf.py) run them, so production refuses to start without the secrets it
needs or with e-mail going nowhere. Under local and test settings they stay silent.

`refuse_demo_data()` keeps the demo seed commands away from a production database."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.core.management.base import CommandError

DEV_EMAIL_BACKENDS = frozenset({
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
})


@register("production")
def production_guards(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    if not getattr(settings, "PRODUCTION", False):
        return []
    errors = []
    if settings.EMAIL_BACKEND in DEV_EMAIL_BACKENDS:
        errors.append(Error(
            f"EMAIL_BACKEND is {settings.EMAIL_BACKEND}: guest and staff e-mail would never be sent.",
            hint="Set EMAIL_URL, e.g. smtp+tls://user:password@smtp.example.com:587.", id="reserve.E001"))
    if not settings.STRIPE_API_KEY:
        errors.append(Error("STRIPE_API_KEY is empty.", hint="Set it from the Stripe dashboard's secret key.",
                            id="reserve.E002"))
    if not settings.STRIPE_WEBHOOK_SECRET:
        errors.append(Error("STRIPE_WEBHOOK_SECRET is empty: no webhook could be verified.",
                            hint="Set it to the signing secret of the webhook endpoint (whsec_...).",
                            id="reserve.E003"))
    return errors


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})


@register("production")
def insecure_http_only_on_loopback(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """INSECURE_LOCAL_HTTP drops the Secure cookie flags and HSTS: right for a plain-HTTP run on
    loopback, a session-stealing hazard anywhere a network sits between browser and server."""
    if not getattr(settings, "PRODUCTION", False) or not getattr(settings, "INSECURE_LOCAL_HTTP", False):
        return []
    remote = sorted(set(settings.ALLOWED_HOSTS) - LOOPBACK_HOSTS)
    if not remote:
        return []
    return [Warning(f"INSECURE_LOCAL_HTTP is true while ALLOWED_HOSTS names {', '.join(remote)}: session and "
                    "CSRF cookies would cross the network without the Secure flag.",
                    hint="Unset INSECURE_LOCAL_HTTP and terminate TLS in front (NUM_PROXIES=1).",
                    id="reserve.W001")]


def refuse_demo_data() -> None:
    """Demo seed commands call this first: demo users with known passwords must never exist
    in production."""
    if getattr(settings, "PRODUCTION", False):
        raise CommandError("Refusing to load demo data under production settings "
                           f"({settings.SETTINGS_MODULE}).")
