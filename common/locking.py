"""The one lock order (E2): every transaction that locks more than one of these rows takes
them in this order, and rows of one kind in primary-key order:

    customer → reservation → payment → refund → dead letter → outbox event

Two transactions that lock in one global order cannot deadlock on each other: the later one
waits for the earlier one instead of holding what the earlier one needs (pretix
`base/services/locking.py`, Saleor's `lock_objects.py`).

- The customer (their user row) is locked only by reservation create, to count their unpaid
  holds (RESERVATION_MAX_UNPAID_HOLDS), before the reservation it creates.
- The reservation comes next because almost every flow works on one: pay, webhook, refund,
  cancel, expiry, staff actions and the application of a supplier's answer.
- The outbox event comes last. Delivery claims events without waiting (`SKIP LOCKED`, so
  claims stand outside the order), but applying a result locks the domain rows that result
  changes: the delivery first asks the event's handler to lock them (`TopicHandler.lock`),
  and only then locks the event row. Staff retry-now and dead-letter replay take the same
  path down: reservation, dead letter, event.

Take these locks with `lock_rows`: it locks in primary-key order and refuses
(`LockOrderViolation`) a kind of row locked after a kind that comes later in the order, in
the same transaction — a bug that would otherwise show only as a rare deadlock under load,
healed by retrying. Locking a row the transaction already holds is always allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.db import models, transaction

from common.compiled import CompiledQuery

M = TypeVar("M", bound=models.Model)

# Model labels (app_label.modelname) from first to last: the order, by name, so that this
# module imports none of the apps it orders.
LOCK_ORDER: tuple[str, ...] = (
    "auth.user",
    "reservations.reservation",
    "payments.payment",
    "payments.refund",
    "outbox.deadletter",
    "outbox.outboxevent",
)


class LockOrderViolation(RuntimeError):
    """A row was locked after a row of a kind that comes later in LOCK_ORDER."""


def lock_rows(queryset: models.QuerySet[M]) -> list[M]:
    """`SELECT … FOR UPDATE` the rows of `queryset`, in primary-key order, inside the current
    transaction. Join nothing into it: MariaDB locks every joined row too."""
    label = queryset.model._meta.label_lower
    if label not in LOCK_ORDER:
        raise LockOrderViolation(f"{label} has no place in common.locking.LOCK_ORDER")
    rows = list(queryset.select_for_update().order_by("pk"))
    _note_locked(label, [row.pk for row in rows])
    return rows


class CompiledLock(Generic[M]):
    """`lock_rows(build(**values))` for the locks taken on every request of a hot path (pay,
    create): the same `SELECT … FOR UPDATE … ORDER BY pk`, compiled once (common.compiled),
    and the same lock-order check."""

    def __init__(self, build: Callable[..., models.QuerySet[M]], **params: Any) -> None:
        self._query = CompiledQuery(lambda **values: build(**values).select_for_update().order_by("pk"), **params)

    def __call__(self, **values: Any) -> list[M]:
        label = self._query.model()._meta.label_lower
        if label not in LOCK_ORDER:
            raise LockOrderViolation(f"{label} has no place in common.locking.LOCK_ORDER")
        _held_in_this_transaction()  # refuses a lock outside a transaction, before taking it
        rows = self._query.execute(**values)
        _note_locked(label, [row.pk for row in rows])
        return rows


def _note_locked(label: str, pks: list[Any]) -> None:
    held = _held_in_this_transaction()
    rank = LOCK_ORDER.index(label)
    new = {(label, pk) for pk in pks} - held["rows"]
    if new and rank < held["rank"]:
        raise LockOrderViolation(
            f"{label} locked after {LOCK_ORDER[held['rank']]} in one transaction; the lock order is "
            f"{' → '.join(LOCK_ORDER)} (common/locking.py)")
    held["rows"] |= new
    held["rank"] = max(held["rank"], rank)


def _held_in_this_transaction() -> dict[str, Any]:
    """What this connection's current transaction has locked through lock_rows. The
    transaction is the outermost atomic block our code opened (a test case's wrapping block
    does not count, as for durable=True)."""
    conn = transaction.get_connection()
    if not conn.in_atomic_block:
        raise transaction.TransactionManagementError("lock_rows needs a transaction: a lock lasts until it ends")
    block = next((b for b in conn.atomic_blocks if not b._from_testcase), conn.atomic_blocks[0])
    state = getattr(conn, "_lock_order_state", None)
    if state is None or state[0] is not block:
        state = (block, {"rank": -1, "rows": set()})
        conn._lock_order_state = state
    return state[1]
