from __future__ import annotations

import pytest

from outbox.models import OutboxEvent
from payments import gateway
from payments.models import Payment, PaymentStatus
from reservations.models import ReservationStatus
from tests.conftest import client_for
from tests.factories import ReservationFactory
from tests.payments.conftest import create_payment_method, intents_for, new_key, pay

pytestmark = pytest.mark.django_db


def test_pay_charges_once_and_books_the_supplier_in_the_same_transaction(api, reservation, visa, stripe_local):
    response = pay(api, reservation, key=new_key(), payment_method=visa)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "PAID"
    assert body["supplier_status"] == "PENDING"
    assert body["payment"]["status"] == "SUCCEEDED"
    assert body["payment"]["amount"] == reservation.amount
    assert body["payment"]["client_secret"] is None
    assert "Idempotent-Replayed" not in response
    payment = Payment.objects.get(reservation=reservation)
    assert payment.in_flight_for is None
    [intent] = intents_for(stripe_local, reservation.id)
    assert intent.id == payment.stripe_payment_intent_id
    assert intent.status == "succeeded"
    assert intent.amount == reservation.amount
    outbox = OutboxEvent.objects.get(reservation=reservation)
    assert (outbox.topic, outbox.dedup_key, outbox.payload) == (
        "supplier.book", f"supplier.book:{reservation.id}", {"reservation_id": str(reservation.id)})
    timeline = [(e.to_status, e.actor) for e in reservation.events.order_by("id")]
    assert ("PAID", "stripe") in timeline


def test_replay_returns_the_stored_response_without_calling_stripe(api, reservation, visa):
    key = new_key()
    first = pay(api, reservation, key=key, payment_method=visa)
    calls = sum(gateway.calls_made.values())

    again = pay(api, reservation, key=key, payment_method=visa)

    assert again.status_code == first.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert sum(gateway.calls_made.values()) == calls


def test_same_key_with_another_body_is_409_reused(api, reservation, visa, stripe_local):
    key = new_key()
    assert pay(api, reservation, key=key, payment_method=visa).status_code == 200

    other = pay(api, reservation, key=key, payment_method=create_payment_method(stripe_local))

    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"


def test_same_key_on_another_reservation_is_409_reused(api, customer, product, reservation, visa):
    key = new_key()
    assert pay(api, reservation, key=key, payment_method=visa).status_code == 200
    second = ReservationFactory(user=customer, product=product)

    response = pay(api, second, key=key, payment_method=visa)

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"


def test_missing_key_is_400_and_calls_no_one(api, reservation, visa):
    response = pay(api, reservation, key=None, payment_method=visa)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "idempotency_key_missing"
    assert not Payment.objects.exists()
    assert not gateway.calls_made


def test_key_longer_than_255_is_400(api, reservation, visa):
    response = pay(api, reservation, key="k" * 256, payment_method=visa)
    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_invalid"


def test_declined_card_is_402_and_the_reservation_stays_payable(api, reservation, declined_card, visa, stripe_local):
    declined = pay(api, reservation, key=new_key(), payment_method=declined_card)

    assert declined.status_code == 402, declined.content
    assert declined.json()["code"] == "card_declined"
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.PENDING_PAYMENT
    failed = Payment.objects.get(reservation=reservation)
    assert failed.status == PaymentStatus.FAILED
    assert failed.in_flight_for is None
    assert api.get(f"/api/v1/reservations/{reservation.id}/").json()["payment"]["status"] == "FAILED"

    paid = pay(api, reservation, key=new_key(), payment_method=visa)

    assert paid.status_code == 200, paid.content
    assert paid.json()["status"] == "PAID"
    assert Payment.objects.filter(reservation=reservation).count() == 2


def test_declined_replay_answers_402_again(api, reservation, declined_card):
    key = new_key()
    first = pay(api, reservation, key=key, payment_method=declined_card)
    again = pay(api, reservation, key=key, payment_method=declined_card)
    assert (first.status_code, again.status_code) == (402, 402)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()


def test_paying_a_paid_reservation_is_409_invalid_state(api, reservation, visa):
    assert pay(api, reservation, key=new_key(), payment_method=visa).status_code == 200
    response = pay(api, reservation, key=new_key(), payment_method=visa)
    assert response.status_code == 409
    assert response.json()["code"] == "invalid_state"


@pytest.mark.parametrize("status", [ReservationStatus.EXPIRED, ReservationStatus.CANCELLED])
def test_ended_reservation_cannot_be_paid(api, customer, product, visa, status):
    ended = ReservationFactory(user=customer, product=product, status=status)
    response = pay(api, ended, key=new_key(), payment_method=visa)
    assert response.status_code == 409
    assert response.json()["code"] == "invalid_state"
    assert not gateway.calls_made


def test_another_customers_reservation_is_404(other_customer, reservation, visa):
    response = pay(client_for(other_customer), reservation, key=new_key(), payment_method=visa)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    # Refused before anything happened: no attempt, no Stripe call.
    assert not Payment.objects.filter(reservation=reservation).exists()
    assert sum(gateway.calls_made.values()) == 0


def test_card_needing_authentication_answers_202_with_client_secret(api, reservation, stripe_local):
    from tests.payments.conftest import REQUIRES_3DS

    response = pay(api, reservation, key=new_key(), payment_method=create_payment_method(stripe_local, REQUIRES_3DS))

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "PENDING_PAYMENT"
    assert body["payment"]["status"] == "REQUIRES_ACTION"
    assert body["payment"]["client_secret"]
    # Still in flight: another pay with a different key must not start a second charge.
    other = pay(api, reservation, key=new_key(), payment_method=create_payment_method(stripe_local))
    assert other.status_code == 409
    assert other.json()["code"] == "payment_in_progress"


def test_pay_sends_what_production_stripe_accepts_without_a_return_url(api, reservation, visa, strict_stripe,
                                                                      settings):
    """B7: the strict stand-in refuses confirm=true without return_url unless redirect methods are
    ruled out; the request also carries the pinned API version."""
    assert pay(api, reservation, key=new_key(), payment_method=visa).status_code == 200

    [create] = strict_stripe.intent_creates()
    assert create.params["automatic_payment_methods[enabled]"] == "true"
    assert create.params["automatic_payment_methods[allow_redirects]"] == "never"
    assert "return_url" not in create.params
    assert create.stripe_version == settings.STRIPE_API_VERSION


def test_with_a_return_url_redirect_methods_are_offered_and_202_carries_the_redirect(api, reservation,
                                                                                    stripe_local, strict_stripe):
    from tests.payments.conftest import REQUIRES_3DS

    pm = create_payment_method(stripe_local, REQUIRES_3DS)
    response = api.post(f"/api/v1/reservations/{reservation.id}/pay/",
                        {"payment_method": pm, "return_url": "https://shop.example/back"}, format="json",
                        HTTP_IDEMPOTENCY_KEY=new_key())

    assert response.status_code == 202, response.content
    payment = response.json()["payment"]
    assert payment["status"] == "REQUIRES_ACTION"
    assert payment["client_secret"]
    assert payment["next_action"]["type"] == "redirect_to_url"
    assert payment["next_action"]["redirect_to_url"]["return_url"] == "https://shop.example/back"
    [create] = strict_stripe.intent_creates()
    assert create.params["return_url"] == "https://shop.example/back"
    assert create.params["automatic_payment_methods[allow_redirects]"] == "always"


def test_a_request_production_stripe_refuses_fails_against_the_stand_in(stripe_local):
    """The stand-in is strict: the create we used to send (confirm=true, no automatic payment
    methods choice, no return_url) is refused as production Stripe refuses it."""
    from tests.payments.conftest import stripe_admin

    admin = stripe_admin(stripe_local)
    with pytest.raises(Exception, match="return_url"):
        admin.v1.payment_intents.create(params={"amount": 1000, "currency": "eur", "payment_method": "pm_card_visa",
                                                "confirm": True})
    with pytest.raises(Exception, match="confirm=true"):
        admin.v1.payment_intents.create(params={"amount": 1000, "currency": "eur", "payment_method": "pm_card_visa",
                                                "return_url": "https://x.example"})


@pytest.mark.parametrize("return_url", ["not a url", "ftp://example.com/x", "https://" + "a" * 2000 + ".com"])
def test_an_invalid_return_url_is_a_400(api, reservation, visa, return_url):
    response = api.post(f"/api/v1/reservations/{reservation.id}/pay/", {"payment_method": visa,
                                                                        "return_url": return_url},
                        format="json", HTTP_IDEMPOTENCY_KEY=new_key())
    assert response.status_code == 400
    assert "return_url" in response.json()["errors"]
