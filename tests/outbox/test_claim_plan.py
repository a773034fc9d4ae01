"""The claim reads a handful of rows, whatever the outbox's history (issue "performance").

Delivered events are never deleted, and they are the oldest by `available_at`: a claim that
walked that index through them before reaching the due ones cost the database more with every
event ever delivered (4,500 rows read per claim after a 4,500-event backlog)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from outbox.delivery import outbox_claim_due
from outbox.models import OutboxEvent, OutboxStatus

DELIVERED = 3000
BACKLOG = 1000  # a backlog: with few due rows the database sorted them instead (cheap either way)


def _events(count: int, *, status: str, available_at: dt.datetime, prefix: str, **fields) -> list[OutboxEvent]:
    return OutboxEvent.objects.bulk_create(
        [OutboxEvent(topic="bench.noop", dedup_key=f"{prefix}:{i}", status=status,
                     available_at=available_at + dt.timedelta(microseconds=i), **fields) for i in range(count)],
        batch_size=1000)


def _rows_read(sql: str, params) -> list[float]:
    """MariaDB's ANALYZE: the statement runs, and each table's r_rows is the rows it really read."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE " + sql, params)
        columns = [column[0] for column in cursor.description]
        return [float(dict(zip(columns, row, strict=True))["r_rows"] or 0) for row in cursor.fetchall()]


@pytest.mark.django_db(transaction=True)
def test_a_claim_reads_the_due_rows_not_the_delivered_history():
    now = timezone.now()
    _events(DELIVERED, status=OutboxStatus.DELIVERED, available_at=now - dt.timedelta(days=2), prefix="done",
            delivered_at=now - dt.timedelta(days=1))
    pending = _events(BACKLOG, status=OutboxStatus.PENDING, available_at=now - dt.timedelta(minutes=1), prefix="due")
    expired = _events(2, status=OutboxStatus.IN_FLIGHT, available_at=now - dt.timedelta(hours=1), prefix="lost",
                      locked_until=now - dt.timedelta(minutes=2), locked_by="gone", attempts=1)
    claims: list[tuple[str, object]] = []

    def record(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith("SELECT") and "SKIP LOCKED" in sql.upper():
            claims.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        claimed = outbox_claim_due(worker="plan", limit=3)

    # The oldest due first: the expired leases (due 2 min ago), then the oldest pending event.
    assert {e.dedup_key for e in claimed[:2]} == {e.dedup_key for e in expired}
    assert claimed[2].dedup_key == pending[0].dedup_key
    assert claims
    for sql, params in claims:
        read = _rows_read(sql, params)
        assert max(read) <= 20, f"a claim read {read} rows of an outbox with {DELIVERED} delivered events: {sql}"
