"""B11: the answer to a keyed request is stored in the transaction that commits its effect. A
process that dies right after that commit (before anything else) leaves the answer stored, so
the retry after the stale bound replays it instead of doing the effect a second time; and a
retry after an unknown outcome that later resolved answers the final outcome, never a 409."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from common import faults
from common.models import IdempotencyKey
from payments.models import Payment
from reservations.models import Reservation
from tests.payments.conftest import new_key, pay
from tests.support.stripe_events import intent_event, post_event

pytestmark = pytest.mark.django_db


class ProcessDied(BaseException):
    """Not an Exception: nothing in the request path catches it, as nothing survives a SIGKILL."""


@pytest.fixture
def die_after_the_effect(monkeypatch):
    def hook(point: str) -> None:
        if point == "idempotency.answered":
            raise ProcessDied(point)

    monkeypatch.setattr(faults, "hook", hook)
    yield
    monkeypatch.setattr(faults, "hook", None)


def _locks_go_stale() -> None:
    IdempotencyKey.objects.update(locked_at=timezone.now() - dt.timedelta(
        seconds=django_settings.IDEMPOTENCY_LOCK_STALE_SECONDS + 1))


def _create_body(product) -> dict:
    return {"product": str(product.id), "date": (timezone.localdate() + dt.timedelta(days=3)).isoformat(),
            "quantity": 1, "guest_name": "Grace Hopper", "guest_email": "grace@example.test"}


def test_a_create_whose_process_died_after_commit_is_replayed_not_repeated(api, product, monkeypatch,
                                                                          die_after_the_effect):
    with pytest.raises(ProcessDied):
        api.post("/api/v1/reservations/", _create_body(product), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    [created] = Reservation.objects.all()
    monkeypatch.setattr(faults, "hook", None)
    _locks_go_stale()

    retry = api.post("/api/v1/reservations/", _create_body(product), format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert retry.status_code == 201, retry.content
    assert retry["Idempotent-Replayed"] == "true"
    assert retry.json()["id"] == str(created.id)
    assert Reservation.objects.count() == 1


def test_a_pay_whose_process_died_after_commit_replays_the_stored_200(api, reservation, visa, monkeypatch,
                                                                      die_after_the_effect):
    key = new_key()
    with pytest.raises(ProcessDied):
        pay(api, reservation, key=key, payment_method=visa)
    monkeypatch.setattr(faults, "hook", None)
    _locks_go_stale()

    retry = pay(api, reservation, key=key, payment_method=visa)

    assert retry.status_code == 200, retry.content
    assert retry["Idempotent-Replayed"] == "true"
    assert Payment.objects.filter(reservation=reservation).count() == 1


def test_a_same_key_retry_after_a_503_that_a_webhook_settled_answers_200(api, reservation, visa, strict_stripe,
                                                                         settings, client):
    settings.STRIPE_TIMEOUT_SECONDS = 0.5
    key = new_key()
    strict_stripe.lose_answers = True  # Stripe charges; the answer never reaches us
    assert pay(api, reservation, key=key, payment_method=visa).status_code == 503
    strict_stripe.lose_answers = False
    attempt = Payment.objects.get(reservation=reservation)
    attempt.stripe_payment_intent_id = "pi_from_the_webhook"
    assert post_event(client, intent_event("payment_intent.succeeded", attempt, status="succeeded")).status_code == 200

    retry = pay(api, reservation, key=key, payment_method=visa)

    assert retry.status_code == 200, retry.content
    assert retry.json()["status"] == "PAID"
    assert retry.json()["payment"]["status"] == "SUCCEEDED"
    assert Payment.objects.filter(reservation=reservation).count() == 1
