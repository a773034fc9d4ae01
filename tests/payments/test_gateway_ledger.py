"""Stripe's ledger by time window (H1): every PaymentIntent and refund, paged and filtered on
`created` by the gateway (localstripe has no `created` filter)."""

from __future__ import annotations

import time

import pytest

from payments import gateway
from tests.payments.conftest import create_payment_method, new_key

pytestmark = pytest.mark.django_db


def _charge(amount: int, metadata: dict[str, str]) -> gateway.IntentResult:
    return gateway.payment_intent_create(amount=amount, currency="eur", payment_method="pm_card_visa",
                                         metadata=metadata, idempotency_key=new_key())


def test_intents_and_refunds_are_listed_page_by_page_within_the_window(stripe_local, monkeypatch):
    monkeypatch.setattr(gateway, "LIST_PAGE_SIZE", 2)  # five intents: three pages
    since = int(time.time())
    mine = [_charge(1000 + i, {"reservation_id": f"ledger-{since}-{i}"}) for i in range(5)]
    refund = gateway.refund_create(payment_intent_id=mine[0].id, amount=400, metadata={"refund_id": "r-1"},
                                   idempotency_key=new_key())

    intents = {i.id: i for i in gateway.payment_intents_list(created_gte=since)}
    refunds = {r.id: r for r in gateway.refunds_list(created_gte=since)}
    later = gateway.payment_intents_list(created_gte=int(time.time()) + 60)

    assert {pi.id for pi in mine} <= set(intents)
    first = intents[mine[0].id]
    assert (first.status, first.amount, first.amount_received, first.metadata["reservation_id"]) == (
        "succeeded", 1000, 1000, f"ledger-{since}-0")
    assert since <= first.created <= time.time()
    assert refunds[refund.id].payment_intent_id == mine[0].id
    assert (refunds[refund.id].amount, refunds[refund.id].metadata) == (400, {"refund_id": "r-1"})
    assert later == []


def test_a_failed_intent_captured_nothing(stripe_local):
    declined = create_payment_method(stripe_local, "4000000000000341")
    since, marker = int(time.time()), new_key()
    with pytest.raises(gateway.CardDeclined):
        gateway.payment_intent_create(amount=900, currency="eur", payment_method=declined,
                                      metadata={"reservation_id": marker}, idempotency_key=new_key())

    listed = gateway.payment_intents_list(created_gte=since)
    [intent] = [i for i in listed if i.metadata.get("reservation_id") == marker]

    assert (intent.status, intent.amount_received) == ("requires_payment_method", 0)


def test_listing_while_stripe_is_down_is_unavailable(stripe_local, strict_stripe):
    gateway.payment_intents_list(created_gte=0)  # a kept-alive connection, which "down" drops too
    strict_stripe.control({"down": True})

    with pytest.raises(gateway.StripeUnavailable):
        gateway.payment_intents_list(created_gte=0)
