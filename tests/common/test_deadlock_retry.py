"""E2: real MariaDB deadlocks between two connections, retried by retry_on_deadlock.

The victim is made deterministic by InnoDB's own rule: it rolls back the transaction that
has changed the fewest rows, so the raw "other" connection first updates a batch of rows."""

from __future__ import annotations

import threading

import pytest
from django.db import OperationalError, ProgrammingError, connection, transaction

from common.db import retry_on_deadlock
from reservations.models import DailyInventory
from tests.factories import ProductFactory
from tests.support.db import raw_connection

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def two_rows():
    import datetime as dt

    products = [ProductFactory() for _ in range(12)]
    rows = [DailyInventory.objects.create(product=p, date=dt.date(2030, 1, 1)) for p in products]
    return rows


class HeavyOpponent:
    """Locks row B (after making itself heavy), then wants row A: the mirror image of the
    Django transaction, so the two deadlock. Runs once per `arm()`."""

    def __init__(self, rows: list[DailyInventory]) -> None:
        self.a, self.b, self.ballast = rows[0], rows[1], rows[2:]
        self.armed = threading.Event()
        self.holds_b = threading.Event()
        self.errors: list[BaseException] = []
        self.rounds = 0

    def play_one_round(self) -> None:
        conn = raw_connection(autocommit=False)
        try:
            with conn.cursor() as cur:
                for row in self.ballast:
                    cur.execute("UPDATE reservations_dailyinventory SET reserved = reserved + 1 WHERE id = %s",
                                [row.pk])
                cur.execute("SELECT id FROM reservations_dailyinventory WHERE id = %s FOR UPDATE", [self.b.pk])
                self.holds_b.set()
                cur.execute("SELECT id FROM reservations_dailyinventory WHERE id = %s FOR UPDATE", [self.a.pk])
            conn.commit()
            self.rounds += 1
        except BaseException as exc:  # surfaced by the test
            self.errors.append(exc)
            conn.rollback()
        finally:
            conn.close()


def _lock_a_then_b(opponent: HeavyOpponent, calls: list[int], *, fight_every_time: bool) -> None:
    calls.append(1)
    with transaction.atomic():
        DailyInventory.objects.select_for_update().get(pk=opponent.a.pk)
        if fight_every_time or len(calls) == 1:
            opponent.holds_b.clear()
            t = threading.Thread(target=opponent.play_one_round)
            t.start()
            assert opponent.holds_b.wait(10), opponent.errors
            try:
                DailyInventory.objects.select_for_update().get(pk=opponent.b.pk)
            finally:
                # our rollback (deadlock victim) lets the opponent finish; join outside the lock wait
                threading.Thread(target=t.join).start()
        DailyInventory.objects.filter(pk=opponent.b.pk).update(reserved=42)


def test_a_real_deadlock_is_retried_and_the_transaction_succeeds(two_rows):
    opponent = HeavyOpponent(two_rows)
    calls: list[int] = []

    retry_on_deadlock(attempts=3)(_lock_a_then_b)(opponent, calls, fight_every_time=False)

    assert len(calls) == 2  # first attempt was the deadlock victim, the second committed
    assert not opponent.errors
    assert DailyInventory.objects.get(pk=opponent.b.pk).reserved == 42
    connection.close()


def test_a_persistent_deadlock_gives_up_after_the_bound(two_rows):
    opponent = HeavyOpponent(two_rows)
    calls: list[int] = []

    with pytest.raises(OperationalError) as excinfo:
        retry_on_deadlock(attempts=3)(_lock_a_then_b)(opponent, calls, fight_every_time=True)

    assert excinfo.value.args[0] == 1213
    assert len(calls) == 3
    assert DailyInventory.objects.get(pk=opponent.b.pk).reserved == 0
    connection.close()


def test_retry_refuses_to_run_inside_an_outer_transaction():
    @retry_on_deadlock
    def inner() -> None:
        pass

    with transaction.atomic(), pytest.raises(RuntimeError, match="outermost"):
        inner()


def test_non_retryable_errors_are_not_retried():
    calls: list[int] = []

    @retry_on_deadlock(attempts=5)
    def broken() -> None:
        calls.append(1)
        with connection.cursor() as cur:
            cur.execute("SELECT * FROM no_such_table")

    with pytest.raises(ProgrammingError):
        broken()
    assert calls == [1]
