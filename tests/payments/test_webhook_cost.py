"""What one new webhook event costs the database (issue "performance": webhook ingest). Counted,
not timed: the statements of a payment_intent.succeeded that pays a reservation, transaction
control aside."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from payments.models import PaymentStatus, StripeEvent, StripeEventStatus
from tests.payments.factories import PaymentFactory
from tests.payments.test_pay_cost import IN_REDIS_WHEN_DEPLOYED, TRANSACTION_CONTROL
from tests.support.stripe_events import intent_event, post_event

pytestmark = pytest.mark.django_db

WEBHOOK_QUERY_BUDGET = 8


def test_a_new_event_costs_at_most_8_statements_and_writes_its_inbox_row_once(reservation):
    attempt = PaymentFactory(reservation=reservation)
    with CaptureQueriesContext(connection) as captured:
        response = post_event(Client(), intent_event("payment_intent.succeeded", attempt, status="succeeded"))

    assert response.status_code == 200, response.content
    statements = [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(TRANSACTION_CONTROL)]
    counted = [sql for sql in statements if not any(name in sql for name in IN_REDIS_WHEN_DEPLOYED)]
    listing = "\n".join(sql[:160] for sql in counted)
    assert len(counted) <= WEBHOOK_QUERY_BUDGET, f"{len(counted)} queries:\n{listing}"
    inbox = [sql for sql in counted if "`payments_stripeevent`" in sql]
    assert len(inbox) == 1, listing  # inserted as processed, never updated after
    stored = StripeEvent.objects.get()
    assert (stored.status, stored.attempts, stored.error) == (StripeEventStatus.PROCESSED, 1, "")
    assert stored.processed_at is not None
    attempt.refresh_from_db()
    assert attempt.status == PaymentStatus.SUCCEEDED
