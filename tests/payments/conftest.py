from __future__ import annotations

import uuid

import pytest
import stripe
from django.conf import settings

from payments import gateway
from tests.factories import ReservationFactory

VISA = "4242424242424242"
DECLINED_AT_CHARGE = "4000000000000341"  # localstripe: attaches, then the charge is declined
REQUIRES_3DS = "4000002500003155"


def stripe_admin(base_url: str) -> stripe.StripeClient:
    """A plain SDK client for test set-up and inspection (not our gateway)."""
    return stripe.StripeClient(settings.STRIPE_API_KEY, base_addresses={"api": base_url})


def create_payment_method(base_url: str, number: str = VISA) -> str:
    pm = stripe_admin(base_url).v1.payment_methods.create(params={
        "type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
    return pm.id


def intents_for(base_url: str, reservation_id) -> list:
    """PaymentIntents localstripe holds for a reservation (found by metadata.reservation_id)."""
    intents = stripe_admin(base_url).v1.payment_intents.list(params={"limit": 100})
    return [pi for pi in intents.auto_paging_iter()
            if (pi.to_dict().get("metadata") or {}).get("reservation_id") == str(reservation_id)]


def pay(client, reservation, *, key: str | None, payment_method: str):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(f"/api/v1/reservations/{reservation.id}/pay/", {"payment_method": payment_method},
                       format="json", **headers)


def new_key() -> str:
    return f"pay-{uuid.uuid4()}"


@pytest.fixture(autouse=True)
def _fresh_gateway_state():
    """Each test starts with no Stripe call counted (breaker rows go with the DB)."""
    gateway.calls_made.clear()
    yield
    gateway.calls_made.clear()


@pytest.fixture
def visa(stripe_local) -> str:
    return create_payment_method(stripe_local, VISA)


@pytest.fixture
def declined_card(stripe_local) -> str:
    return create_payment_method(stripe_local, DECLINED_AT_CHARGE)


@pytest.fixture
def reservation(customer, product):
    return ReservationFactory(user=customer, product=product)
