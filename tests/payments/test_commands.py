from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from payments.models import Payment, StripeEvent, StripeEventStatus
from tests.payments.conftest import create_payment_method, new_key, pay
from tests.support.servers import closed_port, free_port, start_server, stop_server


@pytest.fixture
def private_localstripe(settings):
    """A localstripe of its own: a registered webhook would otherwise stay registered in the
    shared one and send every later test's events to the live server."""
    from payments.local_stripe import StrictStripe

    port = free_port()
    proc = start_server([str(Path(sys.executable).parent / "localstripe"), "--port", str(port), "--from-scratch"],
                        port, log_name="localstripe-private")
    stand_in = StrictStripe(f"http://127.0.0.1:{port}")  # production Stripe's rules, as in make run
    settings.STRIPE_API_BASE = stand_in.url
    yield settings.STRIPE_API_BASE
    stand_in.stop()
    stop_server(proc)


@pytest.mark.django_db(transaction=True)
def test_localstripe_delivers_signed_webhooks_to_the_registered_url(live_server, api, reservation,
                                                                    private_localstripe):
    """End to end: the command registers us, localstripe signs and posts its own event."""
    call_command("stripe_register_local_webhook", url=f"{live_server.url}/webhooks/stripe/")

    visa = create_payment_method(private_localstripe)
    assert pay(api, reservation, key=new_key(), payment_method=visa).status_code == 200
    intent_id = Payment.objects.get(reservation=reservation).stripe_payment_intent_id

    deadline = time.monotonic() + 15  # localstripe waits 1 s before it sends
    ours = StripeEvent.objects.filter(type="payment_intent.succeeded", payload__data__object__id=intent_id)
    while not ours.exists():
        assert time.monotonic() < deadline, "localstripe never delivered the webhook"
        time.sleep(0.05)
    event = ours.get()
    assert event.status == StripeEventStatus.PROCESSED  # verified and applied (a no-op: already paid)


def test_register_fails_loudly_when_localstripe_is_not_there(settings):
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(CommandError, match="not reachable"):
        call_command("stripe_register_local_webhook", url="http://127.0.0.1:8000/webhooks/stripe/")
