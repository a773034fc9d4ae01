"""What one pay costs the database (issue "performance": ≤ 12 queries per pay). Counted, not
timed: the statements a successful pay sends, transaction control aside, with the cache in
Redis as deployed (the API token is found there). The breaker state and the task broker live
in Redis too when deployed (REDIS_URL, compose.yaml); the test settings keep them in MariaDB,
so their statements are named and left out of the budget."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.payments.conftest import new_key, pay

# Real commits: the answer is stored by the pay's own transaction (B11), which an on-commit
# callback reports; inside a test-case transaction it would be stored a second time.
pytestmark = pytest.mark.django_db(transaction=True)

TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")
IN_REDIS_WHEN_DEPLOYED = ("`circuit_breakers`", "`django_q_")
PAY_QUERY_BUDGET = 12


def test_a_pay_costs_at_most_12_queries(shared_cache, api, reservation, visa):
    api.get(f"/api/v1/reservations/{reservation.id}/")  # the token is in the cache from now on
    with CaptureQueriesContext(connection) as captured:
        response = pay(api, reservation, key=new_key(), payment_method=visa)

    assert response.status_code == 200, response.content
    statements = [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(TRANSACTION_CONTROL)]
    counted = [sql for sql in statements if not any(name in sql for name in IN_REDIS_WHEN_DEPLOYED)]
    listing = "\n".join(sql[:160] for sql in counted)
    assert len(counted) <= PAY_QUERY_BUDGET, f"{len(counted)} queries:\n{listing}"
    # The answer's body is written from the rows the transaction locked: no read after it.
    assert not counted[-1].startswith("SELECT"), listing
