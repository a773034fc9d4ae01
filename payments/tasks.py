"""Entry points for the scheduler (django-q2). Plain functions: the outbox engineer's
schedule calls them by dotted path."""

from __future__ import annotations

from common.idempotency import idempotency_keys_purge
from payments.services import payments_reconcile


def reconcile_payments() -> int:
    return payments_reconcile()


def purge_idempotency_keys() -> int:
    return idempotency_keys_purge()
