from __future__ import annotations

import time

import pytest
from django.core.management import CommandError, call_command

from payments.models import StripeEvent, StripeEventStatus
from tests.payments.conftest import new_key, pay
from tests.support.servers import closed_port


@pytest.mark.django_db(transaction=True)
def test_localstripe_delivers_signed_webhooks_to_the_registered_url(live_server, api, reservation, visa, stripe_local):
    """End to end: the command registers us, localstripe signs and posts its own event."""
    call_command("stripe_register_local_webhook", url=f"{live_server.url}/webhooks/stripe/")

    assert pay(api, reservation, key=new_key(), payment_method=visa).status_code == 200

    deadline = time.monotonic() + 15  # localstripe waits 1 s before it sends
    while not StripeEvent.objects.filter(type="payment_intent.succeeded").exists():
        assert time.monotonic() < deadline, "localstripe never delivered the webhook"
        time.sleep(0.05)
    event = StripeEvent.objects.get(type="payment_intent.succeeded")
    assert event.status == StripeEventStatus.PROCESSED  # verified and applied (a no-op: already paid)


def test_register_fails_loudly_when_localstripe_is_not_there(settings):
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(CommandError, match="not reachable"):
        call_command("stripe_register_local_webhook", url="http://127.0.0.1:8000/webhooks/stripe/")
