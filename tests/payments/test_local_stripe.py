"""The Stripe stand-in enforces the production rules localstripe skips (B7), so that a request
production Stripe would refuse fails a test. Exercised through the official SDK."""

from __future__ import annotations

import threading

import pytest
import stripe

from tests.payments.conftest import stripe_admin
from tests.support.outbox import wait_until

APM_NEVER = {"enabled": True, "allow_redirects": "never"}


def _create(admin, key: str | None = None, **params):
    base = {"amount": 1000, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True,
            "automatic_payment_methods": APM_NEVER}
    options = {"idempotency_key": key} if key else {}
    return admin.v1.payment_intents.create(params={**base, **params}, options=options)


def test_confirm_without_a_return_url_needs_redirects_ruled_out(stripe_local):
    admin = stripe_admin(stripe_local)
    with pytest.raises(stripe.InvalidRequestError, match="return_url") as refused:
        admin.v1.payment_intents.create(params={"amount": 1000, "currency": "eur", "payment_method": "pm_card_visa",
                                                "confirm": True})
    assert refused.value.http_status == 400
    assert _create(admin).status == "succeeded"
    assert _create(admin, automatic_payment_methods={"enabled": True},
                   return_url="https://shop.example/back").status == "succeeded"


def test_both_ways_of_choosing_methods_exclude_each_other(stripe_local):
    with pytest.raises(stripe.InvalidRequestError, match="only specify one"):
        _create(stripe_admin(stripe_local), payment_method_types=["card"])


def test_a_key_reused_with_other_parameters_is_an_idempotency_error(stripe_local):
    admin = stripe_admin(stripe_local)
    first = _create(admin, key="k-reuse")
    assert _create(admin, key="k-reuse").id == first.id  # the same request: the saved answer
    with pytest.raises(stripe.IdempotencyError):
        _create(admin, key="k-reuse", amount=2000)


def test_a_key_still_executing_is_a_409(stripe_local, strict_stripe):
    strict_stripe.execution_seconds = 1.0
    admin = stripe.StripeClient("sk_test_x", base_addresses={"api": stripe_local}, max_network_retries=0)
    started = threading.Event()
    results: list = []

    def first() -> None:
        started.set()
        results.append(_create(admin, key="k-busy"))

    thread = threading.Thread(target=first)
    thread.start()
    started.wait()
    wait_until(strict_stripe.intent_creates, timeout=5, interval=0.01, message="the first create to arrive")
    with pytest.raises(stripe.StripeError, match="another in-progress request") as busy:
        _create(admin, key="k-busy")
    thread.join()
    assert busy.value.http_status == 409
    assert results[0].status == "succeeded"


def test_an_unknown_payment_method_is_a_400_resource_missing_on_the_param(stripe_local):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        _create(stripe_admin(stripe_local), payment_method="pm_nope")
    assert (refused.value.http_status, refused.value.code, refused.value.error.param) == (
        400, "resource_missing", "payment_method")


def test_refunds_never_exceed_the_charge(stripe_local):
    admin = stripe_admin(stripe_local)
    intent = _create(admin)
    admin.v1.refunds.create(params={"payment_intent": intent.id, "amount": 600})
    with pytest.raises(stripe.InvalidRequestError, match="greater than unrefunded"):
        admin.v1.refunds.create(params={"payment_intent": intent.id, "amount": 600})
    admin.v1.refunds.create(params={"payment_intent": intent.id})
    with pytest.raises(stripe.InvalidRequestError, match="already been refunded"):
        admin.v1.refunds.create(params={"payment_intent": intent.id})


def test_search_by_metadata(stripe_local):
    admin = stripe_admin(stripe_local)
    intent = _create(admin, metadata={"payment_id": "abc-123"})
    found = admin.v1.payment_intents.search(params={"query": "metadata['payment_id']:'abc-123'"})
    assert [pi.id for pi in found.data] == [intent.id]


def test_search_sees_intents_created_after_an_earlier_search_and_their_current_status(stripe_local):
    admin = stripe_admin(stripe_local)
    query = {"query": "metadata['payment_id']:'later-1'"}
    assert admin.v1.payment_intents.search(params=query).data == []
    intent = _create(admin, metadata={"payment_id": "later-1"}, confirm=False)
    admin.v1.payment_intents.cancel(intent.id)

    [found] = admin.v1.payment_intents.search(params=query).data

    assert (found.id, found.status) == (intent.id, "canceled")


def test_a_wrong_key_is_401(stripe_local, strict_stripe):
    strict_stripe.expected_key = "sk_test_right"
    with pytest.raises(stripe.AuthenticationError):
        _create(stripe_admin(stripe_local))


def test_the_control_port_switches_fault_modes_of_a_running_stand_in(localstripe):
    import requests

    from payments.local_stripe import StrictStripe, serve_control
    from tests.support.servers import free_port

    stand_in = StrictStripe(localstripe)
    port = free_port()
    control = serve_control(stand_in, host="127.0.0.1", port=port)
    url = f"http://127.0.0.1:{port}/_control"
    admin = stripe.StripeClient("sk_test_x", base_addresses={"api": stand_in.url}, max_network_retries=0)
    try:
        assert requests.post(url, json={"down": True}, timeout=5).json()["down"] is True
        with pytest.raises(stripe.APIConnectionError):
            _create(admin)
        requests.post(url, json={"down": False, "fail_with": [500, "api_error", ""]}, timeout=5)
        with pytest.raises(stripe.APIError) as failed:
            _create(admin)
        state = requests.post(url, json={"reset": True}, timeout=5).json()

        assert failed.value.http_status == 500
        assert (state["down"], state["fail_with"], state["delay_seconds"]) == (False, None, 0.0)
        assert _create(admin).status == "succeeded"
        assert requests.post(url, data=b"[1]", timeout=5).status_code == 400
    finally:
        control.shutdown()
        stand_in.stop()
